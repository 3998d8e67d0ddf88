"""Replacing a file atomically: temp file beside it, fsync, rename, fsync of the folder.

Used for photos and sidecars alike. The temporary file is named ``.NAME.XXXXXXXX.phototag-tmp``
(``TEMP_SUFFIX``; NAME cut short when the whole would not fit the file system's name limit), so a
crash leaves a file that is recognisably phototag's; the writer holds an ``flock`` on it while it
works, so ``remove_stale_temps`` can tell a crashed write's leftover from a write in progress.
``replace`` returns what it wrote (size, mtime, inode and SHA-256 of the bytes), so a caller need
not read the file back, and can tell it to a ``before_rename`` callback first.

The new file keeps the old one's owner, permission bits and extended attributes (``user.*``, POSIX
ACLs ``system.posix_acl_*``, ``security.*`` labels such as SELinux's); when one of them cannot be
kept the write is refused, unless the caller forces it. A file that did not exist is created with
a hard link of the temp file, which fails rather than replace a file another program created
meanwhile, and never follows a symbolic link at its name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import faults
from .errors import Refused

TEMP_SUFFIX = ".phototag-tmp"
TEMP_EXTRA = len(".") + len(".XXXXXXXX") + len(TEMP_SUFFIX)  # bytes the temp name adds to NAME


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
            keep_times: bool, before_rename: Callable[[Written], None] | None = None,
            force: bool = False) -> Written:
    """Write ``pieces`` (bytes-like) to a temp file beside ``path``, fsync it and rename it over ``path``.

    The new file gets ``like``'s permission bits and owner (where allowed, for a file that did not
    exist) and, with ``keep_times``, its access and modification times; when it replaces a file, that
    file's extended attributes too. ``Refused`` (nothing changes) when the replaced file's owner or an
    attribute cannot be kept, unless ``force``. ``path`` must
    still match ``expect`` (None: must not exist; it is then created without following a link at its
    name), else ``Refused`` is raised and nothing changes. ``before_rename`` is told what the file will
    be just before the rename (an exception from it abandons the write).
    """
    path = Path(os.path.realpath(path)) if expect is not None else Path(os.path.realpath(path.parent)) / path.name
    fd, temp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # in use: not stale (released when closed or the process dies)
        digest = hashlib.sha256()
        with open(fd, "wb") as file:
            for piece in pieces:
                file.write(piece)
                digest.update(piece)
            file.flush()
            _keep_owner(file.fileno(), like, force or expect is None)  # a new file loses no owner
            os.fchmod(file.fileno(), stat.S_IMODE(like.st_mode))
            if expect is not None:
                _copy_xattrs(path, file.fileno(), force)
            if keep_times:
                os.utime(file.fileno(), ns=(like.st_atime_ns, like.st_mtime_ns))
            os.fsync(file.fileno())
            st = os.fstat(file.fileno())
            written = Written(st.st_size, st.st_mtime_ns, st.st_ino, digest.hexdigest())
            faults.point("temp-written")
            if before_rename is not None:
                before_rename(written)
            _expect(path, expect)
            if expect is None:
                _create(temp, path)
            else:
                os.replace(temp, path)
            faults.point("renamed")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)
    return written


def _temp_prefix(path: Path) -> str:
    """``.NAME.``, NAME cut (by bytes) so that the temp name fits the folder's file name limit."""
    try:
        limit = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    name = os.fsencode(path.name)[:max(limit - TEMP_EXTRA, 1)]
    return f".{os.fsdecode(name)}."


def _create(temp: str, path: Path) -> None:
    """Put ``temp`` at ``path``, which must not exist (not even as a dangling link): a hard link, then
    ``temp`` dropped; where the file system has no hard links (FAT, some network shares), the name is
    claimed with an empty file (``O_EXCL``) and ``temp`` renamed over that claim."""
    taken = Refused(f"{path.name} was created by another program meanwhile; left as it is")
    try:
        os.link(temp, path, follow_symlinks=False)
    except FileExistsError:
        raise taken from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        try:
            claim = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise taken from None
        claimed = os.fstat(claim).st_ino
        os.close(claim)
        if os.lstat(path).st_ino != claimed:
            raise taken from None
        os.replace(temp, path)
        return
    os.unlink(temp)


def _keep_owner(fd: int, like: os.stat_result, force: bool) -> None:
    if (like.st_uid, like.st_gid) == (os.getuid(), os.getgid()):
        return
    try:
        os.fchown(fd, like.st_uid, like.st_gid)
    except PermissionError as error:
        if not force:
            raise Refused(f"its owner (user {like.st_uid}, group {like.st_gid}) cannot be kept "
                          f"({error.strerror}); --force rewrites it as yours") from None


def _copy_xattrs(source: Path, fd: int, force: bool) -> None:
    """Copy ``source``'s extended attributes (ACLs and security labels included) onto the file ``fd``."""
    if sys.platform == "darwin":
        _copy_xattrs_macos(source, fd, force)
        return
    try:
        names = os.listxattr(source, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.ENOSYS):
            return
        raise
    for name in names:
        try:
            value = os.getxattr(source, name, follow_symlinks=False)
            with contextlib.suppress(OSError):
                if os.getxattr(fd, name) == value:  # given to every new file (an SELinux label)
                    continue
            os.setxattr(fd, name, value)
        except OSError as error:
            if not force:
                raise Refused(f"its extended attribute {name} cannot be kept ({error.strerror}); "
                              "--force rewrites it without") from None


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


def _copy_xattrs_macos(source: Path, fd: int, force: bool) -> None:
    """macOS: extended attributes (Finder tags, comments) and the ACL, with ``fcopyfile`` (copyfile(3))."""
    import ctypes

    copyfile_acl, copyfile_xattr = 1 << 0, 1 << 2
    libc = ctypes.CDLL("libc.dylib", use_errno=True)
    source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if libc.fcopyfile(source_fd, fd, None, copyfile_acl | copyfile_xattr) < 0 and not force:
            raise Refused(f"its extended attributes cannot be kept ({os.strerror(ctypes.get_errno())}); "
                          "--force rewrites it without")
    finally:
        os.close(source_fd)


def _expect(path: Path, expect: os.stat_result | None) -> None:
    try:
        now = path.lstat()
    except FileNotFoundError:
        now = None
    same = (now is None if expect is None else now is not None and
            (now.st_ino, now.st_size, now.st_mtime_ns) == (expect.st_ino, expect.st_size, expect.st_mtime_ns))
    if not same:
        raise Refused("the file changed while phototag was writing it")
