"""Change detection: whether a file is the one the index describes (see :mod:`phototag.index`)."""

from __future__ import annotations

import hashlib
import os

import sqlite_utils

from . import index
from .index import IndexedState

HASH_CHUNK = 1 << 20


def file_sha256(path: bytes) -> str:
    """The SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
    index.update_file_state(db, path, st, known.sha256, known.exif_status or "")
    return True
