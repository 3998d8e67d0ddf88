"""Replacing a file atomically: temp file beside it, fsync, rename, fsync of the folder.

Used for photos and sidecars alike. The temporary file is named ``.NAME.XXXXXXXX.phototag-tmp``
(``TEMP_SUFFIX``), so a crash leaves a file that is recognisably phototag's. ``replace`` returns
what it wrote (size, mtime, inode and SHA-256 of the bytes), so a caller need not read the file back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TEMP_SUFFIX = ".phototag-tmp"


class Refused(ValueError):
    """The file cannot be written safely; it is left as it is."""


@dataclass(frozen=True)
class Written:
    """The file ``replace`` put in place: its size, modification time, inode and content hash (hex)."""

    size: int
    mtime_ns: int
    inode: int
    sha256: str


def check_writable(path: Path) -> None:
    """Refuse files that are not regular, are read-only or have several hard links."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise Refused("not a regular file")
    if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise Refused("the file is read-only")
    if st.st_nlink > 1:
        raise Refused(f"the file has {st.st_nlink} hard links; rewriting it would split them")


def replace(path: Path, pieces: Iterable, *, like: os.stat_result, expect: os.stat_result | None,
            keep_times: bool) -> Written:
    """Write ``pieces`` (bytes-like) to a temp file beside ``path``, fsync it and rename it over ``path``.

    The new file gets ``like``'s permission bits, its owner where allowed and, with ``keep_times``,
    its access and modification times. ``path`` must still match ``expect`` (None: must not exist),
    else ``Refused`` is raised and nothing changes.
    """
    path = Path(os.path.realpath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        digest = hashlib.sha256()
        with open(fd, "wb") as file:
            for piece in pieces:
                file.write(piece)
                digest.update(piece)
            file.flush()
            os.fchmod(file.fileno(), stat.S_IMODE(like.st_mode))
            if (like.st_uid, like.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(file.fileno(), like.st_uid, like.st_gid)
            if keep_times:
                os.utime(file.fileno(), ns=(like.st_atime_ns, like.st_mtime_ns))
            os.fsync(file.fileno())
            st = os.fstat(file.fileno())
        _expect(path, expect)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)
    return Written(st.st_size, st.st_mtime_ns, st.st_ino, digest.hexdigest())


def remove(path: Path) -> None:
    """Delete ``path`` and make the deletion durable."""
    path.unlink()
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename or deletion in it survives a crash (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _expect(path: Path, expect: os.stat_result | None) -> None:
    try:
        now = path.stat()
    except FileNotFoundError:
        now = None
    same = (now is None if expect is None else now is not None and
            (now.st_ino, now.st_size, now.st_mtime_ns) == (expect.st_ino, expect.st_size, expect.st_mtime_ns))
    if not same:
        raise Refused("the file changed while phototag was writing it")
