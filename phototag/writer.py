"""The write protocol's file side: a photo's tags into its EXIF/XMP and sidecar, with the index
side (:class:`phototag.index.IndexWriter`, or anything with its methods) told at each step.

For a photo rewritten, the order is: the file is still the one read (else nothing is written:
``changed``) -> temporary file + fsync -> ``record_unconfirmed`` -> rename -> sidecar -> ``confirm``,
once the file in place is seen to be the one written (another program may have replaced it just
after the rename: the row then stays unconfirmed, and the next scan reads the photo again).
A photo not rewritten gets its sidecar, then ``record_read``. A killed scan thus leaves file and
index reconcilable (see :mod:`phototag.index`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import tags
from .atomic import Written
from .options import ScanOptions
from .records import Face, PhotoInfo
from .turns import suggested_turn


class PhotoRecorder(Protocol):
    """The index side of the write protocol (see :class:`phototag.index.IndexWriter`)."""

    def record_unconfirmed(self, path: bytes, file: Written, info: PhotoInfo, faces: list[Face]) -> None: ...

    def confirm(self, path: bytes) -> None: ...

    def record_read(self, path: bytes, file: Written, info: PhotoInfo, faces: list[Face], exif_status: str) -> None: ...


@dataclass
class WriteReport:
    """What writing one photo did (``ScanSummary.count_written`` adds it up)."""

    path: bytes
    faces: int
    exif: str = ""  # status of the write into the photo (see tags.WriteResult); "" when not asked
    exif_reason: str = ""
    exif_note: str = ""  # where the face regions went, when not into the photo's main XMP packet
    exif_problem: bool = False  # a status to list among the problems
    sidecar: str = ""  # status of the sidecar write; "" when none was written
    sidecar_reason: str = ""
    turn: int = 0  # quarter turns the photo's faces agree it is turned by (see phototag.orient)
    replaced: bool = False  # rewritten, then found replaced by another file: left unconfirmed

    @property
    def changed(self) -> bool:
        """The file was not the one read: nothing written nor recorded; it is to be read again."""
        return self.exif == "changed"


class PhotoWriter:
    """Writes the tags of scanned photos as ``options`` say (``exif``, ``sidecar``, ``sidecar_name``,
    ``touch``, ``force``), for the models ``version``."""

    def __init__(self, options: ScanOptions, version: str):
        self.options = options
        self.version = version

    def write(self, path: bytes, read: Written, info: PhotoInfo, faces: list[Face],
              recorder: PhotoRecorder) -> WriteReport:
        """Write a photo's tags and record it (the protocol above); never raises for a bad file."""
        opts = self.options
        report = WriteReport(path, len(faces), turn=suggested_turn(f.rotation for f in faces))
        written: list[Written] = []

        def before_rename(new: Written) -> None:
            written.append(new)
            recorder.record_unconfirmed(path, new, info, faces)

        if opts.exif:
            result = _write(tags.write_faces, path, faces, info, self.version, keep_mtime=not opts.touch,
                            read=read, force=opts.force, before_rename=before_rename)
            report.exif, report.exif_reason, report.exif_note = result.status, result.reason, result.note
            if report.changed:
                return report
            # A format the tags are not written into is no problem when its sidecar takes them.
            report.exif_problem = (report.exif not in ("written", "unchanged")
                                   and not (report.exif == "unsupported" and opts.wants_sidecar(report.exif)))
        if opts.wants_sidecar(report.exif):
            report.sidecar, report.sidecar_reason = self.write_sidecar(path, faces, info, self.version)
        if report.exif == "written":
            report.replaced = not _in_place(path, written[-1])
            if not report.replaced:
                recorder.confirm(path)
        else:
            recorder.record_read(path, read, info, faces, report.exif)
        return report

    def write_sidecar(self, path: bytes, faces: list[Face], info: PhotoInfo, version: str) -> tuple[str, str]:
        """Write the photo's sidecar; (status, reason)."""
        result = _write(tags.write_sidecar, path, faces, info, version, name=self.options.sidecar_name,
                        force=self.options.force)
        return result.status, result.reason


def _in_place(path: bytes, file: Written) -> bool:
    """Whether the file at ``path`` is the one phototag wrote (same inode, size and mtime)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_ino, st.st_size, st.st_mtime_ns) == (file.inode, file.size, file.mtime_ns)


def _write(writer: Callable, path: bytes, faces: list[Face], info: PhotoInfo, version: str,
           **kwargs) -> tags.WriteResult:
    """Call a tags writer; an unexpected exception becomes a ``failed`` status, never an abort."""
    try:
        return writer(path, faces, info, version, **kwargs)
    except Exception as e:  # a broken file must not stop the scan
        return tags.WriteResult("failed", f"{type(e).__name__}: {e}")
