"""The config file: defaults for the options a person gives every time (the index, whether tags go
into the photos or sidecars, the detector...), in ``$XDG_CONFIG_HOME/phototag/config.toml``
(``~/.config/phototag/config.toml`` by default). For example::

    db = "~/Pictures/phototag.db"   # the index (--db)
    exif = false                    # do not write into the photos (--no-exif)
    sidecar = true                  # an XMP sidecar beside every photo (--sidecar)

Every key is one option of the commands that have it (``SETTINGS``); an option given on the command
line (or ``$PHOTOTAG_DB`` for the index) beats the file. An unknown key or a value of the wrong
kind is a :class:`ConfigError`, which the command line reports with exit code 2.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .sidecar import NAMES as SIDECAR_NAMES

DETECTORS = ("yunet", "mtcnn")  # phototag.detectors.NAMES (not imported: it brings numpy to every command)
ENGINES = ("auto", "litert", "keras")
RAW_PAIRS = ("jpeg", "both")


class ConfigError(ValueError):
    """The config file cannot be used: not TOML, an unknown key or a bad value."""


@dataclass(frozen=True)
class Setting:
    """One key of the file: the option it sets (``param``, the commands' parameter name, and
    ``option``, as typed), the commands that have it, and the kind of value it takes."""

    param: str
    option: str
    commands: tuple[str, ...]
    kind: type  # bool, int, float, str or Path
    default: object = None  # the commands' default (None: none, or one given in words by ``phototag config``)
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    inverted: bool = False  # exif = false is --no-exif
    about: str = ""  # what the value means, for ``phototag config``


INDEX_COMMANDS = ("scan", "query", "show", "stats", "orient", "clean")

SETTINGS: dict[str, Setting] = {
    "db": Setting("db", "--db", INDEX_COMMANDS, Path, about="the index file"),
    "exif": Setting("no_exif", "--no-exif", ("scan",), bool, True, inverted=True,
                    about="write the tags into the photos (EXIF, XMP)"),
    "sidecar": Setting("sidecar", "--sidecar/--no-sidecar", ("scan",), bool,
                       about="an XMP sidecar beside every photo (true), none (false)"),
    "sidecar_name": Setting("sidecar_name", "--sidecar-name", ("scan",), str, SIDECAR_NAMES[0], choices=SIDECAR_NAMES,
                            about="how sidecars are named"),
    "detector": Setting("detector", "--detector", ("scan", "eval"), str, DETECTORS[0], choices=DETECTORS,
                        about="the face detector"),
    "engine": Setting("engine", "--engine", ("scan", "eval"), str, ENGINES[0], choices=ENGINES,
                      about="what runs the models"),
    "models": Setting("models", "--models", ("scan", "eval"), Path, about="the model folder"),
    "raw_pairs": Setting("raw_pairs", "--raw-pairs", ("scan",), str, RAW_PAIRS[0], choices=RAW_PAIRS,
                         about="RAW+JPEG pairs: scan the JPEG, or both files"),
    "any_angle": Setting("any_angle", "--any-angle", ("scan",), bool, False,
                         about="also find faces turned by 90, 180 or 270 degrees"),
    "min_face": Setting("min_face", "--min-face", ("scan",), int, 0, minimum=0, maximum=65535,
                        about="smallest face to find, in pixels"),
    "min_confidence": Setting("min_confidence", "--min-confidence", ("scan",), float, minimum=0.0, maximum=1.0,
                              about="smallest detector score to keep a face"),
    "hidden": Setting("hidden", "--hidden", ("scan", "clean"), bool, False, about="also hidden files and folders"),
    "touch": Setting("touch", "--touch", ("scan", "clean", "orient"), bool, False,
                     about="give rewritten photos a new modification time"),
    "wait": Setting("wait", "--wait", ("scan",), bool, False, about="wait for another scan of the index to finish"),
}


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/phototag/config.toml`` (``~/.config`` when the variable is unset or empty)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "phototag" / "config.toml"


def load(path: Path | None = None) -> dict:
    """The settings of the file at ``path`` (default :func:`config_path`), checked: ``{key: value}``
    with paths as :class:`Path` (``~`` expanded). No file: no settings. Raises :class:`ConfigError`."""
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    return {key: check(key, value, path) for key, value in data.items()}


def check(key: str, value, path: Path | str = "config") -> object:
    """``value`` for the setting ``key``, checked (and a path expanded), or :class:`ConfigError`."""
    setting = SETTINGS.get(key)
    if setting is None:
        close = difflib.get_close_matches(key, SETTINGS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{path}: unknown setting {key!r} ({hint}known settings: {', '.join(SETTINGS)})")

    def bad(wanted: str) -> ConfigError:
        return ConfigError(f"{path}: {key} = {_toml(value)}: {wanted}")

    if setting.kind is bool:
        if not isinstance(value, bool):
            raise bad("use true or false")
        return value
    if setting.kind in (int, float):
        numeric = isinstance(value, int) or (setting.kind is float and isinstance(value, float))
        if isinstance(value, bool) or not numeric:
            raise bad("use a whole number" if setting.kind is int else "use a number")
        if not setting.minimum <= value <= setting.maximum:
            raise bad(f"use a number from {setting.minimum:g} to {setting.maximum:g}")
        return setting.kind(value)
    if not isinstance(value, str) or not value:
        raise bad("use a quoted path" if setting.kind is Path else "use a quoted word")
    if setting.choices and value not in setting.choices:
        raise bad(f"use one of {', '.join(_toml(c) for c in setting.choices)}")
    return Path(value).expanduser() if setting.kind is Path else value


def _toml(value) -> str:
    """``value`` as the file would spell it (for messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return repr(value)


def default_map(settings: dict) -> dict:
    """Click's ``default_map`` for checked ``settings``: ``{command: {parameter: value}}``."""
    defaults: dict[str, dict] = {}
    for key, value in settings.items():
        setting = SETTINGS[key]
        for command in setting.commands:
            defaults.setdefault(command, {})[setting.param] = (not value) if setting.inverted else value
    return defaults


def spelled(value) -> str:
    """A setting's value as the config file spells it (``true``, ``"photo.xmp"``, ``0.5``)."""
    return _toml(value)
