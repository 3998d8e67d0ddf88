"""Hostile and awkward files for the writing side (issue 16), built in memory: used by
``tests/test_hostile_writer.py`` and by the fault harness's bad inputs."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import piexif
from PIL import Image

from phototag.containers import JPEG_EXIF, JPEG_XMP


def picture() -> Image.Image:
    return Image.radial_gradient("L").resize((200, 200)).convert("RGB")


def with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """A JPEG with one more APPn segment right after SOI."""
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def plain_jpeg() -> bytes:
    out = io.BytesIO()
    picture().save(out, "JPEG", quality=85)
    return out.getvalue()


DOCTYPE_XMP = b"""<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>
<!DOCTYPE x [<!ENTITY me "Alice">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq>
<rdf:li>&me;</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


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


NESTED_COMMENT = b"ASCII\0\0\0phototag:" + b"[" * 20_000 + b"]" * 20_000 + b"\nuser text"


def nested_comment_jpeg() -> bytes:
    """A JPEG whose UserComment holds a ``phototag:`` record nested deeper than Python's JSON parser recurses."""
    comment = NESTED_COMMENT
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Canon"}, "Exif": {piexif.ExifIFD.UserComment: comment}})
    out = io.BytesIO()
    picture().save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def short_vp8x_webp() -> bytes:
    """A WebP whose VP8X chunk is empty (it must hold 10 bytes)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(out, "WEBP", exif=b"Exif\0\0" + piexif.dump({"0th": {271: b"X"}})[6:])
    data = out.getvalue()
    assert data[12:16] == b"VP8X"
    body = b"VP8X" + struct.pack("<I", 0) + data[12 + 18:]
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


USER_XMP = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            b'xmlns:xmp="http://ns.adobe.com/xap/1.0/"><xmp:Rating>3</xmp:Rating></rdf:Description></rdf:RDF>'
            b'</x:xmpmeta>\n<?xpacket end="w"?>')


def mpo_with_xmp_after_mpf() -> tuple[bytes, bytes]:
    """(a JPEG with a second image listed in its APP2 MPF index and an XMP segment after the MPF one,
    as phones write them; the second image's bytes)."""
    second = Image.radial_gradient("L").resize((160, 120)).convert("RGB")
    out = io.BytesIO()
    picture().save(out, "MPO", save_all=True, append_images=[second],
                      exif=piexif.dump({"0th": {piexif.ImageIFD.Make: b"Canon"}}))
    data = out.getvalue()
    mpf = data.index(b"\xff\xe2")
    assert data[mpf + 4:mpf + 8] == b"MPF\0"
    mpf_end = mpf + 2 + struct.unpack_from(">H", data, mpf + 2)[0]
    xmp = b"\xff\xe1" + struct.pack(">H", 2 + len(JPEG_XMP) + len(USER_XMP)) + JPEG_XMP + USER_XMP
    data = data[:mpf_end] + xmp + data[mpf_end:]
    # the MP entries (little-endian, as Pillow writes them): the second image's offset moves by len(xmp)
    tiff = mpf + 8
    entries = tiff + struct.unpack_from("<I", data, tiff + 4)[0]
    count = struct.unpack_from("<H", data, entries)[0]
    tag_at = next(entries + 2 + 12 * i for i in range(count) if struct.unpack_from("<H", data, entries + 2 + 12 * i)[0] == 0xB002)
    second_entry = tiff + struct.unpack_from("<I", data, tag_at + 8)[0] + 16
    offset = struct.unpack_from("<I", data, second_entry + 8)[0]
    data = bytearray(data)
    struct.pack_into("<I", data, second_entry + 8, offset + len(xmp))
    start = tiff + offset + len(xmp)
    assert data[start:start + 3] == b"\xff\xd8\xff"
    return bytes(data), bytes(data[start:])


def write_hostile_files(folder: Path) -> dict[str, Path]:
    """One file of each kind in ``folder``: what it is -> its path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "XMP with a DOCTYPE": ("doctype.jpg", with_segment(plain_jpeg(), 0xE1, JPEG_XMP + DOCTYPE_XMP)),
        "EXIF values overlapping": ("overlap.jpg", with_segment(plain_jpeg(), 0xE1, JPEG_EXIF + overlapping_exif())),
        "UserComment record nested 20000 deep": ("nested.jpg", nested_comment_jpeg()),
        "WebP with an empty VP8X chunk": ("short.webp", short_vp8x_webp()),
        "MPF JPEG, XMP after the MPF index": ("phone.jpg", mpo_with_xmp_after_mpf()[0]),
        "240-byte file name": ("e" * 236 + ".jpg", plain_jpeg()),
    }
    paths = {}
    for what, (name, data) in files.items():
        (folder / name).write_bytes(data)
        paths[what] = folder / name
    png = folder / "linked.png"
    picture().save(png)
    (folder / "linked.png.xmp").symlink_to(folder.parent / "outside" / "planted.xmp")
    paths["dangling link at the sidecar's name"] = png
    return paths
