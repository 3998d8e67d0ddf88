"""Hostile and awkward files on the writing side (issue 16): what phototag refuses, and what it keeps.

Each test builds such a file and runs the library function or the CLI on it.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess

import pytest
from PIL import Image
from test_tags import FACES, INFO, exiftool, face_image, make_jpeg, needs_exiftool
from typer.testing import CliRunner


from phototag import atomic, tags
from phototag.cli import app
from phototag.containers import JPEG_EXIF, JPEG_XMP
from phototag.records import Face, PhotoInfo
from phototag.sidecar import sidecar_path
from phototag.testing.hostile import (DOCTYPE_XMP, NESTED_COMMENT, USER_XMP, mpo_with_xmp_after_mpf, nested_comment_jpeg,
                                      overlapping_exif, plain_jpeg, short_vp8x_webp, with_segment)
from phototag.tiff import ExifBlock
from phototag.xmp import NotXmp, Packet

runner = CliRunner()


# -- 1. XMP with a DOCTYPE ---------------------------------------------------------------------------

def test_xmp_with_a_doctype_is_refused_and_the_photo_left_byte_for_byte(tmp_path):
    photo = tmp_path / "doctype.jpg"
    photo.write_bytes(with_segment(plain_jpeg(), 0xE1, JPEG_XMP + DOCTYPE_XMP))
    before = photo.read_bytes()

    result = tags.write_faces(photo, FACES, INFO, "m1")

    assert result.status == "failed" and "DOCTYPE" in result.reason
    assert photo.read_bytes() == before
    assert "DOCTYPE" in tags.clean(photo).failed and photo.read_bytes() == before
    sidecar = sidecar_path(tmp_path / "b.png")
    sidecar.write_bytes(DOCTYPE_XMP)
    assert tags.write_sidecar(tmp_path / "b.png", FACES, INFO, "m1").status == "failed"
    assert sidecar.read_bytes() == DOCTYPE_XMP


def test_comments_and_processing_instructions_around_xmpmeta_stay():
    data = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<!-- made by hand -->\n'
            b'<?app keep="1"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>\n<!-- after -->\n'
            b'<?xpacket end="w"?>')
    packet = Packet(data)
    packet.set_properties({"Model": "m1"})
    out = packet.to_bytes()
    assert b"<!-- made by hand -->" in out and b'<?app keep="1"?>' in out and b"<!-- after -->" in out
    assert out.count(b"<?xpacket") == 2
    assert Packet(out).property("Model") == "m1"


def test_a_packet_that_would_not_parse_is_never_written():
    from lxml import etree

    packet = Packet(None)
    packet.set_properties({"Model": "m1"})
    element = packet.root.find(".//{http://ns.phototag.invalid/1.0/}Model")
    element.append(etree.Entity("me"))  # what a DOCTYPE-less copy of an entity-using packet would hold
    with pytest.raises(NotXmp):
        packet.to_bytes()


# -- 3. EXIF whose values overlap ------------------------------------------------------------------


@needs_exiftool
def test_overlapping_exif_values_are_not_overwritten(tmp_path):
    block = overlapping_exif()
    assert ExifBlock.parse(block).get(0x010F) == b"Canon\0"
    photo = tmp_path / "overlap.jpg"
    photo.write_bytes(with_segment(plain_jpeg(), 0xE1, JPEG_EXIF + block))

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"

    exif = ExifBlock.parse(piexif_block(photo))
    assert exif.get(0x010F) == b"Canon\0"
    assert exiftool("-Make", photo)[0]["Make"] == "Canon"
    assert tags.read_record(photo) is not None
    assert tags.clean(photo).record and ExifBlock.parse(piexif_block(photo)).get(0x010F) == b"Canon\0"


def test_a_kept_value_pointing_past_the_block_is_refused_before_anything_is_built():
    block = bytearray(overlapping_exif())
    struct.pack_into(">I", block, 8 + 2 + 8, 4000)  # Make's value now lies past the block's end
    with pytest.raises(atomic.Refused, match="not safe to edit .tag 0x010f points past its end"):
        ExifBlock.parse(bytes(block)).patch({0x9C9E: (1, b"x\0y\0\0\0")}, {})


def piexif_block(photo) -> bytes:
    data = photo.read_bytes()
    start = data.index(b"\xff\xe1") + 4 + len(JPEG_EXIF)
    size = struct.unpack(">H", data[data.index(b"\xff\xe1") + 2:][:2])[0]
    return data[start:data.index(b"\xff\xe1") + 2 + size]


# -- 2. extended attributes, ACLs and the owner ---------------------------------------------------

def posix_acl(*entries: tuple[int, int, int]) -> bytes:
    """A ``system.posix_acl_access`` value: version 2, then (tag, permissions, id) per entry."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


ACL = posix_acl((0x01, 6, 0xFFFFFFFF), (0x02, 4, 1234), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
                (0x20, 4, 0xFFFFFFFF))  # owner rw, user 1234 r, group r, mask r, other r


def xattrs(path) -> dict[str, bytes]:
    return {name: os.getxattr(path, name) for name in sorted(os.listxattr(path))}


def test_extended_attributes_and_acls_are_copied(tmp_path):
    photo = make_jpeg(tmp_path / "a.jpg", "camera")
    try:
        os.setxattr(photo, "user.xdg.tags", b"family")
        os.setxattr(photo, "user.comment", b"\x00binary\xff")
        os.setxattr(photo, "system.posix_acl_access", ACL)
    except OSError as error:
        pytest.skip(f"this file system does not take extended attributes or ACLs: {error.strerror}")
    before = xattrs(photo)
    mode = photo.stat().st_mode

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert xattrs(photo) == before and photo.stat().st_mode == mode
    assert tags.clean(photo).record
    assert xattrs(photo) == before


def denied(*_):
    raise PermissionError(1, "Operation not permitted")  # fchown of a photo someone else owns


def test_an_owner_that_cannot_be_kept_is_refused_unless_forced(tmp_path, monkeypatch):
    photo = make_jpeg(tmp_path / "a.jpg", "camera")
    tags.write_faces(photo, FACES, INFO, "m1")
    os.chown(photo, 1234, 1234)
    before = photo.read_bytes()

    monkeypatch.setattr(os, "fchown", denied)
    result = runner.invoke(app, ["clean", str(tmp_path)])
    assert result.exit_code == 0 and "owner" in result.output and "--force" in result.output, result.output
    assert photo.read_bytes() == before and photo.stat().st_uid == 1234
    refused = tags.write_faces(photo, FACES[:1], INFO, "m1")
    assert refused.status == "failed" and "owner (user 1234, group 1234)" in refused.reason
    assert photo.read_bytes() == before

    result = runner.invoke(app, ["clean", "--force", str(tmp_path)])
    assert result.exit_code == 0 and "Cleaned 1 file(s)." in result.output, result.output
    assert tags.read_record(photo) is None and photo.stat().st_uid == os.getuid()
    png = tmp_path / "b.png"
    face_image().save(png)
    os.chown(png, 1234, 1234)
    assert tags.write_sidecar(png, FACES, INFO, "m1").status == "written"  # a new file: no owner to lose


def test_an_attribute_that_cannot_be_kept_is_refused_unless_forced(tmp_path, monkeypatch):
    photo = make_jpeg(tmp_path / "a.jpg", "camera")
    try:
        os.setxattr(photo, "user.label", b"x")
    except OSError as error:
        pytest.skip(f"this file system does not take extended attributes: {error.strerror}")
    before = photo.read_bytes()
    real_setxattr = os.setxattr

    def refuse_label(target, name, value, *args, **kwargs):
        if name == "user.label" and isinstance(target, int):
            raise PermissionError(1, "Operation not permitted")
        return real_setxattr(target, name, value, *args, **kwargs)

    monkeypatch.setattr(os, "setxattr", refuse_label)
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert result.status == "failed" and "user.label" in result.reason and photo.read_bytes() == before
    assert tags.write_faces(photo, FACES, INFO, "m1", force=True).status == "written"


# -- 4. a sidecar shared by two photos --------------------------------------------------------------


def test_clean_takes_out_of_a_shared_sidecar_only_the_photos_own_tags(tmp_path):
    jpeg = make_jpeg(tmp_path / "a.jpg", "plain")
    png = tmp_path / "a.png"
    face_image().save(png)
    assert tags.write_faces(jpeg, FACES, INFO, "m1").status == "written"
    assert tags.write_sidecar(png, FACES, INFO, "m1", name="photo.xmp").status == "written"
    shared = tmp_path / "a.xmp"
    before = shared.read_bytes()

    result = runner.invoke(app, ["clean", str(jpeg)])
    assert result.exit_code == 0 and "Cleaned 1 file(s)." in result.output, result.output
    assert tags.read_record(jpeg) is None
    assert shared.read_bytes() == before

    assert tags.clean(png).sidecar_deleted and not shared.exists()


# -- 6. sidecars never written through a link ------------------------------------------------------


def test_a_dangling_link_at_the_sidecars_name_is_not_followed(tmp_path):
    photo = tmp_path / "library" / "a.png"
    photo.parent.mkdir()
    face_image().save(photo)
    elsewhere = tmp_path / "elsewhere" / "file"
    elsewhere.parent.mkdir()
    sidecar_path(photo).symlink_to(elsewhere)

    result = tags.write_sidecar(photo, FACES, INFO, "m1")
    assert result.status == "failed" and "symbolic link" in result.reason
    assert not elsewhere.exists() and os.listdir(elsewhere.parent) == []

    elsewhere.write_bytes(b"not yours")  # a link to a real file: neither written nor cleaned
    assert tags.write_sidecar(photo, FACES, INFO, "m1").status == "failed"
    assert "symbolic link" in tags.clean(photo).failed and elsewhere.read_bytes() == b"not yours"


def test_a_fifo_or_a_huge_file_at_the_sidecars_name_is_refused_without_reading_it(tmp_path):
    photo = tmp_path / "a.png"
    face_image().save(photo)
    os.mkfifo(sidecar_path(photo))
    result = tags.write_sidecar(photo, FACES, INFO, "m1")
    assert result.status == "failed" and "not a regular file" in result.reason
    assert "not a regular file" in tags.clean(photo).failed
    os.unlink(sidecar_path(photo))
    with open(sidecar_path(photo), "wb") as huge:
        huge.truncate(tags.MAX_SIDECAR + 1)  # sparse: no disk used
    result = tags.write_sidecar(photo, FACES, INFO, "m1")
    assert result.status == "failed" and "too large for an XMP sidecar" in result.reason


def no_hard_links(*_, **__):
    raise PermissionError(1, "Operation not permitted")  # what FAT and some shares answer


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_new_sidecar_never_replaces_a_file_created_meanwhile(tmp_path, monkeypatch, hard_links):
    if not hard_links:
        monkeypatch.setattr(os, "link", no_hard_links)
    target = tmp_path / "a.png.xmp"
    check = atomic._expect

    def then_another_program(path, expect):  # creates the file between the last check and the rename
        check(path, expect)
        target.write_bytes(b"another program's")

    monkeypatch.setattr(atomic, "_expect", then_another_program)
    with pytest.raises(atomic.Refused, match="created by another program"):
        atomic.replace(target, [b"ours"], like=os.stat(tmp_path), expect=None, keep_times=False)
    assert target.read_bytes() == b"another program's"
    assert [n for n in os.listdir(tmp_path) if atomic.is_temp_name(n)] == []


def test_without_hard_links_a_new_sidecar_claims_its_name_first(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "link", no_hard_links)
    photo = tmp_path / "a.png"
    face_image().save(photo)
    assert tags.write_sidecar(photo, FACES, INFO, "m1").status == "written"
    assert Packet(sidecar_path(photo).read_bytes()).property("Photo") == "a.png"
    assert [n for n in os.listdir(tmp_path) if atomic.is_temp_name(n)] == []
    sidecar_path(photo).unlink()
    sidecar_path(photo).symlink_to(tmp_path / "elsewhere.xmp")
    assert tags.write_sidecar(photo, FACES, INFO, "m1").status == "failed"
    assert not (tmp_path / "elsewhere.xmp").exists()


# -- 10. the longest names ---------------------------------------------------------------------------


def test_a_photo_with_a_240_byte_name_is_rewritten_and_its_temp_recognised(tmp_path):
    photo = make_jpeg(tmp_path / ("é" * 116 + "abcd.jpg"), "plain")  # 240 bytes in UTF-8
    assert len(os.fsencode(photo.name)) == 240
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert tags.read_record(photo) is not None
    png = tmp_path / ("p" * 236 + ".png")
    face_image().save(png)
    assert tags.write_sidecar(png, FACES, INFO, "m1").status == "written"

    temps = []

    def killed(_):  # keep a copy of the temp file under its name, as a killed write leaves it
        temps.extend(n for n in os.listdir(tmp_path) if atomic.is_temp_name(n))
        os.link(tmp_path / temps[0], tmp_path / "saved")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tags.write_faces(photo, FACES[:1], INFO, "m1", before_rename=killed)
    os.rename(tmp_path / "saved", tmp_path / temps[0])
    assert len(os.fsencode(temps[0])) <= 255
    assert atomic.remove_stale_temps(tmp_path) == 1


# -- 13. damaged files fail alone ------------------------------------------------------------------


def test_a_deeply_nested_record_is_the_users_text_and_a_short_vp8x_is_refused(tmp_path):
    nested = tmp_path / "nested.jpg"
    nested.write_bytes(nested_comment_jpeg())
    webp = tmp_path / "short.webp"
    webp.write_bytes(short_vp8x_webp())
    good = make_jpeg(tmp_path / "good.jpg", "camera")
    for photo in (nested, good):
        assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    failed = tags.write_faces(webp, FACES, INFO, "m1")
    assert failed.status == "failed" and "VP8X" in failed.reason

    result = runner.invoke(app, ["clean", str(tmp_path)])
    assert result.exit_code == 0 and "Cleaned 2 file(s)." in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert ExifBlock.parse(piexif_block(nested)).get(0x9286, in_exif_ifd=True) == NESTED_COMMENT


def test_clean_lists_an_unexpected_failure_and_goes_on(tmp_path, monkeypatch):
    for name in ("a.jpg", "b.jpg"):
        tags.write_faces(make_jpeg(tmp_path / name, "plain"), FACES, INFO, "m1")
    real = tags._clean_photo

    def broken(path, *args):
        if path.name == "a.jpg":
            raise IndexError("index out of range")
        return real(path, *args)

    monkeypatch.setattr(tags, "_clean_photo", broken)
    result = runner.invoke(app, ["clean", str(tmp_path)])
    assert result.exit_code == 0 and "IndexError" in result.output and "Cleaned 1 file(s), 1 failed" in result.output
    assert tags.read_record(tmp_path / "b.jpg") is None and tags.read_record(tmp_path / "a.jpg") is not None


# -- 5. JPEGs carrying more images (MPF) -----------------------------------------------------------

@needs_exiftool
def test_the_images_after_an_mpf_index_stay_where_it_says_when_a_segment_after_it_grows(tmp_path):
    photo = tmp_path / "phone.jpg"
    data, second = mpo_with_xmp_after_mpf()
    photo.write_bytes(data)
    extracted = subprocess.run(["exiftool", "-b", "-MPImage2", str(photo)], capture_output=True, check=True).stdout
    assert extracted == second  # the file as built is right

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert len(photo.read_bytes()) > len(data) + 1000  # the XMP after the MPF segment grew

    extracted = subprocess.run(["exiftool", "-b", "-MPImage2", str(photo)], capture_output=True, check=True).stdout
    assert extracted == second
    assert Image.open(io.BytesIO(extracted)).convert("RGB").size == (160, 120)
    with Image.open(photo) as mpo:
        mpo.seek(1)
        assert mpo.convert("RGB").size == (160, 120)
    assert exiftool("-XMP:Rating", photo)[0]["Rating"] == 3

    assert tags.clean(photo).xmp
    assert subprocess.run(["exiftool", "-b", "-MPImage2", str(photo)], capture_output=True).stdout == second


def test_a_damaged_mpf_index_refuses_a_write_that_would_move_the_images(tmp_path):
    data, _ = mpo_with_xmp_after_mpf()
    mpf = data.index(b"\xff\xe2")
    photo = tmp_path / "damaged.jpg"
    photo.write_bytes(data[:mpf + 8] + b"XX*\0" + data[mpf + 12:])  # not a TIFF byte order
    before = photo.read_bytes()
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert result.status == "failed" and "MPF" in result.reason and photo.read_bytes() == before


# -- 14. a hundred faces ---------------------------------------------------------------------------


def crowd(count: int) -> list[Face]:
    return [Face(box=(2 * (i % 10) * 10, 2 * (i // 10) * 10, 15, 15), landmarks={}, confidence=0.9,
                 rotation=1.5, gender="fm"[i % 2], p_female=0.5, age=20.0 + i % 50) for i in range(count)]


CROWD_INFO = PhotoInfo(width=200, height=200, stored_width=200, stored_height=200, format="JPEG")


def extended_segments(data: bytes) -> list[bytes]:
    """The payloads of a JPEG's APP1 extended XMP segments."""
    found, pos = [], 2
    while data[pos + 1] != 0xDA:
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if data[pos + 1] == 0xE1 and data[pos + 4:pos + 39] == b"http://ns.adobe.com/xmp/extension/\0":
            found.append(data[pos + 4:end])
        pos = end
    return found


@needs_exiftool
def test_a_hundred_faces_keep_keywords_in_the_packet_and_regions_in_extended_xmp(tmp_path):
    photo = make_jpeg(tmp_path / "class.jpg", "plain")
    original = photo.read_bytes()

    result = tags.write_faces(photo, crowd(100), CROWD_INFO, "m1")
    assert result.status == "written" and result.note == "face regions in extended XMP"
    chunks = extended_segments(photo.read_bytes())
    assert len(chunks) >= 2  # more than one segment's worth
    whole = b"".join(c[35 + 40:] for c in chunks)
    guid = hashlib.md5(whole).hexdigest().upper()
    assert {c[35:67].decode() for c in chunks} == {guid}
    seen = exiftool("-XMP:all", photo)[0]
    assert seen["HasExtendedXMP"] == guid
    assert "faces: 100" in seen["Subject"] and "phototag|faces|faces 100" in seen["HierarchicalSubject"]
    assert len(seen["RegionType"]) == 100 and seen["RegionAppliedToDimensionsW"] == 200
    assert tags.write_faces(photo, crowd(100), CROWD_INFO, "m1").status == "unchanged"

    assert tags.write_faces(photo, crowd(99), CROWD_INFO, "m1").status == "written"
    assert len(exiftool("-XMP:RegionType", photo)[0]["RegionType"]) == 99
    assert {c[35:67] for c in extended_segments(photo.read_bytes())} != {guid.encode()}  # the old ones went
    assert tags.write_faces(photo, crowd(3), CROWD_INFO, "m1").status == "written"
    assert extended_segments(photo.read_bytes()) == [] and "HasExtendedXMP" not in exiftool("-XMP:all", photo)[0]

    tags.write_faces(photo, crowd(100), CROWD_INFO, "m1")
    assert tags.clean(photo).regions == 100
    assert photo.read_bytes() == original


def test_an_incomplete_extended_xmp_of_phototags_is_refused(tmp_path):
    photo = make_jpeg(tmp_path / "class.jpg", "plain")
    tags.write_faces(photo, crowd(100), CROWD_INFO, "m1")
    data = photo.read_bytes()
    last = extended_segments(data)[-1]
    at = data.index(last) - 4
    photo.write_bytes(data[:at] + data[at + 4 + len(last):])  # a segment lost
    before = photo.read_bytes()
    result = tags.write_faces(photo, crowd(99), CROWD_INFO, "m1")
    assert result.status == "failed" and "incomplete" in result.reason
    assert "incomplete" in tags.clean(photo).failed and photo.read_bytes() == before


def test_with_another_programs_extended_xmp_the_regions_stay_out_and_the_keywords_in(tmp_path):
    foreign = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               b'<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
               b'GDepth:Data="' + b"A" * 1000 + b'"/></rdf:RDF></x:xmpmeta>')
    guid = hashlib.md5(foreign).hexdigest().upper().encode()
    main = USER_XMP.replace(b"<xmp:Rating>3</xmp:Rating>", b'<xmp:Rating>3</xmp:Rating><xmpNote:HasExtendedXMP '
                            b'xmlns:xmpNote="http://ns.adobe.com/xmp/note/">' + guid + b"</xmpNote:HasExtendedXMP>")
    chunk = b"http://ns.adobe.com/xmp/extension/\0" + guid + struct.pack(">II", len(foreign), 0) + foreign
    photo = tmp_path / "depth.jpg"
    photo.write_bytes(with_segment(with_segment(plain_jpeg(), 0xE1, chunk), 0xE1, JPEG_XMP + main))

    result = tags.write_faces(photo, crowd(100), CROWD_INFO, "m1")
    assert result.status == "written" and "not in the file" in result.note
    assert extended_segments(photo.read_bytes()) == [chunk]
    assert "faces: 100" in Packet(_xmp_of(photo)).items(tags.SUBJECT)


def _xmp_of(photo) -> bytes:
    data = photo.read_bytes()
    at = data.index(JPEG_XMP) + len(JPEG_XMP)
    return data[at:at + struct.unpack_from(">H", data, at - len(JPEG_XMP) - 2)[0] - 2 - len(JPEG_XMP)]


@needs_exiftool
def test_scan_names_where_a_crowds_regions_went_and_lists_what_it_refused(tmp_path, tiny_model_dir, monkeypatch):
    import json
    import random

    from phototag.testing.photos import face_crops, jpeg_bytes, paste_face, scene

    faces = face_crops()
    rng = random.Random(3)
    canvas = scene(1680, 1200, rng)
    for i in range(140):
        paste_face(canvas, faces[i % len(faces)], (60 + 120 * (i % 14), 60 + 120 * (i // 14)), 104)
    library = tmp_path / "library"
    library.mkdir()
    (library / "class.jpg").write_bytes(jpeg_bytes(canvas))
    (library / "nested.jpg").write_bytes(nested_comment_jpeg())
    (library / "short.webp").write_bytes(short_vp8x_webp())
    owned = library / "owned.jpg"
    owned.write_bytes(plain_jpeg())
    os.chown(owned, 1234, 1234)
    monkeypatch.setattr(os, "fchown", denied)
    scan = ["scan", "--db", str(tmp_path / "index.db"), "--models", str(tiny_model_dir), "--json"]

    result = runner.invoke(app, [*scan, str(library)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    found = len(tags.read_record(library / "class.jpg")["faces"])
    assert found > 100, found
    nested_note = ("EXIF left as it was (the EXIF block would be 80460 bytes, over the 64 KiB one JPEG segment "
                   "holds); phototag's record is in the XMP")  # the user's 40 kB comment would be there twice
    assert sorted(summary["exif_notes"], key=str) == [
        {"path": str(library / "class.jpg"), "note": "face regions in extended XMP"},
        {"path": str(library / "nested.jpg"), "note": nested_note}]
    assert [f["path"] for f in summary["failed"]] == [str(library / "short.webp")]
    assert summary["exif"] == {"written": 2, "failed": 1}
    assert [(p["path"], "owner" in p["reason"]) for p in summary["exif_problems"]] == [(str(owned), True)]
    assert tags.read_record(owned) is None

    forced = json.loads(runner.invoke(app, [*scan, "--force", "--rescan", str(owned)]).stdout)
    assert forced["exif"] == {"written": 1} and tags.read_record(owned) is not None
    seen = exiftool("-XMP:all", library / "class.jpg")[0]
    assert len(seen["RegionType"]) == found and f"faces: {found}" in seen["Subject"]
    assert tags.read_record(library / "nested.jpg") is not None
