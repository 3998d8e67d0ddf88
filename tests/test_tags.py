"""EXIF writing (phototag.tags): round trips through exiftool and Pillow, untouched image data, atomicity."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import piexif
import pytest
from PIL import Image, ImageCms, ImageOps

from phototag import policy, tags
from phototag.atomic import Written
from phototag.records import Face, PhotoInfo
from phototag.testing.photos import astronaut_face

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")

FACES = [
    Face(box=(20, 30, 60, 80), landmarks={}, confidence=0.99, rotation=5.0, gender="f", p_female=0.91, age=27.4),
    Face(box=(110, 40, 50, 60), landmarks={}, confidence=0.97, rotation=-2.0, gender="m", p_female=0.08, age=43.0),
]
INFO = PhotoInfo(width=200, height=200, stored_width=200, stored_height=200, format="JPEG")
OUR_KEYWORDS = ["phototag", "faces: 2", "female", "male", "age 20-29", "age 40-49"]
MAKERNOTE = b"TESTMKN\0" + bytes(range(200))


def face_image() -> Image.Image:
    """A real face: the astronaut's, as a 200 x 200 crop."""
    return astronaut_face().copy()


def exiftool(*args: str) -> list[dict]:
    out = subprocess.run(["exiftool", "-j", *map(str, args)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def exiftool_edit(path: Path, *args: str) -> None:
    subprocess.run(["exiftool", "-q", "-overwrite_original", *args, str(path)], check=True)


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Test EOS"
    exif[0x0112] = 1
    exif.get_ifd(0x8769)[0x9003] = "2021:06:05 14:03:00"
    exif.get_ifd(0x8769)[0x927C] = MAKERNOTE
    return exif


def make_jpeg(path: Path, kind: str = "plain") -> Path:
    """JPEGs from several sources: plain (JFIF only), camera (EXIF, MakerNote, ICC), thumbnail_xmp
    (exiftool-written EXIF with a thumbnail, plus XMP), progressive, little_endian (II byte order)."""
    image = face_image()
    if kind == "plain":
        image.save(path, quality=90)
    elif kind in ("camera", "thumbnail_xmp"):
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        image.save(path, quality=90, exif=camera_exif(), icc_profile=icc)
        if kind == "thumbnail_xmp":
            thumb = path.with_name("thumb.jpg")
            image.resize((40, 40)).save(thumb)
            exiftool_edit(path, f"-ThumbnailImage<={thumb}", "-XMP-dc:Subject=from-xmp", "-XMP-xmp:Rating=3")
            thumb.unlink()
    elif kind == "progressive":
        image.save(path, quality=85, progressive=True, exif=camera_exif())
    elif kind == "little_endian":
        image.save(path, quality=90)
        exiftool_edit(path, "-ExifByteOrder=II", "-Make=Nikon", "-DateTimeOriginal=2020:01:02 03:04:05")
    return path


def jpeg_parts(data: bytes) -> tuple[list[bytes], bytes]:
    """(header segments except APP1 Exif and XMP, everything from SOS on), parsed independently of phototag."""
    segments, pos = [], 2
    while data[pos + 1] != 0xDA:
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segments.append(data[pos:end])
        pos = end
    ours = (b"Exif\0\0", b"http://ns.adobe.com/xap/1.0/\0")
    others = [s for s in segments if not (s[:2] == b"\xff\xe1" and s[4:].startswith(ours))]
    return others, data[pos:]


def exif_block(data: bytes) -> bytes:
    start = data.index(b"Exif\0\0") + 6
    return data[start:start - 8 + struct.unpack(">H", data[start - 8:start - 6])[0]]


PHOTOTAG_FIELDS = ("IFD0:XPKeywords", "ExifIFD:UserComment", "XMP-dc:Subject", "XMP-lr:", "XMP-digiKam:TagsList",
                   "XMP-mwg-rs:", "XMP-phototag:", "XMP-x:XMPToolkit")


def all_tags(*paths: Path, skip: tuple[str, ...] = PHOTOTAG_FIELDS) -> list[dict]:
    """Every tag exiftool sees in each file, except the file system's and the fields ``skip`` names."""
    skip = ("SourceFile", "System:", "ExifTool:", *skip)
    return [{k: v for k, v in info.items() if not k.startswith(skip)}
            for info in exiftool("-a", "-G1", "-u", "-b", "-n", *paths)]


def warnings(*paths: Path) -> list[list]:
    return [sorted(info.items())[1:] for info in exiftool("-validate", "-warning", "-a", *paths)]


# -- geometry -------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_box_inverts_pillows_exif_transpose(orientation):
    stored = Image.new("L", (60, 40))
    stored.paste(255, (10, 5, 30, 17))  # left, top, right, bottom in the stored frame
    stored.getexif()[0x0112] = orientation
    displayed = ImageOps.exif_transpose(stored)
    left, top, right, bottom = displayed.getbbox()
    info = PhotoInfo(width=displayed.width, height=displayed.height, stored_width=60, stored_height=40,
                     orientation=orientation)
    box = policy.stored_box((left, top, right - left, bottom - top), info)
    assert box == pytest.approx((10 / 60, 5 / 40, 20 / 60, 12 / 40))


def test_keywords_per_photo():
    assert policy.photo_keywords(FACES) == OUR_KEYWORDS
    assert policy.photo_keywords([]) == ["phototag", "faces: 0"]


# -- round trip -----------------------------------------------------------------------------------


@needs_exiftool
def test_round_trip_through_exiftool_and_pillow(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "camera")
    exiftool_edit(photo, "-XPKeywords=holiday;Female", "-UserComment=Grandma's birthday")

    assert tags.write_faces(photo, FACES, INFO, "chain-7").status == "written"

    seen = exiftool("-XPKeywords", "-UserComment", photo)[0]
    assert seen["XPKeywords"] == "holiday;Female;phototag;faces: 2;male;age 20-29;age 40-49"
    mark, _, user = seen["UserComment"].partition("\n")
    assert user == "Grandma's birthday"
    record = json.loads(mark.removeprefix("phototag:"))
    assert record == tags.read_record(photo)
    assert record["phototag"] == 1 and record["model"] == "chain-7" and record["frame"] == "stored"
    assert record["keywords"] == ["phototag", "faces: 2", "male", "age 20-29", "age 40-49"]  # not "female"
    assert record["faces"][0] == {"box": [0.1, 0.15, 0.3, 0.4], "rotation": 5.0, "gender": "f",
                                  "p_female": 0.91, "age": 27.4}

    exif = Image.open(photo).getexif()
    assert bytes(exif[0x9C9E]).decode("utf-16-le").rstrip("\0") == seen["XPKeywords"]
    assert exif.get_ifd(0x8769)[0x9286] == b"ASCII\0\0\0" + seen["UserComment"].encode()
    assert tags.read_keywords(photo) == seen["XPKeywords"].split(";")
    assert piexif.load(str(photo))["0th"][piexif.ImageIFD.Make] == b"Canon"  # still parses for piexif


@needs_exiftool
@pytest.mark.parametrize("kind", ["plain", "camera", "thumbnail_xmp", "progressive", "little_endian"])
def test_only_the_exif_and_xmp_segments_change(tmp_path, kind):
    photo = make_jpeg(tmp_path / "p.jpg", kind)
    original = tmp_path / "original.jpg"
    shutil.copy2(photo, original)
    before = photo.read_bytes()

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"

    after = photo.read_bytes()
    assert jpeg_parts(after) == jpeg_parts(before)  # JFIF, ICC, XMP segments and image data, byte for byte
    tags_before, tags_after = all_tags(original, photo)
    if kind == "plain":  # phototag created the EXIF block, with the tags the standard requires
        assert tags_after.pop("File:ExifByteOrder") == "MM"
        for tag in ("XResolution", "YResolution", "ResolutionUnit", "YCbCrPositioning"):
            assert tags_after.pop(f"IFD0:{tag}") is not None
        for tag in ("ExifVersion", "ComponentsConfiguration", "FlashpixVersion", "ColorSpace"):
            assert tags_after.pop(f"ExifIFD:{tag}") is not None
        assert (tags_after.pop("ExifIFD:ExifImageWidth"), tags_after.pop("ExifIFD:ExifImageHeight")) == (200, 200)
    warnings_before, warnings_after = warnings(original, photo)
    assert warnings_after == warnings_before  # plain: none before, none after
    assert tags_after == tags_before  # every other tag (thumbnail and MakerNote included) as it was
    if kind == "camera":  # the MakerNote stays at its offset, so offsets inside it stay valid
        assert exif_block(after).index(MAKERNOTE) == exif_block(before).index(MAKERNOTE)
    if kind == "little_endian":
        assert exif_block(after)[:2] == b"II"


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_writing_tags_holds_the_file_once(tmp_path, suffix):
    """A big photo is read into one buffer and written from views of it: the allocations peak near
    one file size (a buffered whole-file read and sliced copies each made it two)."""
    import numpy as np
    import tracemalloc

    noise = np.random.default_rng(0).integers(0, 256, (1500, 1500, 3), dtype=np.uint8)
    photo = tmp_path / f"big{suffix}"
    Image.fromarray(noise).save(photo, quality=95)
    image_data = jpeg_parts(photo.read_bytes())[1] if suffix == ".jpg" else None
    size = photo.stat().st_size
    assert size > 2_000_000
    tracemalloc.start()
    try:
        assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.3 * size, (peak, size)
    if image_data is not None:
        assert jpeg_parts(photo.read_bytes())[1] == image_data


@needs_exiftool
def test_unicode_comment_kept_exactly(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    exiftool_edit(photo, "-UserComment=Größe 😀 ok")
    raw_before = Image.open(photo).getexif().get_ifd(0x8769)[0x9286]
    assert raw_before.startswith(b"UNICODE\0")

    tags.write_faces(photo, FACES, INFO, "m1")
    comment = exiftool("-UserComment", photo)[0]["UserComment"]
    assert comment.startswith("phototag:{") and comment.endswith("\nGröße 😀 ok")
    assert tags.read_record(photo)["model"] == "m1"

    tags.clean(photo)
    assert Image.open(photo).getexif().get_ifd(0x8769)[0x9286] == raw_before


# -- idempotence and clean --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["camera", "plain"])
def test_idempotent_and_replaces_its_own_keywords(tmp_path, kind):
    photo = make_jpeg(tmp_path / "p.jpg", kind)
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    first = photo.read_bytes()
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "unchanged"
    assert photo.read_bytes() == first

    assert tags.write_faces(photo, FACES[:1], INFO, "m2").status == "written"
    assert tags.read_keywords(photo) == ["phototag", "faces: 1", "female", "age 20-29"]
    assert tags.read_record(photo)["model"] == "m2"
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert photo.read_bytes() == first  # no leftovers, no growth


@needs_exiftool
def test_clean_removes_only_phototags_part(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "camera")
    exiftool_edit(photo, "-XPKeywords=female;holiday", "-UserComment=Grandma's birthday")
    tags_before = exiftool("-a", "-G1", "-u", "-b", "-n", "-EXIF:all", photo)[0]

    tags.write_faces(photo, FACES, INFO, "m1")
    assert tags.read_keywords(photo) == ["female", "holiday", "phototag", "faces: 2", "male",
                                         "age 20-29", "age 40-49"]
    result = tags.clean(photo)

    assert result.record and result.keywords == ["phototag", "faces: 2", "male", "age 20-29", "age 40-49"]
    assert tags.read_keywords(photo) == ["female", "holiday"]  # the user's "female" survives
    assert tags.read_record(photo) is None
    assert exiftool("-a", "-G1", "-u", "-b", "-n", "-EXIF:all", photo)[0] == tags_before
    assert tags.clean(photo) == tags.CleanResult()


@pytest.mark.parametrize("make", [
    lambda p: make_jpeg(p.with_suffix(".jpg"), "plain"),
    lambda p: face_image().save(p.with_suffix(".webp"), quality=80) or p.with_suffix(".webp"),
    lambda p: face_image().convert("RGBA").save(p.with_suffix(".webp"), lossless=True) or p.with_suffix(".webp"),
])
def test_write_then_clean_restores_a_file_without_exif_exactly(tmp_path, make):
    photo = make(tmp_path / "p")
    before = photo.read_bytes()
    tags.write_faces(photo, FACES, INFO, "m1")
    assert photo.read_bytes() != before
    assert tags.clean(photo).record
    assert photo.read_bytes() == before


# -- WebP -----------------------------------------------------------------------------------------


def webp_chunks(data: bytes) -> dict[bytes, bytes]:
    chunks, pos = {}, 12
    while pos < len(data):
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks[data[pos:pos + 4]] = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    return chunks


@needs_exiftool
def test_webp_round_trip(tmp_path):
    photo = tmp_path / "p.webp"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    face_image().save(photo, quality=80, exif=camera_exif(), icc_profile=icc)
    before = webp_chunks(photo.read_bytes())

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"

    after = webp_chunks(photo.read_bytes())
    assert {k: v for k, v in after.items() if k not in (b"EXIF", b"VP8X", b"XMP ")} == {
        k: v for k, v in before.items() if k not in (b"EXIF", b"VP8X", b"XMP ")}
    assert after[b"VP8X"] == bytes([before[b"VP8X"][0] | 0x04]) + before[b"VP8X"][1:]  # the XMP flag
    seen = exiftool("-XPKeywords", "-Make", "-UserComment", "-XMP-dc:Subject", photo)[0]
    assert seen["XPKeywords"] == ";".join(OUR_KEYWORDS) and seen["Make"] == "Canon"
    assert seen["Subject"] == OUR_KEYWORDS
    with Image.open(photo) as image:
        image.load()
        assert image.getexif()[0x010F] == "Canon"
        assert image.getexif().get_ifd(0x8769)[0x9286].startswith(b"ASCII\0\0\0phototag:{")
    assert tags.read_record(photo)["faces"][1]["gender"] == "m"


@needs_exiftool
def test_simple_webp_gets_a_vp8x_header(tmp_path):
    photo = tmp_path / "p.webp"
    face_image().save(photo, quality=80)
    assert photo.read_bytes()[12:16] == b"VP8 "
    tags.write_faces(photo, FACES, INFO, "m1")
    assert photo.read_bytes()[12:16] == b"VP8X"
    assert exiftool("-XPKeywords", "-ImageWidth", photo)[0] == {
        "SourceFile": str(photo), "XPKeywords": ";".join(OUR_KEYWORDS), "ImageWidth": 200}
    with Image.open(photo) as image:
        assert image.size == (200, 200) and image.getexif()[0x9C9E]


# -- what is refused, and atomicity ---------------------------------------------------------------


def test_other_formats_are_reported_and_untouched(tmp_path):
    png, tiff, heic = tmp_path / "p.png", tmp_path / "p.tif", tmp_path / "p.heic"
    face_image().save(png)
    face_image().save(tiff)
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))
    for path in (png, tiff, heic):
        before = path.read_bytes()
        result = tags.write_faces(path, FACES, INFO, "m1")
        assert result.status == "unsupported" and result.reason
        assert path.read_bytes() == before
        assert tags.read_record(path) is None and not tags.clean(path).changed


def test_read_only_file_is_reported_and_untouched(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    photo.chmod(0o444)
    before = photo.read_bytes()
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert result.status == "failed" and "read-only" in result.reason
    assert photo.read_bytes() == before


def assert_exif_left_and_record_in_xmp(photo: Path, before: bytes, result: tags.WriteResult, why: str) -> None:
    """The EXIF block byte for byte as it was, phototag's record and keywords in the XMP, the note
    saying so; clean gives back the file as it was."""
    assert result.status == "written" and "EXIF left as it was" in result.note and why in result.note
    assert exif_block(photo.read_bytes()) == exif_block(before)
    assert tags.read_record(photo)["model"] == "m1"
    assert exiftool("-XMP-dc:Subject", photo)[0]["Subject"] == OUR_KEYWORDS
    assert tags.clean(photo).xmp and photo.read_bytes() == before


@needs_exiftool
def test_exif_over_64_kib_is_left_byte_for_byte_and_the_record_goes_into_the_xmp(tmp_path):
    photo = tmp_path / "p.jpg"
    exif = Image.Exif()
    exif[0x010E] = "x" * 65450  # ImageDescription: fits, but not with phototag's additions
    face_image().save(photo, exif=exif)
    before = photo.read_bytes()
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert_exif_left_and_record_in_xmp(photo, before, result, "64 KiB")


@needs_exiftool
def test_damaged_exif_is_left_byte_for_byte_and_the_record_goes_into_the_xmp(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    data = photo.read_bytes()
    broken = b"\xff\xe1" + struct.pack(">H", 24) + b"Exif\0\0MM\0*\0\0\0\x08\0\x09" + bytes(6)
    photo.write_bytes(data[:20] + broken + data[20:])
    before = photo.read_bytes()
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert_exif_left_and_record_in_xmp(photo, before, result, "damaged")


@pytest.mark.parametrize("call", ["fsync", "replace"])  # the temp file written, then its fsync or rename fails
@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_the_original_and_no_temp_file(tmp_path, monkeypatch, call, error):
    photo = make_jpeg(tmp_path / "p.jpg", "camera")
    before = photo.read_bytes()

    def fail(*_):
        raise error

    monkeypatch.setattr(os, call, fail)
    if isinstance(error, OSError):
        assert tags.write_faces(photo, FACES, INFO, "m1").status == "failed"
    else:
        with pytest.raises(KeyboardInterrupt):
            tags.write_faces(photo, FACES, INFO, "m1")
    assert photo.read_bytes() == before
    assert os.listdir(tmp_path) == ["p.jpg"]


def test_mode_and_times_kept_unless_asked(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    photo.chmod(0o640)
    os.utime(photo, ns=(1_000_000_000_123_456_789, 1_000_000_000_987_654_321))
    tags.write_faces(photo, FACES, INFO, "m1")
    st = photo.stat()
    assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o640, 1_000_000_000_987_654_321)

    tags.write_faces(photo, FACES[:1], INFO, "m1", keep_mtime=False)
    assert photo.stat().st_mtime_ns > 1_000_000_000_987_654_321


def test_symlink_is_followed_and_hard_links_refused(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    link = tmp_path / "link.jpg"
    link.symlink_to(photo.name)
    assert tags.write_faces(link, FACES, INFO, "m1").status == "written"
    assert link.is_symlink() and tags.read_record(photo) is not None

    os.link(photo, tmp_path / "hard.jpg")
    result = tags.write_faces(photo, FACES[:1], INFO, "m1")
    assert result.status == "failed" and "hard links" in result.reason


def test_record_is_parsed_only_when_it_is_phototags(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\0\0\0phototag: my own note, not JSON"
    buffer = io.BytesIO()
    face_image().save(buffer, "JPEG", exif=exif)
    photo.write_bytes(buffer.getvalue())
    assert tags.read_record(photo) is None
    tags.write_faces(photo, FACES, INFO, "m1")
    raw = Image.open(photo).getexif().get_ifd(0x8769)[0x9286]
    assert raw.endswith(b"}\nphototag: my own note, not JSON")
    tags.clean(photo)
    assert Image.open(photo).getexif().get_ifd(0x8769)[0x9286] == b"ASCII\0\0\0phototag: my own note, not JSON"


def test_atomic_replace_returns_what_it_wrote(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    before = photo.stat()
    result = tags.write_faces(photo, FACES, INFO, "m1")
    after = photo.stat()
    assert result.status == "written"
    assert result.file == Written(after.st_size, after.st_mtime_ns, after.st_ino,
                                  hashlib.sha256(photo.read_bytes()).hexdigest())
    assert after.st_mtime_ns == before.st_mtime_ns and after.st_ino != before.st_ino
    assert tags.write_faces(photo, FACES, INFO, "m1").file is None  # unchanged
