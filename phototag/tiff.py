"""The EXIF (TIFF) block, edited byte-exactly: the original bytes stay where they are.

``ExifBlock.patch`` keeps every byte of the old block in place (so every offset in it, a
MakerNote's absolute ones included, stays valid) and appends a new IFD0 and Exif IFD holding the
changed entries; the header points at the new IFD0. Whatever an earlier patch left at the end of the
block is reused, so patching again does not grow it. piexif supplies only tag numbers and types.

Measured with piexif 1.1.3, which is why phototag does not let a library rewrite the block: ``load``
silently drops tags it does not know (a private 0xC7AB tag was lost); ``dump`` raises on a MakerNote
stored as BYTE, strips the APP segments from the thumbnail (1030 -> 1012 bytes), always writes
big-endian and moves every value, which breaks MakerNotes that use absolute offsets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import piexif

from .errors import Refused

EXIF_POINTER = piexif.ImageIFD.ExifTag
GPS_POINTER = piexif.ImageIFD.GPSTag
INTEROP_POINTER = piexif.ExifIFD.InteroperabilityTag
THUMB_OFFSET = piexif.ImageIFD.JPEGInterchangeFormat
THUMB_LENGTH = piexif.ImageIFD.JPEGInterchangeFormatLength
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
EMPTY_TIFF = b"MM\0*" + struct.pack(">IHI", 8, 0, 0)
IFD0_REQUIRED = (piexif.ImageIFD.XResolution, piexif.ImageIFD.YResolution, piexif.ImageIFD.ResolutionUnit,
                 piexif.ImageIFD.YCbCrPositioning)
EXIF_REQUIRED = (piexif.ExifIFD.ExifVersion, piexif.ExifIFD.ComponentsConfiguration,
                 piexif.ExifIFD.FlashpixVersion, piexif.ExifIFD.ColorSpace, piexif.ExifIFD.PixelXDimension,
                 piexif.ExifIFD.PixelYDimension)


def required_tags(order: str, size: tuple[int, int],
                  density: tuple[int, int, int] | None) -> tuple[dict, dict]:
    """(IFD0, Exif IFD) entries that EXIF 2.32 requires in a JPEG's block, for a block phototag creates:
    the resolution from the JFIF header (``density``: x, y, JFIF unit) like exiftool, else 72 dpi;
    EXIF version 2.32, YCbCr components, colour space uncalibrated, the stored pixel size."""
    x, y, unit = density or (72, 72, 1)
    rational, short, undefined, long = (piexif.TYPES.Rational, piexif.TYPES.Short, piexif.TYPES.Undefined,
                                        piexif.TYPES.Long)
    ifd0 = dict(zip(IFD0_REQUIRED, [(rational, struct.pack(order + "II", x, 1)),
                                    (rational, struct.pack(order + "II", y, 1)),
                                    (short, struct.pack(order + "H", unit + 1)),
                                    (short, struct.pack(order + "H", 1))]))
    exif = dict(zip(EXIF_REQUIRED, [(undefined, b"0232"), (undefined, b"\1\2\3\0"), (undefined, b"0100"),
                                    (short, struct.pack(order + "H", 0xFFFF)),
                                    (long, struct.pack(order + "I", size[0])),
                                    (long, struct.pack(order + "I", size[1]))]))
    return ifd0, exif


@dataclass
class New:
    """An entry to write: its value is placed after the IFD when longer than 4 bytes."""

    tag: int
    type: int
    data: bytes


@dataclass
class ExifBlock:
    """A parsed EXIF TIFF block: byte order, IFD0 and Exif IFD as raw 12-byte entries."""

    tiff: bytes
    order: str  # struct prefix, "<" or ">"
    ifd0_at: int
    ifd0: list[tuple]  # (tag, type, count, 4-byte value field)
    ifd0_next: int
    exif_at: int | None
    exif: list[tuple]

    @classmethod
    def parse(cls, tiff: bytes) -> ExifBlock:
        if tiff[:4] not in (b"II*\0", b"MM\0*") or len(tiff) < 8:
            raise Refused("the EXIF block is not a TIFF structure")
        order = "<" if tiff[:2] == b"II" else ">"
        ifd0_at = struct.unpack_from(order + "I", tiff, 4)[0]
        ifd0, ifd0_next = _read_ifd(tiff, ifd0_at, order)
        exif_at = next((_pointer(e, order) for e in ifd0 if e[0] == EXIF_POINTER), None)
        if exif_at == ifd0_at or (ifd0_next and ifd0_next in (ifd0_at, exif_at)):
            raise Refused("the EXIF block is damaged (a directory pointer points back at IFD0 or the Exif IFD)")
        exif = _read_ifd(tiff, exif_at, order)[0] if exif_at else []
        return cls(tiff, order, ifd0_at, ifd0, ifd0_next, exif_at, exif)

    def get(self, tag: int, *, in_exif_ifd: bool = False) -> bytes | None:
        """The raw value of a tag in IFD0 (or the Exif IFD)."""
        for entry in self.exif if in_exif_ifd else self.ifd0:
            if entry[0] == tag:
                return _value(self.tiff, entry, self.order)
        return None

    def is_empty(self) -> bool:
        return not self.ifd0 and not self.ifd0_next

    def patch(self, ifd0_changes: dict, exif_changes: dict) -> bytes:
        """A new block with tags set (``(type, bytes)``) or removed (``None``); old bytes stay in place.

        Space is reused only at the end of the block, and only where nothing kept (a value, a
        directory, the thumbnail) lies; every kept value's bytes are checked afterwards (``Refused``
        when one would change, as in a damaged block whose values overlap)."""
        order, tiff = self.order, self.tiff
        freed = [(self.ifd0_at, _ifd_size(len(self.ifd0)))]
        freed += [x for e in self.ifd0 if e[0] in ifd0_changes and (x := _extent(e, order))]
        exif = _apply(self.exif, exif_changes)
        if self.exif_at:
            freed.append((self.exif_at, _ifd_size(len(self.exif))))
            freed += [x for e in self.exif if e[0] in exif_changes and (x := _extent(e, order))]
        kept = self._kept_extents(ifd0_changes, exif_changes)
        if any(start + size > len(tiff) for start, size in kept):
            raise Refused("the EXIF block is damaged (a value it keeps points past its end)")
        ifd0 = [e for e in _apply(self.ifd0, ifd0_changes) if _tag(e) != EXIF_POINTER]
        ifd0_at = max([_reusable_end(tiff, freed)] + [start + size for start, size in kept])
        ifd0_at += ifd0_at & 1
        exif_at = ifd0_at + _ifd_size(len(ifd0) + bool(exif))
        if exif:
            ifd0.append(New(EXIF_POINTER, piexif.TYPES.Long, struct.pack(order + "I", exif_at)))
        values_at = exif_at + (_ifd_size(len(exif)) if exif else 0)
        values: list[bytes] = []
        ifd0_bytes = _ifd_bytes(ifd0, self.ifd0_next, order, values, values_at)
        exif_bytes = _ifd_bytes(exif, 0, order, values, values_at) if exif else b""
        head = tiff[:4] + struct.pack(order + "I", ifd0_at) + tiff[8:ifd0_at].ljust(ifd0_at - 8, b"\0")
        out = head + ifd0_bytes + exif_bytes + b"".join(values)
        for start, size in kept:
            if out[start:start + size] != tiff[start:start + size]:
                raise Refused(f"the EXIF block is damaged (rewriting it would change a kept value at {start})")
        _check_bounds(out)
        return out

    def _kept_extents(self, ifd0_changes: dict, exif_changes: dict) -> list[tuple[int, int]]:
        """(offset, size) of everything a patch keeps: the values outside their entries in IFD0 and the
        Exif IFD (unless changed), and the GPS, Interop and IFD1 directories with their values and the
        thumbnail."""
        order, tiff = self.order, self.tiff
        kept = [x for e in self.ifd0 if e[0] not in ifd0_changes and (x := _extent(e, order))]
        kept += [x for e in self.exif if e[0] not in exif_changes and (x := _extent(e, order))]
        for at in _sub_directories(self):
            entries = _read_ifd(tiff, at, order)[0]
            kept.append((at, _ifd_size(len(entries))))
            kept += [x for e in entries if (x := _extent(e, order))]
            thumb = [_pointer(e, order) for e in entries if e[0] in (THUMB_OFFSET, THUMB_LENGTH) and e[1] == 4]
            if at == self.ifd0_next and len(thumb) == 2:
                kept.append(tuple(thumb))
        return kept


def _sub_directories(exif: ExifBlock) -> list[int]:
    """Offsets of the GPS, Interop and IFD1 directories."""
    order = exif.order
    found = [_pointer(e, order) for entries, pointer in ((exif.ifd0, GPS_POINTER), (exif.exif, INTEROP_POINTER))
             for e in entries if e[0] == pointer]
    return found + ([exif.ifd0_next] if exif.ifd0_next else [])


def _read_ifd(tiff: bytes, at: int, order: str) -> tuple[list[tuple], int]:
    if at < 8 or at + 2 > len(tiff):
        raise Refused("the EXIF block is damaged (a directory lies outside it)")
    count = struct.unpack_from(order + "H", tiff, at)[0]
    end = at + 2 + 12 * count
    if end > len(tiff):
        raise Refused("the EXIF block is damaged (a directory runs past its end)")
    entries = [struct.unpack_from(order + "HHI4s", tiff, at + 2 + 12 * i) for i in range(count)]
    next_ifd = struct.unpack_from(order + "I", tiff, end)[0] if end + 4 <= len(tiff) else 0
    return entries, next_ifd


def _pointer(entry: tuple, order: str) -> int:
    return struct.unpack(order + "I", entry[3])[0]


def _extent(entry: tuple, order: str) -> tuple[int, int] | None:
    """(offset, size) of an entry's value when it lies outside the entry; None when inline or unknown."""
    size = entry[2] * TYPE_SIZES.get(entry[1], 0)
    return (_pointer(entry, order), size) if size > 4 else None


def _value(tiff: bytes, entry: tuple, order: str) -> bytes:
    size = entry[2] * TYPE_SIZES.get(entry[1], 0)
    if size <= 4:
        return entry[3][:size]
    at = _pointer(entry, order)
    if at + size > len(tiff):
        raise Refused(f"the EXIF block is damaged (tag 0x{entry[0]:04x} points past its end)")
    return tiff[at:at + size]


def _tag(entry) -> int:
    return entry.tag if isinstance(entry, New) else entry[0]


def _apply(entries: list, changes: dict) -> list:
    kept = [e for e in entries if _tag(e) not in changes]
    return kept + [New(tag, *change) for tag, change in changes.items() if change is not None]


def _ifd_size(count: int) -> int:
    return 2 + 12 * count + 4


def _reusable_end(tiff: bytes, freed: list[tuple[int, int]]) -> int:
    """Where to append: the block's end, moved back over freed regions at the end (an earlier write's)."""
    end = len(tiff)
    moved = True
    while moved:
        moved = False
        for start, size in freed:
            if 8 <= start < end and (start + size == end or (start + size == end - 1 and tiff[end - 1] == 0)):
                end, moved = start, True
    return end + (end & 1)


def _ifd_bytes(entries: list, next_ifd: int, order: str, values: list[bytes], values_at: int) -> bytes:
    """Serialise an IFD (sorted by tag); long values of new entries go to ``values`` (even offsets)."""
    out = [struct.pack(order + "H", len(entries))]
    for entry in sorted(entries, key=_tag):
        if not isinstance(entry, New):
            out.append(struct.pack(order + "HHI", *entry[:3]) + entry[3])
            continue
        count = len(entry.data) // TYPE_SIZES[entry.type]
        if len(entry.data) <= 4:
            field = entry.data.ljust(4, b"\0")
        else:
            field = struct.pack(order + "I", values_at + sum(map(len, values)))
            values.append(entry.data + b"\0" * (len(entry.data) & 1))
        out.append(struct.pack(order + "HHI", entry.tag, entry.type, count) + field)
    out.append(struct.pack(order + "I", next_ifd))
    return b"".join(out)


def _check_bounds(tiff: bytes) -> None:
    """Every directory and value reachable from IFD0 (Exif, GPS, Interop, IFD1, thumbnail) lies inside."""
    exif = ExifBlock.parse(tiff)
    order = exif.order
    directories = [exif.ifd0, exif.exif]
    for at in _sub_directories(exif):
        entries = _read_ifd(tiff, at, order)[0]
        directories.append(entries)
        thumb = [_pointer(e, order) for e in entries if e[0] in (THUMB_OFFSET, THUMB_LENGTH) and e[1] == 4]
        if at == exif.ifd0_next and len(thumb) == 2 and sum(thumb) > len(tiff):
            raise Refused("the EXIF block is damaged (the thumbnail runs past its end)")
    for entries in directories:
        for entry in entries:
            if (extent := _extent(entry, order)) and sum(extent) > len(tiff):
                raise Refused(f"the EXIF block is damaged (tag 0x{entry[0]:04x} points past its end)")
