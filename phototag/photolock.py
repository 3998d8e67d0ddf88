"""Advisory locks on photos, so that two phototag processes (two scans with different indexes, a
scan and a ``clean``) never rewrite one photo at once.

A process holds an exclusive ``flock`` on a photo from reading it until its new version is renamed
in (or it gives up). The lock is on the file, which the rename replaces: a process that finds the
photo locked tries again later, and a process that gets a lock checks that the name still names
the file it locked, else it locks the new file, so it always reads the latest version. Programs
other than phototag take no lock; for them the write protocol compares the file with what was read
just before the rename and checks after it that the file in place is the one written.
"""

from __future__ import annotations

import fcntl
import os
import time

POLL = 0.1  # seconds between tries while waiting for another process's lock


class PhotoBusy(Exception):
    """Another phototag process holds the photo's lock."""


class PhotoLock:
    """An exclusive lock on a photo file; released by ``release`` (or on leaving a ``with`` block),
    and by the system when the process ends, however it ends."""

    def __init__(self, fd: int):
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PhotoLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_photo(path: str | os.PathLike | bytes, wait: float = 0.0) -> PhotoLock:
    """Lock the photo at ``path`` (a link: its target). Raises PhotoBusy when another process holds
    it for longer than ``wait`` seconds, OSError when it cannot be opened."""
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: a FIFO does not hang
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked, now = os.fstat(fd), os.stat(path)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise PhotoBusy("another phototag process is rewriting it") from None
            time.sleep(POLL)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (locked.st_dev, locked.st_ino) == (now.st_dev, now.st_ino):
            return PhotoLock(fd)
        os.close(fd)  # replaced while we locked it: lock the file now in its place
