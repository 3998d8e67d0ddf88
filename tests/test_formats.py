"""Scanning every format a real library holds: sideways HEIC and RAW photos come out upright, with
faces where they are and results in exiftool-readable sidecars; RAW+JPEG pairs count once; every
file not scanned is named with its reason; decompression bombs are refused."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess

import pytest

from phototag import index
from phototag.scan import ScanOptions, scan
from phototag.testing.formats import camera_jpeg, dng_bytes, heic_bytes, jpeg_bomb, png_bomb, with_preview
from phototag.testing.photos import FACE_FRACTION, face_crops, jpeg_bytes, paste_face, scene, write


def sideways(rng, crop):
    """A picture stored turned 90 degrees counter-clockwise (800 x 600), to be shown turned 90 degrees
    clockwise (orientation 6): upright 600 x 800 with the face centred at (350, 300) as displayed."""
    stored = scene(800, 600, rng)
    face = paste_face(stored, crop, (300.0, 250.0), 220, angle=90.0)
    face.center, face.angle = (600 - 250.0, 300.0), 0.0
    return stored, face


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """HEIC and RAW photos stored sideways with an orientation, and where their faces are as displayed."""
    root = tmp_path_factory.mktemp("formats")
    rng = random.Random(12)
    crops = iter(face_crops()[40:])
    pasted = {}
    stored, face = sideways(rng, next(crops))
    pasted[write(root / "phone" / "IMG_0001.HEIC", heic_bytes(stored, orientation=6))] = face
    stored, face = sideways(rng, next(crops))
    pasted[write(root / "camera" / "DSC_0002.dng", dng_bytes(stored, orientation=6))] = face
    stored, face = sideways(rng, next(crops))
    raw = with_preview(dng_bytes(stored, orientation=6), camera_jpeg(stored, orientation=6))
    pasted[write(root / "camera" / "DSC_0003.NEF", raw)] = face
    return root, pasted


@pytest.fixture(scope="module")
def scanned(library, tiny_model_dir, tmp_path_factory):
    root, _ = library
    db_path = tmp_path_factory.mktemp("index") / "index.db"
    summary = scan(ScanOptions(paths=[os.fsencode(root)], db_path=db_path, model_dir=tiny_model_dir))
    return summary, index.open_index(db_path, create=False)


def test_sideways_heic_and_raw_come_out_upright_with_their_faces(library, scanned):
    _, pasted = library
    summary, db = scanned
    assert summary.scanned == 3 and summary.failed == []
    for path, face in pasted.items():
        row = index.get_photo(db, path)
        assert row["status"] == "done" and (row["width"], row["height"]) == (600, 800), row
        faces = index.faces_of(db, row["id"])
        assert len(faces) == 1, (path, faces)
        centre = (faces[0]["x"] + faces[0]["w"] / 2, faces[0]["y"] + faces[0]["h"] / 2)
        assert math.dist(centre, face.center) < 0.25 * face.size, (path, centre, face.center)
        assert 0.6 < faces[0]["w"] / (face.size * FACE_FRACTION) < 1.4
    by_name = {os.path.basename(p): index.get_photo(db, p) for p in pasted}
    assert by_name[b"IMG_0001.HEIC"]["format"] == "HEIF" and by_name[b"IMG_0001.HEIC"]["orientation"] == 1
    assert by_name[b"DSC_0002.dng"]["format"] == "RAW" and by_name[b"DSC_0002.dng"]["orientation"] == 6


def test_heic_and_raw_are_never_rewritten_and_get_readable_sidecars(library, scanned):
    _, pasted = library
    summary, _ = scanned
    assert summary.exif == {"unsupported": 3} and summary.sidecars == {"written": 3}  # the default for them
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed")
    for path in pasted:
        sidecar = path + b".xmp"
        out = subprocess.run(["exiftool", "-j", "-struct", "-XMP:all", os.fsdecode(sidecar)],
                             capture_output=True, text=True, check=True).stdout
        tags = json.loads(out)[0]
        assert "phototag" in tags["Subject"]
        regions = tags["RegionInfo"]["RegionList"]
        assert len(regions) == 1 and regions[0]["Type"] == "Face"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A RAW+JPEG pair, a Live Photo, a video, a GIF, a text file, two bombs and a broken link."""
    root = tmp_path_factory.mktemp("mixed")
    rng = random.Random(13)
    crops = iter(face_crops()[30:])
    canvas = scene(800, 600, rng)
    paste_face(canvas, next(crops), (400, 300), 220)
    write(root / "IMG_0100.JPG", jpeg_bytes(canvas))
    write(root / "IMG_0100.CR2", dng_bytes(canvas))  # LibRaw reads the content, whatever the name
    canvas = scene(800, 600, rng)
    paste_face(canvas, next(crops), (400, 300), 220)
    write(root / "IMG_0200.HEIC", heic_bytes(canvas))
    write(root / "IMG_0200.MOV", b"\0\0\0\x14ftypqt  not really a movie")
    write(root / "clips" / "birthday.mp4", b"\0\0\0\x18ftypmp42 not really a movie")
    write(root / "party.gif", b"GIF89a")
    write(root / "notes.txt", b"not a photo\n")
    write(root / "bombs" / "huge.png", png_bomb(30000, 30000))
    write(root / "bombs" / "huge.jpg", jpeg_bomb(65000, 65000))
    os.symlink(root / "deleted.jpg", root / "link.jpg")
    return root


def scan_cli(*args, json_out=True):
    from typer.testing import CliRunner

    from phototag.cli import app

    result = CliRunner().invoke(app, ["scan", *map(str, args), *(["--json"] if json_out else [])],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if json_out else result.output


def test_every_file_not_scanned_is_counted_by_reason_and_extension(mixed, tiny_model_dir, tmp_path):
    db_path = tmp_path / "index.db"
    summary = scan_cli(mixed, "--db", db_path, "--models", tiny_model_dir, "--no-exif")
    assert summary["scanned"] == 2 and summary["failed"] == [] and summary["faces"] == 2
    assert summary["skipped_counts"] == {
        "RAW beside its JPEG (--raw-pairs both scans it)": {".cr2": 1},
        "Live Photo video": {".mov": 1},
        "broken symbolic link": {".jpg": 1},
        "not a photo": {".txt": 1},
        "GIF or animation": {".gif": 1},
        "video": {".mp4": 1},
        "too large": {".jpg": 1, ".png": 1},
    }
    by_name = {os.path.basename(k["path"]): k for k in summary["skipped"]}
    assert by_name["IMG_0100.CR2"]["partner"].endswith("IMG_0100.JPG")
    assert by_name["IMG_0200.MOV"]["partner"].endswith("IMG_0200.HEIC")
    assert "900 megapixels" in by_name["huge.png"]["detail"] and "4225 megapixels" in by_name["huge.jpg"]["detail"]

    db = index.open_index(db_path, create=False)
    assert db.execute("select count(*) from photos").fetchone()[0] == 2  # the pair is one photo
    jpeg = index.get_photo(db, mixed / "IMG_0100.JPG")
    assert index.siblings_of(db, jpeg["id"]) == [str(mixed / "IMG_0100.CR2")]

    from typer.testing import CliRunner

    from phototag.cli import app

    for name in ("IMG_0100.JPG", "IMG_0100.CR2"):  # show finds the photo by either file of the pair
        shown = json.loads(CliRunner().invoke(app, ["show", str(mixed / name), "--db", str(db_path), "--json"]).stdout)
        assert shown["path"] == str(mixed / "IMG_0100.JPG") and shown["siblings"] == [str(mixed / "IMG_0100.CR2")]

    text = scan_cli(mixed, "--db", db_path, "--models", tiny_model_dir, "--no-exif", json_out=False)
    assert "not scanned: video" in text and ".mp4 ×1" in text and "not scanned: Live Photo video" in text
    assert "4225 megapixels, the limit is 200" in text and ".jpg ×1, .png ×1" in text


def test_raw_pairs_both_scans_each_and_the_default_counts_the_pair_once_again(mixed, tiny_model_dir, tmp_path):
    db_path = tmp_path / "index.db"
    both = scan_cli(mixed, "--db", db_path, "--models", tiny_model_dir, "--no-exif", "--raw-pairs", "both")
    assert both["scanned"] == 3 and both["faces"] == 3
    db = index.open_index(db_path, create=False)
    raw = index.get_photo(db, mixed / "IMG_0100.CR2")
    assert raw["status"] == "done" and raw["format"] == "RAW" and raw["face_count"] == 1

    again = scan_cli(mixed, "--db", db_path, "--models", tiny_model_dir, "--no-exif")
    assert again["scanned"] == 0 and again["missing"] == 0
    assert index.get_photo(db, mixed / "IMG_0100.CR2") is None
    assert db.execute("select count(*) from photos").fetchone()[0] == 2
    assert db.execute("select count(*) from faces").fetchone()[0] == 2


def test_the_pixel_limit_is_a_scan_option(mixed, tiny_model_dir, tmp_path):
    summary = scan_cli(mixed / "IMG_0100.JPG", "--db", tmp_path / "index.db", "--models", tiny_model_dir,
                       "--no-exif", "--max-megapixels", "0.4")
    assert summary["scanned"] == 0 and summary["skipped_counts"] == {"too large": {".jpg": 1}}
    assert "800 x 600 pixels" in summary["skipped"][0]["detail"]


def test_the_one_call_api_reads_raw_and_heic_too(library, tiny_model_dir):
    from phototag.analyzer import FaceAnalyzer

    _, pasted = library
    analyzer = FaceAnalyzer(models=tiny_model_dir)
    for path, face in pasted.items():
        faces = analyzer.analyze_file(os.fsdecode(path))
        assert len(faces) == 1, path
        centre = (faces[0].box[0] + faces[0].box[2] / 2, faces[0].box[1] + faces[0].box[3] / 2)
        assert math.dist(centre, face.center) < 0.25 * face.size, (path, centre, face.center)


def test_the_raw_of_a_broken_jpeg_is_scanned_in_its_place(tiny_model_dir, tmp_path):
    root = tmp_path / "pair"
    canvas = scene(800, 600, random.Random(14))
    paste_face(canvas, face_crops()[20], (400, 300), 220)
    whole = jpeg_bytes(canvas)
    write(root / "IMG_0300.JPG", whole[:len(whole) // 3])  # the card was pulled while writing it
    write(root / "IMG_0300.NEF", dng_bytes(canvas))
    db_path = tmp_path / "index.db"
    first = scan_cli(root, "--db", db_path, "--models", tiny_model_dir, "--no-exif")
    assert first["scanned"] == 1 and first["faces"] == 1 and len(first["failed"]) == 1
    assert first["skipped"] == [] and first["found"] == 2
    db = index.open_index(db_path, create=False)
    assert index.get_photo(db, root / "IMG_0300.NEF")["status"] == "done"
    assert index.get_photo(db, root / "IMG_0300.JPG")["status"] == "failed"

    again = scan_cli(root, "--db", db_path, "--models", tiny_model_dir, "--no-exif")  # still in its place
    assert again["unchanged"] == 2 and again["skipped"] == [] and again["missing"] == 0
    assert index.get_photo(db, root / "IMG_0300.NEF")["face_count"] == 1
    assert index.siblings_of(db, index.get_photo(db, root / "IMG_0300.JPG")["id"]) == []
