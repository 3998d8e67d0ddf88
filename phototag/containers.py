"""The containers phototag writes into: where a JPEG's or WebP's EXIF and XMP live, and the file with
them replaced.

Only the APP1 Exif and APP1 XMP segments (JPEG) or the EXIF and XMP chunks and the VP8X flags (WebP)
change; the image data, the other segments and chunks (extended XMP, IPTC, ICC profile...) and
the thumbnail are copied byte for byte. A new EXIF segment goes after SOI (and a leading JFIF APP0),
a new XMP segment right after the EXIF one.

A JPEG with more images after its own (MPO, phones' HDR gain maps) lists them in an APP2 MPF
segment, by offsets from that segment's TIFF header (CIPA DC-007). When a segment after the MPF one
changes size, the images behind it move, and their offsets in the MPF index are moved by as much
(the primary image's own size entry is left, as exiftool leaves it); an MPF index that cannot be
read then refuses the write.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from .errors import Refused
from .iptc import PHOTOSHOP
from .tiff import outside_pointers
from .xmp import extended_guid

JPEG_EXIF = b"Exif\0\0"  # APP1 payload headers
JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\0"
JPEG_EXTENDED_XMP = b"http://ns.adobe.com/xmp/extension/\0"  # then GUID (32), full length, offset (4 + 4)
EXTENDED_PORTION = 65400  # bytes of extended XMP per segment (Adobe's XMP toolkit writes 65400 at most)
MPF = b"MPF\0"  # APP2 payload header of the Multi-Picture Format index
MP_ENTRY = 0xB002
VP8X_ALPHA, VP8X_EXIF, VP8X_XMP = 0x10, 0x08, 0x04
WEBP_EARLY_CHUNKS = (b"VP8X", b"ICCP", b"ANIM", b"ALPH", b"VP8 ", b"VP8L", b"ANMF")


class Unsupported(ValueError):
    """A format phototag does not write its tags into."""


def _kind(head: bytes) -> str:
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        return "AVIF" if head[8:12] == b"avif" else "HEIF/ISO media"
    return "unrecognised"


def _unsupported(kind: str) -> Unsupported:
    return Unsupported(f"tags are not written into {kind} files")


class Photo:
    """A JPEG or WebP file read into memory, with its EXIF (a TIFF block) and XMP packet, if any."""

    def __init__(self, data, st: os.stat_result):
        self.data = data
        self.stat = st
        self.kind = _kind(bytes(data[:12]))
        self.lacks_vp8x = False
        self.tiff_at = None  # where the EXIF block starts in the file (JPEG)
        if self.kind == "JPEG":
            (self.exif_span, self.xmp_span, app13_span, self.mpf_span, self.insert_at,
             self.after_exif) = _jpeg_spans(data)
            self.density = _jfif_density(data, self.insert_at)
            self.tiff = _jpeg_payload(data, self.exif_span, len(JPEG_EXIF))
            self.tiff_at = self.exif_span[0] + 4 + len(JPEG_EXIF) if self.exif_span else None
            self.xmp = _jpeg_payload(data, self.xmp_span, len(JPEG_XMP))
            self.app13 = _jpeg_payload(data, app13_span, 0)
            self.extended = _extended_chunks(data)
        elif self.kind == "WebP":
            self.density = self.app13 = None
            self.extended = []
            self.chunks, self.riff_end = _webp_chunks(data)
            payload = _webp_payload(data, self.chunks, b"EXIF")
            self.prefix = b"Exif\0\0" if (payload or b"").startswith(b"Exif\0\0") else b""
            self.tiff = payload[len(self.prefix):] if payload is not None else None
            self.xmp = _webp_payload(data, self.chunks, b"XMP ")
            self.lacks_vp8x = self.chunks[0][0] != b"VP8X"
        else:
            raise _unsupported(self.kind)

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[Photo]:
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as file:  # a FIFO does not hang
            st = os.fstat(file.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise Unsupported("not a regular file")
            if st.st_size == 0:
                raise Unsupported("empty file")
            kind = _kind(file.read(12))
            if kind not in ("JPEG", "WebP"):  # known from the header: a huge TIFF is not read
                raise _unsupported(kind)
            yield cls(_read_from_start(file.fileno(), st.st_size), st)

    @functools.cached_property
    def outside(self) -> list[tuple[int, int]]:
        """The offsets in the EXIF block that point at data after its segment, as (where in the block,
        the file position they point at; see ``tiff.outside_pointers``)."""
        return outside_pointers(self.tiff, self.data, self.tiff_at) if self.tiff and self.tiff_at else []

    def extended_xmp(self, guid: str) -> bytes | None:
        """The extended XMP packet with this GUID (JPEG), None when its segments are missing or incomplete."""
        mine = [chunk for chunk in self.extended if chunk[0] == guid.encode()]
        data = b""
        for _, _, offset, _, portion in sorted(mine, key=lambda chunk: chunk[2]):
            if offset != len(data):
                return None
            data += portion
        return data if mine and {chunk[1] for chunk in mine} == {len(data)} else None

    def with_metadata(self, tiff: bytes | None, xmp: bytes | None, *, drop_vp8x: bool = False,
                      extended: tuple[str | None, bytes | None] = (None, None)) -> list:
        """The file's bytes, in pieces (bytes, and views of the file's buffer), with its EXIF replaced
        by ``tiff`` and its XMP packet by ``xmp`` (None: removed). ``extended`` (JPEG): the GUID of
        extended XMP segments to remove, and an extended packet to write after the main one.
        The offsets in the EXIF block that point at data after its segment (``outside``) are set in
        ``tiff`` to where that data lies in the new file, as exiftool fixes a maker note's preview
        pointer. Raises ``Refused`` when the EXIF or the XMP does not fit its JPEG segment."""
        if self.kind == "WebP":
            return _webp_with(self, tiff, xmp, drop_vp8x)
        old_guid, new_extended = extended
        exif_segment = _jpeg_segment(JPEG_EXIF, tiff, "EXIF block")
        xmp_segment = _jpeg_segment(JPEG_XMP, xmp, "XMP packet") + _extended_segments(new_extended)
        exif_span = self.exif_span or (self.insert_at, self.insert_at)
        after_exif = self.after_exif if self.exif_span else exif_span[1]
        xmp_span = self.xmp_span or (after_exif, after_exif)
        edits = sorted([(*exif_span, 0, exif_segment), (*xmp_span, 1, xmp_segment)]
                       + [(*span, 3, b"") for g, _, _, span, _ in self.extended if old_guid and g == old_guid.encode()])
        if self.outside and tiff and self.exif_span:
            fixed = bytearray(tiff)
            order = "<" if tiff[:2] == b"II" else ">"
            for field, target in self.outside:
                if any(start < target < end for start, end, _, _ in edits):
                    raise Refused("the EXIF block points at data in a segment phototag rewrites")
                moved = sum(len(segment) - (end - start) for start, end, _, segment in edits
                            if start >= exif_span[0] and end <= target)
                struct.pack_into(order + "I", fixed, field, target + moved - exif_span[0] - 4 - len(JPEG_EXIF))
            exif_segment = _jpeg_segment(JPEG_EXIF, bytes(fixed), "EXIF block")
            edits = [(s, e, k, exif_segment if k == 0 else segment) for s, e, k, segment in edits]
        if self.mpf_span is not None:
            moved = sum(len(segment) - (end - start) for start, end, _, segment in edits if start >= self.mpf_span[1])
            if moved:
                start, end = self.mpf_span
                edits = sorted(edits + [(start, end, 2, _mpf_moved(bytes(self.data[start:end]), moved))])
        moved = sum(len(segment) - (end - start) for start, end, _, segment in edits)
        if moved and (afcp := _afcp_moved(self.data, moved, max(end for _, end, _, _ in edits))) is not None:
            edits.append(afcp)
        data, pieces, pos = memoryview(self.data), [], 0  # views: the image data is not copied
        for start, end, _, segment in edits:
            pieces += [data[pos:start], segment]
            pos = end
        return pieces + [data[pos:]]


Span = tuple[int, int]


def _read_from_start(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of a file, read into one buffer (a buffered ``read()`` of the whole
    file peaks at twice its size); read, never mapped: a file truncated meanwhile must not SIGBUS."""
    chunks, offset = [], 0
    while offset < size and (chunk := os.pread(fd, size - offset, offset)):  # Linux: at most 2 GiB a call
        chunks.append(chunk)
        offset += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _segments(data) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each segment before the image data (SOS) or EOI. Stray bytes between
    segments are skipped as exiftool and libjpeg skip them (and copied as they are)."""
    pos = 2
    while True:
        if pos + 4 > len(data):
            raise Refused("the JPEG is damaged before its image data")
        if data[pos] != 0xFF:
            junk = bytes(data[pos:pos + 65536]).find(b"\xff")
            if junk < 0:
                raise Refused("the JPEG is damaged before its image data")
            pos += junk
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # SOS, EOI
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if end > len(data):
            raise Refused("the JPEG is damaged (a segment runs past the end)")
        yield marker, pos, end
        pos = end


def _jpeg_spans(data) -> tuple[Span | None, Span | None, Span | None, Span | None, int, int | None]:
    """Byte ranges of the first APP1 Exif, APP1 XMP, APP13 Photoshop and APP2 MPF segments (None:
    absent), where a new EXIF segment belongs (after SOI and a leading APP0), and where a new XMP
    segment belongs when there is EXIF: after it, and after the APP1 Exif segments that continue it
    (exiftool reads an EXIF block split over several segments when they follow each other)."""
    insert_at, after_exif = 2, None
    exif = xmp = app13 = mpf = None
    for marker, pos, end in _segments(data):
        is_exif = marker == 0xE1 and data[pos + 4:pos + 4 + len(JPEG_EXIF)] == JPEG_EXIF
        if is_exif and exif is None:
            exif = (pos, end)
            after_exif = end
        elif is_exif and after_exif is not None and pos - after_exif < 16:
            after_exif = end
        if marker == 0xE1 and xmp is None and data[pos + 4:pos + 4 + len(JPEG_XMP)] == JPEG_XMP:
            xmp = (pos, end)
        if marker == 0xED and app13 is None and data[pos + 4:pos + 4 + len(PHOTOSHOP)] == PHOTOSHOP:
            app13 = (pos, end)
        if marker == 0xE2 and mpf is None and data[pos + 4:pos + 4 + len(MPF)] == MPF:
            mpf = (pos, end)
        if marker == 0xE0 and insert_at == pos:
            insert_at = end
    return exif, xmp, app13, mpf, insert_at, after_exif


def _extended_chunks(data) -> list[tuple[bytes, int, int, Span, bytes]]:
    """(GUID, full length, offset, span, portion) of each APP1 extended XMP segment before the image data."""
    chunks = []
    header = len(JPEG_EXTENDED_XMP) + 40
    for marker, pos, end in _segments(data):
        payload = bytes(data[pos + 4:min(end, pos + 4 + header)])
        if marker == 0xE1 and payload.startswith(JPEG_EXTENDED_XMP) and len(payload) == header:
            total, offset = struct.unpack_from(">II", payload, len(JPEG_EXTENDED_XMP) + 32)
            guid = payload[len(JPEG_EXTENDED_XMP):len(JPEG_EXTENDED_XMP) + 32]
            chunks.append((guid, total, offset, (pos, end), bytes(data[pos + 4 + header:end])))
    return chunks


def _extended_segments(extended: bytes | None) -> bytes:
    """APP1 segments carrying an extended XMP packet, named by the MD5 digest of its bytes."""
    if extended is None:
        return b""
    guid = extended_guid(extended).encode()
    out = []
    for offset in range(0, len(extended), EXTENDED_PORTION):
        portion = extended[offset:offset + EXTENDED_PORTION]
        out.append(_jpeg_segment(JPEG_EXTENDED_XMP, guid + struct.pack(">II", len(extended), offset) + portion,
                                 "extended XMP"))
    return b"".join(out)


def _mpf_moved(segment: bytes, moved: int) -> bytes:
    """The APP2 MPF segment with the offsets of the images after the primary one moved by ``moved``."""
    tiff = 4 + len(MPF)  # where the offsets count from
    out = bytearray(segment)
    try:
        order = {b"II*\0": "<", b"MM\0*": ">"}[segment[tiff:tiff + 4]]
        ifd = tiff + struct.unpack_from(order + "I", segment, tiff + 4)[0]
        for i in range(struct.unpack_from(order + "H", segment, ifd)[0]):
            tag, _, count, value = struct.unpack_from(order + "HHII", segment, ifd + 2 + 12 * i)
            if tag != MP_ENTRY:
                continue
            entries = tiff + value
            if count % 16 or entries + count > len(segment):
                raise ValueError
            for at in range(entries + 8, entries + count, 16):
                offset = struct.unpack_from(order + "I", segment, at)[0]
                if offset:  # 0: the primary image
                    struct.pack_into(order + "I", out, at, offset + moved)
            return bytes(out)
    except (KeyError, ValueError, struct.error):
        pass
    raise Refused("the JPEG's MPF index (of the images after the main one) is damaged; "
                  "writing would lose them")


def _afcp_moved(data, moved: int, edited_to: int) -> tuple[int, int, int, bytes] | None:
    """The edit that keeps an AFCP trailer (AXS File Concatenation Protocol: IPTC, a thumbnail or a
    preview appended to the file, found by absolute file offsets) valid when the file before it
    grows by ``moved``: its directory's offsets and the end record's pointer to it moved by as much,
    as exiftool moves them. None when the file has no AFCP trailer after ``edited_to``."""
    footer = bytes(data[-12:])
    if len(data) < 24 or footer[:4] not in (b"AXS!", b"AXS*"):
        return None
    order = ">" if footer[3:4] == b"!" else "<"
    start = struct.unpack_from(order + "I", footer, 4)[0]
    if not edited_to <= start <= len(data) - 24 or bytes(data[start:start + 4]) != footer[:4]:
        raise Refused("the file's AFCP trailer is damaged; writing would lose what it holds")
    count = struct.unpack_from(order + "H", data, start + 6)[0]
    trailer = bytearray(data[start:])
    if 12 + 12 * count > len(trailer) - 12:
        raise Refused("the file's AFCP trailer is damaged; writing would lose what it holds")
    for at in range(12 + 8, 12 + 12 * count, 12):
        struct.pack_into(order + "I", trailer, at, struct.unpack_from(order + "I", trailer, at)[0] + moved)
    struct.pack_into(order + "I", trailer, len(trailer) - 8, start + moved)
    return start, len(data), 4, bytes(trailer)


def _jfif_density(data, app0_end: int) -> tuple[int, int, int] | None:
    """(x, y, unit: 0 none, 1 dpi, 2 dpcm) from a leading JFIF APP0 segment, or None."""
    if app0_end > 2 and data[6:11] == b"JFIF\0" and app0_end >= 18:
        unit, x, y = struct.unpack_from(">BHH", data, 13)
        if unit <= 2 and x and y:
            return x, y, unit
    return None


def _jpeg_payload(data, span: tuple[int, int] | None, header: int) -> bytes | None:
    return None if span is None else bytes(data[span[0] + 4 + header:span[1]])


def _jpeg_segment(header: bytes, payload: bytes | None, what: str) -> bytes:
    """An APP1 segment holding ``payload`` after ``header`` (b"" for None)."""
    if payload is None:
        return b""
    size = 2 + len(header) + len(payload)
    if size > 0xFFFF:
        raise Refused(f"the {what} would be {len(payload)} bytes, over the 64 KiB one JPEG APP1 segment "
                      f"holds ({0xFFFF - 2 - len(header)} bytes)")
    return b"\xff\xe1" + struct.pack(">H", size) + header + payload


def _u32le(data, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def _webp_chunks(data) -> tuple[list[tuple[bytes, int, int]], int]:
    """(fourcc, start, end including the pad byte) of each chunk, and where the RIFF data ends."""
    riff_end = 8 + _u32le(data, 4)
    if riff_end > len(data):
        raise Refused("the WebP file is truncated")
    chunks, pos = [], 12
    while pos + 8 <= riff_end:
        size = _u32le(data, pos + 4)
        end = min(pos + 8 + size + (size & 1), riff_end)
        if pos + 8 + size > riff_end:
            raise Refused("the WebP file is damaged (a chunk runs past the end)")
        chunks.append((bytes(data[pos:pos + 4]), pos, end))
        pos = end
    if not chunks:
        raise Refused("the WebP file has no chunks")
    return chunks, riff_end


def _webp_payload(data, chunks: list[tuple[bytes, int, int]], fourcc: bytes) -> bytes | None:
    chunk = next((c for c in chunks if c[0] == fourcc), None)
    return None if chunk is None else bytes(data[chunk[1] + 8:chunk[1] + 8 + _u32le(data, chunk[1] + 4)])


def _webp_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)


def _webp_with(photo: Photo, tiff: bytes | None, xmp: bytes | None, drop_vp8x: bool) -> list:
    data = photo.data
    names = [c[0] for c in photo.chunks]
    if names[0] == b"VP8X" and _u32le(data, photo.chunks[0][1] + 4) < 10:
        raise Refused("the WebP file is damaged (its VP8X chunk is shorter than 10 bytes)")
    view = memoryview(data)  # the image chunk is written from the file's buffer, not copied
    body = [view[start:end] for _, start, end in photo.chunks]
    new = {b"EXIF": None if tiff is None else _webp_chunk(b"EXIF", photo.prefix + tiff),
           b"XMP ": None if xmp is None else _webp_chunk(b"XMP ", xmp)}
    for fourcc, chunk in new.items():  # in place, else EXIF before XMP, both after the image
        if fourcc in names:
            at = names.index(fourcc)
            if chunk is None:
                del names[at], body[at]
            else:
                body[at] = chunk
        elif chunk is not None:
            at = 1 + max((i for i, n in enumerate(names) if n in WEBP_EARLY_CHUNKS or n == b"EXIF"), default=0)
            names.insert(at, fourcc)
            body.insert(at, chunk)
    has = {fourcc: fourcc in names for fourcc in new}
    if names[0] != b"VP8X" and any(has.values()):
        names.insert(0, b"VP8X")
        body.insert(0, _vp8x_for(body[0]))
    if names[0] == b"VP8X":
        flags = body[0][8] & ~(VP8X_EXIF | VP8X_XMP)
        flags |= (VP8X_EXIF if has[b"EXIF"] else 0) | (VP8X_XMP if has[b"XMP "] else 0)
        body[0] = bytes(body[0][:8]) + bytes([flags]) + bytes(body[0][9:])
        if drop_vp8x and names[1:] in ([b"VP8 "], [b"VP8L"]) and not flags & ~VP8X_ALPHA:
            del body[0]
    header = b"RIFF" + struct.pack("<I", 4 + sum(map(len, body))) + b"WEBP"
    return [header, *body, view[photo.riff_end:]]


def _vp8x_for(image_chunk) -> bytes:
    """A VP8X chunk (extended format, needed for EXIF) describing a simple-format image chunk."""
    fourcc, payload = image_chunk[:4], image_chunk[8:]
    if fourcc == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":
        width, height = (v & 0x3FFF for v in struct.unpack_from("<HH", payload, 6))
        alpha = 0
    elif fourcc == b"VP8L" and payload[:1] == b"\x2f":
        bits = _u32le(payload, 1)
        width, height, alpha = (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1, bits >> 28 & 1
    else:
        raise Refused("unknown WebP layout")
    return (b"VP8X" + struct.pack("<I", 10) + bytes([VP8X_ALPHA if alpha else 0, 0, 0, 0])
            + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))
