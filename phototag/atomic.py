"""Replacing a file atomically: temp file beside it, fsync, rename, fsync of the folder.

Used for photos and sidecars alike. The temporary file is named ``.NAME.XXXXXXXX.phototag-tmp``
(``TEMP_SUFFIX``), so a crash leaves a file that is recognisably phototag's; the writer holds an
``flock`` on it while it works, so ``remove_stale_temps`` can tell a crashed write's leftover from a
write in progress. ``replace`` returns what it wrote (size, mtime, inode and SHA-256 of the bytes),
so a caller need not read the file back, and can tell it to a ``before_rename`` callback first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import faults
from .errors import Refused

TEMP_SUFFIX = ".phototag-tmp"


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
            keep_times: bool, before_rename: Callable[[Written], None] | None = None) -> Written:
    """Write ``pieces`` (bytes-like) to a temp file beside ``path``, fsync it and rename it over ``path``.

    The new file gets ``like``'s permission bits, its owner where allowed and, with ``keep_times``,
    its access and modification times. ``path`` must still match ``expect`` (None: must not exist),
    else ``Refused`` is raised and nothing changes. ``before_rename`` is told what the file will be
    just before the rename (an exception from it abandons the write).
    """
    path = Path(os.path.realpath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # in use: not stale (released when closed or the process dies)
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
            written = Written(st.st_size, st.st_mtime_ns, st.st_ino, digest.hexdigest())
            faults.point("temp-written")
            if before_rename is not None:
                before_rename(written)
            _expect(path, expect)
            os.replace(temp, path)
            faults.point("renamed")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)
    return written


def is_temp_name(name: str | bytes) -> bool:
    """Whether a file name is one of ``replace``'s temporary files."""
    name = os.fsdecode(name)
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_stale_temps(folder: str | os.PathLike | bytes) -> int:
    """Delete the temporary files a crashed or killed write left in ``folder``; return how many.

    A temp file another process is writing (it holds the flock) is left alone.
    """
    folder = os.fsencode(folder)
    removed = 0
    try:
        names = [n for n in os.listdir(folder) if is_temp_name(n)]
    except OSError:
        return 0
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.lstat(path).st_ino == os.fstat(fd).st_ino:  # still the file that was locked
                os.unlink(path)
                removed += 1
        except OSError:  # in use (locked), or gone meanwhile
            pass
        finally:
            os.close(fd)
    if removed:
        fsync_dir(Path(os.fsdecode(folder)))
    return removed


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
