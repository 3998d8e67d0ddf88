"""The scan's stages arranged on this machine (:class:`LocalScan`): the plan, then per photo decoding
(a prefetch thread), detection, the chain on batches of faces (a thread) and the writes, so that
the three overlap and the slowest sets the pace. :mod:`phototag.ray_scan` arranges the same stages
over a cluster, reusing this class's plan, passes and end of scan."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import sqlite_utils

from . import index, people
from .atomic import Written
from .concurrency import Interrupts, prefetch
from .models import model_version, read_manifest, shipped_model_dir
from .options import ScanOptions, ScanProgress
from .photolock import PhotoBusy, PhotoLock, lock_photo
from .pipeline import Photo, PhotoJob, batch_is_full, chain_faces, detect_faces, read_photo
from .plan import plan, stat_job
from .records import Face
from .summary import ScanSummary
from .walk import named_folders
from .writer import PhotoWriter

if TYPE_CHECKING:
    from .analyzer import FaceAnalyzer

PREFETCH = 2  # photos read and decoded ahead of detection
PREFETCH_BYTES = 256 << 20  # decoded bytes held ahead of detection at which reading ahead pauses


class LocalScan:
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
        model_dir = options.model_dir or shipped_model_dir()
        version = analyzer.version if analyzer is not None else model_version(model_dir)
        # the models' manifest: the people corrections tag genders by its thresholds, as the chain did
        self.manifest = analyzer.chain.models.manifest if analyzer is not None else read_manifest(model_dir)
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
        self._update_people()

    def _update_people(self) -> None:
        """Group the new faces into people and correct each person's faces (:func:`phototag.people.update`),
        then write again the tags of the photos whose corrected values changed, from the index
        (each photo as its own write, the write protocol's way; a photo changed since its scan is
        left for the next scan, which reads it again)."""
        t = time.perf_counter()
        db = self.index.db
        done = people.update(db, manifest=self.manifest)  # transactions: Ctrl-C rolls back one, the next scan finishes
        self.summary.people_grouped, self.summary.people_new = done.grouped, done.new_people
        rewritten = []
        changed = people.changed_photos(db)
        self.summary.people_corrected = len(changed)
        for photo_id in changed:
            row = db.execute("select path_key, size, mtime_ns, inode, sha256 from photos where id = ?",
                             [photo_id]).fetchone()
            scanned = self.index.scanned_photo(row[0])
            if scanned is None:
                continue
            info, faces, version = scanned
            with self.interrupts.hold():
                if self.options.exif or self.options.sidecar:
                    read = Written(row[1], row[2], row[3], row[4])
                    recorder = index.IndexWriter(db, version)
                    try:
                        with lock_photo(row[0], wait=0.0):
                            report = PhotoWriter(self.options, version).write(row[0], read, info, faces, recorder)
                    except (PhotoBusy, OSError):
                        continue  # busy or gone: its tags are written when it is next scanned
                    if report.changed:
                        continue
                    self.summary.people_rewritten += 1
                rewritten.append(photo_id)
        if rewritten:
            people.update(db, manifest=self.manifest)  # the rows written again take back their faces' people
            people.mark_written(db, rewritten)
        self.timings.people += time.perf_counter() - t

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
                self.progress.more(-1)  # for now: the pass for busy photos adds it back
                continue
            if photo.too_large:
                self.summary.count_too_large(photo.path, photo.error)
                self._unlock(photo.path)
                self.progress.more(-1)
                continue
            if photo.error:
                self._record_failure(photo)
                self._unlock(photo.path)
                continue
            t = time.perf_counter()
            detect_faces(self.analyzer, photo)
            self.timings.detect += time.perf_counter() - t
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
                self.progress.advance(len(faces))
            else:
                self.progress.more(-1)  # not recorded; read once more in the last pass
                if photo.job.retried:
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
        self.progress.advance(0)


def _pixel_bytes(photo: Photo) -> int:
    return 0 if photo.pixels is None else photo.pixels.nbytes
