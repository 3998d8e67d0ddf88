"""Decoding: orientation, reduced-scale JPEG decode, EXIF date, modes, HEIC, RAW, bombs, per-file errors."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from phototag.images import (AVIF_AVAILABLE, AVIF_EXTENSIONS, BASE_EXTENSIONS, HEIF_EXTENSIONS, RAW_EXTENSIONS, DecodeError, TooLarge, decode, decode_file,
                             supported_extensions)
from phototag.testing.formats import (camera_jpeg, dng_bytes, heic_bytes, jpeg_bomb, png_bomb, set_exif_orientation,
                                      with_claimed_size, with_preview)
from phototag.testing.photos import exif_block, jpeg_bytes


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


@pytest.mark.parametrize("image_format, mode", [("PNG", "RGB"), ("PNG", "P"), ("TIFF", "RGB"), ("TIFF", "I;16"),
                                                ("WEBP", "RGB")])
def test_other_formats_are_reduced_right_after_decoding(tmp_path, image_format, mode):
    image = marked(3000, 2000, mark=(2000, 1000, 2200, 1200))
    (image.convert("L").convert(mode) if mode == "I;16" else image.convert(mode)).save(tmp_path / "a", image_format)
    pixels, info = decode_file(tmp_path / "a", decode_size=1000)
    assert pixels.shape == (1000, 1500, 3) and info.scale == 0.5 and info.format == image_format
    assert (info.width, info.height) == (3000, 2000)
    if mode != "I;16":  # grey: no red block
        x, y = red_centre(pixels)
        assert abs(x / 0.5 - 2100) < 4 and abs(y / 0.5 - 1100) < 4


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


def test_the_pixel_limit_is_an_option():
    with pytest.raises(TooLarge, match="100 x 100 pixels"):
        decode(jpeg_bytes(marked(100, 100)), max_pixels=9999)
    assert decode(jpeg_bytes(marked(100, 100)), max_pixels=10000)[0].shape == (100, 100, 3)


@pytest.mark.parametrize("data, raw, claimed", [
    (png_bomb(30000, 30000), False, "900 megapixels, the limit is 200"),  # Pillow's limit: twice ours
    (jpeg_bomb(65000, 65000), False, "4225 megapixels, the limit is 200"),
    (png_bomb(15000, 15000), False, "15000 x 15000 pixels"),
    (with_claimed_size(dng_bytes(marked(64, 48)), 60000, 60000), True, "60000 x 60000"),
])
def test_decompression_bombs_are_refused_before_decoding(data, raw, claimed):
    start = time.perf_counter()
    with pytest.raises(TooLarge, match=claimed):
        decode(data, raw=raw)
    assert time.perf_counter() - start < 5  # nothing near the claimed size was allocated or decoded


def test_supported_extensions():
    assert BASE_EXTENSIONS | HEIF_EXTENSIONS | RAW_EXTENSIONS | (AVIF_EXTENSIONS if AVIF_AVAILABLE else set()) \
        == supported_extensions()
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"} <= BASE_EXTENSIONS
    assert {".heic", ".heif"} <= HEIF_EXTENSIONS
    assert {".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"} <= RAW_EXTENSIONS


# Displayed-frame position of the red block of ``marked(300, 200)`` (centre (20, 30) as stored) for
# each orientation: 1 as stored, 3 turned 180, 6 turned 90 clockwise, 8 turned 90 counter-clockwise.
SHOWN = {1: ((300, 200), (20, 30)), 3: ((300, 200), (280, 170)), 6: ((200, 300), (170, 20)),
         8: ((200, 300), (30, 280))}


def assert_shown(pixels, orientation, scale=1.0):
    (width, height), (x, y) = SHOWN[orientation]
    assert (pixels.shape[1], pixels.shape[0]) == (round(width * scale), round(height * scale))
    rx, ry = red_centre(pixels)
    assert abs(rx / scale - x) < 3 and abs(ry / scale - y) < 3


@pytest.mark.parametrize("orientation", [None, 1, 3, 6, 8])
def test_heic_is_turned_exactly_once(orientation):
    import pillow_heif

    data = heic_bytes(marked(300, 200), orientation, taken="2022:08:01 10:11:12")
    if orientation:  # the orientation is in the file twice: HEIF transform and EXIF
        exif = Image.Exif()
        exif.load(pillow_heif.open_heif(io.BytesIO(data)).info["exif"])
        assert exif[274] == orientation
    pixels, info = decode(data)
    assert_shown(pixels, orientation or 1)
    # libheif applied the transform; the recorded frame is the decoded one, with nothing left to apply
    assert info.orientation == 1 and (info.width, info.height) == (info.stored_width, info.stored_height)
    assert (info.width, info.height) == SHOWN[orientation or 1][0]
    assert info.format == "HEIF" and info.taken_at == "2022-08-01T10:11:12"


@pytest.mark.skipif(not AVIF_AVAILABLE, reason="this Pillow has no AVIF support")
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_avif_is_turned_exactly_once(orientation):
    out = io.BytesIO()
    marked(300, 200).save(out, "AVIF", exif=exif_block(orientation))  # Pillow writes irot/imir and the EXIF
    pixels, info = decode(out.getvalue())
    assert_shown(pixels, orientation)
    assert info.orientation == orientation and info.format == "AVIF"


def test_heic_follows_its_own_transform_not_the_exif_orientation():
    # HEIF standard: the EXIF orientation is informative; the irot/imir properties are what is shown.
    pixels, _ = decode(set_exif_orientation(heic_bytes(marked(300, 200), 1), 6))
    assert_shown(pixels, 1)
    pixels, _ = decode(set_exif_orientation(heic_bytes(marked(300, 200), 6), 1))
    assert_shown(pixels, 6)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_raw_without_preview_is_demosaiced_at_half_size_and_turned(orientation):
    pixels, info = decode(dng_bytes(marked(300, 200), orientation), raw=True)
    assert_shown(pixels, orientation, scale=0.5)
    assert info.scale == 0.5 and info.orientation == orientation and info.format == "RAW"
    assert (info.width, info.height) == SHOWN[orientation][0] and (info.stored_width, info.stored_height) == (300, 200)
    assert info.extra["decoded_from"] == "raw at half size"


@pytest.mark.parametrize("raw_orientation, preview_orientation, shown", [
    (1, None, 1), (6, None, 6), (8, None, 8),
    (6, 6, 6),  # camera previews carry the orientation in their own EXIF too: turned once, not twice
    (3, 6, 3),  # the raw's own orientation wins
    (1, 6, 6),  # the raw says nothing: the preview's EXIF does
])
def test_raw_preview_is_decoded_and_turned_once(raw_orientation, preview_orientation, shown):
    preview = camera_jpeg(marked(300, 200), preview_orientation)
    pixels, info = decode(with_preview(dng_bytes(marked(300, 200), raw_orientation), preview), raw=True)
    assert_shown(pixels, shown)
    assert info.extra["decoded_from"] == "preview" and info.orientation == shown and info.scale == 1.0


@pytest.mark.parametrize("preview", [False, True])
def test_raw_date_taken(preview):
    data = dng_bytes(marked(300, 200), taken="2019:06:07 08:09:10")
    _, info = decode(with_preview(data, camera_jpeg(marked(300, 200))) if preview else data, raw=True)
    assert info.taken_at == "2019-06-07T08:09:10"
    assert info.extra["decoded_from"] == ("preview" if preview else "raw at half size")


def test_small_raw_preview_is_not_used():
    preview = jpeg_bytes(marked(300, 200).resize((150, 100)))
    pixels, info = decode(with_preview(dng_bytes(marked(300, 200), 6), preview), raw=True)
    assert info.extra["decoded_from"] == "raw at half size"
    assert_shown(pixels, 6, scale=0.5)


def test_broken_raw_is_a_decode_error():
    with pytest.raises(DecodeError, match="RAW"):
        decode(b"II*\0 certainly not a raw file", raw=True)
    with pytest.raises(DecodeError, match="RAW"):
        decode(jpeg_bytes(marked(40, 30)), raw=True)
