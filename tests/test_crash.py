"""Crash and race safety of a scan: stops half-way through a photo's index write, kills at aimed
points of the write path, two scans at once, bad indexes and numbers."""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys

import pytest
import sqlite_utils
from PIL import Image
from typer.testing import CliRunner

from phototag import atomic, index, tags
from phototag.cli import app
from phototag.records import PhotoInfo
from phototag.scan import ScanOptions, SilentProgress, scan
from phototag.plan import file_sha256
from phototag.testing.photos import face_crops, jpeg_bytes, paste_face, scene

runner = CliRunner()


def make_photos(folder, count: int = 2, seed: int = 3) -> list:
    """``count`` small JPEGs with one pasted face each."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, face in enumerate(face_crops()[:count]):
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


@pytest.fixture
def ctrl_c_reaches_python():
    """SIGINT at Python's default (KeyboardInterrupt), as for a command run in a terminal: a shell
    starts background jobs with SIGINT ignored, and the scan then rightly leaves it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_finishes_the_write_in_flight_and_says_the_next_scan_resumes(tmp_path, tiny_model_dir, monkeypatch,
                                                                             ctrl_c_reaches_python):
    photos = make_photos(tmp_path / "photos", count=3)
    write_faces, written = tags.write_faces, []

    def interrupted_while_writing(path, *args, **kwargs):  # Ctrl-C arrives in the middle of the first write
        if not written:
            os.kill(os.getpid(), signal.SIGINT)
        written.append(path)
        return write_faces(path, *args, **kwargs)

    monkeypatch.setattr(tags, "write_faces", interrupted_while_writing)
    db_path = tmp_path / "index.db"
    result = runner.invoke(app, ["scan", str(tmp_path / "photos"), "--db", str(db_path), "--models", str(tiny_model_dir)])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.stderr and "the next scan resumes" in result.stderr
    assert len(written) == 1
    db = index.open_index(db_path, create=False)
    row = index.get_photo(db, written[0])
    assert row["exif_status"] == "written" and row["sha256"] == file_sha256(written[0])
    assert tags.read_record(written[0]) is not None
    monkeypatch.undo()
    resumed = scan(ScanOptions(paths=[os.fsencode(tmp_path / "photos")], db_path=db_path, model_dir=tiny_model_dir))
    assert (resumed.scanned, resumed.unchanged, resumed.interrupted) == (len(photos) - 1, 1, False)


def test_a_second_scan_of_the_same_index_refuses(tmp_path, tiny_model_dir):
    make_photos(tmp_path / "photos", count=1)
    db_path = tmp_path / "index.db"
    args = ["scan", str(tmp_path / "photos"), "--db", str(db_path), "--models", str(tiny_model_dir), "--json"]
    with index.scan_lock(db_path):  # another scan is running
        busy = runner.invoke(app, args)
        assert busy.exit_code == 1
        assert busy.stderr.strip().splitlines() == [
            f"error: another phototag scan is using the index {db_path} (process {os.getpid()}); "
            "try again when it has finished, or use --wait"]
    done = runner.invoke(app, args + ["--wait"])
    assert done.exit_code == 0 and json.loads(done.stdout)["scanned"] == 1


@pytest.mark.parametrize("command", [["scan", "."], ["query"], ["stats"], ["show", "x.jpg"]])
def test_an_index_that_is_not_sqlite_is_one_line_and_exit_1(tmp_path, command, tiny_model_dir):
    db_path = tmp_path / "index.db"
    db_path.write_bytes(b"Shopping list: milk, eggs.\n" * 100)
    extra = ["--models", str(tiny_model_dir)] if command[0] == "scan" else []
    result = runner.invoke(app, [*command, "--db", str(db_path), *extra])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.strip().splitlines() == [
        f"error: cannot use the index {db_path}: file is not a database"]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write in: mode 555, and for root (whom modes do not stop) immutable."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("root writes in read-only folders, and chattr +i is not available here")
    yield folder
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_index_in_a_read_only_folder_is_one_line_and_exit_1(tmp_path, read_only_folder, tiny_model_dir):
    folder = read_only_folder
    result = runner.invoke(app, ["scan", str(tmp_path), "--db", str(folder / "index.db"), "--models", str(tiny_model_dir)])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: cannot use the index {folder / 'index.db'}: ")


@pytest.mark.parametrize("args", [["query", "--limit", "999999999999999999999"],
                                  ["query", "--faces", "9223372036854775808"],
                                  ["query", "--min-faces", "-1"],
                                  ["scan", ".", "--detect-size", "99999999999999999999"],
                                  ["scan", ".", "--max-megapixels", "inf"]])
def test_out_of_range_numbers_are_usage_errors(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)


def test_an_exif_pointer_cycle_is_damaged_exif_left_as_it_is_the_tags_going_into_xmp(tmp_path):
    photo = make_photos(tmp_path, count=1)[0]
    data = photo.read_bytes()
    # IFD0 holds a description and an Exif-IFD pointer back at IFD0 itself (offset 8).
    ifd0 = struct.pack(">H", 2) + struct.pack(">HHI4s", 0x010E, 2, 4, b"abc\0") + struct.pack(">HHII", 0x8769, 4, 1, 8)
    tiff = b"MM\0*" + struct.pack(">I", 8) + ifd0 + struct.pack(">I", 0)
    photo.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\0\0" + tiff + data[2:])
    before = photo.read_bytes()
    result = tags.write_faces(photo, [], PhotoInfo(480, 360, 480, 360), "m1")
    assert result.status == "written" and "damaged" in result.note
    assert photo.read_bytes().startswith(before[:2 + 4 + len(tiff) + 6])  # the EXIF segment byte for byte
    assert tags.read_record(photo)["model"] == "m1"  # the record, from the XMP
    assert not tags.clean(photo).failed
    assert photo.read_bytes() == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_to_a_full_disk_is_one_line_and_exit_1(tmp_path):
    index.open_index(tmp_path / "index.db")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", "from phototag.cli import main; main()", "stats", "--json",
                               "--db", str(tmp_path / "index.db")], stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1 and done.stderr == "error: No space left on device\n"


class Killed(BaseException):
    """Stands for kill -9: nothing in phototag catches it."""


def options_for(folder, db_path, models, **kwargs) -> ScanOptions:
    return ScanOptions(paths=[os.fsencode(folder)], db_path=db_path, model_dir=models, **kwargs)


def assert_file_and_index_agree(db_path, paths) -> None:
    db = index.open_index(db_path, create=False)
    for path in paths:
        row = index.get_photo(db, path)
        assert row["unconfirmed"] == 0 and row["sha256"] == file_sha256(path), path
        st = os.stat(path)
        assert (row["size"], row["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
        ages = [round(f["age"], 1) for f in index.faces_of(db, row["id"])]
        assert [f["age"] for f in tags.read_record(path)["faces"]] == ages


def test_killed_just_after_the_rename_the_next_scan_confirms_the_write(tmp_path, tiny_model_dir, monkeypatch):
    photos = make_photos(tmp_path / "photos")
    options = options_for(tmp_path / "photos", tmp_path / "index.db", tiny_model_dir)

    def killed(*args):
        raise Killed

    monkeypatch.setattr(index, "confirm", killed)
    with pytest.raises(Killed):
        scan(options)
    monkeypatch.undo()
    row = index.get_photo(index.open_index(options.db_path, create=False), photos[0])
    assert row["unconfirmed"] == 1 and row["sha256"] == file_sha256(photos[0])  # renamed in, not confirmed
    again = scan(options)
    assert (again.confirmed, again.unchanged, again.scanned) == (1, 1, 1)
    assert_file_and_index_agree(options.db_path, photos)


def test_killed_just_before_the_rename_the_next_scan_redoes_the_photo(tmp_path, tiny_model_dir, monkeypatch):
    photos = make_photos(tmp_path / "photos")
    options = options_for(tmp_path / "photos", tmp_path / "index.db", tiny_model_dir)
    before = photos[0].read_bytes()

    def killed(*args):
        raise Killed

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(Killed):
        scan(options)
    monkeypatch.undo()
    assert photos[0].read_bytes() == before
    row = index.get_photo(index.open_index(options.db_path, create=False), photos[0])
    assert row["unconfirmed"] == 1 and row["sha256"] != file_sha256(photos[0])  # recorded, never renamed in
    again = scan(options)
    assert (again.confirmed, again.unchanged, again.scanned) == (0, 0, 2)
    assert_file_and_index_agree(options.db_path, photos)


@pytest.mark.parametrize("times", [1, 2])
def test_a_photo_changed_between_reading_and_writing_is_not_written_and_read_again(
        tmp_path, tiny_model_dir, monkeypatch, times):
    photos = make_photos(tmp_path / "photos")
    write_faces, edits = tags.write_faces, []

    def the_user_edits_it_first(path, *args, **kwargs):
        if path == os.fsencode(photos[1]) and len(edits) < times:
            edits.append(path)
            photos[1].write_bytes(jpeg_bytes(Image.open(photos[1]), quality=60 + len(edits)))
        return write_faces(path, *args, **kwargs)

    monkeypatch.setattr(tags, "write_faces", the_user_edits_it_first)
    bar = {"total": 0, "done": 0}

    class Progress(SilentProgress):
        def start(self, total):
            bar["total"] = total

        def more(self, photos):
            bar["total"] += photos

        def advance(self, faces):
            bar["done"] += 1

    summary = scan(options_for(tmp_path / "photos", tmp_path / "index.db", tiny_model_dir), Progress())
    # the bar counts what was recorded: a photo read again counts once, one left for the next scan not at all
    assert bar["total"] == bar["done"] == summary.recorded == (2 if times == 1 else 1)
    if times == 1:  # read again, then written
        assert summary.scanned == 2 and summary.changed == []
        assert_file_and_index_agree(tmp_path / "index.db", photos)
    else:  # changed again: left for the next scan, not recorded
        assert summary.scanned == 1 and summary.changed == [str(photos[1])]
        assert tags.read_record(photos[1]) is None
        assert index.get_photo(index.open_index(tmp_path / "index.db", create=False), photos[1]) is None


def test_stale_temp_files_are_removed_by_the_next_scan_and_clean(tmp_path, tiny_model_dir):
    photos = make_photos(tmp_path / "photos")
    folder = tmp_path / "photos"
    stale = [folder / f".{photos[0].name}.k2j4h5g6.phototag-tmp", folder / f".{photos[1].name}.a1b2c3d4.phototag-tmp"]
    for path in stale:
        path.write_bytes(photos[0].read_bytes())
    busy = folder / f".{photos[1].name}.zzzzzzzz.phototag-tmp"  # another process is writing it
    busy.write_bytes(b"in progress")
    with open(busy, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        summary = scan(options_for(folder, tmp_path / "index.db", tiny_model_dir, exif=False))
        assert summary.temp_files_removed == 2 and not any(p.exists() for p in stale) and busy.exists()
        stale[0].write_bytes(b"left by a killed clean")
        result = runner.invoke(app, ["clean", str(folder)])
        assert result.exit_code == 0 and "1 temporary file" in result.stdout
        assert not stale[0].exists() and busy.exists()


def test_an_unusable_index_is_found_before_tensorflow_is_imported(tmp_path):
    (tmp_path / "index.db").write_text("not an index\n")
    code = ("import sys\nfrom phototag.cli import main\ntry:\n    main()\nexcept SystemExit as e:\n"
            "    print(e.code, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "scan", str(tmp_path), "--db", str(tmp_path / "index.db")],
                          capture_output=True, text=True)
    assert done.stdout == "1 False\n" and done.stderr.startswith("error: cannot use the index")


@pytest.mark.slow
def test_kill_9_at_the_aimed_points_of_the_write_path(tmp_path, tiny_model_dir):
    """The fault-injection harness, short: one kill at each fault point (one while photos are edited),
    each followed by a scan that must leave every photo intact and as the index says."""
    from phototag.models import write_manifest
    from phototag.testing import fault_harness

    models = (tmp_path / "models-a", tmp_path / "models-b")
    shutil.copytree(tiny_model_dir, models[0])  # with its LiteRT files
    shutil.copytree(models[0], models[1])
    write_manifest(models[1], "tiny-untrained-b")  # another version: every photo is rewritten each round
    figures = fault_harness.run(photos=3, kills=3, aimed=3, seed=2, work=tmp_path, models=models,
                               log=lambda *_: None, bad=False)
    assert figures.kills == {point: 1 for point in fault_harness.POINTS} and figures.edits == 2
    assert figures.temp_after_kill >= 2  # the kills at temp-written and index-between left one
    assert figures.zero(), fault_harness.report(figures, 3)
