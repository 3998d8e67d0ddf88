"""``phototag clean``: remove what phototag wrote from the photos under some paths (see
:func:`phototag.tags.clean` for one photo). Rendering is in :mod:`phototag.display`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import atomic, tags
from .images import supported_extensions
from .index import display_path
from .photolock import PhotoBusy, lock_photo
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


@dataclass
class CleanSummary:
    """What a clean did: the photos changed or failed, in walk order, and the temp files removed."""

    dry_run: bool = False
    photos: list[tuple[str, CleanResult]] = field(default_factory=list)  # (path, what was removed or why not)
    temp_files_removed: int = 0  # left by killed writes

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

    def unreadable(path: bytes, error: OSError) -> None:
        summary.photos.append((display_path(path), CleanResult(failed=error.strerror or str(error))))

    for path in walk(paths, supported_extensions(), options.include_hidden, on_error=unreadable):
        folders.add(os.path.dirname(path))
        result = _clean_locked(path, options)
        if result.failed or result.changed:
            summary.photos.append((display_path(path), result))
    if not options.dry_run:
        summary.temp_files_removed = sum(atomic.remove_stale_temps(folder) for folder in sorted(folders))
    return summary


def _clean_locked(path: bytes, options: CleanOptions) -> CleanResult:
    """``tags.clean`` of one photo, just walked, while holding its lock (another phototag process may
    be rewriting it)."""
    try:
        walked = os.stat(path)
        with lock_photo(path, wait=options.lock_wait):
            return tags.clean(path, dry_run=options.dry_run, keep_mtime=not options.touch, force=options.force,
                              walked=walked)
    except PhotoBusy as e:
        return CleanResult(failed=f"{e}; try again when it has finished")
    except OSError as e:
        return CleanResult(failed=e.strerror or str(e))
