"""The containers phototag writes into: where a JPEG's or WebP's EXIF lives, and the file with it replaced.

Only the APP1 Exif segment (JPEG) or the EXIF chunk and VP8X flags (WebP) change; the image data, the
other segments and chunks, the thumbnail, ICC profile and XMP are copied byte for byte.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from .atomic import Refused
from .tiff import ExifBlock

JPEG_EXIF_MAX = 0xFFFF - 2 - 6  # APP1 length field counts itself; then "Exif\0\0"
VP8X_ALPHA, VP8X_EXIF = 0x10, 0x08
WEBP_EARLY_CHUNKS = (b"VP8X", b"ICCP", b"ANIM", b"ALPH", b"VP8 ", b"VP8L", b"ANMF")


class Unsupported(ValueError):
    """A format phototag does not write EXIF into."""


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


class Photo:
    """A JPEG or WebP file mapped into memory, with where its EXIF lives."""

    def __init__(self, data, st: os.stat_result):
        self.data = data
        self.stat = st
        self.kind = _kind(bytes(data[:12]))
        self.lacks_vp8x = False
        if self.kind == "JPEG":
            self.start, self.end = _jpeg_exif_span(data)
            self.tiff = bytes(data[self.start + 10:self.end]) if self.end > self.start else None
        elif self.kind == "WebP":
            self.chunks, self.riff_end = _webp_chunks(data)
            exif = next((c for c in self.chunks if c[0] == b"EXIF"), None)
            payload = bytes(data[exif[1] + 8:exif[1] + 8 + _u32le(data, exif[1] + 4)]) if exif else b""
            self.prefix = b"Exif\0\0" if payload.startswith(b"Exif\0\0") else b""
            self.tiff = payload[len(self.prefix):] if exif else None
            self.lacks_vp8x = self.chunks[0][0] != b"VP8X"
        else:
            raise Unsupported(f"EXIF is not written into {self.kind} files; the results are in the index "
                              "(and in the sidecar with --sidecar)")

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[Photo]:
        with open(path, "rb") as file:
            st = os.fstat(file.fileno())
            if st.st_size == 0:
                raise Unsupported("empty file")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                yield cls(data, st)

    def with_exif(self, tiff: bytes | None, *, drop_vp8x: bool = False) -> list[bytes]:
        """The file's bytes, in pieces, with its EXIF replaced by ``tiff`` (None: removed)."""
        if self.kind == "JPEG":
            segment = b""
            if tiff is not None:
                if len(tiff) > JPEG_EXIF_MAX:
                    raise Refused(f"the EXIF block would be {len(tiff)} bytes, over the JPEG APP1 limit of 64 KiB")
                segment = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\0\0" + tiff
            return [self.data[:self.start], segment, self.data[self.end:]]
        return _webp_with_exif(self, tiff, drop_vp8x)


def _jpeg_exif_span(data) -> tuple[int, int]:
    """Byte range of the first APP1 Exif segment, or an empty range where one belongs (after SOI/APP0)."""
    pos = insert_at = 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise Refused("the JPEG is damaged before its image data")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # SOS, EOI
            return insert_at, insert_at
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if end > len(data):
            raise Refused("the JPEG is damaged (a segment runs past the end)")
        if marker == 0xE1 and data[pos + 4:pos + 10] == b"Exif\0\0":
            return pos, end
        if marker == 0xE0 and insert_at == pos:
            insert_at = end
        pos = end


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


def _webp_with_exif(photo: Photo, tiff: bytes | None, drop_vp8x: bool) -> list[bytes]:
    data = photo.data
    names = [c[0] for c in photo.chunks]
    body = [bytes(data[start:end]) for _, start, end in photo.chunks]
    new = None
    if tiff is not None:
        payload = photo.prefix + tiff
        new = b"EXIF" + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)
    if b"EXIF" in names:
        at = names.index(b"EXIF")
        del names[at], body[at]
    if new is not None:
        at = names.index(b"XMP ") if b"XMP " in names else 1 + max(
            (i for i, n in enumerate(names) if n in WEBP_EARLY_CHUNKS), default=0)
        names.insert(at, b"EXIF")
        body.insert(at, new)
    if names[0] != b"VP8X" and new is not None:
        names.insert(0, b"VP8X")
        body.insert(0, _vp8x_for(body[0]))
    if names[0] == b"VP8X":
        flags = body[0][8] & ~VP8X_EXIF | (VP8X_EXIF if new is not None else 0)
        body[0] = body[0][:8] + bytes([flags]) + body[0][9:]
        if drop_vp8x and new is None and names[1:] in ([b"VP8 "], [b"VP8L"]) and not flags & ~VP8X_ALPHA:
            del body[0]
    header = b"RIFF" + struct.pack("<I", 4 + sum(map(len, body))) + b"WEBP"
    return [header, *body, data[photo.riff_end:]]


def _vp8x_for(image_chunk: bytes) -> bytes:
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


def read_exif(path: Path) -> ExifBlock | None:
    try:
        with Photo.open(path) as photo:
            return ExifBlock.parse(photo.tiff) if photo.tiff else None
    except (Unsupported, Refused, struct.error):
        return None
