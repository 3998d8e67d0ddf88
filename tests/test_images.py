"""Decoding: orientation, reduced-scale JPEG decode, EXIF date, modes, per-file errors."""

import io

import numpy as np
import pytest
from PIL import Image

from phototag.images import BASE_EXTENSIONS, DecodeError, decode, supported_extensions
from photos import exif_block, jpeg_bytes


def marked(width, height, mark=(10, 20, 30, 40)):
    """A grey image with a red block at ``mark`` (x0, y0, x1, y1)."""
    a = np.full((height, width, 3), 128, np.uint8)
    x0, y0, x1, y1 = mark
    a[y0:y1, x0:x1] = (255, 0, 0)
    return Image.fromarray(a)


def red_centre(pixels):
    ys, xs = np.nonzero((pixels[..., 0] > 200) & (pixels[..., 1] < 60))
    return xs.mean(), ys.mean()


def test_orientation_6_is_applied():
    stored = marked(300, 200, mark=(10, 20, 30, 40))  # red block centred at (20, 30) in the stored frame
    pixels, info = decode(jpeg_bytes(stored, exif=exif_block(orientation=6)))
    assert pixels.shape == (300, 200, 3) and pixels.dtype == np.uint8
    assert (info.width, info.height, info.stored_width, info.stored_height, info.orientation) == (200, 300, 300, 200, 6)
    x, y = red_centre(pixels)  # rotated 90 degrees clockwise: (x, y) -> (height - y, x)
    assert abs(x - (200 - 30)) < 2 and abs(y - 20) < 2


@pytest.mark.parametrize("size, decode_size, expected, scale", [
    ((4000, 3000), 1000, (1000, 750), 0.25),
    ((4001, 3001), 1000, (1001, 751), 0.25),
    ((4000, 3000), 1900, (2000, 1500), 0.5),
    ((4000, 3000), 300, (500, 375), 0.125),
    ((4000, 3000), None, (4000, 3000), 1.0),
    ((800, 600), 1000, (800, 600), 1.0),
])
def test_large_jpegs_are_decoded_reduced(size, decode_size, expected, scale):
    w, h = size
    pixels, info = decode(jpeg_bytes(marked(w, h, mark=(2000 % w, 1000 % h, 2000 % w + 200, 1000 % h + 200))),
                          decode_size=decode_size)
    assert (pixels.shape[1], pixels.shape[0]) == expected
    assert info.scale == scale and (info.width, info.height) == size
    x, y = red_centre(pixels)  # coordinates divided by the scale are full-resolution coordinates
    assert abs(x / scale - (2000 % w + 100)) < 2 / scale and abs(y / scale - (1000 % h + 100)) < 2 / scale


def test_reduced_decode_with_orientation():
    stored = marked(4000, 3000, mark=(400, 200, 600, 400))
    pixels, info = decode(jpeg_bytes(stored, exif=exif_block(orientation=8)), decode_size=1000)
    assert pixels.shape == (1000, 750, 3) and info.scale == 0.25 and (info.width, info.height) == (3000, 4000)
    x, y = red_centre(pixels)  # orientation 8 = rotate 90 counter-clockwise: (x, y) -> (y, width - x)
    assert abs(x / 0.25 - 300) < 8 and abs(y / 0.25 - (4000 - 500)) < 8


def test_other_formats_are_never_reduced():
    out = io.BytesIO()
    marked(3000, 2000).save(out, "PNG")
    pixels, info = decode(out.getvalue(), decode_size=1000)
    assert pixels.shape == (2000, 3000, 3) and info.scale == 1.0 and info.format == "PNG"


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "1"])
def test_any_mode_becomes_rgb(mode):
    out = io.BytesIO()
    image = marked(64, 48).convert(mode)
    image.save(out, "TIFF" if mode in ("CMYK", "1") else "PNG")
    pixels, _ = decode(out.getvalue())
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8


def test_taken_at():
    _, info = decode(jpeg_bytes(marked(40, 30), exif=exif_block(taken="2021:05:03 14:22:10")))
    assert info.taken_at == "2021-05-03T14:22:10"
    _, info = decode(jpeg_bytes(marked(40, 30), exif=exif_block(taken="0000:00:00 00:00:00")))
    assert info.taken_at is None
    _, info = decode(jpeg_bytes(marked(40, 30)))
    assert info.taken_at is None and info.orientation == 1


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"hello, not a photo\n", "identify"),
    (jpeg_bytes(marked(400, 300))[:2000], "truncated"),
])
def test_broken_files_raise_decode_error(data, reason):
    with pytest.raises(DecodeError, match=reason):
        decode(data)


def test_decompression_bomb_is_a_decode_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DecodeError, match="too large"):
        decode(jpeg_bytes(marked(100, 100)))


def test_supported_extensions():
    assert BASE_EXTENSIONS <= supported_extensions()
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"} <= BASE_EXTENSIONS
