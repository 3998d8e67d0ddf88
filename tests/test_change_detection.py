"""Change detection by size, mtime, inode and ctime (a rewrite that keeps size and mtime is noticed),
and ``phototag clean`` recorded in the index (the next scan leaves cleaned photos alone)."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from phototag import index, tags
from phototag.clean import CleanOptions, clean
from phototag.models import MANIFEST
from phototag.plan import file_sha256
from phototag.scan import ScanOptions, scan
from phototag.sidecar import sidecar_path
from phototag.testing.photos import face_crops, jpeg_bytes, paste_face, scene, write


def photo_folder(root: Path, n: int = 3) -> list[bytes]:
    """``n`` JPEGs with a face each and a PNG with one (its tags go into a sidecar)."""
    rng = random.Random(5)
    crops = face_crops()
    paths = []
    for i in range(n + 1):
        canvas = scene(400, 300, rng)
        paste_face(canvas, crops[i % len(crops)], (200, 150), 150)
        if i < n:
            paths.append(write(root / f"p{i}.jpg", jpeg_bytes(canvas)))
        else:
            canvas.save(root / "q.png")
            paths.append(os.path.abspath(os.fsencode(root / "q.png")))
    return paths


def run(root, db, analyzer=None, **options):
    return scan(ScanOptions(paths=[os.fsencode(root)], db_path=db, **options), analyzer=analyzer)


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def disagreements(db_path) -> list[str]:
    """The photos whose index row does not describe the file as it is (state or hash), or is unconfirmed."""
    db = index.open_index(db_path, create=False)
    wrong = []
    for row in db.query("select * from photos where missing = 0"):
        path = bytes(row["path_key"])
        if row["unconfirmed"] or not index.describes(row, os.stat(path)) or row["sha256"] != file_sha256(path):
            wrong.append(row["path"])
    db.conn.close()
    return wrong


# --- issue 26: the undo sticks -----------------------------------------------------------------------


def test_a_cleaned_photo_is_left_alone_by_the_next_scan_until_rescan(tmp_path, tiny_analyzer):
    root, db_path = tmp_path / "photos", tmp_path / "index.db"
    photos = photo_folder(root)
    first = run(root, db_path, tiny_analyzer)
    assert first.scanned == 4 and first.exif == {"written": 3, "unsupported": 1}

    cleaned = clean([root], CleanOptions(db_path=db_path))
    assert (cleaned.cleaned, cleaned.indexed, cleaned.index_error) == (4, 4, "")
    assert not sidecar_path(os.fsdecode(photos[-1])).exists()
    db = index.open_index(db_path, create=False)
    for path in photos:
        row = index.get_photo(db, path)
        assert (row["status"], row["face_count"], row["unconfirmed"]) == ("cleaned", 0, 0)
        assert index.describes(row, os.stat(path)) and row["sha256"] == file_sha256(path)
        assert index.faces_of(db, row["id"]) == []
    before = snapshot(root)

    again = run(root, db_path, tiny_analyzer)
    assert (again.cleaned, again.unchanged, again.scanned, again.exif) == (4, 0, 0, {})
    assert snapshot(root) == before  # no photo rewritten, no sidecar written again

    rescan = run(root, db_path, tiny_analyzer, rescan=True)
    assert rescan.scanned == 4 and rescan.exif == {"written": 3, "unsupported": 1}
    assert all(tags.read_record(p) is not None for p in photos[:-1])
    assert sidecar_path(os.fsdecode(photos[-1])).exists()
    assert {r["status"] for r in db.query("select status from photos")} == {"done"}
    assert disagreements(db_path) == []


def test_a_cleaned_photo_changed_afterwards_is_scanned_again(tmp_path, tiny_analyzer):
    root, db_path = tmp_path / "photos", tmp_path / "index.db"
    photos = photo_folder(root, n=2)
    run(root, db_path, tiny_analyzer)
    clean([root], CleanOptions(db_path=db_path))
    data = bytearray(Path(os.fsdecode(photos[0])).read_bytes())
    Path(os.fsdecode(photos[0])).write_bytes(bytes(data) + b"\0")  # edited by the user
    again = run(root, db_path, tiny_analyzer)
    assert (again.cleaned, again.scanned) == (2, 1) and tags.read_record(photos[0]) is not None


def test_clean_without_an_index_cleans_the_files_and_creates_none(tmp_path):
    from test_tags import FACES, INFO, make_jpeg

    jpeg = make_jpeg(tmp_path / "a.jpg", "camera")
    tags.write_faces(jpeg, FACES, INFO, "m1")
    db_path = tmp_path / "none" / "index.db"
    done = clean([tmp_path], CleanOptions(db_path=db_path))
    assert (done.cleaned, done.indexed, done.index_error) == (1, 0, "")
    assert tags.read_record(jpeg) is None and not db_path.parent.exists()


def test_clean_with_an_unusable_index_still_cleans_and_says_why(tmp_path):
    from test_tags import FACES, INFO, make_jpeg

    jpeg = make_jpeg(tmp_path / "a.jpg", "camera")
    tags.write_faces(jpeg, FACES, INFO, "m1")
    db_path = tmp_path / "index.db"
    db_path.write_bytes(b"not a database, " * 100)
    done = clean([tmp_path], CleanOptions(db_path=db_path))
    assert done.cleaned == 1 and tags.read_record(jpeg) is None
    assert "cannot use the index" in done.index_error and done.indexed == 0


def test_a_dry_run_leaves_the_index_alone(tmp_path):
    from test_tags import FACES, INFO, make_jpeg

    jpeg = make_jpeg(tmp_path / "a.jpg", "camera")
    tags.write_faces(jpeg, FACES, INFO, "m1")
    db_path = tmp_path / "index.db"
    db = index.open_index(db_path)
    index.record_photo(db, jpeg, os.stat(jpeg), file_sha256(jpeg), INFO, FACES, "m1", "written")
    assert clean([jpeg], CleanOptions(db_path=db_path, dry_run=True)).indexed == 0
    assert index.get_photo(db, jpeg)["status"] == "done"


def test_a_clean_killed_before_recording_leaves_the_old_row_and_cleaning_again_records_it(tmp_path, monkeypatch):
    from test_tags import FACES, INFO, make_jpeg

    jpeg = make_jpeg(tmp_path / "a.jpg", "camera")
    tags.write_faces(jpeg, FACES, INFO, "m1")
    plain = make_jpeg(tmp_path / "b.jpg", "plain")  # scanned, never tagged: not the index's to call cleaned
    db_path = tmp_path / "index.db"
    db = index.open_index(db_path)
    index.record_photo(db, jpeg, os.stat(jpeg), file_sha256(jpeg), INFO, FACES, "m1", "written")
    index.record_photo(db, plain, os.stat(plain), file_sha256(plain), INFO, [], "m1", "")
    tagged_sha = file_sha256(jpeg)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(index, "record_cleaned", killed)
    with pytest.raises(KeyboardInterrupt):
        clean([tmp_path], CleanOptions(db_path=db_path))
    assert tags.read_record(jpeg) is None  # the file was cleaned, the index not told
    row = index.get_photo(db, jpeg)
    assert row["status"] == "done" and row["sha256"] == tagged_sha != file_sha256(jpeg)  # the old file: rescanned

    monkeypatch.undo()
    again = clean([tmp_path], CleanOptions(db_path=db_path))
    assert again.cleaned == 0 and again.indexed == 1  # nothing left to take out; recorded now
    row = index.get_photo(db, jpeg)
    assert row["status"] == "cleaned" and row["sha256"] == file_sha256(jpeg)
    assert index.get_photo(db, plain)["status"] == "done"


# --- issue 25 item 4: a rewrite is noticed ------------------------------------------------------------


def test_the_index_keeps_the_state_of_the_file_as_written(tmp_path, tiny_analyzer):
    root, db_path = tmp_path / "photos", tmp_path / "index.db"
    photo_folder(root)
    before = {p: os.stat(p) for p in root.iterdir()}
    first = run(root, db_path, tiny_analyzer)
    assert first.exif == {"written": 3, "unsupported": 1}
    assert all(os.stat(p).st_ino != st.st_ino for p, st in before.items() if p.suffix == ".jpg")  # renamed in
    assert disagreements(db_path) == []  # inode and ctime of the file after the rename
    again = run(root, db_path, tiny_analyzer)
    assert (again.unchanged, again.scanned) == (4, 0)


def test_a_rewrite_keeping_size_mtime_and_inode_is_rescanned(tmp_path, tiny_analyzer, monkeypatch):
    root, db_path = tmp_path / "photos", tmp_path / "index.db"
    photos = photo_folder(root, n=2)
    run(root, db_path, tiny_analyzer)
    target = photos[0]
    st = os.stat(target)
    data = Path(os.fsdecode(target)).read_bytes()
    version = tiny_analyzer.version.encode()
    assert version in data
    with open(target, "r+b") as f:  # in place: same inode, same size
        f.write(data.replace(version, version[:-1] + b"X" if not version.endswith(b"X") else b"Y"))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime put back
    after = os.stat(target)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)

    hashed = []
    import phototag.plan as plan

    real_hash = plan.file_sha256
    monkeypatch.setattr(plan, "file_sha256", lambda p: hashed.append(p) or real_hash(p))
    again = run(root, db_path, tiny_analyzer)
    assert (again.scanned, again.unchanged) == (1, 2) and hashed == [target]  # only the moved one hashed
    assert Path(os.fsdecode(target)).read_bytes() == data  # tags written again, with the right version
    assert disagreements(db_path) == []


def test_a_replaced_file_with_the_same_content_is_hashed_once_and_left_alone(tmp_path, tiny_analyzer):
    root, db_path = tmp_path / "photos", tmp_path / "index.db"
    photos = photo_folder(root, n=1)
    run(root, db_path, tiny_analyzer)
    target = os.fsdecode(photos[0])
    shutil.copy2(target, target + ".new")  # exiftool -P's way: a new file renamed in, mtime kept
    os.replace(target + ".new", target)
    again = run(root, db_path, tiny_analyzer)
    assert (again.scanned, again.unchanged) == (0, 2)
    assert disagreements(db_path) == []  # the new inode and ctime stored: the next check is stat only


def test_two_indexes_rewriting_the_same_photos_in_turns_each_notice_the_other(tmp_path, tiny_model_dir):
    """Two users' indexes over one folder; B's models have another name of the same length, so its
    rewrite keeps every photo's size (and, as phototag keeps it, the mtime): only the inode and the
    ctime tell A that the files changed."""
    models_b = tmp_path / "models_b"
    shutil.copytree(tiny_model_dir, models_b)
    manifest = json.loads((models_b / MANIFEST).read_text())
    manifest["name"] = manifest["name"][:-1] + ("X" if not manifest["name"].endswith("X") else "Y")
    (models_b / MANIFEST).write_text(json.dumps(manifest))
    root, db_a, db_b = tmp_path / "photos", tmp_path / "a.db", tmp_path / "b.db"
    photo_folder(root)
    jpegs = sorted(root.glob("*.jpg"))

    a = run(root, db_a, model_dir=tiny_model_dir)
    assert a.exif == {"written": 3, "unsupported": 1} and disagreements(db_a) == []
    after_a = {p: os.stat(p) for p in jpegs}

    b = run(root, db_b, model_dir=models_b)
    assert b.exif == {"written": 3, "unsupported": 1} and disagreements(db_b) == []
    for p in jpegs:
        st = os.stat(p)
        assert (st.st_size, st.st_mtime_ns) == (after_a[p].st_size, after_a[p].st_mtime_ns)
        assert st.st_ino != after_a[p].st_ino

    a2 = run(root, db_a, model_dir=tiny_model_dir)
    assert a2.scanned == 3 and a2.exif == {"written": 3}  # B's rewrites noticed; the PNG was not touched
    assert a2.unchanged == 1 and disagreements(db_a) == []
    b2 = run(root, db_b, model_dir=models_b)
    assert b2.scanned == 3 and disagreements(db_b) == []


def test_rows_from_an_index_without_inode_and_ctime_keep_the_old_rule_and_get_them(tmp_path, tiny_analyzer):
    root, db_path = tmp_path / "photos", tmp_path / "index.db"
    photo_folder(root, n=1)
    run(root, db_path, tiny_analyzer)
    conn = sqlite3.connect(db_path)
    conn.execute("alter table photos drop column inode")
    conn.execute("alter table photos drop column ctime_ns")
    conn.commit()
    conn.close()
    db = index.open_index(db_path)  # migrated: the columns added, unknown
    assert {"inode", "ctime_ns"} <= set(db["photos"].columns_dict)
    assert {(r["inode"], r["ctime_ns"]) for r in db.query("select * from photos")} == {(None, None)}
    again = run(root, db_path, tiny_analyzer)
    assert (again.unchanged, again.scanned) == (2, 0)
    assert disagreements(db_path) == []  # filled in from the files: later rewrites are noticed
