"""The tag writer on real files (tests/real_files, see its README): every tag kept, nothing phototag
does not own moved or re-sorted, only valid additions, and ``clean`` puts back what was there."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from phototag import tags
from phototag.containers import JPEG_EXIF, Photo
from phototag.tiff import ExifBlock, _read_ifd
from test_tags import FACES, INFO, OUR_KEYWORDS, all_tags, exiftool, exiftool_edit, make_jpeg, warnings

REAL = Path(__file__).parent / "real_files"
CREATED = ("File:ExifByteOrder", "IFD0:XResolution", "IFD0:YResolution", "IFD0:ResolutionUnit",
           "IFD0:YCbCrPositioning", "ExifIFD:")
FILES = sorted(p.name for p in REAL.glob("*.jpg"))
pytestmark = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")


def copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(REAL / name, target)
    return target


def tiff_of(photo: Path) -> bytes | None:
    with Photo.open(photo) as p:
        return p.tiff


def image_data(photo: Path) -> bytes:
    """Everything from the SOS marker on, stray bytes between the segments before it skipped."""
    data, pos = photo.read_bytes(), 2
    while data[pos:pos + 2] != b"\xff\xda":
        if data[pos] != 0xFF:
            pos += 1
        else:
            pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return data[pos:]


def entry_order(tiff: bytes) -> dict[str, list[int]]:
    """The tags of IFD0, the Exif IFD and IFD1, in the order they are stored."""
    exif = ExifBlock.parse(tiff)
    out = {"IFD0": [e[0] for e in exif.ifd0], "ExifIFD": [e[0] for e in exif.exif]}
    if exif.ifd0_next:
        out["IFD1"] = [e[0] for e in _read_ifd(tiff, exif.ifd0_next, exif.order)[0]]
    return out


@pytest.mark.parametrize("name", FILES)
def test_a_write_keeps_every_tag_and_clean_gives_back_every_tag(tmp_path, name):
    photo = copy(tmp_path, name)
    original = REAL / name
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert result.status == "written", result.reason
    assert tags.read_record(photo)["model"] == "m1"
    assert set(OUR_KEYWORDS) <= set(exiftool("-XMP-dc:Subject", photo)[0]["Subject"])
    assert image_data(photo) == image_data(original)
    before, after = all_tags(original, photo)
    if tiff_of(original) is None:  # phototag created the EXIF block, with the tags the standard requires
        after = {k: v for k, v in after.items() if not k.startswith(CREATED)}
    assert after == before
    assert warnings(photo) == warnings(original)  # no new exiftool -validate warning

    assert tags.clean(photo).changed
    assert all_tags(photo, skip=()) == all_tags(original, skip=())
    assert warnings(photo) == warnings(original)


@pytest.mark.parametrize("name", ["r_sigma.jpg", "r_canon.jpg", "hopper_orientation_2.jpg"])
def test_a_cameras_entries_stay_in_place_and_clean_gives_back_the_file_byte_for_byte(tmp_path, name):
    photo = copy(tmp_path, name)
    before_tiff = tiff_of(photo)
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    written = photo.read_bytes()
    after_tiff = tiff_of(photo)
    order_before, order_after = entry_order(before_tiff), entry_order(after_tiff)
    for ifd, tags_before in order_before.items():  # none moved or re-sorted; phototag's inserted
        assert [t for t in order_after[ifd] if t in tags_before] == tags_before
    changed = [i for i in range(len(before_tiff)) if before_tiff[i] != after_tiff[i]]
    assert len(changed) <= 4 + 12 * 2  # at most the header's IFD0 offset and two entries, in place

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "unchanged"
    assert tags.write_faces(photo, FACES[:1], INFO, "m2").status == "written"
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert photo.read_bytes() == written  # a write again starts from the block as it was: no growth
    assert tags.clean(photo).changed
    assert photo.read_bytes() == (REAL / name).read_bytes()


def test_no_exif_ifd_is_created_for_the_record_alone(tmp_path):
    """hopper_orientation_2.jpg has IFD0 alone: an Exif IFD holding only UserComment would lack the
    tags the standard requires (exiftool -validate: "Missing required JPEG ExifIFD tag"); the record
    goes into the XMP, the keywords into IFD0."""
    photo = copy(tmp_path, "hopper_orientation_2.jpg")
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert ExifBlock.parse(tiff_of(photo)).exif_at is None
    assert exiftool("-XPKeywords", photo)[0]["XPKeywords"] == ";".join(OUR_KEYWORDS)
    assert tags.read_record(photo)["faces"][0]["gender"] == "f"
    assert not any("ExifIFD" in w for w in warnings(photo)[0])


def test_a_malformed_exif_pointer_leaves_the_block_byte_for_byte(tmp_path):
    """Photoshop Elements wrote ExifOffset as a string; readers ignore it. Rewriting it as a LONG
    exposed junk as Exif tags: the block is left as it was, the record goes into the XMP."""
    photo = copy(tmp_path, "exif_typeerror_segment.jpg")
    before = photo.read_bytes()
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert result.status == "written" and "EXIF left as it was (its Exif IFD pointer is malformed)" in result.note
    assert tiff_of(photo) == tiff_of(REAL / "exif_typeerror_segment.jpg")
    assert tags.read_record(photo)["model"] == "m1"
    tags.clean(photo)
    assert photo.read_bytes() == before


def test_an_exif_block_over_two_segments_stays_whole(tmp_path):
    """exiftool joins an EXIF block continued in the next APP1 segment; a new XMP segment between
    them broke it (ImageDescription "firstsecond" was lost)."""
    photo = copy(tmp_path, "multiple_exif.jpg")
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert exiftool("-ImageDescription", photo)[0]["ImageDescription"] == "firstsecond"


def test_stray_bytes_between_segments_are_skipped_and_kept(tmp_path):
    """16 stray bytes after the APP13 segment: the write was refused ("damaged before its image
    data"); exiftool and libjpeg skip them, and so does phototag now, copying them as they are."""
    photo = copy(tmp_path, "photoshop-200dpi-broken.jpg")
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert any("Skipped unknown 16 bytes after JPEG APP13" in str(w) for w in warnings(photo)[0])
    tags.clean(photo)
    assert all_tags(photo, skip=()) == all_tags(REAL / "photoshop-200dpi-broken.jpg", skip=())


def test_a_users_empty_xmp_packet_is_written_into_and_kept_by_clean(tmp_path):
    photo = copy(tmp_path, "xmp_padded.jpg")
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert exiftool("-XMP-dc:Subject", photo)[0]["Subject"] == OUR_KEYWORDS
    tags.clean(photo)
    with Photo.open(photo) as p:
        assert p.xmp is not None and b"x:xmpmeta" in p.xmp and b"rdf:RDF" not in p.xmp


# -- structures no file here has (from the camera files the issue measured) -------------------------


def with_exif(jpeg: bytes, tiff: bytes) -> bytes:
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(JPEG_EXIF) + len(tiff)) + JPEG_EXIF + tiff
    return jpeg[:2] + segment + jpeg[2:]


def ifd(entries: list[tuple[int, int, int, bytes]], next_ifd: int = 0) -> bytes:
    return (struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI", *e[:3]) + e[3] for e in entries)
            + struct.pack(">I", next_ifd))


def test_an_odd_ifd0_entry_keeps_its_place(tmp_path):
    """Sony DSC-HX5V: IFD0 holds a tag 0x0001 of type 0 after the others. Re-sorting IFD0 put it
    first, and exiftool then dropped the whole IFD0; the entries now stay in their order."""
    make = b"SONY\0\0\0\0"
    entries = [(0x010F, 2, 8, struct.pack(">I", 8 + 2 + 12 * 3 + 4)), (0x0112, 3, 1, b"\0\1\0\0"),
               (0x0001, 0, 0, b"\0\0\0\0")]
    tiff = b"MM\0*" + struct.pack(">I", 8) + ifd(entries) + make
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    photo.write_bytes(with_exif(photo.read_bytes(), tiff))
    make_before = exiftool("-Make", "-Orientation", "-n", photo)[0]

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert [e[0] for e in ExifBlock.parse(tiff_of(photo)).ifd0] == [0x010F, 0x0112, 0x0001, 0x9C9E]
    assert exiftool("-Make", "-Orientation", "-n", photo)[0] == make_before


def test_a_directory_another_pointer_names_is_not_moved(tmp_path):
    """Kodak ProBack: the InteropIFD pointer names IFD0 too. Moving IFD0 left that pointer on the
    stale copy, and its tags appeared twice: the block is left as it is."""
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    exif_at = 8 + 2 + 12 * 2 + 4
    ifd0 = ifd([(0x0112, 3, 1, b"\0\1\0\0"), (0x8769, 4, 1, struct.pack(">I", exif_at))])
    exif = ifd([(0xA005, 4, 1, struct.pack(">I", 8))])  # Interop -> IFD0
    tiff = b"MM\0*" + struct.pack(">I", 8) + ifd0 + exif
    photo.write_bytes(with_exif(photo.read_bytes(), tiff))
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert result.status == "written" and "another pointer names IFD0" in result.note
    assert tiff_of(photo) == tiff


def test_the_users_rdf_about_is_kept(tmp_path):
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    exiftool_edit(photo, "-XMP-xmp:Rating=2", "-XMP:About=uuid:faf5bdd5-ba3d-11da-ad31-d33d75182f1b")
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert not any("rdf:about" in w for w in warnings(photo)[0])
    assert exiftool("-XMP:About", photo)[0]["About"] == "uuid:faf5bdd5-ba3d-11da-ad31-d33d75182f1b"


def minolta_jpeg() -> tuple[bytes, bytes, int]:
    """A JPEG whose maker note (a plain IFD, as Minolta's, Samsung's) points at a preview stored after
    the image data: (the file, the preview, where the pointer lies in the EXIF block)."""
    from PIL import Image
    import io

    main, preview = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(main, "JPEG")
    Image.new("RGB", (16, 12), (150, 120, 90)).save(preview, "JPEG")
    make = b"Minolta Co., Ltd.\0"
    exif_at = 8 + _ifd_size(2) + len(make)
    note_at = exif_at + _ifd_size(1)
    tiff_length = note_at + _ifd_size(2)
    preview_at = tiff_length + len(main.getvalue()) - 2  # after the image (its SOI before the EXIF), from the header
    note = ifd([(0x0088, 4, 1, struct.pack(">I", preview_at)),
                (0x0089, 4, 1, struct.pack(">I", len(preview.getvalue())))])
    tiff = (b"MM\0*" + struct.pack(">I", 8) + ifd([(0x010F, 2, len(make), struct.pack(">I", 8 + _ifd_size(2))),
                                                   (0x8769, 4, 1, struct.pack(">I", exif_at))])
            + make + ifd([(0x927C, 7, len(note), struct.pack(">I", note_at))]) + note)
    data = with_exif(main.getvalue(), tiff) + preview.getvalue()
    return data, preview.getvalue(), note_at + 2 + 8


def _ifd_size(count: int) -> int:
    return 2 + 12 * count + 4


def test_a_maker_notes_preview_after_the_image_data_is_still_pointed_at(tmp_path):
    """Minolta, Olympus and Samsung maker notes point at a preview stored after the image data, by
    its offset from the TIFF header: the EXIF segment grew, the pointer did not, and the preview was
    lost. The pointer now moves with the preview, as exiftool moves it; clean puts it back."""
    data, preview, field = minolta_jpeg()
    photo = tmp_path / "minolta.jpg"
    photo.write_bytes(data)
    with Photo.open(photo) as p:
        assert p.outside == [(field, len(data) - len(preview))]

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    written = photo.read_bytes()
    with Photo.open(photo) as p:
        pointer = struct.unpack_from(">I", p.tiff, field)[0]
        assert written[p.tiff_at + pointer:] == preview
    assert tags.write_faces(photo, FACES[:1], INFO, "m2").status == "written"
    assert tags.clean(photo).changed
    assert photo.read_bytes() == data


def test_an_afcp_trailers_absolute_offsets_move_with_it(tmp_path):
    """An AFCP trailer (IPTC appended to the file) finds its data by absolute file offsets: they
    move with the trailer when the file before it grows, as exiftool moves them."""
    photo = make_jpeg(tmp_path / "p.jpg", "plain")
    jpeg = photo.read_bytes()
    iptc = b"\x1c\x02\x19" + struct.pack(">H", 7) + b"holiday"
    start = len(jpeg)
    trailer = (b"AXS!\0\1" + struct.pack(">H", 1) + bytes(4) + b"IPTC" + struct.pack(">II", len(iptc), start + 24)
               + iptc + b"AXS!" + struct.pack(">I", start) + bytes(4))
    photo.write_bytes(jpeg + trailer)
    before, warned = exiftool("-a", "-G1", "-IPTC:all", photo)[0], warnings(photo)
    assert before["IPTC2:Keywords"] == "holiday"  # exiftool: IPTC in an AFCP trailer

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert exiftool("-a", "-G1", "-IPTC:all", photo)[0] == before
    assert warnings(photo) == warned  # not "Adjusted AFCP offsets"
    tags.clean(photo)
    assert photo.read_bytes() == jpeg + trailer
