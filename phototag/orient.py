"""Photos the wrong way up: the turn a photo's faces suggest, and the EXIF orientation that fixes it.

Turns are counted like face rotations: quarter turns counter-clockwise *as displayed* (1 = the
photo's content lies on its left side, 2 = upside down, 3 = on its right side). A photo is
*turned* by ``k`` when its faces agree (:func:`phototag.turns.suggested_turn`).

:func:`orient_photo` fixes one losslessly: it changes only the EXIF ``Orientation`` tag (pixels,
every other tag and segment untouched), composing the photo's orientation with the turn back, so
every viewer that honours EXIF shows it upright. The write is the tag writer's (one atomic
replacement, the EXIF block edited byte-exactly, or created as the tag writer does). The
orientation before the first fix (or that there was none) goes into phototag's EXIF record as
``orientation_before``, so ``phototag clean`` restores it; a photo whose EXIF block phototag
created comes back byte for byte. An XMP ``tiff:Orientation``, where a file has one, is left as it is.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import piexif
from PIL import Image

from . import index, policy, tags
from .atomic import Refused, Written, check_writable
from .atomic import replace as replace_file
from .containers import Photo, Unsupported
from .models import wrapped_angles
from .query import Query, find_photos
from .records import Face
from .tiff import ExifBlock
from .xmp import NotXmp, Packet

if TYPE_CHECKING:
    import sqlite_utils

ORIENTATION = piexif.ImageIFD.Orientation

# EXIF orientation -> the matrix taking a stored-frame vector (x right, y down) to the displayed frame.
_MATRICES = {
    1: ((1, 0), (0, 1)),
    2: ((-1, 0), (0, 1)),  # mirrored left-right
    3: ((-1, 0), (0, -1)),  # turned 180°
    4: ((1, 0), (0, -1)),  # mirrored top-bottom
    5: ((0, 1), (1, 0)),  # transposed
    6: ((0, -1), (1, 0)),  # turned 90° clockwise to display
    7: ((0, -1), (-1, 0)),  # transversed
    8: ((0, 1), (-1, 0)),  # turned 90° counter-clockwise to display
}
_CLOCKWISE = _MATRICES[6]


def upright_orientation(orientation: int, turns: int) -> int:
    """The EXIF orientation that shows upright a photo displayed with ``orientation`` whose content is
    turned by ``turns`` quarter turns counter-clockwise (the display turned back clockwise)."""
    matrix = _MATRICES.get(orientation, _MATRICES[1])
    for _ in range(turns % 4):
        matrix = _product(_CLOCKWISE, matrix)
    return next(o for o, m in _MATRICES.items() if m == matrix)


def _product(a, b):
    return tuple(tuple(sum(a[i][k] * b[k][j] for k in range(2)) for j in range(2)) for i in range(2))


def turned_point(x: float, y: float, width: float, height: float, turns: int) -> tuple[float, float]:
    """Where a displayed-frame point (pixels, frame ``width`` × ``height``) lies once the display is
    turned clockwise by ``turns`` quarter turns."""
    for _ in range(turns % 4):
        x, y, width, height = height - y, x, height, width
    return x, y


def turned_face(face: Face, width: float, height: float, turns: int) -> Face:
    """A face of a displayed frame ``width`` × ``height`` in the frame turned clockwise by ``turns``:
    box, landmarks and rotation (which becomes ``turns`` quarter turns smaller)."""
    x, y, w, h = face.box
    corners = [turned_point(cx, cy, width, height, turns) for cx, cy in ((x, y), (x + w, y + h))]
    xs, ys = sorted(c[0] for c in corners), sorted(c[1] for c in corners)
    rotation = float(wrapped_angles(face.rotation - 90 * turns))
    return replace(face, box=(xs[0], ys[0], xs[1] - xs[0], ys[1] - ys[0]), rotation=round(rotation, 2),
                   landmarks={k: turned_point(px, py, width, height, turns) for k, (px, py) in face.landmarks.items()})


@dataclass
class OrientResult:
    """What fixing one photo did: ``written`` (or, in a dry run, would be), ``unchanged`` (upright
    already), ``changed`` (not the file that was scanned), ``unsupported`` or ``failed``
    (``reason`` says why); the orientation before and after, and the file as written."""

    status: str
    before: int = 1
    after: int = 1
    reason: str = ""
    file: Written | None = None


def orient_photo(path, turns: int, *, sha256: str | None = None, dry_run: bool = False, keep_mtime: bool = True,
                 before_rename: Callable[[Written, int], None] | None = None) -> OrientResult:
    """Set the EXIF orientation that shows upright a photo whose content is turned by ``turns``
    (quarter turns counter-clockwise as displayed); never raises for a bad or odd file.

    ``sha256``: the content hash of the file the turn was found in; when the file is no longer that
    one, nothing is written and the status is ``changed``. ``before_rename`` is told the new file
    and its orientation just before it replaces the old one (an exception from it abandons the write).
    """
    path = Path(os.fsdecode(path))
    try:
        with Photo.open(path) as photo:
            if sha256 is not None and hashlib.sha256(photo.data).hexdigest() != sha256:
                return OrientResult("changed", reason="the file changed after it was scanned")
            exif = ExifBlock.parse(photo.tiff) if photo.tiff else tags.created_block(photo, _stored_size(path))
            raw = exif.get(ORIENTATION)
            before = struct.unpack(exif.order + "H", raw[:2])[0] if raw and len(raw) >= 2 else None
            current = before if before in _MATRICES else 1
            after = upright_orientation(current, turns)
            if after == current:
                return OrientResult("unchanged", current, after)
            check_writable(path)
            result = OrientResult("written", current, after)
            if dry_run:
                return result
            code, previous, user, encoding = policy.split_comment(tags.user_comment(exif), exif.order)
            packet = Packet(photo.xmp)
            # the record stays where the tag writer put it: in UserComment where the block has an Exif
            # IFD, else in the XMP (an Exif IFD holding only UserComment is incomplete for the standard)
            in_exif = previous is not None or exif.exif_at is not None
            previous = previous or packet.record()
            record = dict(previous or {"phototag": policy.SCHEMA_VERSION})
            record |= tags.record_flags(photo, previous)
            record.setdefault(tags.ORIENTATION_BEFORE, before)
            if "orientation" in record:
                record["orientation"] = after
            exif_changes = {tags.USER_COMMENT: (piexif.TYPES.Undefined,
                                                policy.join_comment(code, record, user, encoding))} if in_exif else {}
            tiff = exif.patch({ORIENTATION: (piexif.TYPES.Short, struct.pack(exif.order + "H", after))}, exif_changes)
            xmp = photo.xmp
            if not in_exif:
                packet.set_record(record)
                xmp = packet.to_bytes()
            told = None if before_rename is None else lambda new: before_rename(new, after)
            result.file = replace_file(path, photo.with_metadata(tiff, xmp), like=photo.stat,
                                       expect=photo.stat, keep_times=keep_mtime, before_rename=told)
            return result
    except Unsupported as error:
        return OrientResult("unsupported", reason=str(error))
    except (Refused, NotXmp, OSError, struct.error) as error:
        return OrientResult("failed", reason=tags.reason(error))


def _stored_size(path: Path) -> tuple[int, int]:
    """The stored pixel size from the file's header (for a newly created EXIF block)."""
    with Image.open(path) as image:
        return image.size



@dataclass
class OrientSummary:
    """What ``phototag orient`` found or did: the turned photos under its paths, in path order, each
    with its turn and (with ``fix``) what fixing it did."""

    fix: bool = False
    dry_run: bool = False
    photos: list[tuple[str, int, OrientResult | None]] = field(default_factory=list)  # (path, turn, result)

    @property
    def failed(self) -> int:
        return sum(r is not None and r.status not in ("written", "unchanged") for _, _, r in self.photos)


def orient(db: sqlite_utils.Database, paths: Iterable[str | os.PathLike], *, fix: bool = False,
           dry_run: bool = False, keep_mtime: bool = True) -> OrientSummary:
    """The scanned photos under ``paths`` (files or folders) that the index says are turned; with
    ``fix`` each gets the EXIF orientation that shows it upright (``dry_run``: only checked).

    The index follows the fix in the write protocol's way: just before the fixed file is renamed in,
    the photo is recorded with it, unconfirmed, its faces turned into the new displayed frame (the
    stored frame, which the EXIF record's and the XMP regions' boxes use, does not change), and
    confirmed after; so nothing needs scanning again.
    """
    summary = OrientSummary(fix=fix, dry_run=dry_run)
    seen: set[bytes] = set()
    for path in paths:
        under = os.path.abspath(os.fsencode(path)).rstrip(b"/") or b"/"
        for photo in find_photos(db, Query(path=under, turned=True), with_faces=False):
            key = bytes(photo["path_key"])
            if key in seen:
                continue
            seen.add(key)
            result = _fix(db, key, dry_run, keep_mtime) if fix else None
            summary.photos.append((photo["path"], photo["turn"], result))
    return summary


def _fix(db: sqlite_utils.Database, key: bytes, dry_run: bool, keep_mtime: bool) -> OrientResult:
    row = index.get_photo(db, key)
    info, faces, version = index.scanned_photo(db, key)
    turns = row["turn"]
    turned = [turned_face(f, info.width, info.height, turns) for f in faces]

    def record(new: Written, orientation: int) -> None:
        width, height = (info.height, info.width) if turns % 2 else (info.width, info.height)
        fixed = replace(info, width=width, height=height, orientation=orientation)
        index.record_photo(db, key, new, new.sha256, fixed, turned, version, row["exif_status"] or "",
                           unconfirmed=True)

    result = orient_photo(key, turns, sha256=row["sha256"], dry_run=dry_run, keep_mtime=keep_mtime,
                          before_rename=record)
    if result.file is not None:
        index.confirm(db, key)
    return result
