"""Finding files (order, filters, hidden folders, links, odd names) and change detection."""

import os

import pytest

from phototag import index
from phototag.images import BASE_EXTENSIONS
from phototag.records import PhotoInfo
from phototag.walk import file_sha256, is_unchanged, load_index_state, walk


def touch(path, data=b"x"):
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def names(paths, root):
    return [os.path.relpath(p, os.fsencode(root)) for p in paths]


@pytest.fixture
def tree(tmp_path):
    for rel in ["b.jpg", "a.JPG", "c.png", "notes.txt", "sub/z.webp", "sub/deeper/y.tiff", "sub/x.jpeg",
                ".cache/hidden.jpg", "sub/.hidden.jpg", "alpha/m.tif"]:
        touch(tmp_path / rel)
    return tmp_path


def test_walk_is_recursive_sorted_and_filtered(tree):
    found = names(walk([tree], BASE_EXTENSIONS), tree)
    assert found == [b"a.JPG", b"b.jpg", b"c.png", b"alpha/m.tif", b"sub/x.jpeg", b"sub/z.webp",
                     b"sub/deeper/y.tiff"]
    assert found == names(walk([tree], BASE_EXTENSIONS), tree)  # stable


def test_hidden_entries_are_skipped_unless_asked(tree):
    assert b".cache/hidden.jpg" not in names(walk([tree], BASE_EXTENSIONS), tree)
    with_hidden = names(walk([tree], BASE_EXTENSIONS, include_hidden=True), tree)
    assert b".cache/hidden.jpg" in with_hidden and b"sub/.hidden.jpg" in with_hidden
    # A hidden folder given explicitly is walked.
    assert names(walk([tree / ".cache"], BASE_EXTENSIONS), tree) == [b".cache/hidden.jpg"]


def test_files_given_explicitly_and_duplicates(tree):
    found = names(walk([tree / "c.png", tree / "notes.txt", tree / "sub", tree / "sub" / "x.jpeg"],
                       BASE_EXTENSIONS), tree)
    assert found == [b"c.png", b"sub/x.jpeg", b"sub/z.webp", b"sub/deeper/y.tiff"]


def test_symlink_loops_end_and_linked_folders_are_walked_once(tree):
    os.symlink("..", tree / "sub" / "up")
    os.symlink(tree / "sub", tree / "alias")
    found = names(walk([tree], BASE_EXTENSIONS), tree)
    assert len(found) == len(set(found))
    assert sorted(p.rsplit(b"/", 1)[-1] for p in found) == [b"a.JPG", b"b.jpg", b"c.png", b"m.tif", b"x.jpeg",
                                                             b"y.tiff", b"z.webp"]


def test_names_that_are_not_utf8(tmp_path):
    name = os.fsencode(tmp_path) + b"/caf\xe9.jpg"
    touch(name)
    assert list(walk([tmp_path], BASE_EXTENSIONS)) == [name]
    assert list(walk([name], BASE_EXTENSIONS)) == [name]


def test_unreadable_folder_is_reported(tree, monkeypatch):
    locked = os.fsencode(tree / "sub" / "deeper")
    real_scandir = os.scandir

    def scandir(path):
        if path == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    errors = []
    found = names(walk([tree], BASE_EXTENSIONS, on_error=lambda p, e: errors.append(p)), tree)
    assert b"sub/deeper/y.tiff" not in found and b"sub/z.webp" in found and errors == [locked]


@pytest.fixture
def db(tmp_path):
    return index.open_index(tmp_path / "index.db")


def record(db, path):
    info = PhotoInfo(width=10, height=10, stored_width=10, stored_height=10)
    index.record_photo(db, path, os.stat(path), file_sha256(path), info, [], "v1", "written")


def test_unchanged_file_is_recognised(db, tmp_path):
    path = touch(tmp_path / "p.jpg", b"photo")
    record(db, path)
    assert is_unchanged(db, path, os.stat(path), load_index_state(db)[index.path_key(path)])


def test_same_content_new_mtime_is_unchanged_and_the_new_mtime_is_kept(db, tmp_path):
    path = touch(tmp_path / "p.jpg", b"photo")
    record(db, path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    st = os.stat(path)
    assert is_unchanged(db, path, st, load_index_state(db)[index.path_key(path)])
    known = load_index_state(db)[index.path_key(path)]
    assert known.mtime_ns == st.st_mtime_ns and known.exif_status == "written"


def test_changed_content_is_detected(db, tmp_path):
    path = touch(tmp_path / "p.jpg", b"photo")
    record(db, path)
    touch(path, b"PHOTO")  # same size
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert not is_unchanged(db, path, os.stat(path), load_index_state(db)[index.path_key(path)])
    touch(path, b"a longer photo")
    assert not is_unchanged(db, path, os.stat(path), load_index_state(db)[index.path_key(path)])


def test_new_and_missing_files_count_as_changed(db, tmp_path):
    path = touch(tmp_path / "p.jpg", b"photo")
    assert not is_unchanged(db, path, os.stat(path), load_index_state(db).get(index.path_key(path)))
    record(db, path)
    index.mark_missing(db, set(), [os.fsencode(tmp_path)])
    assert not is_unchanged(db, path, os.stat(path), load_index_state(db)[index.path_key(path)])
