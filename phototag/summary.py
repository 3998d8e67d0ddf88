"""What a scan did (:class:`ScanSummary`), added up by the summary's own methods as the stages report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .index import display_path
from .walk import BUSY, RAW_SIBLING, TOO_LARGE, Skipped, skipped_counts

if TYPE_CHECKING:
    from .writer import WriteReport


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
    people: float = 0.0  # grouping faces into people, correcting them, writing the corrected tags
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
    still_failing: int = 0  # of those, files that failed at an earlier scan (``phototag stats --failed``)
    cleaned: int = 0  # skipped: photos ``phototag clean`` took the tags out of, left alone (not in
    # ``unchanged``) until --rescan or the file changes
    faces: int = 0  # faces found in the scanned photos
    turned: int = 0  # scanned photos whose faces agree they are the wrong way up (phototag orient)
    people_grouped: int = 0  # faces given a person at the end of the scan (phototag.people.update)
    people_new: int = 0  # people found for the first time
    people_corrected: int = 0  # photos whose faces' values in the index their people changed
    people_rewritten: int = 0  # ... of them, photos whose tags were written again with those values
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this run
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # folders that could not be listed
    skipped: list[Skipped] = field(default_factory=list)  # files under the paths not scanned, and why
    missing: int = 0  # indexed photos under the scanned folders that are gone
    pruned: bool = False  # whether those were deleted from the index
    outdated: int = 0  # unchanged photos tagged by other models, not redone
    exif: dict[str, int] = field(default_factory=dict)  # EXIF write status -> photos
    exif_problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, status, reason)
    exif_notes: list[tuple[str, str]] = field(default_factory=list)  # (path, where the face regions went)
    sidecars: dict[str, int] = field(default_factory=dict)  # sidecar write status -> photos
    interrupted: bool = False  # stopped by Ctrl-C; the next scan carries on
    confirmed: int = 0  # rewrites by an interrupted scan found in place and confirmed (see index)
    changed: list[str] = field(default_factory=list)  # changed while being scanned (twice, or replaced just
    # after phototag's rewrite): left for the next scan
    temp_files_removed: int = 0  # temporary files left by killed writes, removed
    nodes: int = 0  # on a Ray cluster (scan --ray): its nodes, and the worker processes that ran photos' tasks
    workers: int = 0
    timings: Timings = field(default_factory=Timings)

    @property
    def recorded(self) -> int:
        """Photos whose row this run committed to the index: scanned, or failed with the reason."""
        return self.scanned + len(self.failed)

    def count_unreadable(self, folder: bytes, error: OSError) -> None:
        """A folder that could not be listed."""
        self.unreadable.append((display_path(folder), error.strerror or str(error)))

    def count_skipped(self, skipped: Skipped) -> None:
        self.skipped.append(skipped)

    def count_too_large(self, path: bytes, detail: str) -> None:
        """A photo refused before decoding (not recorded, so that a scan with a higher limit takes it)."""
        self.skipped.append(Skipped(path, TOO_LARGE, detail=detail))

    def count_busy(self, path: bytes) -> None:
        """A photo another phototag process held all along (not recorded: the next scan takes it)."""
        self.skipped.append(Skipped(path, BUSY))

    def count_unchanged(self, outdated: bool, confirmed: bool, failed: bool = False) -> None:
        """A photo left alone as the file of the last scan (``confirmed``: its rewrite confirmed now;
        ``failed``: it could not be scanned then, and is the same file still)."""
        self.unchanged += 1
        self.outdated += outdated
        self.confirmed += confirmed
        self.still_failing += failed

    def count_cleaned(self) -> None:
        """A photo ``phototag clean`` took the tags out of, unchanged since: left alone."""
        self.cleaned += 1

    def count_failure(self, path: bytes, error: str) -> None:
        self.failed.append((display_path(path), error))

    def count_changed(self, path: bytes) -> None:
        """A photo that changed between reading and writing a second time: left for the next scan."""
        self.changed.append(display_path(path))

    def count_written(self, report: WriteReport) -> None:
        """A photo whose tags were written (or left as they were) and which was recorded."""
        if report.exif:
            self.exif[report.exif] = self.exif.get(report.exif, 0) + 1
            if report.exif_problem:
                self.exif_problems.append((display_path(report.path), report.exif, report.exif_reason))
            if report.exif_note:
                self.exif_notes.append((display_path(report.path), report.exif_note))
        if report.sidecar:
            self.count_sidecar(report.path, report.sidecar, report.sidecar_reason)
        if report.replaced:
            self.count_changed(report.path)
        self.scanned += 1
        self.faces += report.faces
        self.turned += bool(report.turn)

    def count_sidecar(self, path: bytes, status: str, reason: str) -> None:
        """A sidecar written (or found as it should be, or failed)."""
        self.sidecars[status] = self.sidecars.get(status, 0) + 1
        if status not in ("written", "unchanged"):
            self.exif_problems.append((display_path(path), f"sidecar {status}", reason))

    def take_raws_of_failed(self) -> list[bytes]:
        """The RAW siblings of the photos that failed in this run, taken out of the skipped files to
        be scanned in their place."""
        failed = {path for path, _ in self.failed}
        retry = [k for k in self.skipped if k.reason == RAW_SIBLING and display_path(k.partner) in failed]
        self.skipped = [k for k in self.skipped if k not in retry]
        return [k.path for k in retry]

    def raw_pairs(self) -> dict[bytes, bytes]:
        """The skipped RAW siblings: RAW path -> the photo scanned in its place."""
        return {k.path: k.partner for k in self.skipped if k.reason == RAW_SIBLING}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recorded"] = self.recorded
        d["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        d["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        d["skipped"] = [{"path": display_path(k.path), "reason": k.reason, "extension": k.extension}
                        | ({"detail": k.detail} if k.detail else {})
                        | ({"partner": display_path(k.partner)} if k.partner else {}) for k in self.skipped]
        d["skipped_counts"] = skipped_counts(self.skipped)
        d["exif_problems"] = [{"path": p, "status": s, "reason": r} for p, s, r in self.exif_problems]
        d["exif_notes"] = [{"path": p, "note": n} for p, n in self.exif_notes]
        return d
