"""The scan's vocabulary, shared by every stage: what a scan was asked to do (:class:`ScanOptions`)
and whom it tells how it goes (:class:`ScanProgress`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import detectors
from .images import DEFAULT_DECODE_SIZE, DEFAULT_MAX_PIXELS
from .sidecar import NAMES

if TYPE_CHECKING:
    from .analyzer import FaceAnalyzer


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
    then ``advance`` once per photo when its row (its faces, or why it failed) is committed to the
    index, and ``more`` when photos are added to the run (read again after a change, a RAW in place
    of its broken JPEG) or, negative, taken out of it for now (changed or held by another process:
    a later pass adds them back) or for good (too large: not recorded). So the bar never shows
    more photos than the index holds from this run."""

    def note(self, text: str) -> None: ...

    def start(self, total: int) -> None: ...

    def advance(self, faces: int) -> None: ...

    def more(self, photos: int) -> None: ...


class SilentProgress:
    """A progress that shows nothing (for library callers and tests)."""

    def note(self, text: str) -> None:
        pass

    def start(self, total: int) -> None:
        pass

    def advance(self, faces: int) -> None:
        pass

    def more(self, photos: int) -> None:
        pass

