"""The EXIF (TIFF) block, edited as exiftool edits one: nothing phototag does not own moves.

``ExifBlock.edit`` keeps every byte of the old block in place, so every offset in it stays valid (a
MakerNote's absolute ones, a thumbnail's, a pointer into another directory), and no entry is moved,
re-sorted or rewritten but those phototag changes. A changed entry changes in its place (its new
value appended at the end of the block); a directory that gains an entry is copied to the end with
the entry inserted before the first larger tag (the others keep their order, odd ones included), and
only the one pointer to it changes (the header's, or IFD0's ExifOffset). What the edit changed in
place is returned (``Restore``), so that ``clean`` and the next write can put the block back exactly
as it was. A block where that is not safe (``ExifBlock.unsafe``: a malformed Exif IFD pointer, a
directory that two pointers name, a value outside the block) raises ``Unsafe``, and phototag leaves
it byte for byte. piexif supplies only tag numbers and types.

Measured with piexif 1.1.3, which is why phototag does not let a library rewrite the block: ``load``
silently drops tags it does not know (a private 0xC7AB tag was lost); ``dump`` raises on a MakerNote
stored as BYTE, strips the APP segments from the thumbnail (1030 -> 1012 bytes), always writes
big-endian and moves every value, which breaks MakerNotes that use absolute offsets.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import piexif

from .errors import Refused

EXIF_POINTER = piexif.ImageIFD.ExifTag
GPS_POINTER = piexif.ImageIFD.GPSTag
INTEROP_POINTER = piexif.ExifIFD.InteroperabilityTag
THUMB_OFFSET = piexif.ImageIFD.JPEGInterchangeFormat
THUMB_LENGTH = piexif.ImageIFD.JPEGInterchangeFormatLength
POINTER_TAGS = (EXIF_POINTER, GPS_POINTER, INTEROP_POINTER, 0x014A)  # and SubIFDs
MAKER_NOTE = piexif.ExifIFD.MakerNote
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
    exif_next: int = 0

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
        exif, exif_next = _read_ifd(tiff, exif_at, order) if exif_at else ([], 0)
        return cls(tiff, order, ifd0_at, ifd0, ifd0_next, exif_at, exif, exif_next)

    def get(self, tag: int, *, in_exif_ifd: bool = False) -> bytes | None:
        """The raw value of a tag in IFD0 (or the Exif IFD)."""
        for entry in self.exif if in_exif_ifd else self.ifd0:
            if entry[0] == tag:
                return _value(self.tiff, entry, self.order)
        return None

    def is_empty(self) -> bool:
        return not self.ifd0 and not self.ifd0_next

    def unsafe(self) -> str:
        """Why editing this block in place is not safe ("" when it is): a directory phototag would
        grow (IFD0, the Exif IFD) that another pointer also names, a malformed Exif IFD pointer, a
        value outside the block (it may lie in another segment, which a longer block would move)."""
        if "_unsafe" not in self.__dict__:
            self.__dict__["_unsafe"] = self._find_unsafe()
        return self.__dict__["_unsafe"]

    def _find_unsafe(self) -> str:
        order, tiff = self.order, self.tiff
        exif_pointer = [e for e in self.ifd0 if e[0] == EXIF_POINTER]
        if exif_pointer and (len(exif_pointer) > 1 or exif_pointer[0][1] not in (4, 13) or exif_pointer[0][2] != 1):
            return "its Exif IFD pointer is malformed"
        targets = [self.ifd0_at, *([self.ifd0_next] if self.ifd0_next else [])]
        directories = [self.ifd0, self.exif]
        for at in _sub_directories(self):
            entries, next_ifd = _read_ifd(tiff, at, order)
            directories.append(entries)
            if at == self.ifd0_next and next_ifd:
                targets.append(next_ifd)
        for entries in directories:
            for entry in entries:
                if (extent := _extent(entry, order)) and sum(extent) > len(tiff):
                    return f"tag 0x{entry[0]:04x} points past its end, maybe into another part of the file"
                if entry[0] in POINTER_TAGS and entry[1] in (4, 13):
                    value = _value(tiff, entry, order)
                    targets += struct.unpack_from(order + f"{len(value) // 4}I", value)
        for at, name in ((self.ifd0_at, "IFD0"), (self.exif_at, "the Exif IFD")):
            if at is not None and targets.count(at) > 1:
                return f"another pointer names {name} too"
        return ""

    def patch(self, ifd0_changes: dict, exif_changes: dict) -> bytes:
        """``edit``'s new block."""
        return self.edit(ifd0_changes, exif_changes)[0]

    def edit(self, ifd0_changes: dict, exif_changes: dict, keep: tuple[int, ...] = (), *,
             check: bool = True) -> tuple[bytes, Restore]:
        """A new block with tags set (``(type, bytes)``) or removed (``None``), touching nothing else;
        and how to put the old one back.

        As exiftool edits a block: every existing byte stays where it is, and no entry is moved,
        re-sorted or rewritten but those changed. A changed entry is changed in its place, its new
        value appended at the end of the block; a directory that gains an entry is copied to the end
        with the entry inserted (the others in their order), and only the one pointer to it changes.
        ``Unsafe`` when the block is not safe to edit (see ``unsafe``); ``Refused`` when a kept value
        would change (values that overlap the changed entries, in a damaged block). ``keep``: where
        the block holds offsets that point outside it (``outside_pointers``), which the container
        sets when the file around the block changes: their bytes are kept in the ``Restore`` too.
        ``check=False``: the new block's values are not checked (an edit made only for its Restore)."""
        if problem := self.unsafe():
            raise Unsafe(f"the EXIF block is not safe to edit ({problem})")
        order, tiff = self.order, self.tiff
        editor = _Editor(self)
        ifd0_changes = dict(ifd0_changes)
        if self.exif_at is not None:
            exif_changes = {t: c for t, c in exif_changes.items() if c is not None or any(e[0] == t for e in self.exif)}
            if exif_changes:
                exif_at = editor.directory(self.exif_at, self.exif, self.exif_next, exif_changes)
                if all(c is None for c in exif_changes.values()) and not editor.remaining:
                    ifd0_changes[EXIF_POINTER] = None
                elif exif_at != self.exif_at:
                    ifd0_changes[EXIF_POINTER] = (piexif.TYPES.Long, struct.pack(order + "I", exif_at))
        elif new := {t: c for t, c in exif_changes.items() if c is not None}:
            exif_at = editor.directory(None, [], 0, new)
            ifd0_changes[EXIF_POINTER] = (piexif.TYPES.Long, struct.pack(order + "I", exif_at))
        ifd0_at = editor.directory(self.ifd0_at, self.ifd0, self.ifd0_next, ifd0_changes)
        if ifd0_at != self.ifd0_at:
            editor.change(4, struct.pack(order + "I", ifd0_at))
        out = bytes(editor.out)
        for start, size in self._kept_extents(ifd0_changes, exif_changes) if check else ():
            if out[start:start + size] != tiff[start:start + size]:
                raise Refused(f"the EXIF block is damaged (editing it would change a kept value at {start})")
        if check:
            _check_bounds(out)
        for at in keep:
            editor.spans.setdefault(at, tiff[at:at + 4])
        return out, Restore(len(tiff), _digest(tiff), sorted(editor.spans.items()))

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


# Maker notes laid out as an IFD: (how they start, where the IFD starts, whether offsets count from the
# maker note rather than the TIFF header). Others (Nikon's, with a TIFF header of their own) hold
# nothing outside the block.
MAKER_NOTE_IFDS = ((b"OLYMPUS\0", 12, True), (b"OM SYSTEM\0", 16, True), (b"OLYMP\0", 8, False),
                   (b"SONY DSC \0\0\0", 12, False), (b"Panasonic\0\0\0", 12, False), (b"", 0, False))
JPEG_SOI = b"\xff\xd8\xff"


def outside_pointers(tiff: bytes, data, tiff_at: int) -> list[tuple[int, int]]:
    """(where in the block, the file position it points at) of each offset in an EXIF block that
    points past the block's end at a JPEG image in the file (``data``; the block starts at
    ``tiff_at``): a preview stored after the image data (Minolta, Olympus and Samsung maker notes),
    a thumbnail outside the segment. Looked for in IFD0, the Exif IFD and IFD1, and in a maker note
    laid out as an IFD (and its sub-IFDs); [] for a block that cannot be read."""
    try:
        block = ExifBlock.parse(tiff)
        order = block.order
        found: list[tuple[int, int]] = []

        def scan(at: int, base: int, limit: int, depth: int = 0) -> None:
            entries = _read_ifd(tiff, at, order)[0] if 8 <= at and at + 2 <= limit else []
            if not 0 < len(entries) <= 512 or at + _ifd_size(len(entries)) > limit + 4 or sum(
                    not 1 <= e[1] <= 13 for e in entries) > len(entries) // 8:
                return
            for i, e in enumerate(entries):
                if e[1] in (4, 13) and e[2] == 1:
                    target = base + _pointer(e, order)
                    if target >= len(tiff) and bytes(data[tiff_at + target:tiff_at + target + 3]) == JPEG_SOI:
                        found.append((at + 2 + 12 * i + 8, tiff_at + target))
                    elif depth < 1 and e[1] == 13 and base <= target < limit:  # a sub-IFD (Olympus)
                        scan(target, base, limit, depth + 1)
                elif depth < 1 and e[1] == 7 and (extent := _extent(e, order)) and base + sum(extent) <= limit:
                    scan(base + extent[0], base, limit, depth + 1)  # a sub-IFD stored as bytes (Olympus)

        for at in (block.ifd0_at, block.exif_at, block.ifd0_next):
            if at:
                scan(at, 0, len(tiff), 1)
        note = next((e for e in block.exif if e[0] == MAKER_NOTE and (x := _extent(e, order)) and sum(x) <= len(tiff)),
                    None)
        if note is not None:
            start, size = _extent(note, order)
            head = tiff[start:start + 16]
            for signature, skip, relative in MAKER_NOTE_IFDS:
                if head.startswith(signature):
                    scan(start + skip, start if relative else 0, start + size)
                    break
        return sorted(set(found))
    except (Refused, struct.error):
        return []


class Unsafe(Refused):
    """The EXIF block is not safe to edit in place; phototag leaves it as it is."""


@dataclass
class Restore:
    """How to put a block back as it was before an ``edit``: its length and digest, and its bytes
    that the edit changed in place (the rest of the edit lies after them)."""

    length: int
    digest: str
    spans: list[tuple[int, bytes]]

    def to_json(self) -> dict:
        return {"length": self.length, "sha256": self.digest, "spans": [[at, data.hex()] for at, data in self.spans]}

    @classmethod
    def from_json(cls, value) -> Restore | None:
        try:
            spans = [(int(at), bytes.fromhex(data)) for at, data in value["spans"]]
            return cls(int(value["length"]), str(value["sha256"]), spans)
        except (TypeError, ValueError, KeyError, AttributeError):
            return None

    def original(self, tiff: bytes) -> bytes | None:
        """The block as it was before the edit that made ``tiff``; None when ``tiff`` is not what
        that edit made (another program has changed it since: the digest does not match)."""
        if len(tiff) < self.length or any(at < 0 or at + len(data) > self.length for at, data in self.spans):
            return None
        out = bytearray(tiff[:self.length])
        for at, data in self.spans:
            out[at:at + len(data)] = data
        return bytes(out) if _digest(out) == self.digest else None


def _digest(data) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class _Editor:
    """A block being edited: changes in place remembered (their old bytes), additions appended."""

    def __init__(self, block: ExifBlock):
        self.order = block.order
        self.tiff = block.tiff
        self.out = bytearray(block.tiff)
        self.spans: dict[int, bytes] = {}
        self.remaining = 0  # entries left in the last directory edited

    def change(self, at: int, data: bytes) -> None:
        if at < len(self.tiff):
            self.spans.setdefault(at, self.tiff[at:at + len(data)])
        self.out[at:at + len(data)] = data

    def append(self, data: bytes) -> int:
        if len(self.out) & 1:
            self.out += b"\0"
        at = len(self.out)
        self.out += data
        return at

    def entry(self, tag: int, type_: int, data: bytes) -> bytes:
        """A 12-byte entry; a value over 4 bytes is appended to the block."""
        count = len(data) // TYPE_SIZES[type_]
        field = data.ljust(4, b"\0") if len(data) <= 4 else struct.pack(self.order + "I", self.append(data))
        return struct.pack(self.order + "HHI", tag, type_, count) + field

    def directory(self, at: int | None, entries: list[tuple], next_ifd: int, changes: dict) -> int:
        """Apply ``changes`` to the directory at ``at`` (None: a new one); returns where it is now."""
        order = self.order
        changes = {tag: change for tag, change in changes.items()
                   if not any(e[0] == tag and change is not None and (e[1], _value(self.tiff, e, order))
                              == (change[0], change[1]) for e in entries)}
        present = {e[0] for e in entries}
        added = sorted((tag, change) for tag, change in changes.items() if change is not None and tag not in present)
        removed = {tag for tag, change in changes.items() if change is None and tag in present}
        kept = [e for e in entries if e[0] not in removed]
        self.remaining = len(kept) + len(added)
        if at is not None and not added and not removed:
            for i, e in enumerate(entries):
                if e[0] in changes:
                    self.change(at + 2 + 12 * i + 2, self.entry(e[0], *changes[e[0]])[2:])
            return at
        layout: list = list(kept)
        for tag, change in added:  # before the first entry with a larger tag: the others keep their order
            index = next((i for i, e in enumerate(layout) if _tag(e) > tag), len(layout))
            layout.insert(index, New(tag, *change))
        size = _ifd_size(len(layout))
        new_at = at if at is not None and not added else self.append(bytes(size))
        data = [struct.pack(order + "H", len(layout))]
        for e in layout:
            if isinstance(e, New):
                data.append(self.entry(e.tag, e.type, e.data))
            elif e[0] in changes:
                data.append(self.entry(e[0], *changes[e[0]]))
            else:
                data.append(struct.pack(order + "HHI", *e[:3]) + e[3])
        data.append(struct.pack(order + "I", next_ifd))
        block = b"".join(data)
        if new_at == at:  # entries removed: the directory shrinks in place
            self.change(at, block + bytes(_ifd_size(len(entries)) - len(block)))
        else:
            self.out[new_at:new_at + size] = block
        return new_at


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


def _ifd_size(count: int) -> int:
    return 2 + 12 * count + 4


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
