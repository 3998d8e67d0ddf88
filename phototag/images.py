"""Decoding photos (Pillow, pillow-heif, rawpy) into the displayed frame, orientation applied once.

The decoded image is in the *displayed* frame. ``PhotoInfo.scale`` says how many decoded pixels
make one full-resolution displayed pixel, so that coordinates found in the decoded image are
converted back by dividing by it.

Where the orientation comes from:

- JPEG, PNG, WebP, TIFF: the EXIF orientation.
- AVIF (Pillow 11.3 and later): Pillow turns the container's transforms into the EXIF orientation,
  which is then applied as for JPEG.
- HEIC/HEIF: the container's own transforms (``irot``/``imir``), which libheif applies while
  decoding. Phones also write the EXIF orientation, but the HEIF standard makes it informative
  only; pillow-heif resets it to 1 on reading, so it is never applied a second time. The recorded
  orientation is 1 and the stored frame is the decoded one.
- RAW: the raw's own orientation (LibRaw's ``flip``). The embedded preview is stored the way the
  sensor saw it; its own EXIF orientation (written by the camera, or by LibRaw from the flip) says
  the same thing and is used only when the raw has no orientation of its own.

Every image's claimed size is checked against ``max_pixels`` before its pixels are decoded, so a
file claiming 65000 x 65000 pixels is refused without allocating them.
"""

from __future__ import annotations

import io
import os
import warnings
from datetime import datetime

import numpy as np
from PIL import ExifTags, Image, features

from .records import PhotoInfo

BASE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
AVIF_EXTENSIONS = frozenset({".avif"})
RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"})
DEFAULT_DECODE_SIZE = 1200  # long side below which a JPEG is not reduced any further (the detection size)
DEFAULT_MAX_PIXELS = 200_000_000  # larger images are refused (decompression bombs)

# phototag checks every image against its own limit (``max_pixels``) before decoding, for every
# format; Pillow's global limit would warn about, or refuse, photos below it.
Image.MAX_IMAGE_PIXELS = None

_TRANSPOSE = {  # EXIF orientation -> the transpose that displays the stored image
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}  # LibRaw flip -> EXIF orientation


class DecodeError(Exception):
    """A file that claims to be an image but cannot be decoded."""


class TooLarge(DecodeError):
    """An image claiming more pixels than the limit (a decompression bomb, or simply too big)."""


def _register_heif() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener(thumbnails=False)
    return True


HEIF_AVAILABLE = _register_heif()


def _rawpy_available() -> bool:
    try:
        import rawpy  # noqa: F401
    except ImportError:
        return False
    return True


RAW_AVAILABLE = _rawpy_available()
AVIF_AVAILABLE = bool(features.check("avif"))


def missing_package(extension: str) -> str | None:
    """The package a photo format needs that is not installed (``pillow-heif``, ``rawpy``, a Pillow
    with AVIF), or None."""
    extension = extension.lower()
    if extension in AVIF_EXTENSIONS and not AVIF_AVAILABLE:
        return "'pillow>=11.3'"
    if extension in HEIF_EXTENSIONS and not HEIF_AVAILABLE:
        return "pillow-heif"
    if extension in RAW_EXTENSIONS and not RAW_AVAILABLE:
        return "rawpy"
    return None


def supported_extensions() -> frozenset[str]:
    """Lower-case file extensions (with the dot) that are decoded with the installed packages."""
    return (BASE_EXTENSIONS | (HEIF_EXTENSIONS if HEIF_AVAILABLE else frozenset())
            | (AVIF_EXTENSIONS if AVIF_AVAILABLE else frozenset())
            | (RAW_EXTENSIONS if RAW_AVAILABLE else frozenset()))


def is_raw(name: str | bytes) -> bool:
    """Whether a file name has a camera RAW extension."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return name[name.rfind("."):].lower() in RAW_EXTENSIONS if "." in name else False


def decode(data: bytes, decode_size: int | None = DEFAULT_DECODE_SIZE, *, max_pixels: int = DEFAULT_MAX_PIXELS,
           raw: bool = False) -> tuple[np.ndarray, PhotoInfo]:
    """Decode an image file's bytes to RGB uint8 pixels in the displayed frame, and describe it.

    A JPEG whose long side exceeds ``decode_size`` is decoded at the largest 1/2, 1/4 or 1/8
    reduction that keeps the long side at least ``decode_size`` (``None``: always full size).
    ``raw``: the bytes are a camera RAW file (see ``decode_raw``). Raises TooLarge for an image
    over ``max_pixels`` and DecodeError with the reason for anything else that cannot be read.
    """
    if raw:
        return decode_raw(data, decode_size, max_pixels=max_pixels)
    return _decode_pillow(data, decode_size, max_pixels)


def decode_file(path: str | os.PathLike | bytes, decode_size: int | None = DEFAULT_DECODE_SIZE, *,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, PhotoInfo]:
    """``decode`` of a file's content, RAW or not as its extension says."""
    with open(path, "rb") as f:
        data = f.read()
    return decode(data, decode_size, max_pixels=max_pixels, raw=is_raw(os.fsencode(path)))


def _decode_pillow(data: bytes, decode_size: int | None, max_pixels: int,
                   orientation: int | None = None) -> tuple[np.ndarray, PhotoInfo]:
    """Decode with Pillow; ``orientation`` given: used instead of the file's own EXIF orientation."""
    if not data:
        raise DecodeError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            stored_width, stored_height = im.size
            _check_size(stored_width, stored_height, max_pixels)
            exif = im.getexif()
            if orientation is None:
                orientation = exif.get(ExifTags.Base.Orientation, 1)
            if orientation not in _FLIP_TO_ORIENTATION.values():
                orientation = 1
            taken_at = _taken_at(exif)
            image_format = im.format or ""
            scale = _draft(im, decode_size)
            im.load()
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            if orientation in _TRANSPOSE:
                rgb = rgb.transpose(_TRANSPOSE[orientation])
            pixels = np.asarray(rgb)
    except TooLarge:
        raise
    except Image.UnidentifiedImageError as e:
        raise DecodeError("not an image Pillow can identify") from e
    except Exception as e:  # Pillow's plugins raise many types for broken files; each is a per-file error
        raise DecodeError(_reason(e)) from e
    return pixels, _photo_info(stored_width, stored_height, orientation,
                               taken_at=taken_at, format=image_format, scale=scale)


def decode_raw(data: bytes, decode_size: int | None = DEFAULT_DECODE_SIZE, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, PhotoInfo]:
    """Decode a camera RAW file with rawpy (LibRaw), in the displayed frame.

    The embedded JPEG preview is decoded when its long side is at least ``decode_size`` (or the
    raw's own long side, if smaller): fast, and the camera's own rendering. Otherwise the raw is
    demosaiced at half size. Coordinates refer to the raw's full-resolution frame (LibRaw's
    width x height, orientation applied).
    """
    import rawpy

    if not data:
        raise DecodeError("empty file")
    try:
        raw = rawpy.imread(io.BytesIO(data))
    except rawpy.LibRawError as e:
        raise DecodeError(f"not a RAW file LibRaw can read ({_reason(e)})") from e
    with raw:
        sizes = raw.sizes
        _check_size(sizes.raw_width, sizes.raw_height, max_pixels)
        width, height = sizes.width, sizes.height
        preview = _preview(raw)
        if preview is not None and max(preview[1]) >= min(decode_size or max(width, height), max(width, height)):
            jpeg, (preview_width, _) = preview
            # The raw's flip, when it has one, is the orientation; else the preview's own EXIF says.
            pixels, shown = _decode_pillow(jpeg, decode_size, max_pixels,
                                           orientation=_FLIP_TO_ORIENTATION.get(sizes.flip) if sizes.flip else None)
            orientation, scale, source = shown.orientation, shown.scale * preview_width / width, "preview"
            taken_at = shown.taken_at or _tiff_taken_at(data)
        else:
            try:  # LibRaw applies the flip itself
                pixels = np.ascontiguousarray(raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8))
            except (rawpy.LibRawError, MemoryError) as e:
                raise DecodeError(f"cannot demosaic the RAW ({_reason(e)})") from e
            orientation = _FLIP_TO_ORIENTATION.get(sizes.flip, 1)
            scale, source = max(pixels.shape[:2]) / max(width, height), "raw at half size"
            taken = raw.other.timestamp  # LibRaw's date (it unpacks the raw, so only read here)
            taken_at = _tiff_taken_at(data) or (taken.isoformat() if taken.year > 1970 else None)
    return pixels, _photo_info(width, height, orientation, taken_at=taken_at, format="RAW", scale=scale,
                               extra={"decoded_from": source})


def _photo_info(stored_width: int, stored_height: int, orientation: int, **details) -> PhotoInfo:
    """The photo's sizes as stored and as displayed (orientations 5-8 swap width and height)."""
    transposed = orientation in (5, 6, 7, 8)
    return PhotoInfo(width=stored_height if transposed else stored_width,
                     height=stored_width if transposed else stored_height,
                     stored_width=stored_width, stored_height=stored_height, orientation=orientation, **details)


def _preview(raw) -> tuple[bytes, tuple[int, int]] | None:
    """The raw's embedded JPEG preview and its stored size, or None when it has none (or a broken one)."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except rawpy.LibRawError:
        return None
    if thumb.format != rawpy.ThumbFormat.JPEG:
        return None
    try:
        with Image.open(io.BytesIO(thumb.data)) as im:
            return thumb.data, im.size
    except Exception:  # a damaged preview: demosaic the raw instead
        return None


def _tiff_taken_at(data: bytes) -> str | None:
    """The EXIF date of a TIFF-based RAW (DNG, NEF, CR2, ARW, ...) read by Pillow from its header, or None."""
    if data[:4] not in (b"II*\0", b"MM\0*"):  # CR3, RAF, ORF, RW2 have headers of their own
        return None
    exif = Image.Exif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif.load(data)
            return _taken_at(exif)
    except Exception:  # an IFD Pillow cannot parse
        return None


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise TooLarge(f"too large: {width} x {height} pixels ({width * height / 1e6:.0f} megapixels, "
                       f"the limit is {max_pixels / 1e6:.0f}; see --max-megapixels)")


def _reason(e: Exception) -> str:
    if e.args and isinstance(e.args[0], bytes):  # LibRaw's messages are bytes
        text = e.args[0].decode("utf-8", "replace")
    else:
        text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


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
    raw = sub.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTimeOriginal)  # IFD0: some DNGs
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
