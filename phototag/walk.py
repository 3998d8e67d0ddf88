"""Finding photo files and deciding which of them need scanning.

Paths are handled as bytes (``os.fsencode``) so that names which are not valid UTF-8 work.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import sqlite_utils

from .index import update_file_state

HASH_CHUNK = 1 << 20


def walk(
    paths: Iterable[str | os.PathLike | bytes],
    extensions: Iterable[str],
    include_hidden: bool = False,
    on_error: Callable[[bytes, OSError], None] | None = None,
) -> Iterator[bytes]:
    """Yield the absolute paths of image files under ``paths`` (files or folders), in a stable order.

    Folders are walked depth-first with entries sorted by name; symbolic links are followed but
    each real folder is visited once, so link loops end. Names starting with ``.`` are skipped
    unless ``include_hidden`` (a path given explicitly is always used). Files are chosen by
    extension, case-insensitively. Unreadable folders are passed to ``on_error``.
    """
    wanted = {e.lower().encode() for e in extensions}
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[bytes] = set()
    for root in paths:
        root = os.path.abspath(os.fsencode(root))
        if os.path.isdir(root):
            files = _walk_dir(root, wanted, include_hidden, seen_dirs, on_error)
        else:
            files = iter([root]) if _has_extension(root, wanted) else iter(())
        for path in files:
            if path not in seen_files:
                seen_files.add(path)
                yield path


def _walk_dir(root: bytes, wanted: set[bytes], include_hidden: bool, seen_dirs: set[tuple[int, int]],
              on_error: Callable[[bytes, OSError], None] | None) -> Iterator[bytes]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if on_error:
                on_error(folder, e)
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith(b".") and not include_hidden:
                continue
            try:
                if entry.is_dir():
                    subfolders.append(entry.path)
                elif entry.is_file() and _has_extension(entry.name, wanted):
                    yield entry.path
            except OSError as e:
                if on_error:
                    on_error(entry.path, e)
        stack.extend(reversed(subfolders))


def _has_extension(name: bytes, wanted: set[bytes]) -> bool:
    return os.path.splitext(name)[1].lower() in wanted


def file_sha256(path: bytes) -> str:
    """The SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class IndexedState:
    """What the index remembers about a file from its last scan."""

    size: int | None
    mtime_ns: int | None
    sha256: str | None
    status: str
    model_version: str | None
    exif_status: str | None
    missing: bool
    unconfirmed: bool  # phototag's rewrite of the file was recorded but not confirmed


def load_index_state(db: sqlite_utils.Database) -> dict[bytes, IndexedState]:
    """The remembered state of every file in the index, by path key."""
    rows = db.execute(
        "select path_key, size, mtime_ns, sha256, status, model_version, exif_status, missing, unconfirmed"
        " from photos"
    ).fetchall()
    return {bytes(r[0]): IndexedState(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), bool(r[8])) for r in rows}


def is_unchanged(db: sqlite_utils.Database, path: bytes, st: os.stat_result, known: IndexedState | None) -> bool:
    """Whether ``path`` is the file the index describes: same size and mtime, or, when only the
    mtime differs, the same content hash (then the new mtime is stored so the next check is cheap).
    A file the index marks missing counts as changed, so that it is scanned again. A row whose
    rewrite was not confirmed is decided by the hash alone: the expected one means the rewrite took
    place (it is confirmed now), any other that it did not, or that the file was changed since."""
    if known is None or known.missing or known.size != st.st_size and not known.unconfirmed:
        return False
    if known.mtime_ns == st.st_mtime_ns and not known.unconfirmed:
        return True
    if known.sha256 is None or file_sha256(path) != known.sha256:
        return False
    update_file_state(db, path, st, known.sha256, known.exif_status or "")
    return True
