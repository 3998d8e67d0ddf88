"""Decoding photos: Pillow, EXIF orientation applied, large JPEGs decoded at reduced scale.

The decoded image is in the *displayed* frame (``ImageOps.exif_transpose``). ``PhotoInfo.scale``
says how many decoded pixels make one full-resolution displayed pixel, so that coordinates found
in the decoded image are converted back by dividing by it.
"""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from PIL import ExifTags, Image, ImageOps

from .records import PhotoInfo

BASE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif"})
DEFAULT_DECODE_SIZE = 1600  # long side below which a JPEG is not reduced any further


class DecodeError(Exception):
    """A file that claims to be an image but cannot be decoded."""


def register_heif() -> bool:
    """Register the pillow-heif opener when that optional package is installed; return whether it is."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def supported_extensions() -> frozenset[str]:
    """Lower-case file extensions (with the dot) that are decoded; HEIC/HEIF only with pillow-heif."""
    return BASE_EXTENSIONS | HEIF_EXTENSIONS if register_heif() else BASE_EXTENSIONS


def decode(data: bytes, decode_size: int | None = DEFAULT_DECODE_SIZE) -> tuple[np.ndarray, PhotoInfo]:
    """Decode an image file's bytes to RGB uint8 pixels in the displayed frame, and describe it.

    A JPEG whose long side exceeds ``decode_size`` is decoded at the largest 1/2, 1/4 or 1/8
    reduction that keeps the long side at least ``decode_size`` (``None``: always full size).
    Raises DecodeError with the reason for anything Pillow cannot read, including images over
    Pillow's decompression-bomb limit.
    """
    if not data:
        raise DecodeError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            stored_width, stored_height = im.size
            exif = im.getexif()
            orientation = exif.get(ExifTags.Base.Orientation, 1)
            taken_at = _taken_at(exif)
            image_format = im.format or ""
            scale = _draft(im, decode_size)
            im.load()
            ImageOps.exif_transpose(im, in_place=True)
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            pixels = np.asarray(rgb)
    except Image.DecompressionBombError as e:
        raise DecodeError(f"too large: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise DecodeError("not an image Pillow can identify") from e
    except Exception as e:  # Pillow's plugins raise many types for broken files; each is a per-file error
        raise DecodeError(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from e
    if orientation not in range(1, 9):
        orientation = 1
    transposed = orientation in (5, 6, 7, 8)
    info = PhotoInfo(
        width=stored_height if transposed else stored_width,
        height=stored_width if transposed else stored_height,
        stored_width=stored_width,
        stored_height=stored_height,
        orientation=orientation,
        taken_at=taken_at,
        format=image_format,
        scale=scale,
    )
    return pixels, info


def _draft(im: Image.Image, decode_size: int | None) -> float:
    """Ask the JPEG decoder for a reduced scale (DCT scaling); return decoded pixels per full pixel."""
    width, height = im.size
    if im.format not in ("JPEG", "MPO") or not decode_size:
        return 1.0
    reduction = next((r for r in (8, 4, 2) if max(width, height) // r >= decode_size), 1)
    if reduction == 1:
        return 1.0
    drafted = im.draft("RGB", (width // reduction, height // reduction))
    if drafted is None:
        return 1.0
    _, box = drafted
    return 1.0 / round(width / box[2])


def _taken_at(exif: Image.Exif) -> str | None:
    """EXIF DateTimeOriginal (with OffsetTimeOriginal when present) as ISO 8601, or None."""
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    raw = sub.get(ExifTags.Base.DateTimeOriginal)
    if not isinstance(raw, str):
        return None
    try:
        taken = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = sub.get(ExifTags.Base.OffsetTimeOriginal)
    iso = taken.isoformat()
    if isinstance(offset, str) and len(offset.strip("\x00 ")) == 6:
        iso += offset.strip("\x00 ")
    return iso
