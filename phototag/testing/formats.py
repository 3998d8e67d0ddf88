"""Real HEIC, DNG and RAW-style files, and decompression bombs, made in the tests.

HEIC files are written by pillow-heif, DNG files by pidng (a CFA mosaic sampled from an RGB
picture). ``with_preview`` adds a full-size JPEG preview in a SubIFD, the way cameras and DNG
converters store it. The bombs are small files whose headers claim huge sizes.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import piexif
from PIL import Image


def heic_bytes(image: Image.Image, orientation: int | None = None, taken: str | None = None) -> bytes:
    """A HEIC written by pillow-heif. With an EXIF orientation, pillow-heif stores the pixels as given
    and records the orientation twice, as phones do: as the HEIF ``irot``/``imir`` transform and in
    the EXIF."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = {"0th": {}, "Exif": {}}
    if orientation is not None:
        exif["0th"][piexif.ImageIFD.Orientation] = orientation
    if taken:
        exif["Exif"][piexif.ExifIFD.DateTimeOriginal] = taken.encode()
    out = io.BytesIO()
    image.save(out, "HEIF", quality=90, **({"exif": piexif.dump(exif)} if exif["0th"] or exif["Exif"] else {}))
    return out.getvalue()


def set_exif_orientation(data: bytes, orientation: int) -> bytes:
    """The file with the (big-endian, piexif-written) EXIF orientation entry's value replaced, and
    nothing else changed: e.g. a HEIC whose EXIF disagrees with its own transform."""
    entry = b"\x01\x12\x00\x03\x00\x00\x00\x01"
    at = data.index(entry) + len(entry)
    return data[:at] + struct.pack(">H", orientation) + data[at + 2:]


def dng_bytes(image: Image.Image, orientation: int = 1, bits: int = 12, taken: str | None = None) -> bytes:
    """A DNG written by pidng: the picture sampled through an RGGB colour filter, linear light."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    rgb = np.asarray(image.convert("RGB"), np.float64) / 255.0
    height, width, _ = rgb.shape
    linear = rgb ** 2.2 * ((1 << bits) - 1)
    cfa = np.empty((height, width), np.uint16)
    cfa[0::2, 0::2] = linear[0::2, 0::2, 0]
    cfa[0::2, 1::2] = linear[0::2, 1::2, 1]
    cfa[1::2, 0::2] = linear[1::2, 0::2, 1]
    cfa[1::2, 1::2] = linear[1::2, 1::2, 2]
    tags = DNGTags()
    for tag, value in [
        (Tag.ImageWidth, width), (Tag.ImageLength, height), (Tag.TileWidth, width), (Tag.TileLength, height),
        (Tag.Orientation, orientation), (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
        (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, bits), (Tag.CFARepeatPatternDim, [2, 2]),
        (Tag.CFAPattern, CFAPattern.RGGB), (Tag.BlackLevel, 0), (Tag.WhiteLevel, (1 << bits) - 1),
        (Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65), (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
        (Tag.Make, "phototag"), (Tag.Model, "test"), (Tag.DNGVersion, DNGVersion.V1_4),
        (Tag.DNGBackwardVersion, DNGVersion.V1_2),
    ]:
        tags.set(tag, value)
    if taken:
        tags.set(Tag.DateTimeOriginal, taken)
    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    return bytes(writer.convert(cfa, filename=""))


def _ifd0(data: bytes) -> tuple[str, int, list[bytes], bytes]:
    order = "<" if data[:2] == b"II" else ">"
    at = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[at:at + 2])[0]
    entries = [data[at + 2 + 12 * i:at + 14 + 12 * i] for i in range(count)]
    return order, at, entries, data[at + 2 + 12 * count:at + 6 + 12 * count]


def camera_jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    """A JPEG as cameras write their previews: the EXIF segment (with the orientation) right after
    the start of image, no JFIF segment. (LibRaw adds its own EXIF to a preview that has none.)"""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90,
               **({"exif": piexif.dump({"0th": {piexif.ImageIFD.Orientation: orientation}})} if orientation else {}))
    data = out.getvalue()
    if data[2:4] == b"\xff\xe0":  # drop Pillow's JFIF segment
        data = data[:2] + data[4 + struct.unpack(">H", data[4:6])[0]:]
    return data


def with_preview(data: bytes, jpeg: bytes) -> bytes:
    """A TIFF-based RAW with ``jpeg`` added as its preview: a SubIFD (NewSubfileType 1, JPEG
    compression), written after the file's end, and IFD0 rewritten there too with the SubIFD pointer."""
    order, _, entries, next_ifd = _ifd0(data)
    width, height = Image.open(io.BytesIO(jpeg)).size
    out = bytearray(data + b"\0" * (len(data) % 2))
    jpeg_at = len(out)
    out += jpeg + b"\0" * (len(jpeg) % 2)
    bits_at = len(out)
    out += struct.pack(order + "HHH", 8, 8, 8)

    def entry(tag, kind, count, value):
        packed = struct.pack(order + ("I" if kind == 4 else "HH"), *((value,) if kind == 4 else (value, 0)))
        return struct.pack(order + "HHI", tag, kind, count) + packed

    sub = [entry(0xFE, 4, 1, 1), entry(0x100, 4, 1, width), entry(0x101, 4, 1, height),
           struct.pack(order + "HHII", 0x102, 3, 3, bits_at),
           entry(0x103, 3, 1, 7), entry(0x106, 3, 1, 6), entry(0x111, 4, 1, jpeg_at), entry(0x115, 3, 1, 3),
           entry(0x116, 4, 1, height), entry(0x117, 4, 1, len(jpeg))]
    sub_at = len(out)
    out += struct.pack(order + "H", len(sub)) + b"".join(sub) + b"\0\0\0\0"
    entries = sorted(entries + [entry(0x14A, 4, 1, sub_at)], key=lambda e: struct.unpack(order + "H", e[:2])[0])
    ifd_at = len(out)
    out += struct.pack(order + "H", len(entries)) + b"".join(entries) + next_ifd
    out[4:8] = struct.pack(order + "I", ifd_at)
    return bytes(out)


def with_claimed_size(data: bytes, width: int, height: int) -> bytes:
    """A TIFF-based RAW whose IFD0 claims ``width`` x ``height`` (the pixel data stays small)."""
    order, at, entries, _ = _ifd0(data)
    out = bytearray(data)
    for i, e in enumerate(entries):
        tag = struct.unpack(order + "H", e[:2])[0]
        if tag in (0x100, 0x101):
            kind = struct.unpack(order + "H", e[2:4])[0]
            value = width if tag == 0x100 else height
            packed = struct.pack(order + "I", value) if kind == 4 else struct.pack(order + "HH", value, 0)
            out[at + 2 + 12 * i + 8:at + 2 + 12 * i + 12] = packed
    return bytes(out)


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (its data is a few rows)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def jpeg_bomb(width: int = 65000, height: int = 65000) -> bytes:
    """A small JPEG whose frame header claims ``width`` x ``height`` pixels."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_scan_bomb(scans: int, size: int = 64) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``scans`` scans (a "scan bomb")."""
    out = io.BytesIO()
    Image.linear_gradient("L").resize((size, size)).convert("RGB").save(out, "JPEG", progressive=True)
    data = out.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * (scans - data.count(b"\xff\xda")) + data[-2:]
