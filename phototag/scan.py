"""``phototag scan``: walk -> decode -> detect -> face chain -> EXIF -> index, with progress and a summary.

The stages live in their own modules: :mod:`~phototag.plan` (walk and change detection),
:mod:`~phototag.pipeline` (read, decode, detect, chain), :mod:`~phototag.writer` (the tags, with
:class:`~phototag.index.IndexWriter` for the index side) and :mod:`~phototag.summary`; this module
starts one arrangement of them: :mod:`~phototag.local_scan` (this machine) or
:mod:`~phototag.ray_scan` (a Ray cluster).

Each photo is written to the index in its own transaction. When its file is rewritten, the row
(faces and the new file's size, mtime and hash) is recorded as unconfirmed just before the rename
and confirmed after it (see :mod:`phototag.index`), so a scan stopped at any moment, even by
kill -9, leaves file and index reconcilable, and the next one carries on with the photos not yet
recorded. Faces from many photos are batched into one call
of the face chain. Reading and decoding the next photos runs in a thread beside detection and the
chain (Pillow's decoders release the GIL).

The detector and the models (a :class:`~phototag.analyzer.FaceAnalyzer`) are built only when
there is a photo to scan, so a scan that finds nothing new never loads them (nor TensorFlow).
Rendering for people is in :mod:`phototag.display`.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from . import index
from .concurrency import Interrupts
from .local_scan import LocalScan
from .options import ScanOptions, ScanProgress, SilentProgress
from .ray_scan import RayScan
from .summary import ScanSummary, Timings

if TYPE_CHECKING:
    from .analyzer import FaceAnalyzer

__all__ = ["ScanOptions", "ScanProgress", "ScanSummary", "SilentProgress", "Timings", "scan"]


def scan(options: ScanOptions, progress: ScanProgress | None = None,
         analyzer: FaceAnalyzer | None = None) -> ScanSummary:
    """Run a scan and return its summary. Per-file problems are recorded and listed, never raised.

    ``analyzer``: the detector and models to use (built from ``options`` when there is work)."""
    summary = ScanSummary()
    with index.scan_lock(options.db_path, wait=options.wait):
        db = index.open_index(options.db_path)
        start = time.perf_counter()
        try:
            arrangement = LocalScan if options.ray is None else RayScan
            with Interrupts() as interrupts:
                arrangement(options, progress or SilentProgress(), analyzer, db, interrupts, summary).run()
        except KeyboardInterrupt:
            summary.interrupted = True
        except sqlite3.Error as e:
            raise index.IndexUnusable(f"cannot write the index {options.db_path}: {index.reason(e)}") from e
        finally:
            summary.timings.total = time.perf_counter() - start
    return summary
