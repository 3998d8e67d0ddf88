"""Every command's ``--help`` at 80 columns reads as written: nothing clipped, no markup shown raw or
eaten, paragraphs rewrapped (no line broken where the docstring happened to break), metavars a person
understands."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from phototag.cli import app

runner = CliRunner()
COLUMNS = 80
TEXT_WIDTH = COLUMNS - 2  # click's help formatter wraps at the terminal width less 2
_PUNCTUATION = ".,;:!?)]}'\""
_TYPE_METAVAR = re.compile(r"<[a-z][^<>]*>")  # typer's <path>, <int range>, <bool>, <list[Path]>
_BRACKETED = re.compile(r"\[[^\[\]\s]+\]")  # [ray], [OPTIONS], [2020]: text Rich markup would eat


def _commands(command: typer.core.TyperGroup | typer.core.TyperCommand, path: tuple[str, ...] = ()):
    """(argv, click command) of the program and every command and subcommand under it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _help(argv: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*argv, "--help"], prog_name="phototag", env={"COLUMNS": str(COLUMNS), "TERMINAL_WIDTH": str(COLUMNS)})
    assert result.exit_code == 0, result.output
    return result.stdout


def _flat(text: str) -> str:
    return " ".join(text.split())


def _segment_start(line: str) -> int:
    """Where the last column of text on ``line`` starts (after the indentation, or after the last
    run of two or more spaces: the help of an option row, or a column of an aligned block)."""
    starts = [m.end() for m in re.finditer(r"\S {2,}(?=\S)", line)]
    return starts[-1] if starts else len(line) - len(line.lstrip())


def hard_breaks(text: str) -> list[str]:
    """Lines ending a paragraph's line early: the next line goes on with the same paragraph (same
    column, a lowercase word, the line ends without punctuation) and its first word would have fit."""
    found = []
    lines = [line.rstrip() for line in text.splitlines()]
    for line, following in zip(lines, lines[1:]):
        if not line.strip() or not following.strip() or line.rstrip()[-1] in _PUNCTUATION:
            continue
        indent = len(following) - len(following.lstrip())
        word = following.split()[0]
        if indent == _segment_start(line) and word[0].islower() and len(line) + 1 + len(word) <= TEXT_WIDTH:
            found.append(f"{line!r} / {following!r}")
    return found


def test_the_hard_break_check_finds_them():
    assert hard_breaks("  One scan per index at a time. Ctrl-C prints the summary and\n  exits with 130.\n")
    wrapped = "  " + "word " * 15 + "the summary and\n  exits with 130.\n"
    assert len(wrapped.splitlines()[0]) + 1 + len("exits") > TEXT_WIDTH and not hard_breaks(wrapped)
    assert hard_breaks("  --db FILE   The index file, where\n              recorded.\n")  # an option's help
    assert not hard_breaks("  db      --db (scan)\n  exif    --no-exif (scan)\n")  # aligned columns


@pytest.mark.parametrize("argv, command", COMMANDS, ids=[" ".join(argv) or "phototag" for argv, _ in COMMANDS])
def test_help_reads_well_at_80_columns(argv, command):
    text = _help(argv)
    lines = text.splitlines()
    assert all(len(line) <= COLUMNS for line in lines), [line for line in lines if len(line) > COLUMNS]
    # nothing clipped: no ellipsis, no short help cut off with "..." in the list of commands
    assert "…" not in text
    assert not [line for line in lines if re.search(r"[a-z,]\.\.\.$", line.rstrip())]
    # no markup shown raw: RST literals, Rich tags
    assert "``" not in text and "`" not in text and ":func:" not in text
    assert "[/" not in text and not re.search(r"\[(bold|red|green|yellow|cyan|dim|italic)\b", text)
    # none eaten either: every [bracketed] word of the help strings is shown
    flat = _flat(text)
    sources = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    for source in sources:
        for bracketed in _BRACKETED.findall(_flat(source)):
            if bracketed != "\\b":
                assert bracketed in flat, f"{bracketed} is missing from: {flat}"
    assert text.count("[") == text.count("]")
    # paragraphs rewrapped
    assert hard_breaks(text) == []
    # metavars a person understands
    assert "<bool>" not in text and "{" not in text and "}" not in text
    assert not _TYPE_METAVAR.findall(text), _TYPE_METAVAR.findall(text)
    usage = _flat(text.split("\n\n")[0])
    assert usage.startswith("Usage: phototag"), usage
    for param in command.params:
        if param.param_type_name == "argument":
            assert re.search(rf"\b{re.escape(param.metavar or '')}", usage) and param.metavar.upper() == param.metavar


def test_the_ray_extra_is_named_whole():
    assert 'pip install "phototag[ray]"' in _flat(_help(("scan",)))


def test_option_names_are_never_broken():
    text = _help(("query",))
    assert "--min-gender-confidence SHARE" in text and "YYYY-MM-DDTHH:MM[:SS]" in text
    assert "9223372036854775807" not in text


def test_every_command_has_a_short_help_of_its_own():
    for argv, command in COMMANDS[1:]:
        assert command.short_help and command.short_help.endswith((".", ")")), argv
