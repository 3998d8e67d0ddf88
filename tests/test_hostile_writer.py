"""Hostile and awkward files on the writing side (issue 16): what phototag refuses, and what it keeps.

Each test builds such a file and runs the library function or the CLI on it.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess

import piexif
import pytest
from PIL import Image
from test_tags import FACES, INFO, exiftool, face_image, make_jpeg, needs_exiftool
from typer.testing import CliRunner

from phototag import atomic, tags
from phototag.cli import app
from phototag.containers import JPEG_EXIF, JPEG_XMP
from phototag.records import Face, PhotoInfo
from phototag.sidecar import sidecar_path
from phototag.tiff import ExifBlock
from phototag.xmp import NotXmp, Packet

runner = CliRunner()


def with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """A JPEG with one more APPn segment right after SOI."""
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def plain_jpeg() -> bytes:
    out = io.BytesIO()
    face_image().save(out, "JPEG", quality=85)
    return out.getvalue()


# -- 1. XMP with a DOCTYPE ---------------------------------------------------------------------------

DOCTYPE_XMP = b"""<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>
<!DOCTYPE x [<!ENTITY me "Alice">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq>
<rdf:li>&me;</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


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


def overlapping_exif() -> bytes:
    """IFD0 with XPKeywords and Make, Make's value lying inside XPKeywords' at the end of the block."""
    keywords = "family".encode("utf-16-le") + b"\0\0"  # 14 bytes
    ifd0_at, count = 8, 2
    values_at = ifd0_at + 2 + 12 * count + 4  # 38
    make_at = values_at + len(keywords) - 6  # the last 6 bytes of XPKeywords' value hold "Canon\0"
    keywords = keywords[:-6] + b"Canon\0"
    entries = struct.pack(">HHI", 0x010F, 2, 6) + struct.pack(">I", make_at)
    entries += struct.pack(">HHI", 0x9C9E, 1, len(keywords)) + struct.pack(">I", values_at)
    return b"MM\0*" + struct.pack(">I", ifd0_at) + struct.pack(">H", count) + entries + b"\0" * 4 + keywords


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


def test_a_patch_that_would_change_a_kept_value_is_refused():
    block = bytearray(overlapping_exif())
    struct.pack_into(">I", block, 8 + 2 + 8, 4000)  # Make's value now lies past the block's end
    with pytest.raises(atomic.Refused, match="damaged"):
        ExifBlock.parse(bytes(block)).patch({0x9C9E: (1, b"x\0y\0\0\0")}, {})


def piexif_block(photo) -> bytes:
    data = photo.read_bytes()
    start = data.index(b"\xff\xe1") + 4 + len(JPEG_EXIF)
    size = struct.unpack(">H", data[data.index(b"\xff\xe1") + 2:][:2])[0]
    return data[start:data.index(b"\xff\xe1") + 2 + size]
