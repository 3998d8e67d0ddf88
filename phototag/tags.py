"""Write each photo's faces into its EXIF and XMP (JPEG, WebP) or an XMP sidecar, safely, and remove them.

This module puts the stages together: ``policy`` decides what is written, ``containers`` and ``tiff``
edit the file's bytes, ``xmp`` the XMP packet (embedded or in a sidecar), and ``atomic`` replaces the
file: one temporary file in the same folder for EXIF and XMP together, fsync, rename, fsync of the
folder. Permission bits, owner, extended attributes and by default the access/modification times
are kept (a file whose owner or attributes cannot be kept is refused unless forced). Files that are
read-only, hard-linked or changed meanwhile, or hold XMP phototag cannot edit safely, are left
alone and reported.

phototag touches only what it owns (``tiff.ExifBlock.edit``): its record goes into UserComment when
the EXIF block has an Exif IFD, else into the XMP (``phototag:Record``, the same JSON); an EXIF block
that cannot be edited safely (damaged, over 64 KiB, odd pointers) is left byte for byte, the record
goes into the XMP and the write's note says so. The record holds how to put the block back
(``exif_restore``), so ``clean`` gives back the block as it was, byte for byte, unless another
program has changed it since (then phototag's parts are taken out of it).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import piexif

from . import iptc, policy
from .atomic import Written, check_writable, remove, replace
from .containers import JPEG_EXIF, JPEG_XMP, Photo, Unsupported
from .errors import Refused
from .names import printable
from .records import Face, PhotoInfo
from .sidecar import NAMES, sidecar_path
from .tiff import EMPTY_TIFF, EXIF_REQUIRED, IFD0_REQUIRED, ExifBlock, Restore, required_tags
from .walk import became_another_link
from .xmp import HIERARCHY, SUBJECT, TAGS_LIST, NotXmp, Packet

XP_KEYWORDS = piexif.ImageIFD.XPKeywords
USER_COMMENT = piexif.ExifIFD.UserComment
ORIENTATION = piexif.ImageIFD.Orientation
ORIENTATION_BEFORE = "orientation_before"  # the record's note of the orientation ``phototag orient`` replaced
BAGS = (SUBJECT, HIERARCHY, TAGS_LIST)
JPEG_XMP_LIMIT = 0xFFFF - 2 - len(JPEG_XMP)  # bytes of XMP one APP1 segment holds
JPEG_EXIF_LIMIT = 0xFFFF - 2 - len(JPEG_EXIF)  # bytes of EXIF one APP1 segment holds
EXIF_RESTORE = "exif_restore"  # the record's note of how to put the EXIF block back as it was (tiff.Restore)
MAX_SIDECAR = 64 << 20  # a larger file at a sidecar's name is not read (Lightroom's are under 1 MB)


@dataclass
class WriteResult:
    """What a write did: ``written``, ``unchanged``, ``changed`` (the file is not the one read),
    ``unsupported`` or ``failed`` (``reason`` says why).

    ``file`` describes the file as written (size, mtime, inode, SHA-256) when ``status`` is ``written``;
    ``note`` says where the face regions went when not into the main XMP packet.
    """

    status: str
    reason: str = ""
    file: Written | None = None
    note: str = ""


@dataclass
class CleanResult:
    """What ``clean`` removed from one photo (or would remove, in a dry run)."""

    keywords: list[str] = field(default_factory=list)  # phototag keywords taken out of XPKeywords / dc:subject
    record: bool = False  # phototag's EXIF record
    orientation: bool = False  # the EXIF orientation ``phototag orient`` set, put back
    xmp: bool = False  # phototag's parts of the embedded XMP
    regions: int = 0  # face regions taken out of the embedded XMP and the sidecar
    sidecar_keywords: list[str] = field(default_factory=list)
    sidecar_deleted: bool = False  # the sidecar held nothing else
    failed: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.keywords or self.record or self.orientation or self.xmp or self.sidecar_keywords
                    or self.regions or self.sidecar_deleted)

    def summary(self) -> str:
        """One line for people."""
        parts = []
        if self.record:
            parts.append("EXIF record")
        if self.orientation:
            parts.append("orientation")
        if self.xmp:
            parts.append("XMP")
        if self.keywords or self.sidecar_keywords:
            parts.append("keywords " + ", ".join(dict.fromkeys(self.keywords + self.sidecar_keywords)))
        if self.regions:
            parts.append(f"{self.regions} face region(s)")
        if self.sidecar_deleted:
            parts.append("sidecar file")
        return "; ".join(parts)


def write_faces(path, faces: list[Face], info: PhotoInfo, model_version: str, *,
                keep_mtime: bool = True, read: Written | None = None,
                before_rename: Callable[[Written], None] | None = None, force: bool = False) -> WriteResult:
    """Put the faces' keywords, record and regions into the photo's EXIF and XMP (one atomic write);
    never raises for a bad or odd file.

    ``read``: the file the faces were found in; when the file is no longer that one (size, mtime,
    inode, SHA-256), nothing is written and the status is ``changed``. ``before_rename`` is told what
    the new file will be just before it replaces the old one. ``force``: write even when the file's
    owner or extended attributes cannot be kept (see ``atomic.replace``).
    """
    path = Path(os.fsdecode(path))
    try:
        with Photo.open(path) as photo:
            if read is not None and not _is_file(photo, read):
                return WriteResult("changed", "the file changed after it was read")
            check_writable(path)
            packet, old_guid = _embedded_packet(photo)
            tiff, user_keywords, xmp_record, exif_note = _tagged_exif(photo, faces, info, model_version,
                                                                      _exif_state(photo, packet))
            _fill(packet, faces, info, model_version, elsewhere=user_keywords + iptc.keywords(photo.app13))
            packet.set_record(xmp_record)
            xmp, extended, note = _packed(photo, packet, old_guid)
            note = "; ".join(filter(None, [exif_note, note]))
            if (tiff, xmp) == (photo.tiff, photo.xmp):
                return WriteResult("unchanged", note=note)
            written = replace(path, photo.with_metadata(tiff, xmp, extended=extended), like=photo.stat,
                              expect=photo.stat, keep_times=keep_mtime, before_rename=before_rename, force=force)
        return WriteResult("written", file=written, note=note)
    except Unsupported as error:
        return WriteResult("unsupported", str(error))
    except (Refused, NotXmp, OSError, struct.error) as error:
        return WriteResult("failed", reason(error))


def _embedded_packet(photo: Photo) -> tuple[Packet, str | None]:
    """The photo's XMP with phototag's extended packet merged back in; the GUID of that (None: none)."""
    packet = Packet(photo.xmp)
    guid, own = packet.extended_guid()
    if not own:
        return packet, None
    extended = photo.extended_xmp(guid)
    if extended is None:  # its face regions, the user's among them, would be lost
        raise Refused("the extended XMP phototag wrote into this file is incomplete (a segment is missing)")
    packet.merge_extended(extended)
    return packet, guid


def _packed(photo: Photo, packet: Packet, old_guid: str | None) -> tuple[bytes, tuple[str | None, bytes | None], str]:
    """(the main packet, the extended XMP edit for ``Photo.with_metadata``, a note): a JPEG's packet
    too large for its segment keeps its keywords and hierarchy there, its face regions going to
    extended XMP, or, when the file's extended XMP is another program's, staying out of the file."""
    if photo.kind != "JPEG":
        return packet.to_bytes(), (None, None), ""
    try:
        main, extended = packet.split(JPEG_XMP_LIMIT)
    except NotXmp:
        if packet.extended_guid()[0] is None or not packet.replace_own_regions([], (0, 0)):
            raise
        main, extended = packet.split(JPEG_XMP_LIMIT)
        return main, (old_guid, extended), ("face regions not in the file (too large for its XMP segment, and "
                                            "its extended XMP is another program's); they are in the index")
    return main, (old_guid, extended), "face regions in extended XMP" if extended else ""


def _is_file(photo: Photo, read: Written) -> bool:
    st = photo.stat
    return ((st.st_size, st.st_mtime_ns, st.st_ino) == (read.size, read.mtime_ns, read.inode)
            and hashlib.sha256(photo.data).hexdigest() == read.sha256)


def write_sidecar(path, faces: list[Face], info: PhotoInfo, model_version: str, *,
                  name: str = NAMES[0], force: bool = False) -> WriteResult:
    """Write or update the photo's XMP sidecar (``name``: its naming convention) with the keywords,
    keyword paths and MWG face regions; works for every format. A symbolic link at the sidecar's
    name is never followed (refused), and a new sidecar never replaces a file created meanwhile."""
    path = Path(os.fsdecode(path))
    real = Path(os.path.realpath(path))
    target = sidecar_path(real, name)
    try:
        existing, before = _read_sidecar(target)
        packet = Packet(existing)
        owner, name = packet.property("Photo"), printable(real.name)  # XML: no control characters, no surrogates
        if owner not in (None, name):  # photo.jpg and photo.png share photo.xmp
            raise Refused(f"{target.name} holds phototag's tags of {owner} "
                          "(--sidecar-name photo.jpg.xmp avoids that)")
        _fill(packet, faces, info, model_version, elsewhere=[])
        packet.set_properties({"Photo": name})
        data = packet.to_bytes()
        if data == existing:
            return WriteResult("unchanged")
        if existing is None:
            written = replace(target, [data], like=path.stat(), expect=None, keep_times=False)
        else:
            check_writable(target)
            written = replace(target, [data], like=before, expect=before, keep_times=False, force=force)
        return WriteResult("written", file=written)
    except (NotXmp, Refused, OSError) as error:
        return WriteResult("failed", reason(error))


def _read_sidecar(target: Path) -> tuple[bytes | None, os.stat_result | None]:
    """(the sidecar's bytes and status; None, None when there is none), never through a symbolic link
    and only from a regular file (a FIFO there would block) of at most ``MAX_SIDECAR`` bytes."""
    linked = Refused(f"{target.name} is a symbolic link; phototag does not write through it")
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        if os.path.islink(target):  # a dangling link: writing would create its target
            raise linked from None
        return None, None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise linked from None
        raise
    with open(fd, "rb") as file:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{target.name} is not a regular file")
        if st.st_size > MAX_SIDECAR:
            raise Refused(f"{target.name} is {st.st_size} bytes, too large for an XMP sidecar")
        return file.read(), st


def read_record(path) -> dict | None:
    """phototag's record from the photo's EXIF (or its XMP, where the EXIF could not take it), or None
    (no record, or a format phototag does not write into)."""
    try:
        with Photo.open(Path(os.fsdecode(path))) as photo:
            try:
                exif = ExifBlock.parse(photo.tiff) if photo.tiff else None
                record = exif and policy.split_comment(user_comment(exif), exif.order)[1]
            except (Refused, struct.error):
                record = None
            return record or (Packet(photo.xmp).record() if photo.xmp else None)
    except (Unsupported, Refused, NotXmp, OSError, struct.error):
        return None


def read_keywords(path) -> list[str]:
    """The photo's ``XPKeywords`` (all of them, the user's and phototag's)."""
    exif = _read_exif(Path(os.fsdecode(path)))
    return [] if exif is None else policy.decode_keywords(exif.get(XP_KEYWORDS))


def clean(path, *, dry_run: bool = False, keep_mtime: bool = True, force: bool = False,
          walked: os.stat_result | None = None) -> CleanResult:
    """Remove exactly what phototag wrote to the photo and its sidecars; ``dry_run`` only reports it.
    A shared sidecar (``photo.xmp`` beside ``photo.jpg`` and ``photo.png``) is cleaned only when it
    says it holds this photo's tags. ``walked``: the photo's status when a walk found it; a photo that
    has become a link to another file since is left alone (failed). Never raises for a bad or odd
    file (``failed`` says why)."""
    path = Path(os.fsdecode(path))
    result = CleanResult()
    try:
        real = Path(os.path.realpath(path))
        _refuse_another_link(path, walked, os.stat(real))  # the sidecars are found beside ``real``
        _clean_photo(path, result, dry_run, keep_mtime, force, walked)
        for name in NAMES:
            _clean_sidecar(sidecar_path(real, name), real.name if name == NAMES[1] else None, result, dry_run,
                           force)
    except (Refused, NotXmp, OSError, struct.error) as error:
        result.failed = reason(error)
    except Exception as error:  # a damaged file must not stop the others
        result.failed = f"{type(error).__name__}: {error}"
    return result


@dataclass
class _ExifState:
    """The photo's EXIF as phototag edits it: ``tiff``, the block to edit (the one phototag's last
    edit started from, when it can be put back exactly: ``restored``); phototag's earlier record
    (from the EXIF or the XMP); ``unsafe``: why the block is left as it is ("": it is edited)."""

    tiff: bytes | None
    block: ExifBlock | None = None
    previous: dict | None = None
    unsafe: str = ""
    restored: bool = False
    pristine: bool = True  # the block holds nothing of phototag's: an edit of it can be undone exactly


def _exif_state(photo: Photo, packet: Packet) -> _ExifState:
    xmp_record = packet.record()
    if not photo.tiff:
        return _ExifState(None, previous=xmp_record)
    try:
        exif = ExifBlock.parse(photo.tiff)
        record = policy.split_comment(user_comment(exif), exif.order)[1]
    except (Refused, struct.error) as error:
        return _ExifState(photo.tiff, previous=xmp_record, unsafe=reason(error))
    previous = record or xmp_record
    pristine = record is None and not policy.own_keywords(previous)
    restore = Restore.from_json((previous or {}).get(EXIF_RESTORE))
    # ``phototag orient`` edits the block after the write: what it set must stay
    original = restore.original(photo.tiff) if restore and ORIENTATION_BEFORE not in previous else None
    try:
        if original is not None:
            return _ExifState(original, ExifBlock.parse(original), previous, exif.unsafe(), restored=True)
        return _ExifState(photo.tiff, exif, previous, exif.unsafe(), pristine=pristine)
    except (Refused, struct.error) as error:
        return _ExifState(photo.tiff, previous=previous, unsafe=reason(error))


def _tagged_exif(photo: Photo, faces: list[Face], info: PhotoInfo, model_version: str,
                 state: _ExifState) -> tuple[bytes | None, list[str], dict | None, str]:
    """(the photo's EXIF block with phototag's keywords and record; the user's own XPKeywords;
    phototag's record when it goes into the XMP instead, else None; a note when the EXIF is left as
    it was).

    The block is edited as ``ExifBlock.edit`` does (nothing phototag does not own moves), starting
    from the block before phototag's earlier edit when that can be put back exactly, so a write
    again gives the same bytes. The record goes into UserComment when the block has an Exif IFD
    (one phototag would create holding only UserComment is incomplete for the standard, and
    exiftool says so), else into the XMP. A block that cannot be edited safely (damaged, odd
    pointers, too large for its segment) is left byte for byte, and the record goes into the XMP."""
    previous = state.previous
    if not state.unsafe:
        exif = state.block or created_block(photo, (info.stored_width, info.stored_height))
        current = policy.decode_keywords(exif.get(XP_KEYWORDS))
        own = [] if state.restored else policy.own_keywords(previous)
        keywords, added = policy.merge_keywords(current, own, policy.photo_keywords(faces))
        record = policy.exif_record(faces, info, model_version, added) | record_flags(photo, previous)
        ifd0 = {XP_KEYWORDS: (piexif.TYPES.Byte, policy.encode_keywords(keywords))}
        in_exif = exif.exif_at is not None
        try:
            code, _, user, encoding = policy.split_comment(user_comment(exif), exif.order)
            comment = {USER_COMMENT: (piexif.TYPES.Undefined, policy.join_comment(code, record, user, encoding))}
            keep = tuple(field for field, _ in photo.outside)  # set by with_metadata: kept in the Restore
            tiff, restore = exif.edit(ifd0, comment if in_exif else {}, keep, check=not in_exif)
            if state.restored or state.pristine:
                record[EXIF_RESTORE] = restore.to_json()
            if in_exif:
                comment = {USER_COMMENT: (piexif.TYPES.Undefined, policy.join_comment(code, record, user, encoding))}
                tiff = exif.edit(ifd0, comment, keep)[0]
            if photo.kind == "JPEG" and len(tiff) > JPEG_EXIF_LIMIT:
                raise Refused(f"the EXIF block would be {len(tiff)} bytes, over the 64 KiB one JPEG segment holds")
            return tiff, policy.without(current, own), None if in_exif else record, ""
        except (Refused, struct.error) as error:
            state.unsafe = reason(error)
            if state.block is None:  # phototag would have created it: none then
                state.tiff = photo.tiff
    record = policy.exif_record(faces, info, model_version, []) | record_flags(photo, previous)
    record.pop("exif_created", None)
    try:
        user_keywords = policy.decode_keywords(ExifBlock.parse(state.tiff).get(XP_KEYWORDS)) if state.tiff else []
    except (Refused, struct.error):
        user_keywords = []
    return state.tiff, user_keywords, record, f"EXIF left as it was ({state.unsafe}); phototag's record is in the XMP"


def record_flags(photo: Photo, previous: dict | None) -> dict:
    """What phototag's EXIF record keeps saying, whatever is written next, so that ``clean`` can undo
    it: that phototag added the WebP VP8X header or the EXIF block, and the orientation ``phototag
    orient`` replaced (None: the file had none)."""
    previous = previous or {}
    flags = {flag: True for flag, now in (("webp_vp8x", photo.lacks_vp8x), ("exif_created", photo.tiff is None))
             if now or previous.get(flag)}
    if ORIENTATION_BEFORE in previous:
        flags[ORIENTATION_BEFORE] = previous[ORIENTATION_BEFORE]
    return flags


def created_block(photo: Photo, stored_size: tuple[int, int]) -> ExifBlock:
    """A new EXIF block holding the tags the standard requires (``stored_size``: the stored pixel
    width and height); phototag's own go in next."""
    empty = ExifBlock.parse(EMPTY_TIFF)
    required = required_tags(empty.order, stored_size, photo.density)
    return ExifBlock.parse(empty.patch(*required))


def _fill(packet: Packet, faces: list[Face], info: PhotoInfo, model_version: str, elsewhere: list[str]) -> None:
    """Put phototag's keywords, keyword paths, regions and version into an XMP packet, in place of its
    earlier ones; ``elsewhere``: the user's keywords in other fields of the file."""
    user = {}
    for bag in BAGS:
        values = packet.items(bag)
        user[bag] = None if values is None else policy.without(values, packet.own(bag))
    for bag, added in policy.xmp_additions(faces, user, elsewhere).items():
        packet.replace_own(bag, added)
    regions = [policy.face_region(face, info) for face in faces]
    packet.replace_own_regions(regions, (info.stored_width, info.stored_height))
    packet.set_properties({"Schema": str(policy.SCHEMA_VERSION), "Model": model_version})


# -- clean -----------------------------------------------------------------------------------------


def _refuse_another_link(path: Path, walked: os.stat_result | None, now: os.stat_result) -> None:
    if walked is not None and became_another_link(path, walked, now):
        raise Refused("became a link to another file while the clean ran (left alone)")


def _clean_photo(path: Path, result: CleanResult, dry_run: bool, keep_mtime: bool, force: bool,
                 walked: os.stat_result | None) -> None:
    try:
        with Photo.open(path) as photo:
            _refuse_another_link(path, walked, photo.stat)  # ``replace`` rewrites only the file opened
            tiff, record, remaining = _cleaned_exif(photo, result)
            xmp, extended = _cleaned_xmp(photo, result, remaining)
            if dry_run or not (result.record or result.xmp):
                return
            check_writable(path)
            pieces = photo.with_metadata(tiff, xmp, drop_vp8x=bool((record or {}).get("webp_vp8x")),
                                         extended=extended)
            replace(path, pieces, like=photo.stat, expect=photo.stat, keep_times=keep_mtime, force=force)
    except Unsupported:
        return


def _cleaned_exif(photo: Photo, result: CleanResult) -> tuple[bytes | None, dict | None, list[str]]:
    """(the EXIF block without phototag's keywords and record (None: nothing left), the record, the
    user's XPKeywords). The block is put back exactly as it was before phototag's edit when the
    record says how and nothing else has changed it since; else phototag's parts are taken out."""
    try:
        xmp_record = Packet(photo.xmp).record() if photo.xmp else None
    except NotXmp:
        xmp_record = None
    if not photo.tiff:
        return photo.tiff, xmp_record, []
    try:
        exif = ExifBlock.parse(photo.tiff)
        code, record, user, _ = policy.split_comment(user_comment(exif), exif.order)
    except (Refused, struct.error):
        if xmp_record is None:
            raise
        return photo.tiff, xmp_record, []  # phototag left this block alone
    in_exif = record is not None
    record = record or xmp_record
    if record is None:
        return photo.tiff, None, []
    current = policy.decode_keywords(exif.get(XP_KEYWORDS))
    restore = Restore.from_json(record.get(EXIF_RESTORE))
    original = restore.original(photo.tiff) if restore else None
    if original is not None:
        remaining = policy.decode_keywords(ExifBlock.parse(original).get(XP_KEYWORDS))
        result.keywords = policy.without(current, remaining)
        result.record = in_exif or original != photo.tiff
        result.orientation = ORIENTATION_BEFORE in record
        return (None if record.get("exif_created") else original), record, remaining
    remaining = policy.without(current, policy.own_keywords(record))
    result.keywords = policy.without(current, remaining)
    result.record = in_exif
    ifd0_changes = {XP_KEYWORDS: (piexif.TYPES.Byte, policy.encode_keywords(remaining)) if remaining else None}
    exif_changes = {USER_COMMENT: (piexif.TYPES.Undefined, code + user) if user else None} if in_exif else {}
    if ORIENTATION_BEFORE in record:
        before = record[ORIENTATION_BEFORE]
        result.orientation = True
        ifd0_changes[ORIENTATION] = ((piexif.TYPES.Short, struct.pack(exif.order + "H", before))
                                     if isinstance(before, int) and 0 <= before <= 0xFFFF else None)
    if record.get("exif_created"):
        ifd0_changes.update(dict.fromkeys(IFD0_REQUIRED))
        exif_changes.update(dict.fromkeys(EXIF_REQUIRED))
    if not (result.keywords or in_exif or result.orientation):
        return photo.tiff, record, remaining
    tiff = exif.patch(ifd0_changes, exif_changes)
    return (None if ExifBlock.parse(tiff).is_empty() else tiff), record, remaining


def _cleaned_xmp(photo: Photo, result: CleanResult,
                 user_keywords: list[str]) -> tuple[bytes | None, tuple[str | None, bytes | None]]:
    """The XMP packet without phototag's parts (None: nothing left), and the extended XMP edit."""
    if photo.xmp is None:
        return None, (None, None)
    packet, old_guid = _embedded_packet(photo)
    before = packet.to_bytes()
    keywords, regions = packet.remove_own()
    if packet.to_bytes() == before:
        return photo.xmp, (None, None)
    result.xmp = True
    ours = [k for k in keywords if k not in user_keywords]  # not the user's, carried over
    result.keywords = list(dict.fromkeys(result.keywords + ours))
    result.regions += regions
    if packet.is_empty() and packet.created_by_phototag():  # a user's empty packet stays
        return None, (old_guid, None)
    xmp, extended, _ = _packed(photo, packet, old_guid)
    return xmp, extended


def _clean_sidecar(target: Path, photo: str | None, result: CleanResult, dry_run: bool, force: bool) -> None:
    """Take phototag's tags out of a sidecar; ``photo``: the photo's name when the sidecar's name may be
    shared (``photo.xmp``), whose tags are then taken out only if the sidecar says they are its."""
    existing, before = _read_sidecar(target)
    if existing is None:
        return
    packet = Packet(existing)
    if photo is not None and packet.property("Photo") not in (None, photo):
        return
    keywords, regions = packet.remove_own()
    data = packet.to_bytes()
    if data == Packet(existing).to_bytes():
        return
    result.sidecar_keywords = list(dict.fromkeys(result.sidecar_keywords + keywords))
    result.regions += regions
    deleted = packet.is_empty()
    result.sidecar_deleted |= deleted
    if dry_run:
        return
    check_writable(target)
    if deleted:
        remove(target)
    else:
        replace(target, [data], like=before, expect=before, keep_times=False, force=force)


def _read_exif(path: Path) -> ExifBlock | None:
    try:
        with Photo.open(path) as photo:
            return ExifBlock.parse(photo.tiff) if photo.tiff else None
    except (Unsupported, Refused, struct.error):
        return None


def user_comment(exif: ExifBlock) -> bytes | None:
    """The EXIF UserComment, where phototag's record lives (None: absent)."""
    return exif.get(USER_COMMENT, in_exif_ifd=True)


def reason(error: Exception) -> str:
    """A one-line reason for a failed write."""
    if isinstance(error, OSError):
        return f"{error.strerror or error.__class__.__name__}" + (f": {error.filename}" if error.filename else "")
    return str(error) or error.__class__.__name__
