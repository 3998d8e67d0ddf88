"""``phototag scan``: walk -> decode -> detect -> face chain -> EXIF -> index, with progress and a summary.

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

import contextlib
import itertools
import os
import signal
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from . import atomic, detectors, index, tags
from .atomic import Written
from .images import DEFAULT_DECODE_SIZE, DEFAULT_MAX_PIXELS, DecodeError, TooLarge, read_photo, supported_extensions
from .models import model_version, shipped_model_dir
from .records import Detection, Face, PhotoInfo, to_full_resolution
from .sidecar import NAMES, sidecar_path
from .walk import RAW_SIBLING, TOO_LARGE, Skipped, is_unchanged, load_index_state, skipped_counts, walk

if TYPE_CHECKING:
    from .analyzer import FaceAnalyzer

PREFETCH = 2  # photos read and decoded ahead of detection
MAX_PENDING_PIXELS = 400_000_000  # decoded bytes held while waiting for a chain batch (about 400 MB)


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
    verbose: bool = False  # let TensorFlow's/LiteRT's start-up messages through

    def analyzer(self) -> FaceAnalyzer:
        """The detector and models these options ask for (loads them)."""
        from .analyzer import FaceAnalyzer

        return FaceAnalyzer(self.detector, models=self.model_dir, engine=self.engine, min_face=self.min_face,
                            min_confidence=self.min_confidence, detect_size=self.detect_size,
                            any_angle=self.any_angle, batch_size=self.batch_size, verbose=self.verbose)


@dataclass
class Timings:
    """Seconds spent per stage. ``decode`` (reading, hashing, decoding) and ``chain`` run in threads
    of their own beside detection and writing, so the stages can add up to more than ``total``;
    ``waiting`` is the time the main thread (detect, write) waited for them."""

    startup: float = 0.0  # loading the detector and the models
    walk: float = 0.0  # finding files and change detection
    decode: float = 0.0
    detect: float = 0.0
    chain: float = 0.0
    write: float = 0.0  # EXIF and index writes
    waiting: float = 0.0
    total: float = 0.0


@dataclass
class ScanSummary:
    """What a scan did; ``to_dict`` is the ``--json`` output."""

    detector: str = ""  # empty when nothing needed the detector and the models
    engine: str = ""  # what ran the models: "litert" or "keras"
    device: str = ""  # where: "CPU" or "GPU: <names>"
    model_version: str = ""
    found: int = 0  # image files under the paths
    scanned: int = 0  # photos decoded, detected and recorded in this run
    unchanged: int = 0  # skipped: same file as at the last scan
    faces: int = 0  # faces found in the scanned photos
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this run
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # folders that could not be listed
    skipped: list[Skipped] = field(default_factory=list)  # files under the paths not scanned, and why
    missing: int = 0  # indexed photos under the scanned folders that are gone
    pruned: bool = False  # whether those were deleted from the index
    outdated: int = 0  # unchanged photos tagged by other models, not redone
    exif: dict[str, int] = field(default_factory=dict)  # EXIF write status -> photos
    exif_problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, status, reason)
    sidecars: dict[str, int] = field(default_factory=dict)  # sidecar write status -> photos
    interrupted: bool = False  # stopped by Ctrl-C; the next scan carries on
    confirmed: int = 0  # rewrites by an interrupted scan found in place and confirmed (see index)
    changed: list[str] = field(default_factory=list)  # changed while being scanned, twice: left for the next scan
    temp_files_removed: int = 0  # temporary files left by killed writes, removed
    timings: Timings = field(default_factory=Timings)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        d["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        d["skipped"] = [{"path": index.display_path(k.path), "reason": k.reason, "extension": k.extension}
                        | ({"detail": k.detail} if k.detail else {})
                        | ({"partner": index.display_path(k.partner)} if k.partner else {}) for k in self.skipped]
        d["skipped_counts"] = skipped_counts(self.skipped)
        d["exif_problems"] = [{"path": p, "status": s, "reason": r} for p, s, r in self.exif_problems]
        return d


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


@dataclass
class _Photo:
    """A photo on its way through the scan."""

    path: bytes
    stat: os.stat_result | None
    retried: bool = False  # read again because it changed between reading and writing
    read: Written | None = None  # the file as read: what the pixels were decoded from
    pixels: np.ndarray | None = None
    info: PhotoInfo | None = None
    detections: list[Detection] = field(default_factory=list)
    error: str = ""
    too_large: bool = False


def scan(options: ScanOptions, progress: ScanProgress | None = None,
         analyzer: FaceAnalyzer | None = None) -> ScanSummary:
    """Run a scan and return its summary. Per-file problems are recorded and listed, never raised.

    ``analyzer``: the detector and models to use (built from ``options`` when there is work)."""
    return _Scan(options, progress or SilentProgress(), analyzer).run()


class _Scan:
    def __init__(self, options: ScanOptions, progress: ScanProgress, analyzer: FaceAnalyzer | None):
        self.options = options
        self.progress = progress
        self.analyzer = analyzer
        self.summary = ScanSummary()
        self.timings = self.summary.timings
        self.retry: list[_Photo] = []

    def run(self) -> ScanSummary:
        opts = self.options
        with index.scan_lock(opts.db_path, wait=opts.wait):
            self.db = index.open_index(opts.db_path)
            try:
                with _Interrupts() as self.interrupts:
                    self._run()
            except KeyboardInterrupt:
                self.summary.interrupted = True
            except sqlite3.Error as e:
                raise index.IndexUnusable(f"cannot write the index {opts.db_path}: {index.reason(e)}") from e
        return self.summary

    def _run(self) -> None:
        start = time.perf_counter()
        opts = self.options
        self.version = (self.analyzer.version if self.analyzer is not None
                        else model_version(opts.model_dir or shipped_model_dir()))
        self.summary.model_version = self.version
        try:
            todo, seen = self._plan()
            self._write_missing_sidecars()
            if todo:
                self._start_analyzer()
            self.progress.start(len(todo))
            with ThreadPoolExecutor(max_workers=1) as chain_thread:
                self._scan_photos(todo, chain_thread)
                if retry := self._raws_of_failed_photos():
                    seen.update(index.path_key(p.path) for p in retry)
                    self.summary.found += len(retry)
                    self.progress.more(len(retry))
                    self._scan_photos(retry, chain_thread)
                retry, self.retry = self.retry, []  # photos changed between reading and writing: once more
                if retry:
                    self.progress.more(len(retry))
                self._scan_photos([_Photo(p.path, None, retried=True) for p in retry], chain_thread)
            folders = [os.path.abspath(os.fsencode(p)) for p in opts.paths if os.path.isdir(p)]
            index.record_siblings(self.db, {k.path: k.partner for k in self.summary.skipped
                                            if k.reason == RAW_SIBLING}, folders)
            self.summary.missing = index.mark_missing(self.db, seen, folders, prune=opts.prune)
            self.summary.pruned = opts.prune
        finally:
            self.timings.total = time.perf_counter() - start

    def _scan_photos(self, todo: list[_Photo], chain_thread: ThreadPoolExecutor) -> None:
        """Decode (prefetch thread), detect (here), run the chain on batches of faces (chain thread)
        and finish the photos (here), so that the three overlap and the slowest sets the pace."""
        opts = self.options
        pending: list[_Photo] = []  # detected, waiting for a chain batch
        batches: deque[tuple[list[_Photo], Future]] = deque()  # submitted to the chain thread, in order
        photos = _prefetch(self._load, todo, PREFETCH)
        while True:
            t = time.perf_counter()
            photo = next(photos, None)
            self.timings.waiting += time.perf_counter() - t
            if photo is None:
                break
            if photo.too_large:  # not recorded, so that a scan with a higher limit takes it
                self.summary.skipped.append(Skipped(photo.path, TOO_LARGE, detail=photo.error))
                self.progress.advance(0)
                continue
            if photo.error:
                self._record_failure(photo)
                self.progress.advance(0)
                continue
            t = time.perf_counter()
            photo.detections = self.analyzer.detect(photo.pixels, photo.info.scale)
            self.timings.detect += time.perf_counter() - t
            self.progress.advance(len(photo.detections))
            if not photo.detections:
                self._finish(photo, [])
            else:
                pending.append(photo)
                if (sum(len(p.detections) for p in pending) >= opts.batch_size
                        or sum(p.pixels.nbytes for p in pending) >= MAX_PENDING_PIXELS):
                    batches.append((pending, chain_thread.submit(self._chain, pending)))
                    pending = []
            # finish what the chain has done; wait when a second batch is queued behind the running one
            while batches and (batches[0][1].done() or len(batches) > 1):
                self._finish_batch(*batches.popleft())
        if pending:
            batches.append((pending, chain_thread.submit(self._chain, pending)))
        while batches:
            self._finish_batch(*batches.popleft())

    def _chain(self, photos: list[_Photo]) -> list[list[Face]]:
        """The chain's faces for a batch of photos (runs in the chain thread)."""
        t = time.perf_counter()
        try:
            return self.analyzer.predict([(p.pixels, p.detections) for p in photos])
        finally:
            self.timings.chain += time.perf_counter() - t

    def _finish_batch(self, photos: list[_Photo], results: Future) -> None:
        t = time.perf_counter()
        faces_per_photo = results.result()  # re-raises what the chain raised
        self.timings.waiting += time.perf_counter() - t
        for photo, faces in zip(photos, faces_per_photo):
            self._finish(photo, [to_full_resolution(f, photo.info.scale) for f in faces])

    def _start_analyzer(self) -> None:
        t = time.perf_counter()
        if self.analyzer is None:
            self.analyzer = self.options.analyzer()
        models = self.analyzer.chain.models
        self.summary.detector, self.summary.engine, self.summary.device = (
            self.analyzer.detector.name, models.engine, models.device)
        self.progress.note(self.analyzer.describe())
        self.timings.startup += time.perf_counter() - t

    def _plan(self) -> tuple[list[_Photo], set[bytes]]:
        """Walk the paths; return the photos to scan and the path keys of every image file found."""
        t = time.perf_counter()
        opts = self.options
        known = load_index_state(self.db)
        todo: list[_Photo] = []
        seen: set[bytes] = set()
        self.sidecars_missing: list[bytes] = []  # unchanged photos whose sidecar is to be written

        def unreadable(path: bytes, error: OSError) -> None:
            self.summary.unreadable.append((index.display_path(path), error.strerror or str(error)))

        revived: list[bytes] = []  # RAWs whose JPEG could not be scanned: scanned in its place

        def skipped(k: Skipped) -> None:
            partner = known.get(index.path_key(k.partner)) if k.reason == RAW_SIBLING else None
            if partner is not None and partner.status == "failed":
                revived.append(k.path)
            else:
                self.summary.skipped.append(k)

        folders = {os.path.abspath(os.fsencode(p)) for p in opts.paths if os.path.isdir(p)}
        found = walk(opts.paths, supported_extensions(), opts.include_hidden, on_error=unreadable,
                     on_skip=skipped, pair_raw=opts.raw_pairs == "jpeg")
        for path in itertools.chain(found, revived):  # ``revived`` fills up during the walk
            key = index.path_key(path)
            seen.add(key)
            folders.add(os.path.dirname(path))
            try:
                st = os.stat(path)
            except OSError as e:
                self._record_failure(_Photo(path, None, error=f"cannot stat: {e.strerror or e}"))
                continue
            state = known.get(key)
            outdated = (state is not None and state.status == "done"
                        and state.model_version != self.version)
            if opts.rescan or (opts.rescan_outdated and outdated) or not is_unchanged(self.db, path, st, state):
                todo.append(_Photo(path, st))
            else:
                self.summary.unchanged += 1
                self.summary.outdated += outdated
                self.summary.confirmed += state.unconfirmed
                if (state.status == "done" and self._wants_sidecar(state.exif_status or "")
                        and not sidecar_path(os.fsdecode(os.path.realpath(path)), opts.sidecar_name).exists()):
                    self.sidecars_missing.append(path)
        self.summary.found = len(seen)
        self.summary.temp_files_removed = sum(atomic.remove_stale_temps(folder) for folder in sorted(folders))
        self.timings.walk += time.perf_counter() - t
        return todo, seen

    def _load(self, photo: _Photo) -> _Photo:
        """Read, hash and decode a photo (runs in the prefetch thread)."""
        t = time.perf_counter()
        try:
            read = read_photo(photo.path, self.options.decode_size, max_pixels=self.options.max_pixels)
        except OSError as e:
            photo.error = f"cannot read: {e.strerror or e}"
        except DecodeError as e:
            photo.error, photo.too_large = str(e), isinstance(e, TooLarge)
        else:
            st = photo.stat = read.stat
            photo.read = Written(st.st_size, st.st_mtime_ns, st.st_ino, read.sha256)
            photo.pixels, photo.info = read.pixels, read.info
        self.timings.decode += time.perf_counter() - t
        return photo

    def _finish(self, photo: _Photo, faces: list[Face]) -> None:
        """Write the photo's tags, then record it with the file's state after that write; a Ctrl-C
        meanwhile takes effect when both are done."""
        with self.interrupts.hold():
            self._write_and_record(photo, faces)

    def _write_and_record(self, photo: _Photo, faces: list[Face]) -> None:
        """The write protocol: the EXIF rewrite, whose result (faces and the new file's size, mtime,
        hash) is recorded as unconfirmed just before the rename; the sidecar; then the row is
        confirmed, or (nothing rewritten) the photo recorded as it was read. A photo that is no
        longer the file that was read is not written and goes back to be read again (once)."""
        t = time.perf_counter()
        photo.pixels = None
        opts = self.options
        path, shown = photo.path, index.display_path(photo.path)

        def record(file: Written, exif_status: str, unconfirmed: bool = False) -> None:
            index.record_photo(self.db, path, file, file.sha256, photo.info, faces, self.version,
                               exif_status, unconfirmed=unconfirmed)

        status = ""
        if opts.exif:
            status, reason = _write(tags.write_faces, path, faces, photo.info, self.version,
                                    keep_mtime=not opts.touch, read=photo.read,
                                    before_rename=lambda new: record(new, "written", unconfirmed=True))
            if status == "changed":
                self.timings.write += time.perf_counter() - t
                if photo.retried:
                    self.summary.changed.append(shown)
                else:
                    self.retry.append(photo)
                return
            self.summary.exif[status] = self.summary.exif.get(status, 0) + 1
            # A format the tags are not written into is no problem when its sidecar takes them.
            if status not in ("written", "unchanged") and not (status == "unsupported" and self._wants_sidecar(status)):
                self.summary.exif_problems.append((shown, status, reason))
        if self._wants_sidecar(status):
            self._write_sidecar(path, faces, photo.info, self.version)
        if status == "written":
            index.confirm(self.db, path)
        else:
            record(photo.read, status)
        self.timings.write += time.perf_counter() - t
        self.summary.scanned += 1
        self.summary.faces += len(faces)

    def _wants_sidecar(self, exif_status: str) -> bool:
        """Whether a photo gets a sidecar: as ``--sidecar/--no-sidecar`` say, else where the tags could
        not be written into the photo because of its format."""
        opts = self.options
        return opts.sidecar if opts.sidecar is not None else opts.exif and exif_status == "unsupported"

    def _write_sidecar(self, path: bytes, faces: list[Face], info: PhotoInfo, version: str) -> None:
        status, reason = _write(tags.write_sidecar, path, faces, info, version, name=self.options.sidecar_name)
        self.summary.sidecars[status] = self.summary.sidecars.get(status, 0) + 1
        if status not in ("written", "unchanged"):
            self.summary.exif_problems.append((index.display_path(path), f"sidecar {status}", reason))

    def _write_missing_sidecars(self) -> None:
        """Sidecars for unchanged photos that lack one, from what the index holds (no decoding)."""
        for path in self.sidecars_missing:
            with self.interrupts.hold():
                scanned = index.scanned_photo(self.db, path)
                if scanned is not None:
                    info, faces, version = scanned
                    self._write_sidecar(path, faces, info, version)

    def _raws_of_failed_photos(self) -> list[_Photo]:
        """The RAW siblings of the photos that failed in this run, taken out of the skipped files to
        be scanned in their place."""
        failed = {path for path, _ in self.summary.failed}
        retry = [k for k in self.summary.skipped if k.reason == RAW_SIBLING and index.display_path(k.partner) in failed]
        self.summary.skipped = [k for k in self.summary.skipped if k not in retry]
        photos = []
        for k in retry:
            try:
                photos.append(_Photo(k.path, os.stat(k.path)))
            except OSError as e:
                self._record_failure(_Photo(k.path, None, error=f"cannot stat: {e.strerror or e}"))
        return photos

    def _record_failure(self, photo: _Photo) -> None:
        index.record_failure(self.db, photo.path, photo.stat, photo.error)
        self.summary.failed.append((index.display_path(photo.path), photo.error))


def _write(writer: Callable, path: bytes, faces: list[Face], info: PhotoInfo, version: str,
           **kwargs) -> tuple[str, str]:
    """Call a tags writer; an unexpected exception becomes a ``failed`` status, never an abort."""
    try:
        result = writer(path, faces, info, version, **kwargs)
    except Exception as e:  # a broken file must not stop the scan
        return "failed", f"{type(e).__name__}: {e}"
    return result.status, result.reason or ""


class _Interrupts:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt as usual, except inside ``hold()``, which it ends first.
    Only installed in the main thread over Python's default handler."""

    def __init__(self):
        self.holding = self.pending = False
        self.previous = None

    def __enter__(self) -> _Interrupts:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handler(self, signum, frame) -> None:
        if not self.holding:
            raise KeyboardInterrupt
        self.pending = True

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.pending:
                raise KeyboardInterrupt


def _prefetch(func: Callable, items: Iterable, depth: int) -> Iterator:
    """``map(func, items)`` computed up to ``depth`` items ahead in a thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        queue: deque = deque()
        for item in items:
            queue.append(pool.submit(func, item))
            if len(queue) > depth:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
