"""``phototag scan`` through the CLI on a real photo folder (real faces pasted onto scenes)."""

import json
import math
import os
import random
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from phototag import detectors, index, tags
from phototag.chain import FaceChain
from phototag.cli import app
from phototag.images import decode
from phototag.models import MANIFEST
from phototag.scan import ScanOptions, SilentProgress, scan
from phototag.testing.photos import FACE_FRACTION, build_test_folder, face_crops, jpeg_bytes, paste_face, scene

runner = CliRunner()


def run_scan(*args):
    result = runner.invoke(app, ["scan", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def scan_json(*args) -> dict:
    """``phototag scan ARGS --json`` through the CLI (builds its own detector and models)."""
    result = run_scan(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def scan_dict(analyzer, *paths, db, **options) -> dict:
    """The library's scan with a ready analyzer; the summary as ``--json`` prints it."""
    options = ScanOptions(paths=[os.fsencode(p) for p in paths], db_path=db, **options)
    return scan(options, analyzer=analyzer).to_dict()


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build_test_folder(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def first_scan(library, tiny_model_dir, tmp_path_factory):
    db_path = tmp_path_factory.mktemp("index") / "index.db"
    summary = scan_json(library.root, "--db", db_path, "--models", tiny_model_dir)
    return db_path, summary


@pytest.fixture(scope="module")
def db(first_scan):
    return index.open_index(first_scan[0], create=False)


def matches(face_row, pasted):
    """Whether an index face is the pasted face (centre and size agree); ``pasted.angle`` is then
    the rotation the trained models should report for it."""
    centre = (face_row["x"] + face_row["w"] / 2, face_row["y"] + face_row["h"] / 2)
    expected_width = pasted.size * FACE_FRACTION
    return (math.dist(centre, pasted.center) < 0.25 * pasted.size
            and 0.6 * expected_width < face_row["w"] < 1.4 * expected_width)


def test_faces_are_found_where_they_were_pasted(library, db):
    for path, pasted in library.faces.items():
        row = index.get_photo(db, path)
        assert row is not None and row["status"] == "done", index.display_path(path)
        faces = index.faces_of(db, row["id"])
        assert len(faces) == len(pasted), index.display_path(path)
        for p in pasted:
            assert any(matches(f, p) for f in faces), (index.display_path(path), p, faces)
        for f in faces:
            assert f["frame"] == "displayed" and set(f["landmarks"]) == {
                "left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
            assert f["gender"] in ("f", "m") and 0 <= f["p_female"] <= 1 and f["age"] >= 0


def test_photo_details(library, db):
    by_name = {os.path.basename(p): index.get_photo(db, p) for p in library.faces}
    sideways = by_name[b"sideways.jpg"]
    assert (sideways["width"], sideways["height"], sideways["orientation"]) == (600, 800, 6)
    assert (sideways["stored_width"], sideways["stored_height"]) == (800, 600)
    assert by_name[b"group.jpg"]["taken_at"] == "2023-07-14T18:30:05"
    assert by_name[b"portrait.png"]["format"] == "PNG" and by_name[b"beach.webp"]["format"] == "WEBP"
    odd = by_name[b"caf\xe9 party.jpg"]
    assert odd["path"].endswith("caf\\xe9 party.jpg") and odd["face_count"] == 1


def test_bad_files_are_recorded_and_do_not_stop_the_scan(library, first_scan, db):
    _, summary = first_scan
    failed = {f["path"]: f["reason"] for f in summary["failed"]}
    assert len(failed) == len(library.bad)
    for path, word in library.bad.items():
        row = index.get_photo(db, path)
        assert row["status"] == "failed" and word in row["error"].lower(), row
        assert failed[index.display_path(path)] == row["error"]
    assert summary["scanned"] == len(library.faces)
    assert summary["found"] == len(library.faces) + len(library.bad)


def test_other_files_are_left_out(library, db):
    for path in library.ignored:
        assert index.get_photo(db, path) is None


def test_exif_is_written_and_the_index_keeps_the_new_file_state(library, first_scan, db):
    _, summary = first_scan
    assert summary["exif"] == {"written": 6, "unsupported": 1}
    assert summary["exif_problems"] == []  # the PNG's tags went into its sidecar
    assert summary["sidecars"] == {"written": 1}
    for path, pasted in library.faces.items():
        row = index.get_photo(db, path)
        st = os.stat(path)
        assert (row["size"], row["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
        if path.endswith(b".png"):
            assert row["exif_status"] == "unsupported"
        else:
            assert row["exif_status"] == "written"
            record = tags.read_record(path)
            assert record is not None and len(record["faces"]) == len(pasted)


def test_second_scan_skips_everything(library, first_scan, tiny_model_dir):
    db_path, first = first_scan
    again = scan_json(library.root, "--db", db_path, "--models", tiny_model_dir)
    assert again["scanned"] == 0 and again["failed"] == []
    assert again["unchanged"] == first["found"] and again["missing"] == 0 and again["outdated"] == 0
    assert again["still_failing"] == len(first["failed"]) > 0  # the broken files, unchanged, still counted
    assert again["detector"] == "" and again["engine"] == ""  # nothing to do: no models loaded


HEAVY_MODULES = ("tensorflow", "keras", "cv2", "ai_edge_litert", "mtcnn")
NO_OP_RESCAN = f"""
import sys
from phototag.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY_MODULES!r})), file=sys.stderr)
"""


def test_a_rescan_with_nothing_to_do_imports_no_tensorflow(library, first_scan, tiny_model_dir):
    import subprocess
    import sys

    db_path, first = first_scan
    result = subprocess.run([sys.executable, "-c", NO_OP_RESCAN, "scan", str(library.root), "--db", str(db_path),
                             "--models", str(tiny_model_dir), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["unchanged"] == first["found"]
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_the_bar_advances_as_each_photo_is_recorded(copy, tmp_path, tiny_analyzer, monkeypatch):
    db_path = tmp_path / "index.db"
    events = []

    class Recorder(SilentProgress):
        def start(self, total):
            events.append(("start", total))

        def advance(self, faces):
            with sqlite3.connect(db_path) as db:  # what another process would see now
                events.append(("photo", faces, db.execute("select count(*) from photos").fetchone()[0]))

    predict = type(tiny_analyzer).predict
    monkeypatch.setattr(type(tiny_analyzer), "predict",
                        lambda self, items, **kw: events.append(("chain", len(items))) or predict(self, items, **kw))
    options = ScanOptions(paths=[os.fsencode(copy)], db_path=db_path, exif=False, batch_size=64)
    summary = scan(options, Recorder(), analyzer=tiny_analyzer)
    photos = [e for e in events if e[0] == "photo"]
    assert events[0] == ("start", summary.found) and len(photos) == summary.found == summary.recorded
    assert sum(e[1] for e in photos) == summary.faces
    # Each photo counts once its row is in the index, never before: the photos with faces wait for
    # the one chain batch (batch size 64) that holds them all.
    assert [e[2] for e in photos] == list(range(1, len(photos) + 1))
    chained = [e[0] for e in events].index("chain")
    assert all(e[1] == 0 for e in events[:chained] if e[0] == "photo")
    assert [e[0] for e in events].count("chain") == 1 and events[chained + 1:] and summary.faces


@pytest.fixture
def copy(library, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(library.root, root, symlinks=True)
    return root


def test_modification_times_are_kept_unless_touch(copy, tmp_path, tiny_analyzer):
    kept, touched = copy / "2023" / "tilted.jpg", tmp_path / "tilted.jpg"
    shutil.copy(kept, touched)
    old = 1_500_000_000_000_000_000
    for photo in (kept, touched):
        tags.clean(photo)  # the library's files may carry an earlier scan's tags
        assert tags.read_record(photo) is None
        os.utime(photo, ns=(old, old))
    scan_dict(tiny_analyzer, kept, db=tmp_path / "a.db")
    scan_dict(tiny_analyzer, touched, db=tmp_path / "b.db", touch=True)
    assert tags.read_record(kept) is not None and tags.read_record(touched) is not None
    assert os.stat(kept).st_mtime_ns == old and os.stat(touched).st_mtime_ns > old


def test_changed_and_deleted_files(copy, tmp_path, tiny_analyzer):
    db_path = tmp_path / "index.db"
    first = scan_dict(tiny_analyzer, copy, db=db_path, exif=False)
    changed, deleted = copy / "2023" / "group.jpg", copy / "2023" / "tilted.jpg"
    canvas = scene(800, 600, random.Random(3))
    paste_face(canvas, face_crops()[0], (400, 300), 240)
    changed.write_bytes(jpeg_bytes(canvas))
    deleted.unlink()

    second = scan_dict(tiny_analyzer, copy, db=db_path, exif=False)
    assert second["scanned"] == 1 and second["missing"] == 1 and second["faces"] == 1
    assert second["unchanged"] == first["found"] - 2
    db = index.open_index(db_path, create=False)
    assert index.get_photo(db, changed)["face_count"] == 1
    assert index.get_photo(db, deleted)["missing"] == 1

    pruned = scan_dict(tiny_analyzer, copy, db=db_path, exif=False, prune=True)
    assert pruned["scanned"] == 0 and pruned["missing"] == 1 and pruned["pruned"]
    assert index.get_photo(db, deleted) is None


def test_rescan_options_and_sidecars(copy, tmp_path, tiny_model_dir, tiny_analyzer):
    db_path = tmp_path / "index.db"
    photos = copy / "2023"
    first = scan_dict(tiny_analyzer, photos, db=db_path, exif=False, sidecar=True)
    assert first["scanned"] == 3 and first["exif"] == {}
    assert (photos / "group.jpg.xmp").exists()
    assert scan_dict(tiny_analyzer, photos, db=db_path, exif=False, rescan=True)["scanned"] == 3

    newer = tmp_path / "newer-models"
    shutil.copytree(tiny_model_dir, newer)
    manifest = json.loads((newer / MANIFEST).read_text())
    (newer / MANIFEST).write_text(json.dumps(manifest | {"name": "newer"}))
    outdated = scan_json(photos, "--db", db_path, "--models", newer, "--no-exif")
    assert outdated["scanned"] == 0 and outdated["outdated"] == 3
    redone = scan_json(photos, "--db", db_path, "--models", newer, "--no-exif", "--rescan-outdated")
    assert redone["scanned"] == 3 and redone["outdated"] == 0 and redone["model_version"].startswith("newer-")


def test_an_interrupted_scan_resumes_where_it_stopped(copy, tmp_path, tiny_analyzer, monkeypatch):
    predict, calls = FaceChain.predict, []

    def interrupted_after_two_batches(self, items, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(len(items))
        return predict(self, items, **kwargs)

    monkeypatch.setattr(FaceChain, "predict", interrupted_after_two_batches)
    options = ScanOptions(paths=[os.fsencode(copy)], db_path=tmp_path / "index.db", batch_size=1, exif=False)
    stopped = scan(options, analyzer=tiny_analyzer)
    assert stopped.interrupted
    db = index.open_index(tmp_path / "index.db", create=False)
    assert stopped.recorded == db.execute("select count(*) from photos").fetchone()[0]
    done = db.execute("select count(*) from photos where status = 'done'").fetchone()[0]
    assert done == 2
    assert db.execute("select count(*) from faces").fetchone()[0] == sum(
        r[0] for r in db.execute("select face_count from photos").fetchall())

    monkeypatch.undo()
    resumed = scan(options, analyzer=tiny_analyzer)
    assert resumed.unchanged == done and resumed.scanned + len(resumed.failed) == resumed.found - done


def test_a_file_that_could_not_be_read_is_tried_again_at_the_next_scan(copy, tmp_path, tiny_analyzer, monkeypatch):
    """A read failure's cause can go away without the file changing (a permission): the next scan
    tries the file again. A file that cannot be decoded waits until it changes. ``stats --failed``
    lists what failed, with the reason."""
    from phototag import images

    photo = copy / "2024" / sorted(p.name for p in (copy / "2024").glob("*.jpg")
                                   if p.name.isascii() and p.name != "truncated.jpg" and p.stat().st_size > 1000)[0]
    real = images.read_photo

    def unreadable_once(path, *args, **kwargs):
        if os.fsdecode(path) == str(photo):
            raise OSError(13, "Permission denied")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(images, "read_photo", unreadable_once)
    options = ScanOptions(paths=[os.fsencode(copy / "2024")], db_path=tmp_path / "index.db", exif=False)
    first = scan(options, analyzer=tiny_analyzer)
    assert {os.path.basename(p): why for p, why in first.failed}[photo.name] == "cannot read: Permission denied"
    monkeypatch.undo()
    again = scan(options, analyzer=tiny_analyzer)
    assert (again.scanned, again.failed, again.unchanged) == (1, [], first.found - 1)  # only that file again
    db = index.open_index(tmp_path / "index.db", create=False)
    assert index.get_photo(db, photo)["status"] == "done"
    result = CliRunner().invoke(app, ["stats", "--failed", "--json", "--db", str(tmp_path / "index.db")])
    listed = {os.path.basename(f["path"]): f["error"] for f in json.loads(result.stdout)["failed_files"]}
    assert listed == {os.path.basename(p): why for p, why in first.failed if not p.endswith(photo.name)}
    assert "truncated.jpg" in listed


def test_human_summary_and_quiet(copy, tmp_path, tiny_model_dir):
    db_path = tmp_path / "index.db"
    result = run_scan(copy / "2024", "--db", db_path, "--models", tiny_model_dir, "--no-exif")
    assert result.exit_code == 0
    assert "detector yunet; models " in result.stderr and "skipped as unchanged" in result.stderr
    assert "truncated.jpg" in result.stderr and result.stdout == ""
    quiet = run_scan(copy / "2024", "--db", db_path, "--models", tiny_model_dir, "--quiet")
    assert quiet.exit_code == 0 and quiet.output == ""
    again = run_scan(copy / "2024", "--db", db_path, "--models", tiny_model_dir, "--no-exif")
    assert "failed in this scan" in again.stderr and "still failing" in again.stderr  # the truncated JPEG


@pytest.mark.parametrize("args", [
    ["/no/such/folder"],
    [".", "--min-confidence", "1.5"],
    [".", "--batch-size", "0"],
    [".", "--min-face", "-1"],
    [".", "--models", "/no/such/models"],
])
def test_unusable_arguments_exit_with_2(args):
    assert run_scan(*args).exit_code == 2


def test_min_face_is_in_full_resolution_pixels(library):
    """--min-face counts full-resolution pixels, also when the JPEG is decoded reduced."""
    path = next(p for p in library.faces if p.endswith(b"group.jpg"))
    pixels, info = decode(open(path, "rb").read(), decode_size=400)  # 800 x 600 decoded at 1/2
    assert info.scale == 0.5
    widths = [max(d.box[2:]) / info.scale for d in detectors.create().detect(pixels, info.scale)]
    assert len(widths) == 3
    cut = sorted(widths)[1] - 1  # keeps the two larger faces
    kept = detectors.create(min_face=round(cut)).detect(pixels, info.scale)
    assert len(kept) == 2 and all(max(d.box[2:]) / info.scale >= cut for d in kept)


ROTATED = [-40.0, -25.0, -10.0, 0.0, 15.0, 30.0, 45.0]
ROTATION_MEDIAN_TOLERANCE, ROTATION_MAX_TOLERANCE = 10.0, 20.0  # degrees; see models/README.md


@pytest.fixture(scope="module")
def rotated_faces(tmp_path_factory):
    """Photos with faces pasted at known angles, scanned with the shipped (trained) models."""
    root = tmp_path_factory.mktemp("rotated")
    rng = random.Random(11)
    pool = face_crops()
    rng.shuffle(pool)
    pasted = {}
    for i in range(0, len(ROTATED), 4):
        canvas = scene(1000, 400, rng)
        path = root / f"rotated{i}.jpg"
        pasted[os.fsencode(path)] = [paste_face(canvas, pool[i + j], (130 + 245 * j, 200), 200, angle)
                                     for j, angle in enumerate(ROTATED[i:i + 4])]
        path.write_bytes(jpeg_bytes(canvas))
    db_path = root / "index.db"
    scan_json(root, "--db", db_path, "--no-exif")
    return pasted, index.open_index(db_path, create=False)


def test_shipped_models_measure_the_pasted_rotations(rotated_faces):
    pasted_by_path, db = rotated_faces
    errors = []
    for path, pasted in pasted_by_path.items():
        faces = index.faces_of(db, index.get_photo(db, path)["id"])
        for p in pasted:
            face = next(f for f in faces if matches(f, p))
            errors.append(abs((face["rotation"] - p.angle + 180) % 360 - 180))
    assert len(errors) == len(ROTATED)
    assert sorted(errors)[len(errors) // 2] < ROTATION_MEDIAN_TOLERANCE and max(errors) < ROTATION_MAX_TOLERANCE, errors


@pytest.fixture(scope="module")
def turned_photos(tmp_path_factory):
    """Photos stored turned by 90 and 180 degrees without an orientation tag, scanned with
    --any-angle and the shipped models; returns the pasted faces (where and how turned) and the index."""
    root = tmp_path_factory.mktemp("turned")
    rng = random.Random(21)
    pool = face_crops()
    rng.shuffle(pool)
    pasted = {}
    for turns in (1, 2):
        canvas = scene(900, 500, rng)
        faces = [paste_face(canvas, pool[2 * turns + i], (220 + 460 * i, 250), 220) for i in range(2)]
        turned = canvas.rotate(90 * turns, expand=True)  # counter-clockwise
        for face in faces:
            x, y = face.center
            face.center = (y, canvas.width - x) if turns == 1 else (canvas.width - x, canvas.height - y)
            face.angle = 90.0 * turns
        path = root / f"turned{turns}.jpg"
        path.write_bytes(jpeg_bytes(turned))
        pasted[os.fsencode(path)] = faces
    db_path = root / "index.db"
    from phototag import FaceAnalyzer

    scan(ScanOptions(paths=[os.fsencode(root)], db_path=db_path, exif=False), analyzer=FaceAnalyzer(any_angle=True))
    return pasted, index.open_index(db_path, create=False)


def test_any_angle_finds_turned_faces_and_their_rotation(turned_photos):
    pasted_by_path, db = turned_photos
    for path, pasted in pasted_by_path.items():
        faces = index.faces_of(db, index.get_photo(db, path)["id"])
        assert len(faces) == len(pasted), faces
        for p in pasted:
            face = next(f for f in faces if matches(f, p))
            assert abs((face["rotation"] - p.angle + 180) % 360 - 180) < ROTATION_MAX_TOLERANCE, (face, p)


def test_a_format_without_embedded_tags_is_reported_only_when_its_sidecar_is_off(copy, tmp_path, tiny_analyzer):
    png = next(copy.rglob("portrait.png"))
    for sidecar in copy.rglob("portrait*.xmp"):  # an earlier scan of the library's files wrote one
        sidecar.unlink()
    default = scan_dict(tiny_analyzer, png, db=tmp_path / "a.db")
    assert default["exif"] == {"unsupported": 1} and default["sidecars"] == {"written": 1}
    assert default["exif_problems"] == []
    off = scan_dict(tiny_analyzer, png, db=tmp_path / "b.db", sidecar=False)
    assert off["sidecars"] == {} and [p["status"] for p in off["exif_problems"]] == ["unsupported"]
