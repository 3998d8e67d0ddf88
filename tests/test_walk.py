"""Finding files (order, filters, hidden folders, links, odd names, RAW+JPEG pairs), naming the files left
out, and change detection."""

import os

import pytest

from phototag import images, index
from phototag.images import BASE_EXTENSIONS, supported_extensions
from phototag.records import PhotoInfo
from phototag.index import IndexWriter, indexed_states
from phototag.plan import file_sha256, is_unchanged
from phototag.walk import (ANIMATION, BROKEN_LINK, HIDDEN, LINK_OUTSIDE, LIVE_PHOTO, NEEDS_PACKAGE, NOT_A_FILE,
                           NOT_A_PHOTO, RAW_SIBLING, SIDECAR, UNSUPPORTED_IMAGE, VIDEO, skipped_counts, walk)


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
    assert is_unchanged(IndexWriter(db, "v1"), path, os.stat(path), indexed_states(db)[index.path_key(path)])


def test_same_content_new_mtime_is_unchanged_and_the_new_mtime_is_kept(db, tmp_path):
    path = touch(tmp_path / "p.jpg", b"photo")
    record(db, path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    st = os.stat(path)
    assert is_unchanged(IndexWriter(db, "v1"), path, st, indexed_states(db)[index.path_key(path)])
    known = indexed_states(db)[index.path_key(path)]
    assert known.mtime_ns == st.st_mtime_ns and known.exif_status == "written"


def test_changed_content_is_detected(db, tmp_path):
    path = touch(tmp_path / "p.jpg", b"photo")
    record(db, path)
    touch(path, b"PHOTO")  # same size
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert not is_unchanged(IndexWriter(db, "v1"), path, os.stat(path), indexed_states(db)[index.path_key(path)])
    touch(path, b"a longer photo")
    assert not is_unchanged(IndexWriter(db, "v1"), path, os.stat(path), indexed_states(db)[index.path_key(path)])


def test_new_and_missing_files_count_as_changed(db, tmp_path):
    path = touch(tmp_path / "p.jpg", b"photo")
    assert not is_unchanged(IndexWriter(db, "v1"), path, os.stat(path), indexed_states(db).get(index.path_key(path)))
    record(db, path)
    index.mark_missing(db, set(), [os.fsencode(tmp_path)])
    assert not is_unchanged(IndexWriter(db, "v1"), path, os.stat(path), indexed_states(db)[index.path_key(path)])


def skipped_by_name(root, **kwargs):
    skipped = []
    found = names(walk([root], supported_extensions(), on_skip=skipped.append, **kwargs), root)
    return found, {os.path.relpath(k.path, os.fsencode(root)): k for k in skipped}


def test_every_file_left_out_is_named_with_a_reason(tmp_path):
    for rel in ["IMG_0001.HEIC", "IMG_0001.MOV", "clip.mp4", "IMG_0002.mov", "IMG_0001.HEIC.xmp", "party.gif",
                "scan.bmp", "notes.txt", "Makefile", ".DS_Store", ".cache/a.jpg", "sub/b.jpg"]:
        touch(tmp_path / rel)
    os.symlink(tmp_path / "gone.jpg", tmp_path / "link.jpg")
    os.mkfifo(tmp_path / "pipe")
    found, skipped = skipped_by_name(tmp_path)
    assert found == [b"IMG_0001.HEIC", b"sub/b.jpg"]
    reasons = {name: k.reason for name, k in skipped.items()}
    assert reasons == {
        b"IMG_0001.MOV": LIVE_PHOTO, b"clip.mp4": VIDEO, b"IMG_0002.mov": VIDEO, b"IMG_0001.HEIC.xmp": SIDECAR,
        b"party.gif": ANIMATION, b"scan.bmp": UNSUPPORTED_IMAGE, b"notes.txt": NOT_A_PHOTO,
        b"Makefile": NOT_A_PHOTO, b".DS_Store": HIDDEN, b".cache": HIDDEN, b"link.jpg": BROKEN_LINK,
        b"pipe": NOT_A_FILE}
    assert skipped[b"IMG_0001.MOV"].partner == os.fsencode(tmp_path / "IMG_0001.HEIC")
    assert skipped[b"IMG_0001.MOV"].extension == ".mov" and skipped[b"Makefile"].extension == ""
    counts = skipped_counts(skipped.values())
    assert counts[VIDEO] == {".mp4": 1, ".mov": 1} or counts[VIDEO] == {".mov": 1, ".mp4": 1}
    assert counts[HIDDEN] == {"": 2}


def test_files_given_explicitly_are_named_too(tmp_path):
    skipped = []
    touch(tmp_path / "clip.mov")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "link.jpg")
    assert list(walk([tmp_path / "clip.mov", tmp_path / "link.jpg"], supported_extensions(),
                     on_skip=skipped.append)) == []
    assert [k.reason for k in skipped] == [VIDEO, BROKEN_LINK]


def test_a_format_whose_package_is_missing_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "RAW_AVAILABLE", False)
    touch(tmp_path / "DSC_0001.NEF")
    found, skipped = skipped_by_name(tmp_path)
    assert found == [] and skipped[b"DSC_0001.NEF"].reason == NEEDS_PACKAGE
    assert skipped[b"DSC_0001.NEF"].detail == "pip install rawpy"


def test_raw_jpeg_pairs(tmp_path):
    for rel in ["IMG_0001.CR2", "IMG_0001.JPG", "IMG_0002.cr2", "IMG_0003.NEF", "img_0003.jpg", "IMG_0004.dng",
                "IMG_0004.heic", "other/IMG_0002.jpg"]:
        touch(tmp_path / rel)
    found, skipped = skipped_by_name(tmp_path, pair_raw=True)
    assert found == [b"IMG_0001.JPG", b"IMG_0002.cr2", b"IMG_0004.heic", b"img_0003.jpg", b"other/IMG_0002.jpg"]
    assert {name: (k.reason, os.path.basename(k.partner)) for name, k in skipped.items()} == {
        b"IMG_0001.CR2": (RAW_SIBLING, b"IMG_0001.JPG"), b"IMG_0003.NEF": (RAW_SIBLING, b"img_0003.jpg"),
        b"IMG_0004.dng": (RAW_SIBLING, b"IMG_0004.heic")}
    both, skipped = skipped_by_name(tmp_path)
    assert len(both) == 8 and skipped == {}


def test_links_to_files_outside_the_scanned_folders_are_skipped(tmp_path):
    """Issue 16 case 8: a linked photo would be rewritten (and a killed write's temp copy left) in its
    target's folder, which no scan of the library visits. Links to folders are walked, and links to
    files in the folders walked followed."""
    library, elsewhere, album = tmp_path / "library", tmp_path / "elsewhere", tmp_path / "album"
    touch(os.fsencode(elsewhere / "far.jpg"))
    touch(os.fsencode(album / "in_album.jpg"))
    touch(os.fsencode(library / "near.jpg"))
    os.symlink(elsewhere / "far.jpg", library / "link.jpg")
    os.symlink(album, library / "album")
    os.symlink(album / "in_album.jpg", library / "zz_alias.jpg")
    skipped = []
    found = names(walk([library], BASE_EXTENSIONS, on_skip=skipped.append), library)
    assert found == [b"near.jpg", b"zz_alias.jpg", b"album/in_album.jpg"]
    assert [(os.path.basename(k.path), k.reason, k.detail) for k in skipped] == [
        (b"link.jpg", LINK_OUTSIDE, str(elsewhere / "far.jpg"))]
    both = names(walk([library, elsewhere], BASE_EXTENSIONS), tmp_path)  # its folder scanned too: followed
    assert b"library/link.jpg" in both
