"""Rendering a scan for people (rich): the progress bar and the summary. No pipeline logic here."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .names import escape_controls, printable
from .scan import ScanSummary
from .walk import NEEDS_PACKAGE, TOO_LARGE, skipped_counts


# Summary labels of the in-photo (EXIF + XMP) write statuses.
_IN_PHOTO = {
    "written": "tags written into photos",
    "unchanged": "photos already tagged",
    "unsupported": "formats tags are not written into",
    "failed": "tags not written (see below)",
}


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.2f} photos/s" if task.speed else "", style="progress.data.speed")


class RichProgress:
    """A rich progress bar (photos, faces, rate, ETA) on a console; use as a context manager.

    The bar appears when the scan starts its photos (after the walk and the model start-up)."""

    def __init__(self, console: Console):
        self.console = console
        self.faces = 0
        self.bar = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TextColumn("photos"),
                            TextColumn("{task.fields[faces]} faces"), RateColumn(), TimeRemainingColumn(),
                            console=console)
        self.task = None

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None:
            self.bar.stop()

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def start(self, total: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("scan", total=total, faces=0)

    def advance(self, faces: int) -> None:
        self.faces += faces
        self.bar.update(self.task, advance=1, faces=self.faces)

    def more(self, photos: int) -> None:
        self.bar.update(self.task, total=self.bar.tasks[0].total + photos)


def render_summary(summary: ScanSummary, console: Console) -> None:
    """Print the summary table, then every failure and EXIF problem."""
    t = summary.timings
    table = Table(title="phototag scan", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        ("image files found", summary.found),
        ("scanned", summary.scanned),
        ("skipped as unchanged", summary.unchanged),
        ("failed", len(summary.failed)),
    ]
    for reason, by_extension in skipped_counts(summary.skipped).items():
        counts = ", ".join(f"{ext or '(none)'} ×{n}" for ext, n in by_extension.items())
        if reason == NEEDS_PACKAGE:
            counts += f" ({'; '.join(sorted({k.detail for k in summary.skipped if k.reason == reason}))})"
        rows.append((f"not scanned: {reason}", _safe(counts)))
    rows += [
        ("faces found", summary.faces),
        ("pruned from the index" if summary.pruned else "marked missing", summary.missing),
    ]
    rows += [(_IN_PHOTO.get(status, f"tags in the photo {status}"), n) for status, n in sorted(summary.exif.items())]
    rows += [(f"sidecars {status}", n) for status, n in sorted(summary.sidecars.items())]
    if summary.outdated:
        rows.append(("tagged by older models (use --rescan-outdated)", summary.outdated))
    if summary.confirmed:
        rows.append(("interrupted rewrites found complete", summary.confirmed))
    if summary.temp_files_removed:
        rows.append(("temporary files of killed writes removed", summary.temp_files_removed))
    rows.append(("time", f"{t.total:.1f} s"))
    if summary.scanned or summary.failed:
        rows.append(("  start-up / walk", f"{t.startup:.1f} / {t.walk:.1f} s"))
        rows.append(("  decode / detect / chain / write",
                     f"{t.decode:.1f} / {t.detect:.1f} / {t.chain:.1f} / {t.write:.1f} s"))
        rows.append(("  waiting for decode or chain", f"{t.waiting:.1f} s"))
    if summary.engine:
        rows += [("detector", summary.detector), ("models run on", f"{summary.engine} on {summary.device}")]
    rows.append(("models", summary.model_version))
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    lines = [f"[red]failed[/red] {_safe(path)}: {_safe(reason)}" for path, reason in summary.failed]
    lines += [f"[yellow]not scanned[/yellow] {_safe(printable(k.path))}: {_safe(k.detail)}"
              for k in summary.skipped if k.reason == TOO_LARGE]
    lines += [f"[red]unreadable folder[/red] {_safe(path)}: {_safe(reason)}" for path, reason in summary.unreadable]
    lines += [f"[yellow]EXIF {_safe(status)}[/yellow] {_safe(path)}: {_safe(reason)}"
              for path, status, reason in summary.exif_problems]
    lines += [f"[yellow]changed while being scanned[/yellow] {_safe(path)}: left for the next scan"
              for path in summary.changed]
    if summary.interrupted:
        lines.append(f"[yellow]interrupted[/yellow]: {summary.scanned} photo(s) were scanned and recorded; "
                     "the next scan resumes with the rest")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def _safe(text: str) -> str:
    """Text for a rich markup line: control characters shown as ``\\xNN``, markup escaped."""
    return escape(escape_controls(text))
