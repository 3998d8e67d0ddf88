"""Everything printed for people or other programs: the scan's progress bar and summary, the
clean's list, the query formats (table, paths, JSON, CSV), ``show`` and ``stats``, the training
table and the evaluation report. The commands' logic is elsewhere; this module only renders."""

from __future__ import annotations

import csv
import io
import json
import shlex

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .ages import age_years
from .clean import CleanSummary
from .names import escape_controls, printable
from .query import gender_confidence, photo_record
from .orient import OrientSummary
from .summary import ScanSummary
from .walk import NEEDS_PACKAGE, TOO_LARGE, skipped_counts


CSV_COLUMNS = ("path", "taken_at", "width", "height", "face_count", "face_index", "x", "y", "w", "h",
               "rotation", "gender", "p_female", "gender_confidence", "age", "confidence")

# Summary labels of the in-photo (EXIF + XMP) write statuses.
_IN_PHOTO = {
    "written": "photos with tags written into them",
    "unchanged": "photos already tagged",
    "unsupported": "photos whose format cannot hold tags",
    "failed": "photos whose tags could not be written (see below)",
}
_SIDECARS = {
    "written": "sidecars written",
    "unchanged": "sidecars already up to date",
    "failed": "sidecars that could not be written (see below)",
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
        self.bar = Progress(TextColumn("scanning"), BarColumn(complete_style="green", finished_style="green"),
                            MofNCompleteColumn(), TextColumn("photos recorded"),
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


def scan_destination(options, console: Console, from_config=None) -> None:
    """The scan's first lines: which index, where the tags go (into the photos, sidecars, or only the
    index) and the options that choose; ``from_config``: the config file that chose some of it."""
    if options.exif:
        where = {True: "into the photos (EXIF and XMP) and into an XMP sidecar beside each",
                 False: "into the photos (EXIF and XMP), no sidecars",
                 None: "into the photos (EXIF and XMP), and into an XMP sidecar beside each photo whose "
                       "format cannot hold them"}[options.sidecar]
    elif options.sidecar:
        where = "into an XMP sidecar beside each photo; the photos are not changed"
    else:
        where = "only into the index; the photos are not changed and no sidecars are written"
    chosen = f" (set in {printable(from_config)})" if from_config else ""
    lines = [f"Index: {printable(options.db_path)} (another: --db FILE)",
             f"Tags go {where}.",
             f"Choose with --no-exif (not into the photos) and --sidecar or --no-sidecar{chosen}."]
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def render_summary(summary: ScanSummary, console: Console, verbose: bool = False, db_words: str = "") -> None:
    """Print the summary table, then every failure and EXIF problem (``verbose``: and the models'
    version; ``db_words``: the ``--db`` of the hints, where not the default index)."""
    t = summary.timings
    table = Table(title="phototag scan", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        ("image files found", summary.found),
        ("scanned", summary.scanned),
        ("skipped as unchanged", summary.unchanged),
        ("failed in this scan", len(summary.failed)),
    ]
    if summary.still_failing:
        rows.append((f"still failing, unchanged since an earlier scan (phototag stats{db_words} --failed)",
                     summary.still_failing))
    for reason, by_extension in skipped_counts(summary.skipped).items():
        counts = ", ".join(f"{ext or '(none)'} ×{n}" for ext, n in by_extension.items())
        if reason == NEEDS_PACKAGE:
            counts += f" ({'; '.join(sorted({k.detail for k in summary.skipped if k.reason == reason}))})"
        rows.append((f"not scanned: {reason}", _safe(counts)))
    rows += [
        ("faces found", summary.faces),
        *([(f"turned the wrong way up (see: phototag orient{db_words} PATH)", summary.turned)]
          if summary.turned else []),
        ("pruned from the index" if summary.pruned else "marked missing", summary.missing),
    ]
    rows += [(_IN_PHOTO.get(status, f"tags in the photo {status}"), n) for status, n in sorted(summary.exif.items())]
    rows += [(_SIDECARS.get(status, f"sidecars {status}"), n) for status, n in sorted(summary.sidecars.items())]
    if summary.people_grouped or summary.people_corrected:
        rows.append(("faces grouped into people (phototag people)", summary.people_grouped))
        rows.append(("  of them new people", summary.people_new))
        rows.append(("photos whose faces their people corrected", summary.people_corrected))
        if summary.people_corrected:
            rows.append(("  of them with their tags written again", summary.people_rewritten))
    if summary.cleaned:
        rows.append(("left alone: cleaned by phototag clean (--rescan tags them)", summary.cleaned))
    if summary.outdated:
        rows.append(("tagged by older models (use --rescan-outdated)", summary.outdated))
    if summary.confirmed:
        rows.append(("interrupted rewrites found complete", summary.confirmed))
    if summary.temp_files_removed:
        rows.append(("temporary files of interrupted writes removed", summary.temp_files_removed))
    rows.append(("time", f"{t.total:.1f} s"))
    if summary.scanned or summary.failed:
        rows.append(("  starting / finding the files", f"{t.startup:.1f} / {t.walk:.1f} s"))
        rows.append(("  reading / finding faces / estimating / writing" + (" (all workers)" if summary.nodes else ""),
                     f"{t.decode:.1f} / {t.detect:.1f} / {t.chain:.1f} / {t.write:.1f} s"))
        rows.append(("  waiting for the cluster" if summary.nodes else "  waiting for photos to be read or estimated",
                     f"{t.waiting:.1f} s"))
    if summary.nodes:
        rows.append(("Ray cluster: nodes / worker processes", f"{summary.nodes} / {summary.workers}"))
    if summary.engine:
        rows += [("detector", summary.detector), ("models run on", f"{summary.engine} on {summary.device}")]
    if verbose:
        rows.append(("model version", summary.model_version))
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    lines = [f"[red]failed[/red] {_safe(path)}: {_safe(reason)}" for path, reason in summary.failed]
    lines += [f"[yellow]not scanned[/yellow] {_safe(printable(k.path))}: {_safe(k.detail)}"
              for k in summary.skipped if k.reason == TOO_LARGE]
    lines += [f"[red]unreadable folder[/red] {_safe(path)}: {_safe(reason)}" for path, reason in summary.unreadable]
    lines += [f"[yellow]EXIF {_safe(status)}[/yellow] {_safe(path)}: {_safe(reason)}"
              for path, status, reason in summary.exif_problems]
    lines += [f"[cyan]note[/cyan] {_safe(path)}: {_safe(note)}" for path, note in summary.exif_notes]
    lines += [f"[yellow]changed while being scanned[/yellow] {_safe(path)}: left for the next scan"
              for path in summary.changed]
    if summary.interrupted:
        lines.append(f"[yellow]interrupted[/yellow]: {summary.recorded} photo(s) recorded in the index "
                     f"({summary.scanned} scanned, {len(summary.failed)} failed); "
                     "the next scan resumes with the rest")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def _safe(text: str) -> str:
    """Text for a rich markup line: control characters shown as ``\\xNN``, markup escaped."""
    return escape(escape_controls(text))


def render_clean(summary: CleanSummary, console: Console) -> None:
    """Print the photos cleaned (or failed) and a closing line."""
    table = Table(box=None)
    table.add_column("Photo", overflow="fold")  # a file name is never cut
    table.add_column("Would remove" if summary.dry_run else "Removed", overflow="fold")
    for path, result in summary.photos:
        table.add_row(Text(escape_controls(path)), Text(escape_controls(f"failed: {result.failed}"), style="red")
                      if result.failed else Text(escape_controls(result.summary())))
    if table.row_count:
        console.print(table)
    verb = "Would clean" if summary.dry_run else "Cleaned"
    temps = summary.temp_files_removed
    console.print(f"{verb} {summary.cleaned} file(s)" + (f", {summary.failed} failed" if summary.failed else "")
                  + (f", removed {temps} temporary file(s) left by interrupted writes" if temps else "") + ".",
                  markup=False)
    if getattr(summary, "index_error", ""):
        console.print(Text(escape_controls(f"The index was not updated: {summary.index_error}"), style="yellow"))


TURN_WORDS = {1: "turned 90° counter-clockwise", 2: "upside down", 3: "turned 90° clockwise"}


def render_orient(summary: OrientSummary, console: Console, db_words: str = "") -> None:
    """Print the turned photos (and with --fix what was done to each) and a closing line; ``db_words``:
    the ``--db`` of the hint, where not the default index."""
    table = Table(box=None)
    table.add_column("Photo", overflow="fold")
    table.add_column("Its faces say")
    if summary.fix:
        table.add_column("Orientation")
    for path, turn, result in summary.photos:
        cells = [Text(escape_controls(path)), Text(TURN_WORDS.get(turn, str(turn)))]
        if result is not None:
            if result.status in ("written", "unchanged"):
                cells.append(Text(f"{result.before} -> {result.after}" if result.status == "written" else "already upright"))
            else:
                cells.append(Text(escape_controls(f"{result.status}: {result.reason}"),
                                  style="red" if result.status == "failed" else "yellow"))
        table.add_row(*cells)
    if table.row_count:
        console.print(table)
    n = len(summary.photos)
    if not summary.fix:
        console.print(f"{n} photo(s) turned" + (f" (show them upright with: phototag orient --fix{db_words} PATH)"
                                                 if n else "") + ".", markup=False)
        return
    done = sum(r is not None and r.status == "written" for _, _, r in summary.photos)
    verb = "Would fix" if summary.dry_run else "Fixed"
    console.print(f"{verb} {done} photo(s)" + (f", {summary.failed} failed" if summary.failed else "") + ".",
                  markup=False)


# --- query, show, stats -------------------------------------------------------------------------

def detail_summary(photo: dict, sidecars: list[str] = (), db_words: str = "") -> str:
    """The lines above ``show``'s face table: the photo, its size and date, whether it is turned, where
    its tags are (``sidecars``: the sidecar files beside it); ``db_words``: the hints' ``--db``."""
    lines = [escape_controls(photo["path"]) + (" (missing at the last scan)" if photo["missing"] else "")]
    if photo["status"] == "failed":
        lines.append(f"failed: {escape_controls(photo['error'] or '')}")
    elif photo["status"] == "cleaned":
        lines.append("Cleaned: phototag clean took its tags out; scans leave it alone until --rescan or until "
                     "the file changes")
    elif photo["status"] != "done":
        lines.append(f"{photo['status']}" + (f": {escape_controls(photo['error'])}" if photo["error"] else ""))
    else:
        taken = f", taken {photo['taken_at']}" if photo["taken_at"] else ""
        lines.append(f"{photo['width']} x {photo['height']} px as displayed{taken}, {_plural(photo['face_count'], 'face')}")
        if photo.get("turn"):
            lines.append(f"The photo is {TURN_WORDS.get(photo['turn'], 'turned')}: its faces agree (show it upright "
                         f"with: phototag orient --fix{db_words} {shlex.quote(escape_controls(photo['path']))})")
        lines.append(tags_place(photo.get("exif_status") or "", list(sidecars)))
    lines += [f"RAW file {escape_controls(sibling)} (one photo with it)" for sibling in photo.get("siblings", [])]
    return "\n".join(lines)


_NOT_IN_PHOTO = {
    "unsupported": "its format cannot hold them",
    "failed": "writing them failed at the last scan",
    "": "scanned with --no-exif",
}


def tags_place(exif_status: str, sidecars: list[str]) -> str:
    """Where a scanned photo's tags are, in words: the photo (as its ``exif_status`` says), the
    ``sidecars`` found beside it, the index."""
    places = ["in the photo (EXIF and XMP)"] if exif_status in ("written", "unchanged") else []
    places += [f"in the sidecar {escape_controls(s)}" for s in sidecars]
    places.append("in the index")
    where = ", ".join(places[:-1]) + " and " + places[-1] if len(places) > 1 else "only in the index"
    if exif_status in ("written", "unchanged"):
        return f"Tags: {where}"
    return f"Tags: {where} (not in the photo: {_NOT_IN_PHOTO.get(exif_status, exif_status)})"


def stats_summary(stats: dict) -> str:
    """The lines above ``stats``' age/gender table."""
    return "\n".join([
        f"Photos  {stats['photos']:,} ({stats['photos_without_faces']:,} without faces)",
        f"Faces   {stats['faces']:,}",
        f"Missing {_plural(stats['missing'], 'photo')} gone at the last scan",
        f"Failed  {_plural(stats['failed'], 'file')} that could not be scanned",
    ])


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def format_paths(photos: list[dict], nul: bool = False) -> bytes:
    """The exact file names, one a line (or each followed by NUL for ``xargs -0``)."""
    end = b"\0" if nul else b"\n"
    return b"".join(p["path_key"] + end for p in photos)


def format_json(photos: list[dict]) -> str:
    """A JSON array, one photo a line."""
    return "[" + ",\n".join(json.dumps(photo_record(p), ensure_ascii=False) for p in photos) + "]\n"


def format_csv(photos: list[dict]) -> str:
    """One row per matching face (photo columns repeated); a photo with none gets one row with empty face columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in photos:
        head = [p["path"], p["taken_at"], p["width"], p["height"], p["face_count"]]
        for f in p.get("faces") or [None]:
            if f is None:
                writer.writerow(head + [""] * (len(CSV_COLUMNS) - len(head)))
            else:
                writer.writerow(head + [f["face_index"], f["x"], f["y"], f["w"], f["h"], f["rotation"], f["gender"],
                                        f["p_female"], gender_confidence(f), f["age"], f["confidence"]])
    return out.getvalue()


def _face_summary(face: dict) -> str:
    return f"{face['gender'] or '?'} {age_years(face['age'])}"


def photos_table(photos: list[dict], matching: bool) -> Table:
    """A rich table of photos and their (matching) faces as gender + age."""
    table = Table(show_edge=False)
    table.add_column("Path", overflow="fold")
    table.add_column("Taken")
    table.add_column("Faces", justify="right")
    table.add_column("Matching faces" if matching else "Gender, age")
    for p in photos:
        table.add_row(Text(escape_controls(p["path"])), p["taken_at"] or "", str(p["face_count"]),
                      ", ".join(_face_summary(f) for f in p.get("faces", [])))
    return table


def faces_table(photo: dict) -> Table:
    """A rich table of one photo's faces."""
    table = Table(show_edge=False, caption_justify="left",
                  caption="Box: left, top, width and height in pixels of the photo as displayed. Tilt: how far "
                          "the face leans. Certainty: how sure the gender is (50 %: a guess). Face score: how sure "
                          "the detector is that it is a face (0 to 1).")
    table.add_column("#", justify="right")
    table.add_column("Box", no_wrap=True)
    for name in ("Tilt", "Gender", "Certainty", "Age", "Face score"):
        table.add_column(name, justify="right")
    table.add_column("Person (face id)")
    for f in photo["faces"]:
        certainty = gender_confidence(f)
        person = "" if f.get("person_id") is None else (f.get("person_name") or f"#{f['person_id']}")
        table.add_row(str(f["face_index"]), " ".join(f"{v:.0f}" for v in (f["x"], f["y"], f["w"], f["h"])),
                      f"{f['rotation']:.0f}°", GENDER_WORDS.get(f["gender"], "?"),
                      "" if certainty is None else f"{certainty * 100:.0f} %", str(age_years(f["age"])),
                      f"{f['confidence']:.2f}", Text(escape_controls(f"{person} ({f['id']})".strip())))
    return table


# --- people ----------------------------------------------------------------------------------------

PEOPLE_FIELDS = ("id", "name", "faces", "photos", "gender", "born_year", "born_sd", "first_taken", "last_taken",
                 "sample", "flagged", "flag_reason")


def people_records(rows: list[dict]) -> list[dict]:
    """``people``: each person as output (JSON, CSV): the fields of :data:`PEOPLE_FIELDS`."""
    out = []
    for row in rows:
        born = row.get("born")
        out.append({k: row.get(k) for k in PEOPLE_FIELDS} | {
            "born_year": None if born is None else int(born),
            "born_sd": None if row.get("born_sd") is None else round(row["born_sd"], 1),
            "first_taken": (row.get("first_taken") or "")[:10] or None,
            "last_taken": (row.get("last_taken") or "")[:10] or None})
    return out


def people_table(rows: list[dict]) -> Table:
    """A rich table of the people: id, name, faces, photos, gender, birth year, dates, a photo."""
    table = Table(show_edge=False, caption_justify="left",
                  caption="Born: the year estimated from the dated photos, ± years (set: the user's word). "
                          "Name one: phototag people name ID NAME; the same person twice: phototag people merge ID ID.")
    for name, justify, wrap in (("Id", "right", False), ("Name", "left", True), ("Faces", "right", False),
                                ("Photos", "right", False), ("Gender", "left", False), ("Born", "right", False),
                                ("Taken", "left", True), ("A photo", "left", True)):
        table.add_column(name, justify=justify, overflow="fold", no_wrap=not wrap)
    for row, record in zip(rows, people_records(rows)):
        born = "" if record["born_year"] is None else (
            f"{record['born_year']} (set)" if row.get("born_set_by_user") else f"{record['born_year']} ± {record['born_sd']:g}")
        gender = GENDER_WORDS.get(row.get("gender") or "", "") + (" (set)" if row.get("gender_set_by_user") else "")
        taken = " to ".join(dict.fromkeys(d for d in (record["first_taken"], record["last_taken"]) if d))
        name = (row.get("name") or "") + (" (two people? not used to correct)" if row.get("flagged") else "")
        table.add_row(str(row["id"]), Text(escape_controls(name)), str(row["faces"]), str(record["photos"]), gender,
                      born, taken, Text(escape_controls(record["sample"] or "")))
    return table


def format_people_csv(rows: list[dict]) -> str:
    """``people --format csv``: one line per person, the fields of :data:`PEOPLE_FIELDS`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PEOPLE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(people_records(rows))
    return out.getvalue()


GENDER_WORDS = {"f": "female", "m": "male"}


def stats_table(stats: dict) -> Table:
    """A rich table of face counts by age decade and gender."""
    genders = list(stats["faces_by_gender"])
    table = Table(show_edge=False)
    table.add_column("Age")
    for g in genders + ["total"]:
        table.add_column(g, justify="right")
    for label, bucket in stats["faces_by_age"].items():
        table.add_row(label, *(str(bucket.get(g, 0)) for g in genders + ["total"]))
    table.add_row("all", *(str(stats["faces_by_gender"][g]) for g in genders), str(stats["faces"]), style="bold")
    return table


def render_photo(photo: dict, console: Console, sidecars: list[str] = (), db_words: str = "") -> None:
    """``show``: the photo's facts, then its faces (see :func:`detail_summary`)."""
    console.print(detail_summary(photo, sidecars, db_words), markup=False)
    if photo["faces"]:
        console.print(faces_table(photo))


def render_stats(stats: dict, console: Console) -> None:
    """``stats``: the counts, then the faces by age decade and gender, then (``--failed``) the failed files."""
    console.print(stats_summary(stats), markup=False)
    if stats["faces"]:
        console.print(stats_table(stats))
    for item in stats.get("failed_files", []):
        console.print(Text(escape_controls(f"failed {item['path']}: {item['error']}"), style="red"))


def render_config(path: str, exists: bool, rows: list[tuple[str, str, str]], console: Console) -> None:
    """``config``: the file's path, then each setting's value in effect and where it comes from."""
    console.print(f"Config file: {path}" + ("" if exists else " (none yet)"), markup=False, soft_wrap=True)
    table = Table("Setting", "Value", "From", show_edge=False)
    table.columns[1].overflow = "fold"
    for key, value, source in rows:
        table.add_row(key, Text(value), source)
    console.print(table)
    console.print("An option on the command line beats these.", markup=False)


# --- train, eval ---------------------------------------------------------------------------------

def render_training(rows: list[dict], paths: list, console: Console) -> None:
    """``train``: one row per model saved (``rows`` from ``training.train.summary``, ``paths`` its files)."""
    table = Table("model", "file", "epochs (stage 1, 2)", "seconds", "best validation", box=None)
    for row, path in zip(rows, paths):
        metrics = ", ".join(f"{k.removeprefix('val_')} {v:.4g}" for k, v in row["best_validation"].items())
        table.add_row(row["model"], str(path), ", ".join(map(str, row["epochs"])), f"{row['seconds']:.0f}", metrics)
    console.print(table)


def format_evaluation(report: dict) -> str:
    """``eval``: a plain-text table of a :func:`phototag.training.evaluate.evaluate` report."""
    lines = [f"models {report['models']}  split {report['split']} (seed {report['seed']})  {report['samples']} files"
             f"  through {report['through']}", report["runtime"]]
    if "detection" in report:
        d = report["detection"]
        shown = ", ".join(d["missed"][:10]) + (" ..." if len(d["missed"]) > 10 else "")
        lines.append(f"face found in        {d['found']} files; misses {d['misses']}" + (f": {shown}" if shown else ""))
        if len(d.get("misses_by_source", {})) > 1:
            lines.append("  misses by data set " + ", ".join(f"{k} {v}" for k, v in d["misses_by_source"].items()))
    if "gender" in report:
        g = report["gender"]
        by_age = "".join(f", {t:.2f} from an estimated {a:g} years" for a, t in g.get("threshold_by_age", []))
        lines.append(f"gender accuracy      {g['accuracy'] * 100:6.2f} %   (n={g['n']}, female from "
                     f"P(female) >= {g['threshold']:.2f}{by_age})")
        if "accuracy_with_misses" in g:
            lines.append(f"  misses as errors   {g['accuracy_with_misses'] * 100:6.2f} %")
        lines += _gender_balance_lines(g)
    if "age" in report:
        a = report["age"]
        lines.append(f"age MAE              {a['mae']:6.2f} years (n={a['n']})")
        lines.append(f"age RMSE             {a['rmse']:6.2f} years")
        lines.append(f"age within ±5 years  {a['within_5'] * 100:6.2f} %")
        lines.append("  decade     n    MAE   bias")
        for d, r in a["by_decade"].items():
            lines.append(f"  {d:>7} {r['n']:5d} {r['mae']:6.2f} {r['bias']:+6.2f}")
    for r in report.get("rotation", []):
        lines.append(f"rotation ±{r['max_angle']:.0f}°: MAE {r['mae']:.2f}°, within ±5° {r['within_5'] * 100:.1f} %, "
                     f"95th percentile {r['p95']:.1f}°")
    if "ms_per_face" in report:
        lines.append(f"chain time           {report['ms_per_face']:6.2f} ms per face (rotation + de-rotate + gender/age)")
    if "ms_per_image" in report:
        lines.append(f"scan time            {report['ms_per_image']:6.2f} ms per file (decode + detect + chain)")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


def _gender_balance_lines(g: dict) -> list[str]:
    """Per data set: women, men, worst/best cell and spread; the cells (at the chosen threshold too,
    when one was chosen); the reliability table; the threshold choice."""
    choice = g.get("threshold_choice")
    after = choice["cells_after"] if choice and choice["chosen"] != choice["current"] else None
    lines = [f"  cells of fewer than {g['min_cell']} faces do not rank",
             f"  {'data set':<14} {'n':>6} {'all':>6} {'women':>6} {'men':>6}  {'worst cell':<18} "
             f"{'best cell':<18} spread"]
    for src, r in g["by_source"].items():
        worst = f"{r['worst']['cell']} {_percent(r['worst']['accuracy'])}" if "worst" in r else ""
        best = f"{r['best']['cell']} {_percent(r['best']['accuracy'])}" if "best" in r else ""
        lines.append(f"  {src:<14} {r['n']:6d} {_percent(r['accuracy']):>6} {_percent(r.get('women')):>6} "
                     f"{_percent(r.get('men')):>6}  {worst:<18} {best:<18} {_percent(r.get('spread'))}")
    for src, r in g["by_source"].items():
        head = f"  {src}: accuracy % per cell (n)" + (f"; then at threshold {choice['chosen']:.2f}" if after else "")
        lines.append(head)
        for cell, c in r["cells"].items():
            then = f"  -> {_percent(after[src]['cells'][cell]['accuracy']):>5}" if after else ""
            lines.append(f"    {cell:<8} {_percent(c['accuracy']):>5} ({c['n']}){then}")
    for src, rel in g["reliability"].items():
        lines.append(f"  {src}: reliability of P(female), ECE {rel['ece']:.3f}  (bin, n, mean P(female), share of women)")
        for b in rel["bins"]:
            lines.append(f"    {b['bin']} {b['n']:6d} {b['mean_p_female']:6.3f} {b['female_share']:6.3f}")
    if choice:
        lines.append(f"  threshold by the worst cell (cells of {choice['min_cell']}+ faces, each set's accuracy "
                     f"within {choice['max_overall_drop'] * 100:.1f} points): {choice['current']:.2f} -> "
                     f"{choice['chosen']:.2f}, worst cell {_percent(choice['worst_before'])} -> "
                     f"{_percent(choice['worst_after'])} %")
        for row in choice["sweep"]:
            accuracies = "  ".join(f"{src} {_percent(a)}" for src, a in row["accuracy"].items())
            lines.append(f"    at {row['threshold']:.2f}: worst cell {_percent(row['worst'])}  {accuracies}")
    return lines
