"""Photos the wrong way up: the faces' agreement rule, the orientation arithmetic, and the lossless
fix that ``clean`` undoes (real JPEG and WebP files, read back with Pillow and exiftool)."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest
from PIL import Image, ImageOps
from test_tags import FACES, INFO, exiftool, face_image, jpeg_parts, make_jpeg, needs_exiftool
from typer.testing import CliRunner

from conftest import needs_shared_data
from phototag import orient, tags
from phototag.cli import app
from phototag.images import decode_file
from phototag.records import Face
from phototag.turns import suggested_turn
from phototag.testing.photos import face_files, jpeg_bytes, paste_face, scene

runner = CliRunner()
TURNED_FACE = 40  # a UTKFace crop (sorted by name): the face of the turned photos


@pytest.mark.parametrize(("rotations", "turn"), [
    ([], 0), ([3.0], 0), ([88.0], 1), ([178.0, -175.0], 2), ([-90.0, -84.0, 12.0], 3),
    ([90.0, 0.0], 0), ([45.0], 0), ([125.0], 0), ([91.0, 95.0, 87.0, -170.0], 1), ([-100.0, 60.0], 0),
])
def test_a_photo_is_turned_when_its_faces_agree(rotations, turn):
    assert suggested_turn(rotations) == turn


def stored_with(orientation: int) -> Image.Image:
    """A small image whose every pixel differs, carrying ``orientation`` in its EXIF."""
    image = Image.fromarray(np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3) * 2)
    image.getexif()[0x0112] = orientation
    return image


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("turns", range(4))
def test_the_new_orientation_shows_the_turned_content_upright(orientation, turns):
    displayed = np.asarray(ImageOps.exif_transpose(stored_with(orientation)))
    upright = np.rot90(displayed, -turns)  # the display turned back clockwise
    fixed = np.asarray(ImageOps.exif_transpose(stored_with(orient.upright_orientation(orientation, turns))))
    assert np.array_equal(fixed, upright)


@pytest.mark.parametrize("turns", range(4))
def test_faces_follow_the_turned_frame(turns):
    height, width = 30, 50
    frame = np.zeros((height, width), int)
    frame[5, 12] = 1  # the pixel at x=12, y=5
    x, y = orient.turned_point(12.5, 5.5, width, height, turns)
    turned = np.rot90(frame, -turns)
    assert turned[int(y), int(x)] == 1
    face = Face(box=(10, 4, 6, 8), landmarks={"nose": (12.5, 5.5)}, confidence=0.9, rotation=90.0 * turns + 3)
    moved = orient.turned_face(face, width, height, turns)
    assert moved.rotation == pytest.approx(3.0) and moved.landmarks["nose"] == (x, y)
    bx, by, bw, bh = moved.box
    assert bx <= x <= bx + bw and by <= y <= by + bh
    assert sorted((bw, bh)) == [6, 8] and (bw, bh) == ((6, 8) if turns % 2 == 0 else (8, 6))


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_exiftool
@pytest.mark.parametrize("kind", ["plain", "camera", "webp"])
def test_fix_then_clean_restores_the_photo(tmp_path, kind):
    """A photo lying on its left side: the fix sets the orientation exiftool reads and Pillow applies,
    leaves the image data and every other segment as they were; clean restores the file (exactly
    when phototag created its EXIF block)."""
    if kind == "webp":
        path = tmp_path / "p.webp"
        face_image().save(path, quality=80)
    else:
        path = make_jpeg(tmp_path / "p.jpg", kind)
    original = path.read_bytes()
    upright = np.asarray(decode_file(path)[0])
    assert orient.orient_photo(path, 1, dry_run=True).status == "written" and path.read_bytes() == original

    result = orient.orient_photo(path, 1, sha256=sha(path))
    assert (result.status, result.before, result.after) == ("written", 1, 6)
    assert result.file.sha256 == sha(path)
    assert exiftool("-n", "-Orientation", path)[0]["Orientation"] == 6
    assert np.array_equal(np.asarray(decode_file(path)[0]), np.rot90(upright, -1))  # shown turned back
    if kind != "webp":
        assert jpeg_parts(path.read_bytes()) == jpeg_parts(original)  # every other segment, image data
    assert tags.read_record(path)[tags.ORIENTATION_BEFORE] == (1 if kind == "camera" else None)
    assert orient.orient_photo(path, 0).status == "unchanged"

    cleaned = tags.clean(path)
    assert cleaned.orientation and cleaned.record and "orientation" in cleaned.summary()
    if kind == "camera":
        assert exiftool("-n", "-Orientation", "-Make", path)[0] == {"SourceFile": str(path), "Orientation": 1,
                                                                   "Make": "Canon"}
        assert jpeg_parts(path.read_bytes()) == jpeg_parts(original)
    else:
        assert path.read_bytes() == original


@needs_exiftool
def test_the_first_orientation_survives_a_second_fix_and_a_rescan(tmp_path):
    path = make_jpeg(tmp_path / "p.jpg", "camera")
    tags.write_faces(path, FACES, INFO, "m1")
    assert orient.orient_photo(path, 2).after == 3
    record = tags.read_record(path)
    assert record[tags.ORIENTATION_BEFORE] == 1 and record["orientation"] == 3 and len(record["faces"]) == 2
    assert orient.orient_photo(path, 1).after == 8  # half a turn, then a quarter more: 3/4 clockwise
    tags.write_faces(path, FACES[:1], INFO, "m2")  # a rescan writes its record anew
    record = tags.read_record(path)
    assert record[tags.ORIENTATION_BEFORE] == 1 and len(record["faces"]) == 1
    assert tags.clean(path).orientation
    assert exiftool("-n", "-Orientation", path)[0]["Orientation"] == 1 and tags.read_record(path) is None


@needs_exiftool
def test_a_block_with_ifd0_only_gets_no_incomplete_exif_ifd_and_clean_gives_it_back(tmp_path):
    """The record goes into the XMP, as the tag writer puts it, where a block has no Exif IFD."""
    path = tmp_path / "ifd0.jpg"
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make, in IFD0 only
    face_image().save(path, "JPEG", exif=exif.tobytes())
    original = path.read_bytes()
    result = orient.orient_photo(path, 1)
    assert result.status == "written" and exiftool("-n", "-Orientation", path)[0]["Orientation"] == result.after == 6
    assert "ExifIFD" not in json.dumps(exiftool("-a", "-G1", "-ExifIFD:all", path)[0])
    warnings = exiftool("-validate", "-warning", "-a", path)[0]
    assert not any("ExifIFD" in str(v) for v in warnings.values()), warnings
    assert tags.read_record(path)[tags.ORIENTATION_BEFORE] is None
    assert tags.clean(path).orientation
    assert exiftool("-n", "-Orientation", "-Make", path)[0] == {"SourceFile": str(path), "Make": "Canon"}
    assert jpeg_parts(path.read_bytes()) == jpeg_parts(original)


def test_a_changed_or_unsupported_file_is_left_alone(tmp_path):
    path = make_jpeg(tmp_path / "p.jpg", "plain")
    before = path.read_bytes()
    assert orient.orient_photo(path, 1, sha256="0" * 64).status == "changed"
    path.chmod(0o444)
    assert orient.orient_photo(path, 1, dry_run=True).reason == "the file is read-only"
    path.chmod(0o644)
    png = tmp_path / "p.png"
    face_image().save(png)
    assert orient.orient_photo(png, 1).status == "unsupported"
    damaged = tmp_path / "d.jpg"
    damaged.write_bytes(before[:2] + b"\xff\xe1\x00\x10Exif\x00\x00XXXXXXXX" + before[2:])
    result = orient.orient_photo(damaged, 1)
    assert result.status == "failed" and "TIFF" in result.reason
    assert path.read_bytes() == before


# -- through the CLI, with the shipped models -----------------------------------------------------

AGE_TOLERANCE = 6.0  # years; benchmarks/bench_turned.py: the mean |age difference| at 180° is 2.9 y


def cli(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def turned_library(tmp_path_factory):
    """The same photo of a real face stored upright, upside down and lying on its left side (no
    orientation tag), scanned by ``phototag scan`` with the shipped models (tags written)."""
    root = tmp_path_factory.mktemp("turned")
    rng = random.Random(5)
    canvas = scene(640, 480, rng)
    pasted = paste_face(canvas, face_files()[TURNED_FACE], (300, 230), 230)
    originals = {}
    for name, turns in (("upright", 0), ("upside_down", 2), ("left_side", 1)):
        path = root / f"{name}.jpg"
        path.write_bytes(jpeg_bytes(canvas.rotate(90 * turns, expand=True)))  # counter-clockwise
        originals[name] = path.read_bytes()
    db = root / "index.db"
    summary = json.loads(cli("scan", root, "--db", db, "--json"))
    return root, db, summary, originals, pasted


def faces_by_name(root, db) -> dict:
    return {name: json.loads(cli("show", root / f"{name}.jpg", "--db", db, "--json"))
            for name in ("upright", "upside_down", "left_side")}


@needs_shared_data
def test_a_turned_photo_is_tagged_like_its_upright_copy(turned_library):
    root, db, summary, _, pasted = turned_library
    shown = faces_by_name(root, db)
    assert all(len(s["faces"]) == 1 for s in shown.values()), shown
    upright = shown["upright"]["faces"][0]
    for name, turn in (("upside_down", 2), ("left_side", 1)):
        face = shown[name]["faces"][0]
        assert abs((face["rotation"] - 90 * turn + 180) % 360 - 180) < 10, face
        assert face["gender"] == upright["gender"] == ("f" if pasted.female else "m")
        assert abs(face["age"] - upright["age"]) <= AGE_TOLERANCE, (face["age"], upright["age"])
        assert shown[name]["turn"] == turn
    assert summary["turned"] == 2 and shown["upright"]["turn"] == 0


@needs_shared_data
@needs_exiftool
def test_orient_fix_shows_it_upright_and_clean_restores_the_file(turned_library):
    root, db, _, originals, _ = turned_library
    left = root / "left_side.jpg"
    listed = cli("query", "--turned", "--format", "paths", "--db", db).split()
    assert listed == [str(left), str(root / "upside_down.jpg")]
    scanned = left.read_bytes()
    before = json.loads(cli("show", left, "--db", db, "--json"))

    assert "Would fix 1 photo(s)." in cli("orient", "--fix", "--dry-run", left, "--db", db)
    assert left.read_bytes() == scanned
    out = cli("orient", "--fix", left, "--db", db)
    assert "1 -> 6" in out and "Fixed 1 photo(s)." in out
    assert exiftool("-n", "-Orientation", left)[0]["Orientation"] == 6
    assert jpeg_parts(left.read_bytes()) == jpeg_parts(scanned)  # image data and other segments untouched
    upright = np.asarray(decode_file(left)[0])
    assert upright.shape[:2] == (480, 640)

    after = json.loads(cli("show", left, "--db", db, "--json"))
    assert (after["width"], after["height"], after["orientation"], after["turn"]) == (640, 480, 6, 0)
    face, old = after["faces"][0], before["faces"][0]
    assert abs(face["rotation"]) < 10 and (face["gender"], face["age"]) == (old["gender"], old["age"])
    x, y, w, h = face["box"]
    assert (w, h) == pytest.approx((old["box"][3], old["box"][2]))
    assert 250 < x + w / 2 < 350 and 180 < y + h / 2 < 280  # where the face is in the upright photo
    assert cli("query", "--turned", "--format", "paths", "--db", db).split() == [str(root / "upside_down.jpg")]
    rescan = json.loads(cli("scan", root, "--db", db, "--json"))
    assert rescan["scanned"] == 0 and rescan["unchanged"] == 3  # the index follows the fix

    assert "orientation" in cli("clean", left)
    assert left.read_bytes() == originals["left_side"]  # tags, record and orientation gone: the file as it was
