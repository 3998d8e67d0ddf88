"""``phototag clean``: remove what phototag wrote from the photos under some paths (see
:func:`phototag.tags.clean` for one photo), and record them in the index as cleaned, so that the next
scan leaves them so (until ``--rescan``, or until the file changes). Rendering is in
:mod:`phototag.display`.

The index side: each cleaned photo is recorded (status ``cleaned``, its faces removed, the new
file's size, mtime, inode, ctime and hash) in its own transaction just after its file is rewritten,
while phototag's lock on the photo is held. A clean killed between the two leaves the row describing
the old file, which the next scan sees changed and scans again; cleaning it again records it (a
photo the index holds as tagged, ``written``, that is another file now and has no tags left). Without
an index at ``db_path`` the photos are cleaned all the same; an index that cannot be used is said so
in the summary (``index_error``) and the photos are cleaned too.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from . import atomic, index, tags
from .images import supported_extensions
from .index import display_path
from .photolock import PhotoBusy, lock_photo
from .plan import file_sha256
from .tags import CleanResult
from .walk import named_folders, walk


@dataclass
class CleanOptions:
    """What ``phototag clean`` was asked to do (see the command's help)."""

    dry_run: bool = False  # only report what would be removed
    touch: bool = False  # give cleaned photos a new modification time (default: keep it)
    include_hidden: bool = False
    lock_wait: float = 30.0  # seconds to wait for a photo another phototag process holds (see photolock)
    force: bool = False  # rewrite photos whose owner or extended attributes cannot be kept
    db_path: Path | None = None  # the index to record the cleaned photos in (None: index.default_db_path())


@dataclass
class CleanSummary:
    """What a clean did: the photos changed or failed, in walk order, and the temp files removed."""

    dry_run: bool = False
    photos: list[tuple[str, CleanResult]] = field(default_factory=list)  # (path, what was removed or why not)
    temp_files_removed: int = 0  # left by killed writes
    indexed: int = 0  # photos recorded in the index as cleaned (the next scans leave them alone)
    index_error: str = ""  # why the index could not be updated ("" too when there is no index)

    @property
    def cleaned(self) -> int:
        return sum(not r.failed for _, r in self.photos)

    @property
    def failed(self) -> int:
        return sum(bool(r.failed) for _, r in self.photos)


def clean(paths: Iterable[str | os.PathLike | bytes], options: CleanOptions | None = None) -> CleanSummary:
    """Remove phototag's tags from the photos under ``paths`` (files or folders, walked as the scan
    walks them); a folder that cannot be listed or a photo that cannot be cleaned is listed as failed."""
    options = options or CleanOptions()
    paths = list(paths)
    summary = CleanSummary(dry_run=options.dry_run)
    folders = set(named_folders(paths))
    recorder = None if options.dry_run else _Recorder.open(options.db_path, summary)

    def unreadable(path: bytes, error: OSError) -> None:
        summary.photos.append((display_path(path), CleanResult(failed=error.strerror or str(error))))

    try:
        for path in walk(paths, supported_extensions(), options.include_hidden, on_error=unreadable):
            folders.add(os.path.dirname(path))
            result = _clean_locked(path, options, recorder)
            if result.failed or result.changed:
                summary.photos.append((display_path(path), result))
    finally:
        if recorder is not None:
            recorder.close()
    if not options.dry_run:
        summary.temp_files_removed = sum(atomic.remove_stale_temps(folder) for folder in sorted(folders))
    return summary


def _clean_locked(path: bytes, options: CleanOptions, recorder: _Recorder | None) -> CleanResult:
    """``tags.clean`` of one photo, just walked, while holding its lock (another phototag process may
    be rewriting it); the photo is recorded in the index under the same lock."""
    try:
        walked = os.stat(path)
        with lock_photo(path, wait=options.lock_wait):
            result = tags.clean(path, dry_run=options.dry_run, keep_mtime=not options.touch, force=options.force,
                                walked=walked)
            if recorder is not None and not result.failed:
                recorder.record(path, result.changed)
            return result
    except PhotoBusy as e:
        return CleanResult(failed=f"{e}; try again when it has finished")
    except OSError as e:
        return CleanResult(failed=e.strerror or str(e))


class _Recorder:
    """The index side of a clean: the photos cleaned, recorded as such."""

    def __init__(self, db: sqlite_utils.Database, path: Path, summary: CleanSummary):
        self.db: sqlite_utils.Database | None = db
        self.path = path
        self.summary = summary

    @classmethod
    def open(cls, db_path: Path | None, summary: CleanSummary) -> _Recorder | None:
        """The recorder of the index at ``db_path``; None when there is none (or it cannot be used:
        ``summary.index_error`` says why)."""
        path = Path(db_path) if db_path is not None else index.default_db_path()
        try:
            return cls(index.open_index(path, create=False), path, summary)
        except FileNotFoundError:
            return None
        except index.IndexUnusable as e:
            summary.index_error = f"{e} (the photos are cleaned; a scan may write their tags again)"
            return None

    def record(self, path: bytes, changed: bool) -> None:
        """``path`` has no phototag tags now (``changed``: this clean took them out). Recorded as
        cleaned when this clean changed it, or when the index holds it as tagged but it is another
        file now (a clean killed before recording it, or tags taken out by another program)."""
        if self.db is None:
            return
        try:
            row = None if changed else index.get_photo(self.db, path)
            if not changed and (row is None or row["status"] != "done" or row["exif_status"] != "written"):
                return
            st = os.stat(path)
            if not changed and index.describes(row, st):
                return
            sha256 = file_sha256(path)
            if not changed and sha256 == row["sha256"]:
                return
            index.record_cleaned(self.db, path, st, sha256)
            self.summary.indexed += 1
        except OSError:  # gone or unreadable just after the clean: the row stays (a scan sees it changed)
            return
        except sqlite3.Error as e:
            self.summary.index_error = (f"cannot write the index {self.path}: {index.reason(e)} (the photos are "
                                        "cleaned; a scan may write their tags again)")
            self.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.conn.close()
            self.db = None
