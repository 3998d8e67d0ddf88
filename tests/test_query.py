"""phototag query, show and stats on a small index built through the index module."""

import csv
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phototag import ages, index
from phototag import query as q
from phototag.cli import app
from phototag.display import CSV_COLUMNS
from phototag.records import Face, PhotoInfo

runner = CliRunner()


def face(gender, p_female, age, x=10.0):
    return Face(box=(x, 20.0, 100.0, 120.0), landmarks={"nose": (60.0, 80.0)}, confidence=0.99,
                rotation=90.0, gender=gender, p_female=p_female, age=age)


# name: (folder, taken_at, faces)
PHOTOS = {
    "a": ("2020", "2020-06-01T10:00:00", [face("m", 0.1, 25.0), face("f", 0.9, 60.0, x=300.0)]),
    "b": ("2020", "2020-12-31T23:00:00", [face("f", 0.95, 24.6)]),
    "c": ("2021", "2021-03-01T08:00:00", [face("f", 0.7, 30.4), face("m", 0.2, 5.0)]),
    "d": ("2021", None, [face("f", 0.99, 30.5)]),
    "e": ("other", "2019-01-01T00:00:00", []),
    "g": ("2020", "2020-02-02T00:00:00", [face("f", 0.9, 22.0)]),  # missing
    "h": ("2020x", "2022-01-01T00:00:00", [face("f", 0.8, 70.0)]),
}


@pytest.fixture
def lib(tmp_path):
    """An index of the photos above (g missing) plus a failed file f; returns (db path, {name: path})."""
    db_path = tmp_path / "index.db"
    db = index.open_index(db_path)
    paths = {}
    for name, (folder, taken, faces) in PHOTOS.items():
        path = tmp_path / "lib" / folder / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"jpeg")
        info = PhotoInfo(width=4000, height=3000, stored_width=4000, stored_height=3000, taken_at=taken, format="JPEG")
        index.record_photo(db, path, os.stat(path), None, info, faces, "test-1")
        paths[name] = str(path)
    failed = tmp_path / "lib" / "2021" / "f.jpg"
    failed.write_bytes(b"junk")
    index.record_failure(db, failed, os.stat(failed), "cannot identify image file")
    paths["f"] = str(failed)
    with db.conn:
        db.execute("update photos set missing = 1 where path_key = ?", [index.path_key(paths["g"])])
    db.conn.close()
    return db_path, paths


def run(db_path, *args, **kwargs):
    return runner.invoke(app, [*args, "--db", str(db_path)], **kwargs)


def found(lib, *args):
    """The photo names ``phototag query ARGS --format paths`` prints, in order."""
    db_path, paths = lib
    result = run(db_path, "query", *args, "--format", "paths")
    assert result.exit_code == 0, result.output
    names = {v: k for k, v in paths.items()}
    return [names[line] for line in result.stdout.splitlines()]


# --- filters -------------------------------------------------------------------------------------

def test_face_filters_hold_for_the_same_face(lib):
    # a has a 25-year-old man and a 60-year-old woman: neither is a woman of 20-30.
    assert found(lib, "--age", "20-30", "--gender", "f") == ["b", "c"]
    assert found(lib, "--age", "20-30", "--gender", "male") == ["a"]
    assert found(lib, "--age", "60-", "--gender", "m") == []


def test_ages_count_rounded_half_up(lib):
    # 24.6 -> 25, 30.4 -> 30 (in 20-30), 30.5 -> 31 (not).
    assert found(lib, "--age", "25") == ["a", "b"]
    assert found(lib, "--age", "31-31") == ["d"]
    assert found(lib, "--age", "20-29") == ["a", "b"]


def test_open_age_ranges(lib):
    assert found(lib, "--age", "60-") == ["a", "h"]
    assert found(lib, "--age", "-12") == ["c"]
    assert found(lib, "--age", "-0") == []


def test_gender_confidence(lib):
    assert found(lib, "--gender", "f", "--min-gender-confidence", "0.9") == ["a", "b", "d"]
    assert found(lib, "--age", "20-30", "--gender", "F", "--min-gender-confidence", "0.9") == ["b"]
    assert found(lib, "--gender", "m", "--min-gender-confidence", "0.85") == ["a"]  # 1 - 0.1; not c's 0.8
    assert found(lib, "--gender", "m", "--min-gender-confidence", "0.8") == ["a", "c"]
    assert found(lib, "--min-gender-confidence", "0.95") == ["b", "d"]  # the larger of p and 1 - p


def test_gender_confidence_of_a_man_has_no_float_noise():
    assert q.gender_confidence({"gender": "m", "p_female": 0.1094}) == 0.8906
    assert q.gender_confidence({"gender": None, "p_female": 0.1094}) == 0.8906
    assert q.gender_confidence({"gender": "f", "p_female": 0.6173}) == 0.6173


def test_face_count_filters(lib):
    assert found(lib, "--faces", "2") == ["a", "c"]
    assert found(lib, "--faces", "0") == ["e"]
    assert found(lib, "--min-faces", "1", "--max-faces", "1") == ["b", "h", "d"]
    assert found(lib, "--min-faces", "2", "--gender", "f", "--age", "-40") == ["c"]


def test_path_prefix_and_glob(lib, tmp_path, monkeypatch):
    lib2020 = str(tmp_path / "lib" / "2020")
    assert found(lib, "--path", lib2020) == ["a", "b"]  # not 2020x/h, not the missing g
    assert found(lib, "--path", lib2020 + "/") == ["a", "b"]
    assert found(lib, "--path", lib2020 + "/b.jpg") == ["b"]
    assert found(lib, "--path", "*/2021/*.jpg") == ["c", "d"]  # not the failed f
    monkeypatch.chdir(tmp_path / "lib")
    assert found(lib, "--path", "2021") == ["c", "d"]
    assert found(lib, "--path", "20*/[ab].jpg") == ["a", "b"]


def brackets(tmp_path, folder: str) -> tuple:
    """An index with a photo in ``lib/FOLDER`` and one in ``lib/2020x``."""
    db = index.open_index(tmp_path / "index.db")
    paths = []
    for name in (folder, "2020x"):
        path = tmp_path / "lib" / name / "a.jpg"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"jpeg")
        index.record_photo(db, path, os.stat(path), None, PhotoInfo(10, 10, 10, 10), [face("f", 0.9, 30.0)], "t")
        paths.append(str(path))
    db.conn.close()
    return tmp_path / "index.db", paths


def test_a_path_that_exists_is_a_path_not_a_glob(tmp_path):
    """Issue 16 case 11: ``[2020] trip`` is that folder; a glob with --glob, or where no such path exists."""
    db_path, (trip, other) = brackets(tmp_path, "[2020] trip")

    def listed(*args):
        result = run(db_path, "query", *args, "--format", "paths")
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    folder = str(tmp_path / "lib" / "[2020] trip")
    assert listed("--path", folder) == [trip]
    assert listed("--path", folder, "--glob") == []  # as a glob: one of the characters 2, 0, ] ...
    assert listed("--path", str(tmp_path / "lib" / "202[0]x") + "/*") == [other]  # no such path: a glob
    os.remove(trip)
    os.rmdir(os.path.dirname(trip))  # gone from the disk (an unplugged drive), still in the index: a path
    assert listed("--path", folder) == [trip]


def test_path_filters_on_names_that_are_not_utf8(tmp_path):
    """Issue 16 case 9: a folder named in Latin-1 is filtered exactly (no traceback), and globbed as shown."""
    db = index.open_index(tmp_path / "index.db")
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(folder)
    photo = os.path.join(folder, b"\xe9t\xe9.jpg")
    open(photo, "wb").close()
    index.record_photo(db, photo, os.stat(photo), None, PhotoInfo(10, 10, 10, 10), [face("f", 0.9, 30.0)], "t")
    db.conn.close()
    result = run(tmp_path / "index.db", "query", "--path", os.fsdecode(folder), "-0")
    assert result.exit_code == 0 and result.stdout_bytes == photo + b"\0"
    result = run(tmp_path / "index.db", "query", "--path", "*/caf\\xe9/*", "-0")
    assert result.exit_code == 0 and result.stdout_bytes == photo + b"\0"
    table = run(tmp_path / "index.db", "query", env={"COLUMNS": "300"})
    assert table.exit_code == 0 and "caf\\xe9/\\xe9t\\xe9.jpg" in table.stdout


def test_taken_range_is_inclusive_at_the_precision_given(lib):
    assert found(lib, "--taken-after", "2020-12-31", "--taken-before", "2021") == ["b", "c"]
    assert found(lib, "--taken-before", "2020-12-31") == ["a", "b", "e"]
    assert found(lib, "--taken-after", "2021-03-01T08:00") == ["h", "c"]
    assert found(lib, "--taken-before", "2020-06-01T09:59:59") == ["e"]


def test_missing_photos_only_on_request(lib):
    assert found(lib, "--age", "20-30", "--gender", "f", "--include-missing") == ["b", "g", "c"]
    assert "g" not in found(lib)
    assert "f" not in found(lib, "--include-missing")  # failed files are never listed


# --- order and limit -----------------------------------------------------------------------------

def test_sort_and_limit(lib):
    assert found(lib) == ["a", "b", "h", "c", "d", "e"]  # by path: 2020/, 2020x/, 2021/, other/
    assert found(lib, "--sort", "taken") == ["e", "a", "b", "c", "h", "d"]  # undated last
    assert found(lib, "--sort", "taken", "--reverse") == ["h", "c", "b", "a", "e", "d"]
    assert found(lib, "--sort", "faces", "-r", "-n", "3") == ["c", "a", "d"]  # ties by path, reversed too
    assert found(lib, "--gender", "f", "--sort", "age") == ["b", "c", "d", "a", "h"]  # youngest matching face
    assert found(lib, "--sort", "age", "--limit", "2") == ["c", "b"]  # c has a 5-year-old, b a 24.6; e (no faces) last
    assert found(lib, "--sort", "age", "-r")[-1] == "e"


def test_path_order_is_by_path_not_insertion(lib):
    assert found(lib) == sorted(found(lib), key=lambda n: lib[1][n])


# --- output formats ------------------------------------------------------------------------------

def test_json_lists_the_matching_faces(lib):
    db_path, paths = lib
    result = run(db_path, "query", "--age", "20-30", "--gender", "f", "--format", "json")
    assert result.exit_code == 0, result.output
    photos = json.loads(result.stdout)
    assert [p["path"] for p in photos] == [paths["b"], paths["c"]]
    c = photos[1]
    assert c["face_count"] == 2 and c["taken_at"] == "2021-03-01T08:00:00"
    assert c["faces"] == [{"face_index": 0, "box": [10.0, 20.0, 100.0, 120.0], "frame": "displayed",
                           "rotation": 90.0, "gender": "f", "p_female": 0.7, "gender_confidence": 0.7,
                           "age": 30.4, "confidence": 0.99, "face": c["faces"][0]["face"], "person": None,
                           "face_age": 30.4, "face_p_female": 0.7}]  # no person yet: the face alone is the tag
    assert isinstance(c["faces"][0]["face"], int)


def test_json_of_nothing_is_an_empty_list(lib):
    result = run(lib[0], "query", "--age", "99", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_csv_has_a_row_per_matching_face(lib):
    db_path, paths = lib
    result = run(db_path, "query", "--path", str(os.path.dirname(paths["a"])), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["path"], r["gender"], r["age"]) for r in rows] == [
        (paths["a"], "m", "25.0"), (paths["a"], "f", "60.0"), (paths["b"], "f", "24.6")]
    assert rows[0]["gender_confidence"] == "0.9" and rows[1]["x"] == "300.0"


def test_csv_photo_without_faces_gets_one_row(lib):
    rows = list(csv.DictReader(io.StringIO(run(lib[0], "query", "--faces", "0", "-f", "csv").stdout)))
    assert len(rows) == 1 and rows[0]["face_count"] == "0" and rows[0]["gender"] == ""


def test_paths_with_nul_separators(lib):
    db_path, paths = lib
    result = run(db_path, "query", "--gender", "f", "--age", "20-30", "-0")
    assert result.exit_code == 0
    assert result.stdout_bytes == (paths["b"] + "\0" + paths["c"] + "\0").encode()


def test_nul_needs_the_paths_format(lib):
    assert run(lib[0], "query", "-0", "--format", "json").exit_code == 2


def test_paths_are_the_exact_file_names(tmp_path):
    db = index.open_index(tmp_path / "index.db")
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9 1.jpg")  # Latin-1, not UTF-8
    open(odd, "wb").close()
    info = PhotoInfo(width=10, height=10, stored_width=10, stored_height=10)
    index.record_photo(db, odd, os.stat(odd), None, info, [face("f", 0.9, 30.0)], "test-1")
    result = run(tmp_path / "index.db", "query", "-0")
    assert result.stdout_bytes == odd + b"\0"
    shown = json.loads(run(tmp_path / "index.db", "query", "-f", "json").stdout)[0]["path"]
    assert shown.endswith("caf\\xe9 1.jpg")


def test_table(lib):
    db_path, paths = lib
    result = run(db_path, "query", "--age", "20-30", "--gender", "f", env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "Matching faces" in result.stdout
    assert paths["b"] in result.stdout and "f 25" in result.stdout and "f 30" in result.stdout
    assert paths["a"] not in result.stdout


def test_table_says_when_nothing_matches(lib):
    result = run(lib[0], "query", "--age", "99")
    assert result.exit_code == 0 and result.stdout == "" and "No photos match" in result.stderr


def test_query_agrees_with_the_function(lib):
    db = index.open_index(lib[0], create=False)
    photos = q.find_photos(db, q.Query(age_min=20, age_max=30, gender="f", sort="age"))
    assert [p["path"] for p in photos] == [lib[1]["b"], lib[1]["c"]]
    assert [len(p["faces"]) for p in photos] == [1, 1]
    assert q.find_photos(db, q.Query(gender="m"), with_faces=False)[0].get("faces") is None


# --- show ----------------------------------------------------------------------------------------

def test_show(lib):
    db_path, paths = lib
    result = run(db_path, "show", paths["a"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert paths["a"] in result.stdout and "2 faces" in result.stdout
    assert "10 20 100 120" in result.stdout and "male" in result.stdout and "90 %" in result.stdout  # 1 - p_female
    assert "│  25 │" in result.stdout and "Certainty" in result.stdout and "p_female" not in result.stdout


def test_show_json(lib):
    db_path, paths = lib
    result = run(db_path, "show", paths["c"], "--json")
    assert result.exit_code == 0, result.output
    photo = json.loads(result.stdout)
    assert photo["path"] == paths["c"] and photo["status"] == "done" and photo["width"] == 4000
    assert [(f["gender"], f["age"], f["p_female"]) for f in photo["faces"]] == [("f", 30.4, 0.7), ("m", 5.0, 0.2)]
    assert photo["faces"][1]["gender_confidence"] == pytest.approx(0.8)
    assert photo["faces"][0]["box"] == [10.0, 20.0, 100.0, 120.0] and photo["faces"][0]["rotation"] == 90.0
    assert photo["faces"][0]["landmarks"] == {"nose": [60.0, 80.0]}


def test_show_failed_and_missing_photos(lib):
    db_path, paths = lib
    failed = run(db_path, "show", paths["f"])
    assert failed.exit_code == 0 and "failed: cannot identify image file" in failed.stdout
    assert "missing" in run(db_path, "show", paths["g"], env={"COLUMNS": "300"}).stdout


def test_show_unknown_path(lib, tmp_path):
    result = run(lib[0], "show", str(tmp_path / "nope.jpg"))
    assert result.exit_code == 1 and "Not in the index" in result.stderr


# --- stats ---------------------------------------------------------------------------------------

def test_stats_json(lib):
    result = run(lib[0], "stats", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "photos": 6, "faces": 7, "photos_without_faces": 1, "missing": 1, "failed": 1,
        "faces_by_gender": {"f": 5, "m": 2},  # not the missing photo's face
        "faces_by_age": {"0-9": {"total": 1, "m": 1}, "20-29": {"total": 2, "f": 1, "m": 1},
                         "30-39": {"total": 2, "f": 2}, "60-69": {"total": 1, "f": 1},
                         "70-79": {"total": 1, "f": 1}},
    }


def test_stats_decades_match_the_age_filter(lib):
    db = index.open_index(lib[0], create=False)
    for label, bucket in q.index_stats(db)["faces_by_age"].items():
        low, high = (int(x) for x in label.split("-"))
        matched = q.find_photos(db, q.Query(age_min=low, age_max=high))
        assert sum(len(p["faces"]) for p in matched) == bucket["total"], label


def test_stats_table(lib):
    result = run(lib[0], "stats")
    assert result.exit_code == 0, result.output
    assert "Photos  6 (1 without faces)" in result.stdout and "Failed  1 file " in result.stdout
    assert "20-29" in result.stdout


def test_stats_of_an_empty_index(tmp_path):
    index.open_index(tmp_path / "index.db").conn.close()
    counts = json.loads(run(tmp_path / "index.db", "stats", "--json").stdout)
    assert counts["photos"] == 0 and counts["faces"] == 0 and counts["faces_by_age"] == {}


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["query"], ["show", "x.jpg"], ["stats"]])
def test_no_index_yet(tmp_path, command):
    db_path = tmp_path / "none" / "index.db"
    result = runner.invoke(app, command, env={"PHOTOTAG_DB": str(db_path)})
    assert result.exit_code == 1
    assert "phototag scan" in result.stderr
    assert not db_path.exists() and not db_path.parent.exists()


@pytest.mark.parametrize("args", [
    ["--age", "30-20"], ["--age", "abc"], ["--age", "20-30-40"], ["--age", "2 0"], ["--age", "-"],
    ["--gender", "x"], ["--taken-after", "2020-13"], ["--taken-before", "yesterday"],
    ["--min-gender-confidence", "1.5"], ["--sort", "size"], ["--format", "xml"], ["--limit", "0"],
])
def test_usage_errors(lib, args):
    result = run(lib[0], "query", *args)
    assert result.exit_code == 2, result.output


def test_user_text_is_never_sql(lib):
    hostile = "x'; DROP TABLE photos; --"
    sql, params = q.build_query(q.Query(path=hostile.encode(), path_glob=hostile, gender="f", taken_after="2020"))
    assert hostile not in sql and hostile in params and hostile.encode() in params
    assert found(lib, "--path", "/" + hostile) == []
    assert len(found(lib)) == 6


# --- parsing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, bounds", [
    ("20-30", (20, 30)), ("60-", (60, None)), ("-12", (None, 12)), ("25", (25, 25)), (" 0 - 9 ", (0, 9)),
])
def test_parse_age_range(text, bounds):
    assert q.parse_age_range(text) == bounds


@pytest.mark.parametrize("age, years", [(30.4, 30), (30.5, 31), (29.49999, 29), (0.49999999999999994, 0), (0.0, 0)])
def test_rounded_age_matches_the_sql_bounds(age, years):
    assert ages.age_years(age) == years
    assert years - 0.5 <= age < years + 0.5


@pytest.mark.parametrize("command", ["query", "show", "stats"])
def test_help(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--db" in result.stdout


# --- right advice (issue 26) ---------------------------------------------------------------------

def test_show_a_folder_lists_its_photos(lib):
    db_path, paths = lib
    result = run(db_path, "show", os.path.dirname(paths["a"]), env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert paths["a"] in result.stdout and paths["b"] in result.stdout and paths["c"] not in result.stdout
    assert "phototag scan" not in result.stderr and "--path" in result.stderr
    listed = json.loads(run(db_path, "show", os.path.dirname(paths["c"]), "--json").stdout)
    assert {p["path"] for p in listed} == {paths["c"], paths["d"]}  # the failed f is not a photo with faces


def test_show_an_empty_folder_says_how_to_scan_it(lib, tmp_path):
    (tmp_path / "new").mkdir()
    result = run(lib[0], "show", str(tmp_path / "new"))
    assert result.exit_code == 1 and f"phototag scan --db {lib[0]} {tmp_path / 'new'}" in result.stderr


@pytest.mark.parametrize("name", ["clip.mov", "clip.MP4"])
def test_show_a_video_says_videos_are_not_supported(lib, tmp_path, name):
    result = run(lib[0], "show", str(tmp_path / name))
    assert result.exit_code == 1 and "video" in result.stderr and "not supported" in result.stderr
    assert "phototag scan" not in result.stderr


def test_show_says_the_photo_is_turned_and_where_its_tags_are(lib):
    db_path, paths = lib
    result = run(db_path, "show", paths["a"], env={"COLUMNS": "300"})
    assert "turned 90° counter-clockwise" in result.stdout  # its faces' rotation is 90
    assert f"phototag orient --fix --db {db_path} {paths['a']}" in result.stdout
    assert "Tags: only in the index (not in the photo: scanned with --no-exif)" in result.stdout
    Path(paths["a"] + ".xmp").write_text("<x/>")
    with sqlite3.connect(db_path) as conn:
        conn.execute("update photos set exif_status = 'written'")
    shown = run(db_path, "show", paths["a"], env={"COLUMNS": "300"}).stdout
    assert f"Tags: in the photo (EXIF and XMP), in the sidecar {paths['a']}.xmp and in the index" in shown


def test_hints_name_the_index_given(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere.db"
    result = runner.invoke(app, ["stats", "--db", str(elsewhere)])
    assert result.exit_code == 1 and f"phototag scan --db {elsewhere} FOLDER" in result.stderr
    result = runner.invoke(app, ["stats"], env={"PHOTOTAG_DB": str(elsewhere)})  # a plain scan uses it too
    assert result.exit_code == 1 and "create one with: phototag scan FOLDER" in result.stderr
