"""Crash and race safety of a scan: stops half-way through a photo's index write, kills at aimed
points of the write path, two scans at once, bad indexes and numbers."""

from __future__ import annotations

import os
import random

import pytest
import sqlite_utils
from PIL import Image

from phototag import index
from phototag.scan import ScanOptions, scan
from photos import UTKFACE_DIR, face_files, jpeg_bytes, paste_face, scene

pytestmark = pytest.mark.skipif(not UTKFACE_DIR.is_dir(), reason="needs the UTKFace crops in ../shared/data")


def make_photos(folder, count: int = 2, seed: int = 3) -> list:
    """``count`` small JPEGs with one pasted face each."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, face in enumerate(face_files()[:count]):
        canvas = scene(480, 360, rng)
        paste_face(canvas, face, (240, 180), 180)
        path = folder / f"photo{i}.jpg"
        path.write_bytes(jpeg_bytes(canvas))
        paths.append(path)
    return paths


def test_a_photo_stopped_between_its_index_statements_is_redone(tmp_path, tiny_model_dir, monkeypatch):
    first, second = make_photos(tmp_path / "photos")
    options = ScanOptions(paths=[os.fsencode(tmp_path / "photos")], db_path=tmp_path / "index.db",
                          model_dir=tiny_model_dir, exif=False)
    assert scan(options).scanned == 2
    db = index.open_index(options.db_path, create=False)
    before = index.get_photo(db, second)
    assert before["face_count"] == 1
    second.write_bytes(jpeg_bytes(Image.open(second), quality=70))  # the user edits it

    def stopped(self, *args, **kwargs):  # the process stops after the photo row, before its faces
        raise RuntimeError("stopped")

    monkeypatch.setattr(sqlite_utils.db.Table, "insert_all", stopped)
    with pytest.raises(RuntimeError, match="stopped"):
        scan(options)
    monkeypatch.undo()
    after = index.get_photo(db, second)
    assert (after["sha256"], after["size"], after["mtime_ns"]) == (before["sha256"], before["size"], before["mtime_ns"])
    assert len(index.faces_of(db, after["id"])) == after["face_count"] == 1

    again = scan(options)
    assert (again.scanned, again.unchanged) == (1, 1)
    row = index.get_photo(db, second)
    assert row["sha256"] != before["sha256"] and len(index.faces_of(db, row["id"])) == row["face_count"]
