"""Synthetic photos for the tests: a real face pasted onto generated scenes.

The face is the astronaut of ``skimage.data.astronaut()`` (Eileen Collins, a NASA photo in the public
domain, shipped inside scikit-image's wheel: no download), cut out the way UTKFace's "aligned &
cropped" faces are framed (200 x 200, upright, the eyes' centre 0.29 of the side below the top, the
mouth 0.39 of the side below the eyes, as :mod:`phototag.chain` frames faces) and varied (mirrored,
tinted, lit) so that the faces of a photo are not copies of each other. Their labels are made up, for
the data readers and the training plumbing; no test here measures accuracy with them.
The benchmarks paste UTKFace crops instead (``face_files``, read from ``../shared/data`` beside the
checkout and never copied into the repository): many people, with their labels.
``build_test_folder`` writes the scan tests' library and returns where every face was pasted, in the
displayed frame (EXIF orientation applied) of its file.
"""

from __future__ import annotations

import functools
import io
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import piexif
from PIL import Image, ImageDraw, ImageFilter

DATA_DIR = Path(__file__).parents[2].parent / "shared" / "data"  # ../shared beside the checkout
UTKFACE_DIR = DATA_DIR / "utkface" / "crop_part1"
# The astronaut's eyes' centre and mouth centre in skimage.data.astronaut() (512 x 512), the mean of
# YuNet's and MTCNN's landmarks.
ASTRONAUT_EYES, ASTRONAUT_MOUTH = (224.0, 101.6), (221.1, 141.3)
CROP_SIDE = 200
EYE_HEIGHT, EYE_MOUTH_SHARE = 0.29, 0.39  # of the crop side, as UTKFace's crops and phototag.chain
FACE_FRACTION = 0.85  # detector box width relative to the side of a pasted crop, roughly
NON_UTF8_NAME = b"caf\xe9 party.jpg"  # Latin-1 e-acute: not valid UTF-8
FACES = 48  # distinct variants made by face_crops()


@dataclass(frozen=True)
class FaceCrop:
    """An aligned 200 x 200 face crop and its made-up labels (``name``: a UTKFace file name carrying them)."""

    image: Image.Image
    age: int
    female: bool
    name: str


@dataclass
class PastedFace:
    """A face pasted into a test photo: centre and crop side in the displayed frame, angle in degrees
    (counter-clockwise as displayed), and the labels of the crop."""

    center: tuple[float, float]
    size: float
    angle: float
    age: int
    female: bool


@dataclass
class TestFolder:
    root: Path
    faces: dict[bytes, list[PastedFace]] = field(default_factory=dict)  # by absolute path
    bad: dict[bytes, str] = field(default_factory=dict)  # undecodable files -> a word of the expected reason
    ignored: list[bytes] = field(default_factory=list)  # files the walk must not pick up


@functools.cache
def astronaut_face() -> Image.Image:
    """The astronaut's face as an aligned crop: turned upright and framed like a UTKFace crop."""
    from skimage.data import astronaut

    eyes, mouth = np.array(ASTRONAUT_EYES), np.array(ASTRONAUT_MOUTH)
    distance = math.dist(eyes, mouth)
    down = (mouth - eyes) / distance
    across = np.array([down[1], -down[0]])
    side = distance / EYE_MOUTH_SHARE
    centre = eyes + down * (0.5 - EYE_HEIGHT) * side
    s = side / CROP_SIDE  # source pixels per crop pixel
    origin = centre - CROP_SIDE / 2 * s * (across + down)
    affine = (s * across[0], s * down[0], origin[0], s * across[1], s * down[1], origin[1])
    return Image.fromarray(astronaut()).transform((CROP_SIDE, CROP_SIDE), Image.Transform.AFFINE, affine,
                                                  Image.Resampling.BICUBIC)


@functools.cache
def _variants() -> tuple[FaceCrop, ...]:
    base = np.asarray(astronaut_face(), float)
    crops = []
    for i in range(FACES):
        rng = np.random.default_rng(i)
        pixels = base[:, ::-1] if i % 2 else base  # every other one mirrored
        pixels = pixels * rng.uniform(0.8, 1.15, 3) + rng.uniform(-20, 20)  # tint and light
        age, female = 1 + (7 + 13 * i) % 90, i % 3 != 0
        name = f"{age}_{int(female)}_{i % 5}_{20170101000000000 + i}.jpg.chip.jpg"
        crops.append(FaceCrop(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), age, female, name))
    return tuple(crops)


def face_crops() -> list[FaceCrop]:
    """:data:`FACES` variants of the astronaut's aligned face, always the same, in a new list."""
    return list(_variants())


def face_files() -> list[Path]:
    """The UTKFace crops, sorted by name (for the benchmarks; none without ``../shared/data``)."""
    return sorted(UTKFACE_DIR.glob("*.jpg"))


def utkface_crop(path: Path) -> FaceCrop:
    """A UTKFace crop with the labels of its file name ``{age}_{gender}_{race}_{datetime}.jpg.chip.jpg``."""
    age, gender = path.name.split("_")[:2]
    return FaceCrop(Image.open(path).convert("RGB"), int(age), gender == "1", path.name)


def write_utkface(folder: Path, crops: list[FaceCrop]) -> Path:
    """A UTKFace-style folder (``folder/crop_part1/{age}_{gender}_{race}_{datetime}.jpg.chip.jpg``)."""
    (folder / "crop_part1").mkdir(parents=True, exist_ok=True)
    for crop in crops:
        crop.image.save(folder / "crop_part1" / crop.name, quality=92)
    return folder


def write_gender_folders(root: Path, sides: dict[str, int]) -> Path:
    """A CelebA-style folder: ``root/{side}/{male,female}/*.jpg``, ``n`` faces each, for each side."""
    pool = iter(face_crops())
    for side, n in sides.items():
        for gender in ("male", "female"):
            (root / side / gender).mkdir(parents=True)
            for k in range(n):
                next(pool).image.resize((84, 104)).save(root / side / gender / f"{side}{gender}{k:03d}.jpg")
    return root


def scene(width: int, height: int, rng: random.Random) -> Image.Image:
    """A natural-looking background: sky-to-ground gradient, soft blobs and shapes, sensor noise."""
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    top = np.array([rng.randint(90, 200), rng.randint(120, 210), rng.randint(150, 240)], float)
    bottom = np.array([rng.randint(40, 140), rng.randint(40, 120), rng.randint(20, 90)], float)
    t = np.linspace(0, 1, height)[:, None, None]
    low = nrng.normal(0, 25, (height // 64 + 2, width // 64 + 2, 3))
    low = np.asarray(Image.fromarray(np.clip(low + 128, 0, 255).astype(np.uint8))
                     .resize((width, height), Image.Resampling.BICUBIC), float) - 128
    base = np.clip(top * (1 - t) + bottom * t + low, 0, 255).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.uniform(-0.1, 1) * width, rng.uniform(0.2, 1) * height
        w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.5) * height
        colour = tuple(rng.randint(20, 230) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(radius=max(1.0, width / 800)))
    noise = nrng.normal(0, 4, (height, width, 1))
    return Image.fromarray(np.clip(np.asarray(image, float) + noise, 0, 255).astype(np.uint8))


def paste_face(canvas: Image.Image, crop: FaceCrop | Path, center: tuple[float, float], size: int,
               angle: float = 0.0) -> PastedFace:
    """Paste a face crop (or a UTKFace file), scaled to ``size`` and rotated by ``angle``
    (counter-clockwise), centred at ``center``, with a soft edge; return its record."""
    crop = crop if isinstance(crop, FaceCrop) else utkface_crop(Path(crop))
    face = crop.image.resize((size, size), Image.Resampling.LANCZOS)
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((size * 0.04, 0, size * 0.96, size), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(radius=size / 40))
    face = face.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    canvas.paste(face, (round(center[0] - face.width / 2), round(center[1] - face.height / 2)), mask)
    return PastedFace(center=center, size=size, angle=angle, age=crop.age, female=crop.female)


def jpeg_bytes(image: Image.Image, quality: int = 90, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return out.getvalue()


def exif_block(orientation: int = 1, taken: str | None = None) -> bytes:
    """An EXIF block with an orientation and, optionally, DateTimeOriginal ("YYYY:MM:DD HH:MM:SS")."""
    exif = {"0th": {piexif.ImageIFD.Orientation: orientation}, "Exif": {}}
    if taken:
        exif["Exif"][piexif.ExifIFD.DateTimeOriginal] = taken.encode()
    return piexif.dump(exif)


def write(path: bytes | Path, data: bytes) -> bytes:
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return os.path.abspath(path)


def build_test_folder(root: Path, seed: int = 7) -> TestFolder:
    """Write the scan tests' photo library under ``root`` and return what is in it.

    Good photos (800 x 600 and smaller): upright faces; faces rotated by known angles; a JPEG stored
    sideways with EXIF orientation 6; a PNG; a WebP in a subfolder; a name that is not valid UTF-8;
    a photo without faces.
    Bad files: a truncated JPEG, a zero-byte ``.jpg``, a text file named ``.jpg``. Ignored: a text
    file, a photo in a hidden folder. A symbolic link loop.
    """
    rng = random.Random(seed)
    pool = face_crops()
    rng.shuffle(pool)
    crops = iter(pool)
    folder = TestFolder(root=root)

    def photo(centers, sizes, angles=None, width=800, height=600):
        canvas = scene(width, height, rng)
        pasted = [paste_face(canvas, next(crops), c, s, a)
                  for c, s, a in zip(centers, sizes, angles or [0.0] * len(centers))]
        return canvas, pasted

    canvas, pasted = photo([(150, 200), (420, 260), (660, 380)], [180, 200, 170])
    key = write(root / "2023" / "group.jpg", jpeg_bytes(canvas, exif=exif_block(taken="2023:07:14 18:30:05")))
    folder.faces[key] = pasted

    canvas, pasted = photo([(200, 300), (560, 300)], [220, 220], angles=[25.0, -20.0])
    folder.faces[write(root / "2023" / "tilted.jpg", jpeg_bytes(canvas))] = pasted

    # Stored sideways: the displayed (upright) picture is 600 x 800; the file holds it turned 90
    # degrees counter-clockwise (800 x 600) and says "rotate 90 clockwise to display" (orientation 6).
    stored = scene(800, 600, rng)
    stored_center, size = (300.0, 250.0), 220
    face = paste_face(stored, next(crops), stored_center, size, angle=90.0)
    face.center = (stored.height - stored_center[1], stored_center[0])  # displayed = rotate 90 clockwise
    face.angle = 0.0
    folder.faces[write(root / "2023" / "sideways.jpg", jpeg_bytes(stored, exif=exif_block(orientation=6)))] = [face]

    canvas, pasted = photo([(320, 240)], [240], width=640, height=480)
    out = io.BytesIO()
    canvas.save(out, "PNG")
    folder.faces[write(root / "screenshots" / "portrait.png", out.getvalue())] = pasted

    canvas, pasted = photo([(250, 220)], [200], width=600, height=450)
    out = io.BytesIO()
    canvas.save(out, "WEBP", quality=90)
    folder.faces[write(root / "2024" / "trip" / "beach.webp", out.getvalue())] = pasted

    canvas, pasted = photo([(400, 300)], [220])
    folder.faces[write(os.fsencode(root / "2024") + b"/" + NON_UTF8_NAME, jpeg_bytes(canvas))] = pasted

    folder.faces[write(root / "2024" / "landscape.jpg", jpeg_bytes(scene(800, 600, rng)))] = []

    whole = jpeg_bytes(scene(800, 600, rng))
    folder.bad[write(root / "2024" / "truncated.jpg", whole[: len(whole) // 2])] = "truncated"
    folder.bad[write(root / "2024" / "empty.jpg", b"")] = "empty"
    folder.bad[write(root / "2024" / "notes.jpg", b"Shopping list: milk, eggs.\n")] = "identify"

    folder.ignored.append(write(root / "2024" / "readme.txt", b"not a photo\n"))
    canvas, _ = photo([(400, 300)], [200])
    folder.ignored.append(write(root / ".thumbnails" / "hidden.jpg", jpeg_bytes(canvas)))
    os.symlink("..", root / "2024" / "trip" / "loop")
    return folder
