"""Scanning every format a real library holds: sideways HEIC and RAW photos come out upright, with
faces where they are and results in exiftool-readable sidecars."""

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
from formats import camera_jpeg, dng_bytes, heic_bytes, with_preview
from photos import FACE_FRACTION, UTKFACE_DIR, face_files, paste_face, scene, write

pytestmark = pytest.mark.skipif(not UTKFACE_DIR.is_dir(), reason="needs the UTKFace crops in ../shared/data")


def sideways(rng, face_path):
    """A picture stored turned 90 degrees counter-clockwise (800 x 600), to be shown turned 90 degrees
    clockwise (orientation 6): upright 600 x 800 with the face centred at (350, 300) as displayed."""
    stored = scene(800, 600, rng)
    face = paste_face(stored, face_path, (300.0, 250.0), 220, angle=90.0)
    face.center, face.angle = (600 - 250.0, 300.0), 0.0
    return stored, face


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """HEIC and RAW photos stored sideways with an orientation, and where their faces are as displayed."""
    root = tmp_path_factory.mktemp("formats")
    rng = random.Random(12)
    faces = iter(face_files()[40:])
    pasted = {}
    stored, face = sideways(rng, next(faces))
    pasted[write(root / "phone" / "IMG_0001.HEIC", heic_bytes(stored, orientation=6))] = face
    stored, face = sideways(rng, next(faces))
    pasted[write(root / "camera" / "DSC_0002.dng", dng_bytes(stored, orientation=6))] = face
    stored, face = sideways(rng, next(faces))
    raw = with_preview(dng_bytes(stored, orientation=6), camera_jpeg(stored, orientation=6))
    pasted[write(root / "camera" / "DSC_0003.NEF", raw)] = face
    return root, pasted


@pytest.fixture(scope="module")
def scanned(library, tiny_model_dir, tmp_path_factory):
    root, _ = library
    db_path = tmp_path_factory.mktemp("index") / "index.db"
    summary = scan(ScanOptions(paths=[os.fsencode(root)], db_path=db_path, model_dir=tiny_model_dir, sidecar=True))
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
    assert summary.exif == {"unsupported": 3}
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
