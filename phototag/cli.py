"""The ``phototag`` command line: thin typer commands that parse options and call the library.

Exit codes: 0 success, 1 runtime failure (e.g. no index yet), 2 usage error (bad option or path).
"""

from __future__ import annotations

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
