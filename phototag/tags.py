"""Write each photo's faces into its EXIF (JPEG, WebP) or an XMP sidecar, safely, and remove them again.

This module puts the stages together: ``policy`` decides what is written, ``containers`` and ``tiff``
edit the file's bytes, ``sidecar`` the XMP document, and ``atomic`` replaces the file (a temporary
file in the same folder, fsync, rename, fsync of the folder). Permission bits, owner (where allowed)
and by default the access/modification times are kept. Files that are read-only, hard-linked or
changed meanwhile are left alone and reported.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import piexif

from . import policy
from .atomic import TEMP_SUFFIX, Refused, Written, check_writable, remove, replace
from .containers import Photo, Unsupported, read_exif
from .records import Face, PhotoInfo
from .sidecar import NotXmp, Sidecar, sidecar_path
from .tiff import EMPTY_TIFF, ExifBlock

XP_KEYWORDS = piexif.ImageIFD.XPKeywords
USER_COMMENT = piexif.ExifIFD.UserComment


@dataclass
class WriteResult:
    """What a write did: ``written``, ``unchanged``, ``changed`` (the file is not the one read),
    ``unsupported`` or ``failed`` (``reason`` says why).

    ``file`` describes the file as written (size, mtime, inode, SHA-256) when ``status`` is ``written``.
    """

    status: str
    reason: str = ""
    file: Written | None = None


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


def write_faces(path, faces: list[Face], info: PhotoInfo, model_version: str, *,
                keep_mtime: bool = True, read: Written | None = None,
                before_rename: Callable[[Written], None] | None = None) -> WriteResult:
    """Put the faces' keywords and record into the photo's EXIF; never raises for a bad or odd file.

    ``read``: the file the faces were found in; when the file is no longer that one (size, mtime,
    inode, SHA-256), nothing is written and the status is ``changed``. ``before_rename`` is told what
    the new file will be just before it replaces the old one.
    """
    path = Path(os.fsdecode(path))
    try:
        with Photo.open(path) as photo:
            if read is not None and not _is_file(photo, read):
                return WriteResult("changed", "the file changed after it was read")
            check_writable(path)
            exif = ExifBlock.parse(photo.tiff or EMPTY_TIFF)
            code, previous, user, encoding = policy.split_comment(_comment(exif), exif.order)
            current = policy.decode_keywords(exif.get(XP_KEYWORDS))
            ours = policy.photo_keywords(faces)
            keywords, added = policy.merge_keywords(current, policy.own_keywords(previous), ours)
            record = policy.exif_record(faces, info, model_version, added)
            if photo.lacks_vp8x or (previous or {}).get("webp_vp8x"):
                record["webp_vp8x"] = True
            new_keywords = policy.encode_keywords(keywords)
            new_comment = policy.join_comment(code, record, user, encoding)
            if (exif.get(XP_KEYWORDS), _comment(exif)) == (new_keywords, new_comment):
                return WriteResult("unchanged")
            tiff = exif.patch({XP_KEYWORDS: (piexif.TYPES.Byte, new_keywords)},
                              {USER_COMMENT: (piexif.TYPES.Undefined, new_comment)})
            written = replace(path, photo.with_exif(tiff), like=photo.stat, expect=photo.stat,
                              keep_times=keep_mtime, before_rename=before_rename)
        return WriteResult("written", file=written)
    except Unsupported as error:
        return WriteResult("unsupported", str(error))
    except (Refused, OSError, struct.error) as error:
        return WriteResult("failed", _reason(error))


def _is_file(photo: Photo, read: Written) -> bool:
    st = photo.stat
    return ((st.st_size, st.st_mtime_ns, st.st_ino) == (read.size, read.mtime_ns, read.inode)
            and hashlib.sha256(photo.data).hexdigest() == read.sha256)


def write_sidecar(path, faces: list[Face], info: PhotoInfo, model_version: str) -> WriteResult:
    """Write or update ``photo.ext.xmp`` with the keywords and MWG face regions; works for every format."""
    path = Path(os.fsdecode(path))
    target = sidecar_path(Path(os.path.realpath(path)))
    try:
        existing = target.read_bytes() if target.exists() else None
        doc = Sidecar(existing)
        _, added = policy.merge_keywords(doc.keywords(), doc.own_keywords(), policy.photo_keywords(faces))
        doc.replace_own_keywords(added)
        regions = [policy.face_region(face, info) for face in faces]
        doc.replace_own_regions(regions, (info.stored_width, info.stored_height))
        doc.set_properties({"Schema": str(policy.SCHEMA_VERSION), "Model": model_version})
        data = doc.to_bytes()
        if data == existing:
            return WriteResult("unchanged")
        if existing is None:
            written = replace(target, [data], like=path.stat(), expect=None, keep_times=False)
        else:
            check_writable(target)
            before = target.stat()
            written = replace(target, [data], like=before, expect=before, keep_times=False)
        return WriteResult("written", file=written)
    except (NotXmp, Refused, OSError) as error:
        return WriteResult("failed", _reason(error))


def read_record(path) -> dict | None:
    """phototag's record from the photo's EXIF, or None (no record, or a format without EXIF support)."""
    exif = read_exif(Path(os.fsdecode(path)))
    try:
        return None if exif is None else policy.split_comment(_comment(exif), exif.order)[1]
    except Refused:
        return None


def read_keywords(path) -> list[str]:
    """The photo's ``XPKeywords`` (all of them, the user's and phototag's)."""
    exif = read_exif(Path(os.fsdecode(path)))
    return [] if exif is None else policy.decode_keywords(exif.get(XP_KEYWORDS))


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


# -- clean -----------------------------------------------------------------------------------------


def _clean_exif(path: Path, result: CleanResult, dry_run: bool, keep_mtime: bool) -> None:
    try:
        with Photo.open(path) as photo:
            if photo.tiff:
                _clean_photo(path, photo, result, dry_run, keep_mtime)
    except Unsupported:
        return


def _clean_photo(path: Path, photo: Photo, result: CleanResult, dry_run: bool, keep_mtime: bool) -> None:
    exif = ExifBlock.parse(photo.tiff)
    code, record, user, _ = policy.split_comment(_comment(exif), exif.order)
    if record is None:
        return
    current = policy.decode_keywords(exif.get(XP_KEYWORDS))
    remaining = policy.without(current, policy.own_keywords(record))
    result.keywords = policy.without(current, remaining)
    result.record = True
    if dry_run:
        return
    check_writable(path)
    keywords = (piexif.TYPES.Byte, policy.encode_keywords(remaining)) if remaining else None
    tiff = exif.patch({XP_KEYWORDS: keywords},
                      {USER_COMMENT: (piexif.TYPES.Undefined, code + user) if user else None})
    if ExifBlock.parse(tiff).is_empty():
        tiff = None
    pieces = photo.with_exif(tiff, drop_vp8x=bool(record.get("webp_vp8x")))
    replace(path, pieces, like=photo.stat, expect=photo.stat, keep_times=keep_mtime)


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
    check_writable(target)
    if result.sidecar_deleted:
        remove(target)
    else:
        before = target.stat()
        replace(target, [data], like=before, expect=before, keep_times=False)


def _comment(exif: ExifBlock) -> bytes | None:
    return exif.get(USER_COMMENT, in_exif_ifd=True)


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"{error.strerror or error.__class__.__name__}" + (f": {error.filename}" if error.filename else "")
    return str(error) or error.__class__.__name__
