"""The scan's stages on their own: picklable records, and the write protocol's order as the index side sees it."""

from __future__ import annotations

import hashlib
import os
import pickle

from PIL import Image

from phototag.pipeline import PhotoJob, read_photo
from phototag.records import Face
from phototag.scan import ScanOptions
from phototag.summary import ScanSummary
from phototag.writer import PhotoWriter

FACE = Face(box=(10.0, 12.0, 30.0, 30.0), landmarks={"left_eye": (18.0, 22.0)}, confidence=0.9,
            rotation=3.0, gender="f", p_female=0.8, age=31.0)


def jpeg(path):
    Image.new("RGB", (64, 48), (120, 90, 60)).save(path, quality=90)
    return os.fsencode(path)


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Recorder:
    """The index side, logging each call with what is on disk at that moment."""

    def __init__(self, path):
        self.path, self.calls = path, []

    def record_unconfirmed(self, path, file, info, faces):
        self.calls.append(("record_unconfirmed", file.sha256, sha256(self.path)))

    def confirm(self, path):
        self.calls.append(("confirm", None, sha256(self.path)))

    def record_read(self, path, file, info, faces, exif_status):
        self.calls.append(("record_read", exif_status, sha256(self.path)))


def test_jobs_and_decoded_photos_travel_by_pickle(tmp_path):
    path = jpeg(tmp_path / "a.jpg")
    job = PhotoJob(path, os.stat(path))
    photo = read_photo(job, decode_size=1200, max_pixels=10**8)
    assert not photo.error and photo.read.sha256 == sha256(path)
    copy = pickle.loads(pickle.dumps(photo))
    assert copy.job == job and copy.read == photo.read and copy.info == photo.info
    assert (copy.pixels == photo.pixels).all()


def test_a_photo_that_cannot_be_read_carries_the_reason(tmp_path):
    photo = read_photo(PhotoJob(os.fsencode(tmp_path / "gone.jpg"), None), decode_size=1200, max_pixels=10**8)
    assert photo.error.startswith("cannot read:") and photo.read is None


def test_the_writer_records_unconfirmed_before_the_rename_and_confirms_after(tmp_path):
    path = jpeg(tmp_path / "a.jpg")
    photo = read_photo(PhotoJob(path, os.stat(path)), decode_size=1200, max_pixels=10**8)
    recorder = Recorder(path)
    report = PhotoWriter(ScanOptions(paths=[path]), "v1").write(path, photo.read, photo.info, [FACE], recorder)
    (first, new_hash, on_disk), (second, _, after) = recorder.calls
    assert first == "record_unconfirmed" and on_disk == photo.read.sha256  # the old file is still in place
    assert second == "confirm" and after == new_hash != photo.read.sha256  # renamed in, then confirmed
    summary = ScanSummary()
    summary.count_written(report)
    assert (summary.scanned, summary.faces, summary.exif) == (1, 1, {"written": 1})


def test_without_exif_the_photo_is_recorded_as_read(tmp_path):
    path = jpeg(tmp_path / "a.jpg")
    photo = read_photo(PhotoJob(path, os.stat(path)), decode_size=1200, max_pixels=10**8)
    recorder = Recorder(path)
    report = PhotoWriter(ScanOptions(paths=[path], exif=False), "v1").write(path, photo.read, photo.info, [FACE],
                                                                          recorder)
    assert recorder.calls == [("record_read", "", photo.read.sha256)] and report.exif == ""


def test_a_file_changed_after_reading_is_neither_written_nor_recorded(tmp_path):
    path = jpeg(tmp_path / "a.jpg")
    photo = read_photo(PhotoJob(path, os.stat(path)), decode_size=1200, max_pixels=10**8)
    Image.new("RGB", (64, 48), (10, 200, 60)).save(os.fsdecode(path), quality=90)
    recorder = Recorder(path)
    report = PhotoWriter(ScanOptions(paths=[path]), "v1").write(path, photo.read, photo.info, [FACE], recorder)
    assert report.changed and recorder.calls == []
