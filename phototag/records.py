"""Plain data records passed between the pipeline stages (detector, chain, index, tags).

Coordinates are always in the *displayed* frame: the decoded image with its EXIF orientation
applied (``ImageOps.exif_transpose``), in pixels, origin top-left.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TypeVar

FRAME = "displayed"  # the frame every stored coordinate is in
BLOB_DTYPE = "<f4"  # an identity embedding's bytes (Face.embedding, the index): little-endian float32


@dataclass
class Detection:
    """One face found by the detector."""

    box: tuple[float, float, float, float]  # x, y, width, height (displayed frame, pixels)
    landmarks: dict[str, tuple[float, float]]  # left_eye, right_eye, nose, mouth_left, mouth_right
    confidence: float
    # found in the image (or its surroundings) turned by a quarter or more: the confidence is the
    # face's turned back, not as it lies in the image
    turned_look: bool = field(default=False, repr=False)


@dataclass
class Face(Detection):
    """A detected face with the chain's predictions."""

    rotation: float = 0.0  # degrees in (-180, 180], positive = counter-clockwise as displayed
    gender: str = ""  # "f" or "m"
    p_female: float = 0.0  # probability that the face is female
    age: float = 0.0  # years
    # identity embedding: 128 float32 as ``BLOB_DTYPE`` (phototag.identity), None without an identity model
    embedding: bytes | None = field(default=None, repr=False)
    person: str | None = None  # the name the user gave the face's person (phototag people name), if any

    def to_dict(self, embedding: bool = False) -> dict:
        """The face as plain data; the embedding (as a list of floats) only when asked for."""
        d = asdict(self)
        d.pop("embedding")
        d.pop("turned_look")
        if embedding and self.embedding is not None:
            import numpy as np

            d["embedding"] = np.frombuffer(self.embedding, BLOB_DTYPE).tolist()
        return d


D = TypeVar("D", bound=Detection)


@dataclass
class PhotoInfo:
    """What decoding a photo tells about it (before detection)."""

    width: int  # displayed frame (orientation applied)
    height: int
    stored_width: int  # as stored in the file
    stored_height: int
    orientation: int = 1  # EXIF orientation tag, 1 when absent
    taken_at: str | None = None  # EXIF DateTimeOriginal as ISO 8601, if any
    format: str = ""  # Pillow format name, e.g. "JPEG"
    scale: float | None = 1.0  # decoded pixels per displayed pixel (< 1 when decoded reduced with draft); None:
    # not known (read from an index row of before it was recorded)
    extra: dict = field(default_factory=dict)


def to_full_resolution(det: D, scale: float) -> D:
    """A detection (or face) found in an image at ``scale`` (its pixels per pixel of the full-resolution
    image) with box and landmarks in full-resolution pixels."""
    if scale == 1.0:
        return det
    return replace(det, box=tuple(v / scale for v in det.box),
                   landmarks={k: (x / scale, y / scale) for k, (x, y) in det.landmarks.items()})
