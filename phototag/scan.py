"""``phototag scan``: walk -> decode -> detect -> face chain -> EXIF -> index, with progress and a summary.

The stages live in their own modules: :mod:`~phototag.plan` (walk and change detection),
:mod:`~phototag.pipeline` (read, decode, detect, chain), :mod:`~phototag.writer` (the tags, with
:class:`~phototag.index.IndexWriter` for the index side) and :mod:`~phototag.summary`; this module
arranges them on one machine.

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
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import sqlite_utils

from . import detectors, index
from .concurrency import Interrupts, prefetch
from .images import DEFAULT_DECODE_SIZE, DEFAULT_MAX_PIXELS
from .models import model_version, shipped_model_dir
from .photolock import PhotoBusy, PhotoLock, lock_photo
from .pipeline import Photo, PhotoJob, batch_is_full, chain_faces, detect_faces, read_photo
from .plan import plan, stat_job
from .records import Face
from .sidecar import NAMES
from .summary import ScanSummary, Timings
from .walk import named_folders
from .writer import PhotoWriter

if TYPE_CHECKING:
    from .analyzer import FaceAnalyzer

__all__ = ["ScanOptions", "ScanProgress", "ScanSummary", "SilentProgress", "Timings", "scan"]

PREFETCH = 2  # photos read and decoded ahead of detection
PREFETCH_BYTES = 256 << 20  # decoded bytes held ahead of detection at which reading ahead pauses


@dataclass
class ScanOptions:
    """What ``phototag scan`` was asked to do (see the command's help for each option)."""

    paths: list[bytes]
    db_path: Path | None = None
    model_dir: Path | None = None
    detector: str = detectors.DEFAULT
    engine: str = "auto"  # see phototag.models.load_models
    min_face: int = 0
    min_confidence: float | None = None  # None: the detector's default
    decode_size: int = DEFAULT_DECODE_SIZE
    detect_size: int | None = None  # None: the detector's default
    any_angle: bool = False  # also detect on the photo turned by quarter turns
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are refused before decoding
    raw_pairs: str = "jpeg"  # RAW+JPEG pairs: "jpeg" scans the JPEG and records the RAW as its sibling; "both"
    batch_size: int = 64
    include_hidden: bool = False
    rescan: bool = False
    rescan_outdated: bool = False
    prune: bool = False
    exif: bool = True
    sidecar: bool | None = None  # True: a sidecar for every photo, False: none, None: for formats not written into
    sidecar_name: str = NAMES[0]  # see phototag.sidecar.NAMES
    touch: bool = False  # give rewritten photos a new modification time (default: keep it)
    wait: bool = False  # wait for another scan of the same index instead of refusing
    lock_wait: float = 60.0  # at the end, seconds to wait for photos another phototag process holds
    force: bool = False  # rewrite files whose owner or extended attributes cannot be kept
    verbose: bool = False  # let TensorFlow's/LiteRT's start-up messages through
    ray: str | None = None  # a Ray cluster's address (as ray.init takes it): the stages run there (ray_scan)

    def wants_sidecar(self, exif_status: str) -> bool:
        """Whether a photo gets a sidecar: as ``--sidecar/--no-sidecar`` say, else where the tags could
        not be written into the photo because of its format (``exif_status``)."""
        return self.sidecar if self.sidecar is not None else self.exif and exif_status == "unsupported"

    def analyzer(self) -> FaceAnalyzer:
        """The detector and models these options ask for (loads them)."""
        from .analyzer import FaceAnalyzer

        return FaceAnalyzer(self.detector, models=self.model_dir, engine=self.engine, min_face=self.min_face,
                            min_confidence=self.min_confidence, detect_size=self.detect_size,
                            any_angle=self.any_angle, batch_size=self.batch_size, verbose=self.verbose)


class ScanProgress(Protocol):
    """Receives the scan's messages and progress: ``start`` once with the number of photos to scan,
    then ``advance`` once per photo as soon as its faces are found (or it failed), and ``more`` when
    photos are added to the run (read again after a change, or a RAW in place of its broken JPEG)."""

    def note(self, text: str) -> None: ...

    def start(self, total: int) -> None: ...

    def advance(self, faces: int) -> None: ...

    def more(self, photos: int) -> None: ...


class SilentProgress:
    def note(self, text: str) -> None:
        pass

    def start(self, total: int) -> None:
        pass

    def advance(self, faces: int) -> None:
        pass

    def more(self, photos: int) -> None:
        pass


def scan(options: ScanOptions, progress: ScanProgress | None = None,
         analyzer: FaceAnalyzer | None = None) -> ScanSummary:
    """Run a scan and return its summary. Per-file problems are recorded and listed, never raised.

    ``analyzer``: the detector and models to use (built from ``options`` when there is work)."""
    summary = ScanSummary()
    with index.scan_lock(options.db_path, wait=options.wait):
        db = index.open_index(options.db_path)
        start = time.perf_counter()
        try:
            arrangement = _LocalScan
            if options.ray is not None:
                from .ray_scan import RayScan as arrangement
            with Interrupts() as interrupts:
                arrangement(options, progress or SilentProgress(), analyzer, db, interrupts, summary).run()
        except KeyboardInterrupt:
            summary.interrupted = True
        except sqlite3.Error as e:
            raise index.IndexUnusable(f"cannot write the index {options.db_path}: {index.reason(e)}") from e
        finally:
            summary.timings.total = time.perf_counter() - start
    return summary


class _LocalScan:
    """The stages arranged on this machine: the plan, then per photo decoding (a prefetch thread),
    detection (here), the chain on batches of faces (a thread) and the writes (here), so that the
    three overlap and the slowest sets the pace."""

    def __init__(self, options: ScanOptions, progress: ScanProgress, analyzer: FaceAnalyzer | None,
                 db: sqlite_utils.Database, interrupts: Interrupts, summary: ScanSummary):
        self.options = options
        self.progress = progress
        self.analyzer = analyzer
        self.interrupts = interrupts
        self.summary = summary
        self.timings = summary.timings
        version = analyzer.version if analyzer is not None else model_version(options.model_dir or shipped_model_dir())
        summary.model_version = version
        self.index = index.IndexWriter(db, version)
        self.writer = PhotoWriter(options, version)
        self.retry: list[PhotoJob] = []  # photos changed between reading and writing
        self.busy: list[PhotoJob] = []  # photos another phototag process held (photolock)
        self.locks: dict[bytes, PhotoLock] = {}  # held from reading a photo until it is written or given up
        self.lock_deadline = 0.0  # until when reading waits for a photo's lock (time.monotonic)

    def run(self) -> None:
        opts = self.options
        t = time.perf_counter()
        planned = plan(opts, self.index, self.summary)
        self.timings.walk += time.perf_counter() - t
        self._write_missing_sidecars(planned.sidecars_missing)
        if planned.jobs:
            self._start_analyzer()
        self.progress.start(len(planned.jobs))
        try:
            with ThreadPoolExecutor(max_workers=1) as chain_thread:
                self._scan_photos(planned.jobs, chain_thread)
                if revived := self._raws_of_failed_photos():
                    planned.seen.update(index.path_key(job.path) for job in revived)
                    self.summary.found += len(revived)
                    self.progress.more(len(revived))
                    self._scan_photos(revived, chain_thread)
                if busy := self.busy:  # held by another phototag process: once more, waiting for them
                    self.lock_deadline, self.busy = time.monotonic() + opts.lock_wait, []
                    self.progress.more(len(busy))
                    self._scan_photos(busy, chain_thread)
                    for job in self.busy:
                        self.summary.count_busy(job.path)
                retry, self.retry = self.retry, []  # once more
                if retry:
                    self.progress.more(len(retry))
                self._scan_photos([PhotoJob(job.path, None, retried=True) for job in retry], chain_thread)
        finally:  # an error or Ctrl-C: the photos still held are given up
            for lock in self.locks.values():
                lock.release()
        folders = named_folders(opts.paths)
        self.index.record_siblings(self.summary.raw_pairs(), folders)
        self.summary.missing = self.index.mark_missing(planned.seen, folders, prune=opts.prune)
        self.summary.pruned = opts.prune

    def _scan_photos(self, jobs: list[PhotoJob], chain_thread: ThreadPoolExecutor) -> None:
        pending: list[Photo] = []  # detected, waiting for a chain batch
        batches: deque[tuple[list[Photo], Future]] = deque()  # submitted to the chain thread, in order
        photos = prefetch(self._read, jobs, PREFETCH, weight=_pixel_bytes, budget=PREFETCH_BYTES)
        while True:
            t = time.perf_counter()
            photo = next(photos, None)
            self.timings.waiting += time.perf_counter() - t
            if photo is None:
                break
            if photo.busy:
                self.busy.append(photo.job)
                self.progress.advance(0)
                continue
            if photo.too_large:
                self.summary.count_too_large(photo.path, photo.error)
                self._unlock(photo.path)
                self.progress.advance(0)
                continue
            if photo.error:
                self._record_failure(photo)
                self._unlock(photo.path)
                self.progress.advance(0)
                continue
            t = time.perf_counter()
            detect_faces(self.analyzer, photo)
            self.timings.detect += time.perf_counter() - t
            self.progress.advance(len(photo.detections))
            if not photo.detections:
                self._finish(photo, [])
            else:
                pending.append(photo)
                if batch_is_full(pending, self.options.batch_size):
                    batches.append((pending, chain_thread.submit(self._chain, pending)))
                    pending = []
            # finish what the chain has done; wait when a second batch is queued behind the running one
            while batches and (batches[0][1].done() or len(batches) > 1):
                self._finish_batch(*batches.popleft())
        if pending:
            batches.append((pending, chain_thread.submit(self._chain, pending)))
        while batches:
            self._finish_batch(*batches.popleft())

    def _read(self, job: PhotoJob) -> Photo:
        """Lock, read, hash and decode a photo (runs in the prefetch thread). The lock is held until
        the photo is written (``_finish``) or given up; a photo another process holds is ``busy``."""
        t = time.perf_counter()
        try:
            self.locks[job.path] = lock_photo(job.path, wait=max(0.0, self.lock_deadline - time.monotonic()))
        except PhotoBusy:
            return Photo(job, job.stat, busy=True)
        except OSError:
            pass  # gone or unreadable: reading it says why
        try:
            return read_photo(job, self.options.decode_size, self.options.max_pixels)
        finally:
            self.timings.decode += time.perf_counter() - t

    def _unlock(self, path: bytes) -> None:
        if lock := self.locks.pop(path, None):
            lock.release()

    def _chain(self, photos: list[Photo]) -> list[list[Face]]:
        """The chain's faces for a batch of photos (runs in the chain thread)."""
        t = time.perf_counter()
        try:
            return chain_faces(self.analyzer, photos)
        finally:
            self.timings.chain += time.perf_counter() - t

    def _finish_batch(self, photos: list[Photo], results: Future) -> None:
        t = time.perf_counter()
        faces_per_photo = results.result()  # re-raises what the chain raised
        self.timings.waiting += time.perf_counter() - t
        for photo, faces in zip(photos, faces_per_photo):
            self._finish(photo, faces)

    def _start_analyzer(self) -> None:
        t = time.perf_counter()
        if self.analyzer is None:
            self.analyzer = self.options.analyzer()
        models = self.analyzer.chain.models
        self.summary.detector, self.summary.engine, self.summary.device = (
            self.analyzer.detector.name, models.engine, models.device)
        self.progress.note(self.analyzer.describe())
        self.timings.startup += time.perf_counter() - t

    def _finish(self, photo: Photo, faces: list[Face]) -> None:
        """Write the photo's tags and record it; a Ctrl-C meanwhile takes effect when both are done.
        A photo that is no longer the file that was read goes back to be read again (once)."""
        t = time.perf_counter()
        photo.pixels = None
        with self.interrupts.hold():
            try:
                report = self.writer.write(photo.path, photo.read, photo.info, faces, self.index)
            finally:
                self._unlock(photo.path)
            if not report.changed:
                self.summary.count_written(report)
            elif photo.job.retried:
                self.summary.count_changed(photo.path)
            else:
                self.retry.append(photo.job)
        self.timings.write += time.perf_counter() - t

    def _write_missing_sidecars(self, paths: list[bytes]) -> None:
        """Sidecars for unchanged photos that lack one, from what the index holds (no decoding)."""
        for path in paths:
            with self.interrupts.hold():
                scanned = self.index.scanned_photo(path)
                if scanned is not None:
                    info, faces, version = scanned
                    self.summary.count_sidecar(path, *self.writer.write_sidecar(path, faces, info, version))

    def _raws_of_failed_photos(self) -> list[PhotoJob]:
        """The RAW siblings of the photos that failed in this run, to be scanned in their place."""
        jobs = (stat_job(path, self.index, self.summary) for path in self.summary.take_raws_of_failed())
        return [job for job in jobs if job is not None]

    def _record_failure(self, photo: Photo) -> None:
        self.index.record_failure(photo.path, photo.stat, photo.error)
        self.summary.count_failure(photo.path, photo.error)


def _pixel_bytes(photo: Photo) -> int:
    return 0 if photo.pixels is None else photo.pixels.nbytes
