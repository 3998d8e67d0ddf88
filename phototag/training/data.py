"""Face data sets: readers that validate their input, deterministic splits, and image loading.

Three layouts are read, each into a :class:`Samples` table (path, age, gender; a missing label is NaN):

* UTKFace folders: ``{age}_{gender}_{race}_{datetime}.jpg.chip.jpg`` (gender 0 = male, 1 = female);
* gender folders: any ``male/`` and ``female/`` folders below a root (e.g. CelebA crops);
* a CSV file with the columns ``path,age,gender`` (either label may be empty; gender ``f``/``m``,
  ``female``/``male`` or ``1``/``0`` as in UTKFace); paths are relative to the CSV's folder;
* a labelled folder: such a CSV named ``labels.csv`` inside the folder (e.g. All-Age-Faces).

A folder with its own ``train/``, ``val/`` or ``test/`` subfolders, such as the CelebA crops or
AAF's ``train/``, keeps that split (:func:`splits`; a labelled folder without ``val/`` rows, like
AAF, draws its validation side from ``train/`` by file name and seed). Any other source is split
by file name and seed.

Problems (an empty folder, a file name that breaks the grammar, an unreadable image, a bad label)
raise :class:`DataError` naming the files, instead of being skipped silently.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
UTK_NAME = re.compile(r"^(\d+)_([01])_([0-4])_(\d+)\.jpg\.chip\.jpg$")
GENDER_WORDS = {"f": 1.0, "female": 1.0, "1": 1.0, "m": 0.0, "male": 0.0, "0": 0.0}
MAX_AGE = 120
SPLIT_NAMES = ("train", "val", "test")
LABELS = "labels.csv"  # the label file of a labelled folder


class DataError(ValueError):
    """A data set cannot be used as given; the message names the files."""


@dataclass
class Samples:
    """Labelled image files. ``gender`` is 1.0 for female, 0.0 for male; NaN marks a missing label.

    ``group`` ties together files that must stay on the same side of a split (duplicates);
    ``source`` names the data set each file came from, by its folder (or CSV file) name, so that a
    data set packed in parts (:mod:`phototag.training.pack`) is still one source (for balanced sampling).
    """

    paths: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    group: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index: np.ndarray) -> "Samples":
        return Samples(*(getattr(self, f.name)[index] for f in fields(Samples)))

    @staticmethod
    def concat(parts: list["Samples"]) -> "Samples":
        return Samples(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Samples)))


def _samples(paths: list[str], age: list[float], gender: list[float], group: list[str] | None = None,
             source: str = "") -> Samples:
    return Samples(
        np.array(paths, dtype=object),
        np.array(age, dtype=np.float32),
        np.array(gender, dtype=np.float32),
        np.array(group if group is not None else paths, dtype=object),
        np.array([source] * len(paths), dtype=object),
    )


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def problems(kind: str, names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return f"{len(names)} {kind}: {shown}"


def read_utkface(folder: str | Path) -> Samples:
    """Read a UTKFace folder (recursively); groups come from ``duplicate_groups.csv`` when present."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = _image_files(folder)
    if not files:
        raise DataError(f"{folder}: no images found")
    bad, paths, ages, genders = [], [], [], []
    for f in files:
        m = UTK_NAME.match(f.name)
        if not m or not 0 < int(m.group(1)) <= MAX_AGE:
            bad.append(f.name)
            continue
        paths.append(str(f))
        ages.append(float(m.group(1)))
        genders.append(float(m.group(2)))
    if bad:
        raise DataError(f"{folder}: " + problems(
            "file names do not follow UTKFace's {age}_{gender}_{race}_{datetime}.jpg.chip.jpg", bad))
    group_of = _duplicate_groups(folder)
    groups = [group_of.get(Path(p).relative_to(folder).as_posix(), p) for p in paths]
    return _samples(paths, ages, genders, groups, folder.name)


def _duplicate_groups(folder: Path) -> dict[str, str]:
    table = folder / "duplicate_groups.csv"
    if not table.exists():
        return {}
    with open(table, newline="") as fh:
        return {row["file"]: f"dup:{row['group']}" for row in csv.DictReader(fh)}


def read_gender_folders(root: str | Path) -> Samples:
    """Read every ``male/`` and ``female/`` folder below ``root`` (gender only, no age)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    folders = sorted(p for p in [root, *root.rglob("*")] if p.is_dir() and p.name.lower() in ("male", "female"))
    if not folders:
        raise DataError(f"{root}: no male/ or female/ folders found")
    paths, genders = [], []
    for folder in folders:
        files = _image_files(folder)
        if not files:
            raise DataError(f"{folder}: no images found")
        paths += [str(f) for f in files]
        genders += [1.0 if folder.name.lower() == "female" else 0.0] * len(files)
    return _samples(paths, [np.nan] * len(paths), genders, source=root.name)


def read_csv(path: str | Path) -> Samples:
    """Read a ``path,age,gender`` CSV file; relative paths are taken from the CSV's folder."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise DataError(f"{path}: needs a header with the columns path,age,gender")
        rows = list(reader)
    if not rows:
        raise DataError(f"{path}: no rows")
    bad, missing, paths, ages, genders = [], [], [], [], []
    for line, row in enumerate(rows, start=2):
        file = path.parent / row["path"]
        age_text = (row.get("age") or "").strip()
        gender_text = (row.get("gender") or "").strip().lower()
        try:
            age = float(age_text) if age_text else np.nan
            if age_text and not 0 <= age <= MAX_AGE:
                raise ValueError
            gender = GENDER_WORDS[gender_text] if gender_text else np.nan
        except (ValueError, KeyError):
            bad.append(f"line {line}")
            continue
        if not file.is_file():
            missing.append(row["path"])
            continue
        paths.append(str(file))
        ages.append(age)
        genders.append(gender)
    if bad:
        raise DataError(f"{path}: " + problems("rows with a bad age (0-120) or gender (f/m/female/male/1/0)", bad))
    if missing:
        raise DataError(f"{path}: " + problems("files not found", missing))
    return _samples(paths, ages, genders, source=path.name)


def read_labelled_folder(folder: str | Path) -> Samples:
    """Read a folder's ``labels.csv`` (``path,age,gender``, paths relative to the folder); the source is
    named by the folder."""
    folder = Path(folder)
    samples = read_csv(folder / LABELS)
    samples.source[:] = folder.name
    return samples


def read_any(source: str | Path) -> Samples:
    """Read a data set, choosing the reader from its layout (CSV file, labelled folder, gender folders,
    UTKFace folder)."""
    source = Path(source)
    if source.suffix.lower() == ".csv":
        return read_csv(source)
    if (source / LABELS).is_file():
        return read_labelled_folder(source)
    if source.is_dir() and any(p.is_dir() and p.name.lower() in ("male", "female") for p in [source, *source.rglob("*")]):
        return read_gender_folders(source)
    return read_utkface(source)


def split(samples: Samples, seed: int, val: float = 0.1, test: float = 0.1) -> tuple[Samples, Samples, Samples]:
    """Deterministic train/validation/test split by group (duplicates stay together).

    A group's side depends only on its name and the seed, so adding files to a data set does not
    move existing files between sides.
    """
    def position(group: str) -> float:
        digest = hashlib.sha256(f"{seed}:{Path(group).name if not group.startswith('dup:') else group}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    pos = np.array([position(g) for g in samples.group])
    is_test = pos < test
    is_val = (pos >= test) & (pos < test + val)
    is_train = ~(is_test | is_val)
    return samples.take(np.flatnonzero(is_train)), samples.take(np.flatnonzero(is_val)), samples.take(np.flatnonzero(is_test))


def _own_sides(source: Path) -> list[Samples] | None:
    """The train, validation and test sides of a source by its own split subfolders (a missing side is
    empty), or None when it has none. A labelled folder's rows go by their first folder; there, a
    missing validation side is the ``val`` share of the train side (AAF holds only its train split)."""
    if not source.is_dir() or not any((source / name).is_dir() for name in SPLIT_NAMES):
        return None
    if not (source / LABELS).is_file():
        sides = []
        for name in SPLIT_NAMES:
            side = read_any(source / name) if (source / name).is_dir() else _samples([], [], [])
            side.source[:] = source.name
            sides.append(side)
        return sides
    samples = read_labelled_folder(source)
    side_of = np.array([Path(os.path.relpath(p, source)).parts[0] for p in samples.paths], dtype=object)
    outside = samples.paths[~np.isin(side_of, SPLIT_NAMES)]
    if len(outside):
        raise DataError(f"{source / LABELS}: " + problems(
            f"rows outside the folder's {'/, '.join(SPLIT_NAMES)}/ subfolders", [str(p) for p in outside]))
    return [samples.take(np.flatnonzero(side_of == name)) for name in SPLIT_NAMES]


def splits(source: str | Path, seed: int, val: float = 0.1, test: float = 0.1
           ) -> tuple[Samples, Samples, Samples]:
    """Train, validation and test samples of one source: its own ``train/``, ``val/`` and ``test/``
    subfolders when it has any of them (see :func:`_own_sides`), else :func:`split`."""
    source = Path(source)
    sides = _own_sides(source)
    if sides is None:
        return split(read_any(source), seed, val, test)
    train, val_side, test_side = sides
    if (source / LABELS).is_file() and not len(val_side):
        train, val_side, _ = split(train, seed, val, 0.0)
    return train, val_side, test_side


LABEL_FILES = {"duplicate_groups.csv": "file", LABELS: "path"}  # label file -> its column of relative paths


def copy_label_files(source: str | Path, target: str | Path, kept: set[str]) -> None:
    """Write the label files of the folder ``source`` into ``target`` with the rows of the ``kept``
    files only (paths relative to the folder), for a copy that holds some of its files."""
    for name, column in LABEL_FILES.items():
        if not (Path(source) / name).is_file():
            continue
        with open(Path(source) / name, newline="") as fh:
            reader = csv.DictReader(fh)
            fieldnames, rows = reader.fieldnames, [r for r in reader if r[column] in kept]
        with open(Path(target) / name, "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames)
            writer.writeheader()
            writer.writerows(rows)


def square(image: Image.Image) -> Image.Image:
    """Make an image square by reflect-padding its short side (keeps the face at its scale)."""
    w, h = image.size
    if w == h:
        return image
    a = np.asarray(image)
    d = abs(w - h)
    pad = ((0, 0), (d // 2, d - d // 2), (0, 0)) if w < h else ((d // 2, d - d // 2), (0, 0), (0, 0))
    return Image.fromarray(np.pad(a, pad, mode="reflect"))


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Decode a face image to a square ``size`` x ``size`` RGB uint8 array."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return np.asarray(square(im).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def load_images(samples: Samples, size: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """Decode all images of ``samples`` into one (N, size, size, 3) uint8 array, cached on disk if asked."""
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(("\n".join(samples.paths) + f"\n{size}").encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"images-{size}-{key}.npy"
        if cache.exists():
            return np.load(cache)
    out = np.empty((len(samples), size, size, 3), dtype=np.uint8)
    unreadable = []
    for i, p in enumerate(samples.paths):
        try:
            out[i] = load_image(p, size)
        except (OSError, ValueError) as exc:
            unreadable.append(f"{p} ({exc})")
    if unreadable:
        raise DataError(problems("unreadable images", unreadable))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(cache)
    return out
