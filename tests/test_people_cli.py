"""People through the scan and the CLI, with the shipped models: the same face in three dated photos
becomes one person at the end of ``phototag scan``; the user names it, the next scan writes the
name into the photos' face regions and keyword paths, ``query --person`` finds them, ``show --json``
says each face's person and own estimates; bad ids and names are usage errors; ``clean`` takes the
names out with the rest."""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3

import pytest
from PIL import Image
from test_tags import exiftool, needs_exiftool
from typer.testing import CliRunner

from phototag import models, tags
from phototag.cli import app
from phototag.testing.photos import exif_block, face_crops, jpeg_bytes, paste_face, scene

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def library(tmp_path):
    """Three dated photos of the astronaut (2019, 2021, 2023) and one undated photo of Grace Hopper."""
    root = tmp_path / "photos"
    root.mkdir()
    rng = random.Random(5)
    crop = face_crops()[0]
    for year in (2019, 2021, 2023):
        canvas = scene(640, 480, rng)
        paste_face(canvas, crop, (rng.randint(200, 440), 240), 200)
        (root / f"astronaut {year}.jpg").write_bytes(jpeg_bytes(canvas, exif=exif_block(taken=f"{year}:06:01 12:00:00")))
    hopper = Image.open(__import__("test_identity").HOPPER).convert("RGB")
    (root / "hopper.jpg").write_bytes(jpeg_bytes(hopper))
    return root


def people_json(db):
    result = run("people", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@needs_exiftool
def test_a_person_is_found_named_written_queried_and_cleaned(library, tmp_path):
    db = tmp_path / "index.db"
    assert run("scan", library, "--db", db).exit_code == 0
    people = people_json(db)
    astronaut = next(p for p in people if p["faces"] == 3)
    assert astronaut["photos"] == 3 and astronaut["first_taken"] == "2019-06-01" and astronaut["name"] is None
    assert astronaut["sample"].endswith("astronaut 2019.jpg")

    shown = json.loads(run("show", library / "astronaut 2021.jpg", "--db", db, "--json").stdout)
    face = shown["faces"][0]
    assert face["person"] == astronaut["id"] and face["face_age"] is not None and face["face_p_female"] is not None
    assert face["age"] is not None and face["p_female"] is not None

    assert run("people", "name", astronaut["id"], "Ann", "--db", db).exit_code == 0
    assert run("scan", library, "--db", db).exit_code == 0  # writes the name into the photos
    photo = library / "astronaut 2023.jpg"
    read = exiftool(photo, "-XMP-mwg-rs:RegionName", "-XMP-lr:HierarchicalSubject")[0]
    assert read["RegionName"] == "Ann" and "phototag|people|Ann" in read["HierarchicalSubject"]
    found = run("query", "--person", "Ann", "--db", db, "--format", "paths")
    assert found.exit_code == 0 and sorted(found.stdout.split("\n")[:-1]) == sorted(
        str(p) for p in library.glob("astronaut*.jpg"))
    assert run("query", "--person", "nobody", "--db", db).exit_code == 2

    assert run("clean", library, "--db", db).exit_code == 0
    assert tags.read_record(photo) is None
    assert "RegionName" not in exiftool(photo, "-XMP-mwg-rs:RegionName")[0]


def test_the_scan_says_how_many_photos_their_people_corrected_even_with_no_tags_written(library, tmp_path):
    """... and keeps its models' gender thresholds in the index for the people commands."""
    result = run("scan", library, "--db", tmp_path / "index.db", "--no-exif", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["people_grouped"] == 4 and summary["people_corrected"] > 0 and summary["people_rewritten"] == 0
    with contextlib.closing(sqlite3.connect(tmp_path / "index.db")) as db:
        kept = db.execute("select value from people_meta where key = 'gender_rule'").fetchone()[0]
    assert json.loads(kept) == models.gender_rule(models.read_manifest(models.shipped_model_dir()))


def test_people_commands_refuse_what_cannot_be(library, tmp_path):
    db = tmp_path / "index.db"
    assert run("scan", library, "--db", db, "--no-exif").exit_code == 0
    people = people_json(db)
    first = people[0]["id"]
    assert run("people", "name", 999, "Bob", "--db", db).exit_code == 2
    assert run("people", "name", first, "a/b", "--db", db).exit_code == 2
    assert run("people", "name", first, "tab\there", "--db", db).exit_code == 2
    assert run("people", "merge", first, first, "--db", db).exit_code == 2
    assert run("people", "set", first, "--gender", "x", "--db", db).exit_code == 2
    assert run("people", "set", first, "--db", db).exit_code == 2
    assert run("people", "remove", 99999, "--db", db).exit_code == 2
    assert run("people", "set", first, "--gender", "f", "--born", "1990", "--db", db).exit_code == 0
    table = run("people", "--db", db)
    assert table.exit_code == 0 and "female (set)" in table.stdout and "1990 (set)" in table.stdout
    csv_out = run("people", "--db", db, "--format", "csv")
    assert csv_out.stdout.splitlines()[0].startswith("id,name,faces,photos,gender")
