"""The photo pipeline's stages, as plain functions on picklable records: read + hash + decode a
:class:`PhotoJob` into a :class:`Photo`, detect its faces, run the chain on a batch of photos.

How the stages are arranged (threads for the local scan) is :mod:`phototag.scan`'s business;
the stages themselves hold no state between photos.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import images
from .atomic import Written
from .records import Detection, Face, PhotoInfo, to_full_resolution
from .walk import became_another_link

if TYPE_CHECKING:
    from .analyzer import FaceAnalyzer

MAX_BATCH_PIXELS = 400_000_000  # decoded bytes held while waiting for a chain batch (about 400 MB)


@dataclass(frozen=True)
class FileRead(Written):
    """A photo's file as read: a ``Written`` with its ctime too (taken before the bytes were read), so
    that the index can tell any later change of the file by its stat (see :func:`phototag.plan.is_unchanged`)."""

    ctime_ns: int | None = None


@dataclass(frozen=True)
class PhotoJob:
    """A photo to scan, as the planner found it."""

    path: bytes
    stat: os.stat_result | None  # at planning; None for a photo read again after a change
    retried: bool = False  # read again because it changed between reading and writing


@dataclass
class Photo:
    """A photo read and decoded (or why not), on its way through detection and the chain."""

    job: PhotoJob
    # of the file as read; as planned when it could not be decoded; None when it could not be read
    # (not the content's fault: the index then keeps no size or time, so the next scan tries again)
    stat: os.stat_result | None
    read: FileRead | None = None  # the file as read: what the pixels were decoded from
    pixels: np.ndarray | None = None
    info: PhotoInfo | None = None
    detections: list[Detection] = field(default_factory=list)
    error: str = ""  # why it could not be read or decoded
    too_large: bool = False  # refused before decoding (images.TooLarge)
    busy: bool = False  # not read: another phototag process holds it (see phototag.photolock)

    @property
    def path(self) -> bytes:
        return self.job.path


def read_photo(job: PhotoJob, decode_size: int, max_pixels: int) -> Photo:
    """Read, hash and decode a photo (``images.read_photo``); a problem is the photo's ``error``, never raised."""
    photo = Photo(job, job.stat)
    try:
        read = images.read_photo(job.path, decode_size, max_pixels=max_pixels)
    except OSError as e:
        photo.error, photo.stat = f"cannot read: {e.strerror or e}", None
    except images.DecodeError as e:
        photo.error, photo.too_large = str(e), isinstance(e, images.TooLarge)
    else:
        if job.stat and became_another_link(job.path, job.stat, read.stat):
            photo.error = "became a link to another file while the scan ran (left for the next scan)"
            return photo
        st = photo.stat = read.stat
        photo.read = FileRead(st.st_size, st.st_mtime_ns, st.st_ino, read.sha256, st.st_ctime_ns)
        photo.pixels, photo.info = read.pixels, read.info
    return photo


def detect_faces(analyzer: FaceAnalyzer, photo: Photo) -> list[Detection]:
    """The faces the detector finds in a decoded photo (kept as its ``detections``)."""
    photo.detections = analyzer.detect(photo.pixels, photo.info.scale)
    return photo.detections


def batch_is_full(photos: list[Photo], batch_size: int) -> bool:
    """Whether photos waiting for the chain hold ``batch_size`` faces, or too many decoded pixels."""
    return batch_holds(sum(len(p.detections) for p in photos), sum(p.pixels.nbytes for p in photos), batch_size)


def batch_holds(faces: int, nbytes: int, batch_size: int) -> bool:
    """Whether a batch of ``faces`` in ``nbytes`` of decoded pixels is full (for a scan that keeps
    the counts, not the pixels)."""
    return faces >= batch_size or nbytes >= MAX_BATCH_PIXELS


def chain_faces(analyzer: FaceAnalyzer, photos: list[Photo]) -> list[list[Face]]:
    """The chain's faces of each of a batch of detected photos, in full-resolution pixels."""
    faces = analyzer.predict([(p.pixels, p.detections) for p in photos],
                             oriented=[p.info.orientation != 1 for p in photos], scales=[p.info.scale for p in photos])
    return [[to_full_resolution(f, p.info.scale) for f in found] for p, found in zip(photos, faces)]
