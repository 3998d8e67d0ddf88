"""More hostile and awkward files (issue 16, a reviewer's further cases): file times SQLite cannot
hold, FIFOs and devices named like photos. Each test builds such a file and runs the CLI or the library."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from phototag import containers, images
from phototag.cli import app
from phototag.scan import ScanOptions, scan
from phototag.testing.photos import jpeg_bytes

runner = CliRunner()


def invoke_within(args: list[str], seconds: float = 60):
    """The CLI's result, failing the test (instead of hanging it) when the command does not end."""
    box = []
    thread = threading.Thread(target=lambda: box.append(runner.invoke(app, args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"phototag {' '.join(args)} still running after {seconds} s"
    return box[0]


def test_a_photo_dated_past_2262_is_indexed_and_then_unchanged(tmp_path, tiny_model_dir):
    (tmp_path / "photos").mkdir()
    photo = tmp_path / "photos" / "far.jpg"
    photo.write_bytes(jpeg_bytes(Image.new("RGB", (64, 48), "gray")))
    far = 2**63 + 10**18  # nanoseconds past what a 64-bit SQLite integer holds (ext4 keeps up to 2446)
    os.utime(photo, ns=(far, far))
    if os.stat(photo).st_mtime_ns != far:
        pytest.skip("this file system does not keep times past 2262")
    args = ["scan", str(tmp_path / "photos"), "--db", str(tmp_path / "index.db"), "--models", str(tiny_model_dir),
            "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "Traceback" not in first.output, first.output
    assert json.loads(first.stdout)["scanned"] == 1
    second = json.loads(runner.invoke(app, args).stdout)
    assert (second["scanned"], second["unchanged"]) == (0, 1)


@pytest.mark.parametrize("command", ["scan", "clean"])
def test_a_fifo_or_device_named_as_a_photo_is_skipped_not_read(tmp_path, tiny_model_dir, command):
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    args = [command, str(tmp_path / "fifo.jpg"), str(tmp_path / "zero.jpg")]
    if command == "scan":
        args += ["--db", str(tmp_path / "index.db"), "--models", str(tiny_model_dir), "--json"]
    result = invoke_within(args)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    if command == "scan":
        skipped = json.loads(result.stdout)["skipped"]
        assert [(os.path.basename(k["path"]), k["reason"]) for k in skipped] == [
            ("fifo.jpg", "not a regular file"), ("zero.jpg", "not a regular file")]


def test_a_fifo_put_in_a_photo_s_place_after_the_walk_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "a.jpg")
    box = []

    def read_both():
        with pytest.raises(images.DecodeError, match="not a regular file"):
            images.read_photo(tmp_path / "a.jpg")  # the scan's read
        with pytest.raises(containers.Unsupported, match="not a regular file"):
            with containers.Photo.open(tmp_path / "a.jpg"):  # the write's and clean's read
                pass
        box.append("done")

    thread = threading.Thread(target=read_both, daemon=True)
    thread.start()
    thread.join(10)
    assert box == ["done"]


def linked_first(func, target: Path, folder: Path):
    """``func`` that first puts a link to ``target`` in its photo's place, as another program might
    after the walk."""
    def swapped(path, *args, **kwargs):
        os.replace(_link(target, folder / "new-link"), path)
        return func(path, *args, **kwargs)
    return swapped


def test_a_photo_replaced_by_a_link_to_outside_after_the_walk_is_left_alone(tmp_path, tiny_model_dir,
                                                                             tiny_analyzer, monkeypatch):
    """The walk checks a link's target is in the scanned folders; a link put in a photo's place after it
    must not take the write there."""
    folder, outside = tmp_path / "photos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes(Image.new("RGB", (320, 240), (90, 120, 150))))
    (outside / "b.jpg").write_bytes(jpeg_bytes(Image.new("RGB", (320, 240), (150, 120, 90))))
    before = (outside / "b.jpg").read_bytes()
    monkeypatch.setattr(images, "read_photo", linked_first(images.read_photo, outside / "b.jpg", folder))
    summary = scan(ScanOptions(paths=[os.fsencode(folder)], db_path=tmp_path / "index.db", model_dir=tiny_model_dir),
                   analyzer=tiny_analyzer)
    assert [(os.path.basename(p), why) for p, why in summary.failed] == [
        ("a.jpg", "became a link to another file while the scan ran (left for the next scan)")]
    assert (outside / "b.jpg").read_bytes() == before and os.listdir(outside) == ["b.jpg"]
    assert os.readlink(folder / "a.jpg") == str(outside / "b.jpg")


def test_a_photo_replaced_by_a_link_to_outside_before_clean_reaches_it_is_left_alone(tmp_path, monkeypatch):
    """``clean`` rewrites only the file the walk found: a link put in a photo's place after the walk
    (its target never checked to be in the cleaned folders) is listed as failed, the target untouched."""
    from test_tags import FACES, INFO, make_jpeg

    from phototag import tags

    folder, outside = tmp_path / "photos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    tags.write_faces(make_jpeg(folder / "a.jpg"), FACES, INFO, "m1")
    tags.write_faces(make_jpeg(outside / "b.jpg", "camera"), FACES, INFO, "m1")
    before = (outside / "b.jpg").read_bytes()
    monkeypatch.setattr(tags, "clean", linked_first(tags.clean, outside / "b.jpg", folder))
    result = runner.invoke(app, ["clean", str(folder)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "a.jpg" in result.output
    assert "became a link to another file while the clean ran (left alone)" in result.output
    assert "Cleaned 0 file(s), 1 failed." in result.output
    assert (outside / "b.jpg").read_bytes() == before and os.listdir(outside) == ["b.jpg"]
    assert os.readlink(folder / "a.jpg") == str(outside / "b.jpg")


def test_a_link_the_walk_took_as_a_photo_inside_the_tree_is_still_cleaned(tmp_path):
    from test_tags import FACES, INFO, make_jpeg

    from phototag import tags
    from phototag.clean import clean

    (tmp_path / "sub").mkdir()
    photo = make_jpeg(tmp_path / "sub" / "a.jpg")
    tags.write_faces(photo, FACES, INFO, "m1")
    _link(photo, tmp_path / "link.jpg")  # walked first, as a photo inside the tree
    summary = clean([tmp_path])
    assert [(os.path.basename(p), r.failed) for p, r in summary.photos] == [("link.jpg", "")]
    assert tags.read_record(photo) is None and os.path.islink(tmp_path / "link.jpg")


def _link(target, at):
    os.symlink(target, at)
    return at


def test_orient_escapes_control_characters_in_names_and_reasons():
    from rich.console import Console

    from phototag.display import render_orient
    from phototag.orient import OrientResult, OrientSummary

    summary = OrientSummary(fix=True, photos=[("/p/t\x1b[2Jx.jpg", 1, OrientResult("written", 1, 6)),
                                              ("/p/b\x07.jpg", 3, OrientResult("failed", reason="cannot open b\x07.jpg"))])
    console = Console(record=True, width=300)
    render_orient(summary, console)
    shown = console.export_text()
    assert "\x1b" not in shown and "\x07" not in shown
    assert "t\\x1b[2Jx.jpg" in shown and "cannot open b\\x07.jpg" in shown


def jpeg_with_a_tag_past_its_exif() -> bytes:
    """A JPEG whose EXIF Make claims 40 bytes at an offset past the end of the block (Pillow warns)."""
    entry = struct.pack("<HHII", 0x010F, 2, 40, 4000)
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (100, 120, 140)).save(out, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return out.getvalue()


def test_pillows_warnings_about_damaged_metadata_stay_out_of_the_scans_output_unless_verbose(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_with_a_tag_past_its_exif())
    command = [sys.executable, "-m", "phototag", "scan", str(folder), "--db", str(tmp_path / "index.db"), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    plain = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert plain.returncode == 0 and "Tag data larger than file" not in plain.stderr, plain.stderr
    verbose = subprocess.run([*command, "--rescan", "--verbose"], capture_output=True, text=True, env=env, timeout=300)
    assert verbose.returncode == 0 and "Tag data larger than file" in verbose.stderr
