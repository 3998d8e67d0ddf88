"""The ``phototag`` command line: thin typer commands that parse options and call the library.

Exit codes: 0 success, 1 runtime failure (e.g. no index yet), 2 usage error (bad option or path).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from . import __version__

app = typer.Typer(
    help="Tag the faces in a photo library with rotation, gender and age (EXIF + a SQLite index).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"phototag {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Tag the faces in a photo library with rotation, gender and age."""


# Commands are added below, one function each, calling into the library modules.


@app.command()
def clean(
    paths: list[Path] = typer.Argument(..., help="Photo files or folders to clean (folders recursively)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed; change no file."),
    touch: bool = typer.Option(False, "--touch", help="Set the cleaned photos' modification time to now "
                                                      "(default: keep it)."),
) -> None:
    """Remove exactly what phototag wrote: its keywords and record from the EXIF, its face regions
    and keywords from the sidecars. The user's own keywords, comments and other metadata stay.

    Exit code: 0 when done, 1 when some files could not be cleaned, 2 for missing paths.
    """
    for path in paths:
        if not os.path.lexists(path):
            raise typer.BadParameter(f"no such file or folder: {path}", param_hint="PATHS")
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from . import tags
    from .index import display_path

    table = Table("Photo", "Would remove" if dry_run else "Removed", box=None)
    changed = failed = 0
    for path in tags.files_under(paths):
        result = tags.clean(path, dry_run=dry_run, keep_mtime=not touch)
        if result.failed:
            failed += 1
            table.add_row(Text(display_path(path)), Text(f"failed: {result.failed}", style="red"))
        elif result.changed:
            changed += 1
            table.add_row(Text(display_path(path)), Text(result.summary()))
    console = Console(highlight=False)
    if table.row_count:
        console.print(table)
    verb = "Would clean" if dry_run else "Cleaned"
    console.print(f"{verb} {changed} file(s)" + (f", {failed} failed." if failed else "."), markup=False)
    raise typer.Exit(1 if failed else 0)
