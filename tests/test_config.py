"""The config file ($XDG_CONFIG_HOME/phototag/config.toml): defaults for the commands' options, the
command line beating it, clear errors with exit code 2, ``phototag config`` saying what is in effect."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from phototag import config, detectors
from phototag.cli import app
from phototag.index import open_index

runner = CliRunner()
COMMANDS = typer.main.get_command(app).commands


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A config home of its own, no $PHOTOTAG_DB; returns the config file's path (not written yet)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PHOTOTAG_DB", raising=False)
    path = tmp_path / "config" / "phototag" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], prog_name="phototag", **kwargs)


def test_the_file_is_under_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config.config_path() == tmp_path / "phototag" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "")
    assert config.config_path() == Path.home() / ".config" / "phototag" / "config.toml"


def test_no_file_no_settings(home):
    assert config.load() == {}


def test_settings_are_checked(home):
    home.write_text('db = "~/photos.db"\nexif = false\nsidecar = true\ndetector = "mtcnn"\nmin_confidence = 1\n')
    assert config.load() == {"db": Path.home() / "photos.db", "exif": False, "sidecar": True, "detector": "mtcnn",
                             "min_confidence": 1.0}
    assert config.default_map(config.load())["scan"] == {"db": Path.home() / "photos.db", "no_exif": True,
                                                         "sidecar": True, "detector": "mtcnn", "min_confidence": 1.0}


@pytest.mark.parametrize("text, message", [
    ("exfi = false", "unknown setting 'exfi' (did you mean 'exif'?"),
    ("colour = 'red'", "unknown setting 'colour' (known settings: db, exif, "),
    ("exif = 'no'", 'exif = "no": use true or false'),
    ("detector = 'retina'", 'detector = "retina": use one of "yunet", "mtcnn"'),
    ("min_face = 1.5", "min_face = 1.5: use a whole number"),
    ("min_face = -1", "min_face = -1: use a number from 0 to 65535"),
    ("min_confidence = true", "min_confidence = true: use a number"),
    ("db = 3", "db = 3: use a quoted path"),
    ("[scan]\ndb = 'x'", "unknown setting 'scan'"),
    ("db = ", "not valid TOML"),
])
def test_a_bad_file_is_a_clear_error_and_exit_2(home, text, message):
    home.write_text(text + "\n")
    with pytest.raises(config.ConfigError, match=None) as caught:
        config.load()
    assert str(caught.value).startswith(f"{home}: ") and message in str(caught.value)
    for args in (["stats"], ["scan", home.parent], ["config"]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [f"error: {caught.value}"]


def test_every_setting_is_an_option_of_its_commands_with_the_same_default():
    assert config.DETECTORS == detectors.NAMES
    for key, setting in config.SETTINGS.items():
        for name in setting.commands:
            params = {p.name: p for p in COMMANDS[name].params}
            assert setting.param in params, (key, name)
            default = params[setting.param].default
            if setting.default is not None:
                assert default == ((not setting.default) if setting.inverted else setting.default), (key, name)
            assert setting.option.split("/")[0] in params[setting.param].opts, (key, name)


def test_the_config_sets_the_index_and_the_command_line_beats_it(home, tmp_path):
    configured, given = tmp_path / "configured.db", tmp_path / "given.db"
    for path in (configured, given):
        open_index(path).conn.close()
    home.write_text(f'db = "{configured}"\n')
    stats = invoke("stats", "--json")
    assert stats.exit_code == 0, stats.output
    missing = invoke("stats", "--db", tmp_path / "none.db")
    assert missing.exit_code == 1 and f"phototag scan --db {tmp_path / 'none.db'} FOLDER" in missing.stderr
    configured.unlink()
    assert invoke("stats", "--db", given).exit_code == 0  # the option, not the gone configured index
    result = invoke("stats")
    assert result.exit_code == 1 and f"No index at {configured}; create one with: phototag scan FOLDER" in result.stderr


def test_the_scan_says_where_the_tags_go_and_that_the_config_chose(home, tmp_path):
    (tmp_path / "empty").mkdir()
    db = tmp_path / "index.db"
    plain = invoke("scan", tmp_path / "empty", "--db", db)
    assert plain.exit_code == 0, plain.output
    lines = plain.stderr.splitlines()
    assert lines[0] == f"Index: {db} (another: --db FILE)"
    assert lines[1].startswith("Tags go into the photos (EXIF and XMP), and into an XMP sidecar beside each photo")
    assert "--no-exif" in lines[2] and "--sidecar" in lines[2] and "config.toml" not in lines[2]
    home.write_text(f'exif = false\nsidecar = true\ndb = "{db}"\n')
    configured = invoke("scan", tmp_path / "empty")
    assert configured.stderr.splitlines()[:3] == [
        f"Index: {db} (another: --db FILE)",
        "Tags go into an XMP sidecar beside each photo; the photos are not changed.",
        f"Choose with --no-exif (not into the photos) and --sidecar or --no-sidecar (set in {home})."]
    beaten = invoke("scan", tmp_path / "empty", "--no-sidecar")
    assert beaten.stderr.splitlines()[1] == ("Tags go only into the index; the photos are not changed and no "
                                             "sidecars are written.")
    assert invoke("scan", tmp_path / "empty", "--json").stderr == ""


def test_help_shows_the_configured_default(home):
    home.write_text('detector = "mtcnn"\n')
    assert "[default: mtcnn]" in invoke("scan", "--help", env={"COLUMNS": "80"}).stdout


def test_phototag_config_shows_the_file_and_where_each_setting_comes_from(home, tmp_path, monkeypatch):
    result = invoke("config", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Config file: {home} (none yet)" in result.stdout
    rows = {line.split("│")[0].strip(): [c.strip() for c in line.split("│")[1:]]
            for line in result.stdout.splitlines() if "│" in line}
    assert set(rows) == set(config.SETTINGS)
    assert rows["exif"] == ["true", "default"] and rows["detector"] == ['"yunet"', "default"]
    home.write_text('exif = false\ndb = "/photos/index.db"\n')
    monkeypatch.setenv("PHOTOTAG_DB", str(tmp_path / "env.db"))
    rows = {line.split("│")[0].strip(): [c.strip() for c in line.split("│")[1:]]
            for line in invoke("config", env={"COLUMNS": "200"}).stdout.splitlines() if "│" in line}
    assert rows["exif"] == ["false", "config file"]
    assert rows["db"] == [str(tmp_path / "env.db"), "$PHOTOTAG_DB"]  # the environment beats the file
