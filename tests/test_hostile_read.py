"""Hostile and awkward files on the reading side (issue 16): planted lock files, memory and time
bombs, files changed while read. Each test builds such a file and runs the CLI or the library."""

from __future__ import annotations

import fcntl
import io
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from phototag import containers, images, index, photolock, tags
from phototag.clean import CleanOptions, clean
from phototag.cli import app
from phototag.concurrency import prefetch
from phototag.scan import ScanOptions, scan
from phototag.testing.formats import jpeg_scan_bomb
from phototag.testing.photos import jpeg_bytes
from phototag.walk import BUSY, skipped_counts

runner = CliRunner()
VICTIM = b"the user's own file\n"


# --- 7: the index's lock file ----------------------------------------------------------------------

@pytest.mark.parametrize("plant", ["symlink", "dangling symlink", "hard link", "fifo", "large file"])
def test_a_file_planted_as_the_lock_is_neither_followed_nor_truncated(tmp_path, tiny_model_dir, plant):
    db_path = tmp_path / "index.db"
    lock = tmp_path / "index.db.lock"
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    if plant == "symlink":
        lock.symlink_to(victim)
    elif plant == "dangling symlink":
        lock.symlink_to(tmp_path / "elsewhere" / "created.txt")
    elif plant == "hard link":
        os.link(victim, lock)
    elif plant == "fifo":
        os.mkfifo(lock)
    else:
        lock.write_bytes(VICTIM * 10)
    (tmp_path / "photos").mkdir()
    result = runner.invoke(app, ["scan", str(tmp_path / "photos"), "--db", str(db_path),
                                 "--models", str(tiny_model_dir)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: cannot use the index {db_path}: cannot open {lock}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert victim.read_bytes() == VICTIM
    assert not (tmp_path / "elsewhere").exists()
    if plant == "large file":
        assert lock.read_bytes() == VICTIM * 10


def test_the_lock_file_phototag_made_is_reused_and_names_its_holder(tmp_path):
    db_path = tmp_path / "index.db"
    with index.scan_lock(db_path):
        pass
    lock = tmp_path / "index.db.lock"
    assert lock.read_bytes().strip() == str(os.getpid()).encode()
    lock.write_bytes(b"12")  # left by an older phototag: shorter than the padded id
    with index.scan_lock(db_path), pytest.raises(index.IndexBusy, match=rf"\(process {os.getpid()}\)"):
        with index.scan_lock(db_path):
            pass


def scan_json(tmp_path, folder, tiny_model_dir, *extra) -> dict:
    result = runner.invoke(app, ["scan", str(folder), "--db", str(tmp_path / "index.db"), "--models",
                                 str(tiny_model_dir), "--json", *extra])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout)


# --- 15: memory: sizes checked before reading, nothing held whole ---------------------------------

def sparse(path, size: int, head: bytes = b"") -> None:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)


def test_a_3_gb_file_named_jpg_is_refused_from_its_header(tmp_path, tiny_model_dir):
    (tmp_path / "photos").mkdir()
    sparse(tmp_path / "photos" / "huge.jpg", 3 << 30)  # zeros: no image format's header
    sparse(tmp_path / "photos" / "huge.webp", 3 << 30, b"RIFF\xf0\xff\xff\xffWEBPVP8 ")
    start = time.perf_counter()
    summary = scan_json(tmp_path, tmp_path / "photos", tiny_model_dir)
    assert time.perf_counter() - start < 60  # 3 GB were not read (nor 6)
    assert [f["reason"] for f in summary["failed"]] == ["not an image Pillow can identify"]
    [webp] = [k for k in summary["skipped"] if k["reason"] == "too large"]
    assert webp["path"].endswith("huge.webp") and "3.2 GB" in webp["detail"] and "read whole" in webp["detail"]


def test_read_photo_hashes_the_bytes_it_decodes(tmp_path):
    path = tmp_path / "a.jpg"
    data = jpeg_bytes(Image.new("RGB", (3000, 2000), (90, 120, 150)))
    path.write_bytes(data)
    photo = images.read_photo(path)
    assert photo.sha256 == __import__("hashlib").sha256(data).hexdigest()
    assert photo.pixels.shape == (1000, 1500, 3) and photo.stat.st_size == len(data)


# --- 16: never mapped ------------------------------------------------------------------------------

def test_a_photo_truncated_while_open_for_writing_tags_is_no_sigbus(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(Image.new("RGB", (640, 480), (90, 120, 150))))
    with containers.Photo.open(path) as photo:
        os.truncate(path, 100)  # another program truncates the file: a mapped file would raise SIGBUS here
        data = b"".join(bytes(p) for p in photo.with_metadata(b"II*\0\x08\0\0\0\0\0\0\0\0\0", None))
    assert data.startswith(b"\xff\xd8") and len(data) > 1000


# --- 17: progressive JPEG scan bombs --------------------------------------------------------------

def test_jpeg_scans_are_counted_across_chunk_boundaries():
    out = io.BytesIO()
    Image.linear_gradient("L").convert("RGB").save(out, "JPEG", progressive=True)
    data = out.getvalue() + b"\xff\xda" * 50  # after the EOI (a phone's trailer): not the image's
    whole = images.JpegScans()
    whole.feed(data)
    by_byte = images.JpegScans()
    for i in range(len(data)):
        by_byte.feed(data[i:i + 1])
    assert whole.scans == by_byte.scans == 10 and whole.done and by_byte.done


def test_a_scan_bomb_is_refused_before_decoding(tmp_path, tiny_model_dir):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "bomb.jpg").write_bytes(jpeg_scan_bomb(images.MAX_JPEG_SCANS + 1))
    (tmp_path / "photos" / "fine.jpg").write_bytes(jpeg_scan_bomb(images.MAX_JPEG_SCANS))
    summary = scan_json(tmp_path, tmp_path / "photos", tiny_model_dir)
    [failed] = summary["failed"]
    assert failed["path"].endswith("bomb.jpg") and failed["reason"].startswith(
        f"refused: a progressive JPEG of more than {images.MAX_JPEG_SCANS} scans")
    assert summary["scanned"] == 1
    with pytest.raises(images.DecodeError, match="scan bomb"):  # bytes too, e.g. a RAW's preview
        images.decode(jpeg_scan_bomb(5000))


# --- 8: links to photos outside the scanned folders ---------------------------------------------

def test_a_linked_photo_outside_the_library_is_listed_and_left_alone(tmp_path, tiny_model_dir):
    (tmp_path / "library").mkdir()
    (tmp_path / "elsewhere").mkdir()
    outside = tmp_path / "elsewhere" / "far.jpg"
    outside.write_bytes(jpeg_bytes(Image.new("RGB", (320, 240), (90, 120, 150))))
    before = outside.read_bytes()
    os.symlink(outside, tmp_path / "library" / "link.jpg")
    summary = scan_json(tmp_path, tmp_path / "library", tiny_model_dir)
    assert summary["skipped_counts"] == {"link to a file outside the scanned folders (scan its folder to include it)":
                                         {".jpg": 1}}
    assert outside.read_bytes() == before and os.listdir(tmp_path / "elsewhere") == ["far.jpg"]


# --- 18: photos locked between phototag processes ----------------------------------------------

def hold_lock_in_child(path) -> subprocess.Popen:
    """A child process holding ``path``'s photo lock until its stdin closes."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; from phototag.photolock import lock_photo; "
                              f"lock = lock_photo({os.fsencode(path)!r}); print('locked', flush=True); "
                              "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert child.stdout.readline() == "locked\n"
    return child


def test_a_photo_locked_by_another_process_is_busy_until_released(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"jpeg")
    child = hold_lock_in_child(path)
    with pytest.raises(photolock.PhotoBusy):
        photolock.lock_photo(path, wait=0.3)
    child.stdin.close()
    child.wait()
    with photolock.lock_photo(path, wait=5):
        pass


def test_a_lock_taken_on_a_file_replaced_meanwhile_is_taken_on_the_new_file(tmp_path, monkeypatch):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"old")
    real_flock, replaced = fcntl.flock, []

    def flock_then_replace(fd, op):  # another process renames its rewrite in while we take the lock
        real_flock(fd, op)
        if not replaced:
            (tmp_path / "new").write_bytes(b"new")
            os.replace(tmp_path / "new", path)
            replaced.append(True)

    monkeypatch.setattr(photolock.fcntl, "flock", flock_then_replace)
    with photolock.lock_photo(path) as lock:
        assert os.fstat(lock._fd).st_ino == os.stat(path).st_ino


# --- 9, 12: names that are not UTF-8 or hold control characters ---------------------------------

ESCAPE = "x\x1b[2Jy.png"  # clears the terminal when printed raw
TITLE = "t\x1b]0;owned\x07.jpg"  # sets the terminal's title


def odd_names(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    png = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 120, 150)).save(png, "PNG")
    (folder / ESCAPE).write_bytes(png.getvalue())
    (folder / os.fsdecode(b"caf\xe9.png")).write_bytes(png.getvalue())
    (folder / TITLE).write_bytes(b"\xff\xd8\xff broken")
    return folder


def test_odd_names_get_their_sidecars_and_no_escape_reaches_the_terminal(tmp_path, tiny_model_dir):
    folder = odd_names(tmp_path)
    db = str(tmp_path / "index.db")
    result = runner.invoke(app, ["scan", str(folder), "--db", db, "--models", str(tiny_model_dir)],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "t\\x1b]0;owned\\x07.jpg" in result.output  # the failed one, listed escaped
    assert "sidecars written" in result.output and "sidecar failed" not in result.output
    assert (folder / (ESCAPE + ".xmp")).exists() and (folder / os.fsdecode(b"caf\xe9.png.xmp")).exists()
    for args in (["query"], ["show", str(folder / ESCAPE)], ["stats"]):
        shown = runner.invoke(app, [*args, "--db", db], env={"COLUMNS": "300"})
        assert shown.exit_code == 0 and "\x1b" not in shown.output, shown.output
    assert "x\\x1b[2Jy.png" in runner.invoke(app, ["query", "--db", db], env={"COLUMNS": "300"}).stdout
    exact = runner.invoke(app, ["query", "-0", "--db", db]).stdout_bytes.split(b"\0")
    assert os.fsencode(folder / ESCAPE) in exact and os.fsencode(folder) + b"/caf\xe9.png" in exact
    as_json = json.loads(runner.invoke(app, ["query", "-f", "json", "--db", db]).stdout)
    assert str(folder / ESCAPE) in [p["path"] for p in as_json]  # JSON escapes it itself, exactly
    cleaned = runner.invoke(app, ["clean", str(folder)], env={"COLUMNS": "300"})
    assert cleaned.exit_code == 0 and "\x1b" not in cleaned.output  # the broken JPEG is listed, not fatal
    assert "t\\x1b]0;owned\\x07.jpg" in cleaned.output
    assert "x\\x1b[2Jy.png" in cleaned.output and not (folder / (ESCAPE + ".xmp")).exists()


def slowly(n: int):
    for i in range(n):
        time.sleep(0.05)  # each item's work is done before the next is handed out
        yield i


@pytest.mark.parametrize("budget, ahead", [(math.inf, 4), (150, 2)])
def test_prefetch_reads_ahead_only_within_its_memory_budget(budget, ahead):
    """Issue 16 case 15: decoded photos held ahead of detection stay within a byte budget."""
    calls = []
    results = prefetch(lambda i: calls.append(i) or i, slowly(10), 3, weight=lambda result: 100, budget=budget)
    assert next(results) == 0
    time.sleep(0.2)  # what was handed to the thread has run
    assert len(calls) == ahead  # 0 and 1 weigh 200: the second is past the budget, reading pauses
    assert list(results) == list(range(1, 10))


def scan_options(tmp_path, folder, tiny_model_dir, **kwargs) -> ScanOptions:
    return ScanOptions(paths=[os.fsencode(folder)], db_path=tmp_path / "index.db", model_dir=tiny_model_dir, **kwargs)


def two_photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(jpeg_bytes(Image.new("RGB", (320, 240), (90, 120, 150))))
    return folder


def test_a_photo_another_phototag_process_holds_is_listed_and_left(tmp_path, tiny_model_dir, tiny_analyzer):
    """Issue 16 case 18: a scan with another index holds b.jpg; this scan waits for it, then lists it."""
    folder = two_photos(tmp_path)
    before = (folder / "b.jpg").read_bytes()
    child = hold_lock_in_child(folder / "b.jpg")
    try:
        summary = scan(scan_options(tmp_path, folder, tiny_model_dir, lock_wait=0.5), analyzer=tiny_analyzer)
    finally:
        child.stdin.close()
        child.wait()
    assert summary.scanned == 1 and skipped_counts(summary.skipped) == {BUSY: {".jpg": 1}}
    assert (folder / "b.jpg").read_bytes() == before
    db = index.open_index(tmp_path / "index.db")
    assert index.get_photo(db, folder / "b.jpg") is None  # not recorded: the next scan takes it
    again = scan(scan_options(tmp_path, folder, tiny_model_dir), analyzer=tiny_analyzer)
    assert again.scanned == 1 and again.unchanged == 1 and again.skipped == []


def test_a_photo_released_while_the_scan_waits_is_scanned(tmp_path, tiny_model_dir, tiny_analyzer):
    folder = two_photos(tmp_path)
    child = hold_lock_in_child(folder / "b.jpg")
    threading.Timer(1.0, child.stdin.close).start()  # the other scan finishes with it a second later
    summary = scan(scan_options(tmp_path, folder, tiny_model_dir, lock_wait=30), analyzer=tiny_analyzer)
    child.wait()
    assert summary.scanned == 2 and summary.skipped == []


def test_a_photo_replaced_just_after_its_rewrite_is_left_unconfirmed(tmp_path, tiny_model_dir, tiny_analyzer,
                                                                     monkeypatch):
    """Another program (no phototag lock) puts its own file in place right after phototag's rename: the
    index must not claim the file holds phototag's tags; the next scan reads it again."""
    folder = two_photos(tmp_path)
    real_write = tags.write_faces

    def write_then_replaced(path, *args, **kwargs):
        result = real_write(path, *args, **kwargs)
        if path.endswith(b"b.jpg"):
            (folder / "new").write_bytes(jpeg_bytes(Image.new("RGB", (320, 240), (200, 10, 10))))
            os.replace(folder / "new", path)
        return result

    monkeypatch.setattr(tags, "write_faces", write_then_replaced)
    summary = scan(scan_options(tmp_path, folder, tiny_model_dir), analyzer=tiny_analyzer)
    assert summary.changed == [str(folder / "b.jpg")] and summary.scanned == 2
    db = index.open_index(tmp_path / "index.db")
    assert index.get_photo(db, folder / "b.jpg")["unconfirmed"] == 1
    monkeypatch.undo()
    again = scan(scan_options(tmp_path, folder, tiny_model_dir), analyzer=tiny_analyzer)
    assert again.scanned == 1 and again.unchanged == 1 and tags.read_record(folder / "b.jpg") is not None


def test_clean_waits_for_a_photo_another_process_holds(tmp_path):
    folder = two_photos(tmp_path)
    child = hold_lock_in_child(folder / "a.jpg")
    try:
        summary = clean([folder], CleanOptions(lock_wait=0.3))
    finally:
        child.stdin.close()
        child.wait()
    [(path, result)] = summary.photos
    assert path.endswith("a.jpg") and result.failed.startswith("another phototag process is rewriting it")


def test_an_error_naming_a_file_is_escaped_too(tmp_path):
    db = tmp_path / "in\x1b[2Jdex.db"
    result = runner.invoke(app, ["query", "--db", str(db)])
    assert result.exit_code == 1 and "\x1b" not in result.output and "in\\x1b[2Jdex.db" in result.stderr
