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

Memory and time are bounded before anything large is read or decoded (``read_photo``):

- Every image's claimed size is checked against ``max_pixels`` before its pixels are decoded, so a
  file claiming 65000 x 65000 pixels is refused without allocating them. Pillow's own limit
  (``Image.MAX_IMAGE_PIXELS``) is set to the same value: it refuses, at twice the limit, what this
  check does not see (other frames, embedded images).
- JPEG, PNG and TIFF are decoded from the open file (Pillow reads them in blocks) and hashed in
  chunks, so a file is never held whole. WebP, HEIF, AVIF and RAW are read whole by their decoders:
  a file of these larger than ``BYTES_PER_PIXEL`` bytes per allowed pixel is refused unread.
- A JPEG is decoded at a reduced scale (DCT scaling); every other format is reduced by the same
  factor right after decoding, so one full-size image is held at a time, only while it is decoded.
- A progressive JPEG with more than ``MAX_JPEG_SCANS`` scans (a "scan bomb": each scan costs a pass
  over every block) is refused before decoding.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from stat import S_ISREG
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, features

from .records import PhotoInfo

BASE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
AVIF_EXTENSIONS = frozenset({".avif"})
RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"})
DEFAULT_DECODE_SIZE = 1200  # long side below which a JPEG is not reduced any further (the detection size)
DEFAULT_MAX_PIXELS = 200_000_000  # larger images are refused (decompression bombs)

BYTES_PER_PIXEL = 4  # files read whole (WebP, HEIF, AVIF, RAW) larger than this per allowed pixel are refused
MAX_JPEG_SCANS = 100  # cameras and editors write 1-20; libjpeg-turbo's fuzzers stop at 500 on 1-megapixel images
READ_CHUNK = 1 << 20  # bytes per read when hashing and counting a JPEG's scans

# Pillow refuses images over twice MAX_IMAGE_PIXELS when it opens them (and TIFF tiles, crops), and
# warns above it; ``_check_size`` refuses those (naming width and height) before decoding, so the
# warning says nothing new. ``_decode_pillow`` sets the limit to the scan's ``max_pixels``.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
_JPEG_FORMATS = ("JPEG", "MPO")
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # in entropy-coded data: stuffing and RSTn are not markers

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
    """An image claiming more pixels than the limit (a decompression bomb, or simply too big), or a
    file read whole that is too big for any image within it."""


@dataclass(frozen=True)
class PhotoRead:
    """A photo file as ``read_photo`` read it: its state when opened, the SHA-256 of its bytes, its
    pixels (displayed frame, reduced as ``decode`` says) and what decoding told."""

    stat: os.stat_result
    sha256: str
    pixels: np.ndarray
    info: PhotoInfo


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
    """``decode`` of a file's content, RAW or not as its extension says (see ``read_photo``)."""
    photo = read_photo(path, decode_size, max_pixels=max_pixels)
    return photo.pixels, photo.info


def read_photo(path: str | os.PathLike | bytes, decode_size: int | None = DEFAULT_DECODE_SIZE, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoRead:
    """Read, hash and decode a photo file with bounded memory and time (see the module's docstring).

    The file is read with plain reads (never mapped: another program may truncate it meanwhile).
    Raises OSError when it cannot be read, TooLarge and DecodeError as ``decode`` does.
    """
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as file:  # a FIFO does not hang
        st = os.fstat(file.fileno())
        if not S_ISREG(st.st_mode):
            raise DecodeError("not a regular file")
        if st.st_size == 0:
            raise DecodeError("empty file")
        raw = is_raw(os.fsencode(path))
        if raw or _read_whole(os.pread(file.fileno(), 16, 0)):
            limit = BYTES_PER_PIXEL * max_pixels
            if st.st_size > limit:
                raise TooLarge(f"too large: a file of {st.st_size / 1e9:.1f} GB (this format is read whole; the "
                               f"limit is {limit / 1e9:.1f} GB, {BYTES_PER_PIXEL} bytes per pixel of --max-megapixels)")
            data = file.read()  # one allocation of the file's size
            sha256 = hashlib.sha256(data).hexdigest()
            pixels, info = decode(data, decode_size, max_pixels=max_pixels, raw=raw)
            return PhotoRead(st, sha256, pixels, info)
        digests: list[str] = []

        def hash_and_check(image_format: str) -> None:  # once the header is checked, before decoding
            digests.append(_hash_checking_scans(file.fileno(), image_format in _JPEG_FORMATS))

        pixels, info = _decode_pillow(file, decode_size, max_pixels, before_decoding=hash_and_check)
        return PhotoRead(st, digests[0], pixels, info)


def _read_whole(head: bytes) -> bool:
    """Whether the file whose first bytes these are is read whole by its decoder (WebP, HEIF, AVIF)."""
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP" or head[4:8] == b"ftyp"


def _hash_checking_scans(fd: int, jpeg: bool) -> str:
    """The SHA-256 of the file, read in chunks; for a JPEG its scans are counted meanwhile (DecodeError
    as soon as there are too many)."""
    digest = hashlib.sha256()
    scans = JpegScans() if jpeg else None
    offset = 0
    while chunk := os.pread(fd, READ_CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
        if scans is not None:
            scans.feed(chunk)
            scans.check()
    return digest.hexdigest()


class JpegScans:
    """Counts the scans (SOS markers) of a JPEG's first image up to its EOI, fed in chunks.

    Segments are skipped by their lengths; in entropy-coded data the next marker is an 0xFF followed by
    neither 0x00 (stuffing), 0xFF (fill) nor RSTn. What follows the image (MPF images, a phone's
    video) is not looked at.
    """

    def __init__(self):
        self.scans = 0
        self.done = False  # at the EOI, or at something that is no marker (Pillow judges the rest)
        self._pending = b""  # the start of a marker split between chunks
        self._skip = 0  # bytes of a segment still to pass
        self._entropy = False  # in entropy-coded data
        self._entropy_after_skip = False  # the segment being passed is an SOS header

    def feed(self, chunk: bytes) -> None:
        data, self._pending = self._pending + chunk if self._pending else chunk, b""
        i, n = 0, len(data)
        while not self.done and i < n:
            if self._skip:
                step = min(self._skip, n - i)
                i, self._skip = i + step, self._skip - step
                if not self._skip:
                    self._entropy = self._entropy_after_skip
                continue
            if self._entropy:
                found = _NEXT_MARKER.search(data, i)
                if found is None:
                    self._pending = data[-1:] if data.endswith(b"\xff") else b""
                    return
                i, self._entropy = found.start(), False
            if data[i] != 0xFF:
                self.done = True
                return
            if n - i < 2:
                self._pending = data[i:]
                return
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
            elif marker == 0xD9:  # EOI
                self.done = True
            elif marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
                i += 2
            elif n - i < 4:
                self._pending = data[i:]
                return
            else:
                self.scans += marker == 0xDA
                self._entropy_after_skip = marker == 0xDA
                self._skip = max((data[i + 2] << 8 | data[i + 3]) - 2, 0)
                self._entropy = self._entropy_after_skip and not self._skip
                i += 4

    def check(self) -> None:
        """Raise DecodeError once the count is over ``MAX_JPEG_SCANS``."""
        if self.scans > MAX_JPEG_SCANS:
            raise DecodeError(f"refused: a progressive JPEG of more than {MAX_JPEG_SCANS} scans (a scan bomb: "
                              "each scan is a pass over the whole image; cameras and editors write at most 20)")


def _check_scans(chunks: Iterable[bytes]) -> None:
    scans = JpegScans()
    for chunk in chunks:
        scans.feed(chunk)
    scans.check()


def _decode_pillow(source: bytes | BinaryIO, decode_size: int | None, max_pixels: int,
                   orientation: int | None = None, *,
                   before_decoding: Callable[[str], None] | None = None) -> tuple[np.ndarray, PhotoInfo]:
    """Decode with Pillow from bytes or an open file; ``orientation`` given: used instead of the file's
    own EXIF orientation. ``before_decoding(format)`` is called once the header has passed the size
    check, before any pixel is decoded (by default, for bytes: a JPEG's scans are counted)."""
    if isinstance(source, bytes):
        if not source:
            raise DecodeError("empty file")
        data, source = source, io.BytesIO(source)
        before_decoding = before_decoding or (lambda image_format: image_format in _JPEG_FORMATS
                                              and _check_scans([data]))
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(source) as im:
            stored_width, stored_height = im.size
            _check_size(stored_width, stored_height, max_pixels)
            image_format = im.format or ""
            if before_decoding is not None:
                before_decoding(image_format)
            exif = im.getexif()
            if orientation is None:
                orientation = exif.get(ExifTags.Base.Orientation, 1)
            if orientation not in _FLIP_TO_ORIENTATION.values():
                orientation = 1
            taken_at = _taken_at(exif)
            reduction = _reduction(stored_width, stored_height, decode_size)
            scale = _draft(im, reduction)
            im.load()
            if scale == 1.0 and reduction > 1:  # not reduced while decoding: reduced now, the full size let go
                reduced = _reduce(im, reduction)
                scale = reduced.width / stored_width
            else:
                reduced = im
            rgb = reduced if reduced.mode == "RGB" else reduced.convert("RGB")
            del reduced
            if orientation in _TRANSPOSE:
                rgb = rgb.transpose(_TRANSPOSE[orientation])
            pixels = np.asarray(rgb)
    except DecodeError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's limit (twice max_pixels) comes first
        raise TooLarge(_bomb_reason(e, max_pixels)) from e
    except Image.UnidentifiedImageError as e:
        raise DecodeError("not an image Pillow can identify") from e
    except OSError as e:
        if e.errno is not None and not isinstance(source, io.BytesIO):
            raise  # reading the file failed (the caller says so); Pillow's own OSErrors have no errno
        raise DecodeError(f"damaged or incomplete image ({_reason(e)})") from e
    except Exception as e:  # Pillow's plugins raise many types for broken files; each is a per-file error
        raise DecodeError(f"damaged or incomplete image ({_reason(e)})") from e
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


def _bomb_reason(error: Image.DecompressionBombError, max_pixels: int) -> str:
    """Pillow's refusal in the words of ``_check_size`` (Pillow names the pixel count only)."""
    claimed = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(claimed[1]) / 1e6:.0f} megapixels" if claimed else "over twice the limit"
    return f"too large: {size}, the limit is {max_pixels / 1e6:.0f}; see --max-megapixels"


def _reason(e: Exception) -> str:
    if e.args and isinstance(e.args[0], bytes):  # LibRaw's messages are bytes
        text = e.args[0].decode("utf-8", "replace")
    else:
        text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _reduction(width: int, height: int, decode_size: int | None) -> int:
    """The largest of 8, 4 and 2 that keeps the long side at least ``decode_size`` (1: none)."""
    if not decode_size:
        return 1
    return next((r for r in (8, 4, 2) if max(width, height) // r >= decode_size), 1)


def _draft(im: Image.Image, reduction: int) -> float:
    """Ask the JPEG decoder for a reduced scale (DCT scaling); return decoded pixels per full pixel."""
    width, _ = im.size
    if im.format not in _JPEG_FORMATS or reduction == 1:
        return 1.0
    drafted = im.draft("RGB", (width // reduction, im.size[1] // reduction))
    if drafted is None:
        return 1.0
    _, box = drafted
    return 1.0 / round(width / box[2])


def _reduce(im: Image.Image, reduction: int) -> Image.Image:
    """``im`` reduced by box averaging (``Image.reduce``), converted first where its mode cannot be."""
    try:
        return im.reduce(reduction)
    except ValueError:  # palette, bilevel and some 16-bit modes
        return im.convert("RGB").reduce(reduction)


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
