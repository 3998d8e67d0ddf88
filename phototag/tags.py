"""Write each photo's faces into its EXIF (JPEG, WebP) or an XMP sidecar, safely, and remove them again.

What goes where
---------------
* ``XPKeywords`` (IFD0; Windows Explorer's *Tags*, UTF-16LE, NUL-terminated, ``;``-separated):
  human-readable keywords (``phototag``, ``faces: 2``, ``female``, ``age 20-29``), merged with the
  keywords already there.
* ``UserComment`` (Exif IFD): the machine-readable record, one line ``phototag:{json}`` (schema
  version, model version, EXIF orientation, per face the box (left, top, w, h) normalised to the
  *stored* image, rotation in degrees counter-clockwise *as displayed*, gender, probability of
  female, age; and which keywords phototag added). UserComment is the EXIF field meant for
  text "besides ImageDescription", so it is the one that apps may use. When it already holds the
  user's text, the record goes in front of it, followed by a newline, and the user's bytes are kept
  as they were (same character code, padding and all): ``clean`` cuts the record off and leaves
  them exactly. A Unicode comment gets the record in UTF-16, in the EXIF block's byte order.
* Which keywords are phototag's: the record lists those it *added*. A keyword the user already had
  (compared case-insensitively) is not added again and not listed, so ``clean`` leaves it. A
  keyword the user adds later that equals a listed one cannot be told apart and goes with ``clean``.

Why phototag edits the EXIF block itself
----------------------------------------
Measured with piexif 1.1.3: ``insert`` drops the JFIF APP0 segment (or overwrites it when there is
no Exif segment yet); ``load`` silently drops tags it does not know (a private 0xC7AB tag was lost);
``dump`` raises on a MakerNote stored as BYTE, strips the APP segments from the thumbnail (1030 ->
1012 bytes), always writes big-endian and moves every value, which breaks MakerNotes that use
absolute offsets. So phototag keeps the original TIFF bytes where they are (every offset in them
stays valid) and appends a new IFD0 and Exif IFD holding the changed entries; the header points at
the new IFD0. Whatever an earlier phototag write left at the end of the block is reused, so
rewriting does not grow the file. piexif supplies the tag numbers and types. In the container only
the APP1 Exif segment (JPEG) or the EXIF chunk and VP8X flags (WebP) change; the image data, the
other segments and chunks, the thumbnail, ICC profile and XMP are copied byte for byte.

Atomic writes: a temporary file in the same folder, fsync, ``os.replace``, fsync of the folder;
permission bits, owner (where allowed) and by default the access/modification times are kept.
Files that are read-only, hard-linked or changed meanwhile are left alone and reported.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import stat
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import piexif

from .records import Face, PhotoInfo
from .sidecar import NotXmp, Region, Sidecar, sidecar_path

SCHEMA_VERSION = 1
RECORD_MARK = "phototag:"
XP_KEYWORDS = piexif.ImageIFD.XPKeywords
USER_COMMENT = piexif.ExifIFD.UserComment
EXIF_POINTER = piexif.ImageIFD.ExifTag
GPS_POINTER = piexif.ImageIFD.GPSTag
INTEROP_POINTER = piexif.ExifIFD.InteroperabilityTag
THUMB_OFFSET = piexif.ImageIFD.JPEGInterchangeFormat
THUMB_LENGTH = piexif.ImageIFD.JPEGInterchangeFormatLength
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
ASCII_CODE, UNICODE_CODE = b"ASCII\0\0\0", b"UNICODE\0"
JPEG_EXIF_MAX = 0xFFFF - 2 - 6  # APP1 length field counts itself; then "Exif\0\0"
EMPTY_TIFF = b"MM\0*" + struct.pack(">IHI", 8, 0, 0)
GENDER_WORDS = {"f": "female", "m": "male"}
VP8X_ALPHA, VP8X_EXIF = 0x10, 0x08
WEBP_EARLY_CHUNKS = (b"VP8X", b"ICCP", b"ANIM", b"ALPH", b"VP8 ", b"VP8L", b"ANMF")
TEMP_SUFFIX = ".phototag-tmp"

# Displayed-frame point (u, v), normalised, to the stored frame, per EXIF orientation; the inverse of
# what ``ImageOps.exif_transpose`` does (e.g. 6: stored rotated 90 degrees clockwise for display).
_TO_STORED = {
    1: lambda u, v: (u, v),
    2: lambda u, v: (1 - u, v),
    3: lambda u, v: (1 - u, 1 - v),
    4: lambda u, v: (u, 1 - v),
    5: lambda u, v: (v, u),
    6: lambda u, v: (v, 1 - u),
    7: lambda u, v: (1 - v, 1 - u),
    8: lambda u, v: (1 - v, u),
}


@dataclass
class WriteResult:
    """What a write did: ``written``, ``unchanged``, ``unsupported`` or ``failed`` (``reason`` says why)."""

    status: str
    reason: str = ""


@dataclass
class CleanResult:
    """What ``clean`` removed from one photo (or would remove, in a dry run)."""

    keywords: list[str] = field(default_factory=list)  # phototag keywords taken out of XPKeywords
    record: bool = False  # phototag's EXIF record
    sidecar_keywords: list[str] = field(default_factory=list)
    regions: int = 0  # face regions taken out of the sidecar
    sidecar_deleted: bool = False  # the sidecar held nothing else
    failed: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.keywords or self.record or self.sidecar_keywords or self.regions or self.sidecar_deleted)

    def summary(self) -> str:
        """One line for people."""
        parts = []
        if self.record:
            parts.append("EXIF record")
        if self.keywords or self.sidecar_keywords:
            parts.append("keywords " + ", ".join(dict.fromkeys(self.keywords + self.sidecar_keywords)))
        if self.regions:
            parts.append(f"{self.regions} sidecar region(s)")
        if self.sidecar_deleted:
            parts.append("sidecar file")
        return "; ".join(parts)


class Refused(ValueError):
    """The file cannot be written safely; it is left as it is."""


class Unsupported(ValueError):
    """A format phototag does not write EXIF into."""


# -- public API -------------------------------------------------------------------------------------


def photo_keywords(faces: list[Face]) -> list[str]:
    """The human-readable keywords for a photo's faces."""
    words = ["phototag", f"faces: {len(faces)}"]
    words += sorted({GENDER_WORDS[f.gender] for f in faces if f.gender in GENDER_WORDS})
    decades = sorted({int(max(f.age, 0.0)) // 10 * 10 for f in faces})
    return words + [f"age {d}-{d + 9}" for d in decades]


def stored_box(box: tuple[float, float, float, float], info: PhotoInfo) -> tuple[float, float, float, float]:
    """A box (x, y, w, h) in displayed-frame pixels as (left, top, w, h) normalised to the stored image."""
    x, y, w, h = box
    to_stored = _TO_STORED.get(info.orientation, _TO_STORED[1])
    s0, t0 = to_stored(x / info.width, y / info.height)
    s1, t1 = to_stored((x + w) / info.width, (y + h) / info.height)
    left, right = sorted(min(max(v, 0.0), 1.0) for v in (s0, s1))
    top, bottom = sorted(min(max(v, 0.0), 1.0) for v in (t0, t1))
    return left, top, right - left, bottom - top


def write_faces(path, faces: list[Face], info: PhotoInfo, model_version: str, *,
                keep_mtime: bool = True) -> WriteResult:
    """Put the faces' keywords and record into the photo's EXIF; never raises for a bad or odd file."""
    path = Path(os.fsdecode(path))
    try:
        with _Photo.open(path) as photo:
            _check_writable(path)
            exif = _Exif.parse(photo.tiff or EMPTY_TIFF)
            code, previous, user, encoding = _split_comment(exif.get(USER_COMMENT, in_exif_ifd=True), exif.order)
            current = _decode_keywords(exif.get(XP_KEYWORDS))
            keywords, added = _merge_keywords(current, _own_keywords(previous), photo_keywords(faces))
            record = _record(faces, info, model_version, added)
            if photo.lacks_vp8x or (previous or {}).get("webp_vp8x"):
                record["webp_vp8x"] = True
            new_keywords = _encode_keywords(keywords)
            new_comment = _join_comment(code, record, user, encoding)
            if (exif.get(XP_KEYWORDS), exif.get(USER_COMMENT, in_exif_ifd=True)) == (new_keywords, new_comment):
                return WriteResult("unchanged")
            tiff = exif.patch({XP_KEYWORDS: (piexif.TYPES.Byte, new_keywords)},
                              {USER_COMMENT: (piexif.TYPES.Undefined, new_comment)})
            _replace(path, photo.with_exif(tiff), like=photo.stat, expect=photo.stat, keep_times=keep_mtime)
        return WriteResult("written")
    except Unsupported as error:
        return WriteResult("unsupported", str(error))
    except (Refused, OSError, struct.error) as error:
        return WriteResult("failed", _reason(error))


def write_sidecar(path, faces: list[Face], info: PhotoInfo, model_version: str) -> WriteResult:
    """Write or update ``photo.ext.xmp`` with the keywords and MWG face regions; works for every format."""
    path = Path(os.fsdecode(path))
    target = sidecar_path(Path(os.path.realpath(path)))
    try:
        existing = target.read_bytes() if target.exists() else None
        doc = Sidecar(existing)
        _, added = _merge_keywords(doc.keywords(), doc.own_keywords(), photo_keywords(faces))
        doc.replace_own_keywords(added)
        doc.replace_own_regions([_region(face, info) for face in faces], (info.stored_width, info.stored_height))
        doc.set_properties({"Schema": str(SCHEMA_VERSION), "Model": model_version})
        data = doc.to_bytes()
        if data == existing:
            return WriteResult("unchanged")
        if existing is None:
            _replace(target, [data], like=path.stat(), expect=None, keep_times=False)
        else:
            _check_writable(target)
            before = target.stat()
            _replace(target, [data], like=before, expect=before, keep_times=False)
        return WriteResult("written")
    except (NotXmp, Refused, OSError) as error:
        return WriteResult("failed", _reason(error))


def read_record(path) -> dict | None:
    """phototag's record from the photo's EXIF, or None (no record, or a format without EXIF support)."""
    exif = _read_exif(Path(os.fsdecode(path)))
    try:
        return None if exif is None else _split_comment(exif.get(USER_COMMENT, in_exif_ifd=True), exif.order)[1]
    except Refused:
        return None


def read_keywords(path) -> list[str]:
    """The photo's ``XPKeywords`` (all of them, the user's and phototag's)."""
    exif = _read_exif(Path(os.fsdecode(path)))
    return [] if exif is None else _decode_keywords(exif.get(XP_KEYWORDS))


def clean(path, *, dry_run: bool = False, keep_mtime: bool = True) -> CleanResult:
    """Remove exactly what phototag wrote to the photo and its sidecar; ``dry_run`` only reports it."""
    path = Path(os.fsdecode(path))
    result = CleanResult()
    try:
        _clean_exif(path, result, dry_run, keep_mtime)
        _clean_sidecar(path, result, dry_run)
    except (Refused, NotXmp, OSError, struct.error) as error:
        result.failed = _reason(error)
    return result


def files_under(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named and those in the folders named (recursively, sorted), sidecars and temp files left out."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith((".xmp", TEMP_SUFFIX)):
                    yield Path(folder, name)


# -- keywords and record ----------------------------------------------------------------------------


def _merge_keywords(current: list[str], own_before: list[str], ours: list[str]) -> tuple[list[str], list[str]]:
    """(all keywords, those phototag adds): the user's stay, ours already present are not added twice."""
    user = _without(current, own_before)
    present = {k.casefold() for k in user}
    added = [k for k in ours if k.casefold() not in present]
    return user + added, added


def _without(words: list[str], remove: list[str]) -> list[str]:
    """``words`` minus one occurrence (the last) of each of ``remove``."""
    remaining = list(words)
    for word in remove:
        if word in remaining:
            del remaining[len(remaining) - 1 - remaining[::-1].index(word)]
    return remaining


def _own_keywords(record: dict | None) -> list[str]:
    words = (record or {}).get("keywords")
    return [w for w in words if isinstance(w, str)] if isinstance(words, list) else []


def _record(faces: list[Face], info: PhotoInfo, model_version: str, added: list[str]) -> dict:
    return {
        "phototag": SCHEMA_VERSION,
        "model": model_version,
        "frame": "stored",
        "orientation": info.orientation,
        "faces": [{
            "box": [round(v, 4) for v in stored_box(face.box, info)],
            "rotation": round(face.rotation, 1),
            "gender": face.gender,
            "p_female": round(face.p_female, 3),
            "age": round(face.age, 1),
        } for face in faces],
        "keywords": added,
    }


def _region(face: Face, info: PhotoInfo) -> Region:
    left, top, w, h = stored_box(face.box, info)
    gender = GENDER_WORDS.get(face.gender, "face")
    return Region(left + w / 2, top + h / 2, w, h, f"{gender}, age {face.age:.0f}", {
        "Gender": face.gender,
        "PFemale": f"{face.p_female:.3f}",
        "Age": f"{face.age:.1f}",
        "Rotation": f"{face.rotation:.1f}",
    })


def _decode_keywords(raw: bytes | None) -> list[str]:
    if not raw:
        return []
    text = raw[: len(raw) // 2 * 2].decode("utf-16-le", errors="replace").split("\0", 1)[0]
    return [word.strip() for word in text.split(";") if word.strip()]


def _encode_keywords(words: list[str]) -> bytes | None:
    return ";".join(words).encode("utf-16-le") + b"\0\0" if words else None


def _split_comment(raw: bytes | None, order: str) -> tuple[bytes, dict | None, bytes, str]:
    """(character code, phototag's record or None, the user's bytes, encoding for the record)."""
    if raw is None:
        return ASCII_CODE, None, b"", "latin-1"
    if len(raw) < 8:
        raise Refused("UserComment is shorter than its 8-byte character code")
    code, payload = raw[:8], raw[8:]
    candidates = ["utf-16-le", "utf-16-be"] if code == UNICODE_CODE else ["latin-1"]
    if code == UNICODE_CODE and order == ">":
        candidates.reverse()
    for encoding in candidates:
        if not payload.startswith(RECORD_MARK.encode(encoding)):
            continue
        text = payload.decode(encoding, errors="replace")
        try:
            record, end = json.JSONDecoder().raw_decode(text, len(RECORD_MARK))
        except ValueError:
            break
        if not isinstance(record, dict) or not text[:end].isascii():
            break
        rest = payload[end * len("a".encode(encoding)):]
        newline = "\n".encode(encoding)
        return code, record, rest[len(newline):] if rest.startswith(newline) else rest, encoding
    return code, None, payload, candidates[0]


def _join_comment(code: bytes, record: dict, user: bytes, encoding: str) -> bytes:
    ours = RECORD_MARK + json.dumps(record, ensure_ascii=True, separators=(",", ":"))
    return code + ours.encode(encoding) + ("\n".encode(encoding) + user if user else b"")


# -- the EXIF (TIFF) block --------------------------------------------------------------------------


@dataclass
class _New:
    """An entry to write: its value is placed after the IFD when longer than 4 bytes."""

    tag: int
    type: int
    data: bytes


@dataclass
class _Exif:
    """A parsed EXIF TIFF block: byte order, IFD0 and Exif IFD as raw 12-byte entries."""

    tiff: bytes
    order: str  # struct prefix, "<" or ">"
    ifd0_at: int
    ifd0: list[tuple]  # (tag, type, count, 4-byte value field)
    ifd0_next: int
    exif_at: int | None
    exif: list[tuple]

    @classmethod
    def parse(cls, tiff: bytes) -> _Exif:
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
        """A new block with tags set (``(type, bytes)``) or removed (``None``); old bytes stay in place."""
        order, tiff = self.order, self.tiff
        freed = [(self.ifd0_at, _ifd_size(len(self.ifd0)))]
        freed += [x for e in self.ifd0 if e[0] in ifd0_changes and (x := _extent(e, order))]
        exif = _apply(self.exif, exif_changes)
        if self.exif_at:
            freed.append((self.exif_at, _ifd_size(len(self.exif))))
            freed += [x for e in self.exif if e[0] in exif_changes and (x := _extent(e, order))]
        ifd0 = [e for e in _apply(self.ifd0, ifd0_changes) if _tag(e) != EXIF_POINTER]
        ifd0_at = _reusable_end(tiff, freed)
        exif_at = ifd0_at + _ifd_size(len(ifd0) + bool(exif))
        if exif:
            ifd0.append(_New(EXIF_POINTER, piexif.TYPES.Long, struct.pack(order + "I", exif_at)))
        values_at = exif_at + (_ifd_size(len(exif)) if exif else 0)
        values: list[bytes] = []
        ifd0_bytes = _ifd_bytes(ifd0, self.ifd0_next, order, values, values_at)
        exif_bytes = _ifd_bytes(exif, 0, order, values, values_at) if exif else b""
        head = tiff[:4] + struct.pack(order + "I", ifd0_at) + tiff[8:ifd0_at].ljust(ifd0_at - 8, b"\0")
        out = head + ifd0_bytes + exif_bytes + b"".join(values)
        _check_bounds(out)
        return out


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
    return entry.tag if isinstance(entry, _New) else entry[0]


def _apply(entries: list, changes: dict) -> list:
    kept = [e for e in entries if _tag(e) not in changes]
    return kept + [_New(tag, *change) for tag, change in changes.items() if change is not None]


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
        if not isinstance(entry, _New):
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
    exif = _Exif.parse(tiff)
    order = exif.order
    directories = [exif.ifd0, exif.exif]
    for entries, pointer in ((exif.ifd0, GPS_POINTER), (exif.exif, INTEROP_POINTER)):
        directories += [_read_ifd(tiff, _pointer(e, order), order)[0] for e in entries if e[0] == pointer]
    if exif.ifd0_next:
        ifd1 = _read_ifd(tiff, exif.ifd0_next, order)[0]
        directories.append(ifd1)
        thumb = [_pointer(e, order) for e in ifd1 if e[0] in (THUMB_OFFSET, THUMB_LENGTH) and e[1] == 4]
        if len(thumb) == 2 and sum(thumb) > len(tiff):
            raise Refused("the EXIF block is damaged (the thumbnail runs past its end)")
    for entries in directories:
        for entry in entries:
            if (extent := _extent(entry, order)) and sum(extent) > len(tiff):
                raise Refused(f"the EXIF block is damaged (tag 0x{entry[0]:04x} points past its end)")


# -- containers -------------------------------------------------------------------------------------


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


class _Photo:
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
    def open(cls, path: Path) -> Iterator[_Photo]:
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


def _webp_with_exif(photo: _Photo, tiff: bytes | None, drop_vp8x: bool) -> list[bytes]:
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


def _read_exif(path: Path) -> _Exif | None:
    try:
        with _Photo.open(path) as photo:
            return _Exif.parse(photo.tiff) if photo.tiff else None
    except (Unsupported, Refused, struct.error):
        return None


# -- clean ------------------------------------------------------------------------------------------


def _clean_exif(path: Path, result: CleanResult, dry_run: bool, keep_mtime: bool) -> None:
    try:
        with _Photo.open(path) as photo:
            if photo.tiff:
                _clean_photo(path, photo, result, dry_run, keep_mtime)
    except Unsupported:
        return


def _clean_photo(path: Path, photo: _Photo, result: CleanResult, dry_run: bool, keep_mtime: bool) -> None:
    exif = _Exif.parse(photo.tiff)
    code, record, user, _ = _split_comment(exif.get(USER_COMMENT, in_exif_ifd=True), exif.order)
    if record is None:
        return
    current = _decode_keywords(exif.get(XP_KEYWORDS))
    remaining = _without(current, _own_keywords(record))
    result.keywords = _without(current, remaining)
    result.record = True
    if dry_run:
        return
    _check_writable(path)
    tiff = exif.patch({XP_KEYWORDS: (piexif.TYPES.Byte, _encode_keywords(remaining)) if remaining else None},
                      {USER_COMMENT: (piexif.TYPES.Undefined, code + user) if user else None})
    if _Exif.parse(tiff).is_empty():
        tiff = None
    pieces = photo.with_exif(tiff, drop_vp8x=bool(record.get("webp_vp8x")))
    _replace(path, pieces, like=photo.stat, expect=photo.stat, keep_times=keep_mtime)


def _clean_sidecar(path: Path, result: CleanResult, dry_run: bool) -> None:
    target = sidecar_path(Path(os.path.realpath(path)))
    if not target.exists():
        return
    existing = target.read_bytes()
    doc = Sidecar(existing)
    result.sidecar_keywords, result.regions = doc.remove_own()
    data = doc.to_bytes()
    if data == Sidecar(existing).to_bytes():
        return
    result.sidecar_deleted = doc.is_empty()
    if dry_run:
        return
    _check_writable(target)
    if result.sidecar_deleted:
        target.unlink()
        _fsync_dir(target.parent)
    else:
        before = target.stat()
        _replace(target, [data], like=before, expect=before, keep_times=False)


# -- safe file replacement --------------------------------------------------------------------------


def _check_writable(path: Path) -> None:
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise Refused("not a regular file")
    if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise Refused("the file is read-only")
    if st.st_nlink > 1:
        raise Refused(f"the file has {st.st_nlink} hard links; rewriting it would split them")


def _replace(path: Path, pieces: list, *, like: os.stat_result, expect: os.stat_result | None,
             keep_times: bool) -> None:
    """Write ``pieces`` to a temp file beside ``path``, fsync it and rename it over ``path``.

    The new file gets ``like``'s permission bits, its owner where allowed and, with ``keep_times``,
    its access and modification times. ``path`` must still match ``expect`` (None: must not exist).
    """
    path = Path(os.path.realpath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with open(fd, "wb") as file:
            for piece in pieces:
                file.write(piece)
            file.flush()
            os.fchmod(file.fileno(), stat.S_IMODE(like.st_mode))
            if (like.st_uid, like.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(file.fileno(), like.st_uid, like.st_gid)
            os.fsync(file.fileno())
        if keep_times:
            os.utime(temp, ns=(like.st_atime_ns, like.st_mtime_ns))
        _expect(path, expect)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _expect(path: Path, expect: os.stat_result | None) -> None:
    try:
        now = path.stat()
    except FileNotFoundError:
        now = None
    same = (now is None if expect is None else now is not None and
            (now.st_ino, now.st_size, now.st_mtime_ns) == (expect.st_ino, expect.st_size, expect.st_mtime_ns))
    if not same:
        raise Refused("the file changed while phototag was writing it")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"{error.strerror or error.__class__.__name__}" + (f": {error.filename}" if error.filename else "")
    return str(error) or error.__class__.__name__
