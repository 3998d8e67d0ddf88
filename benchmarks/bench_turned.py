"""Benchmark: faces read the right way up, in upright photos and in photos stored turned.

Validation-side faces of All-Age-Faces, UTKFace and CelebA (``data.splits``, never their test side;
by default the half of them by file name that the limits of ``phototag/turns.py`` were not chosen
on) are pasted, one to three a photo, into generated 640 x 480 scenes: most upright (tilt within ±5°),
some tilted by up to ±60°. Each photo is analysed as the scan does (the default detector, then the
shipped chain on all its faces at once, ``FaceAnalyzer``) as it is and turned by 90, 180 and 270
degrees without an orientation tag. With the photo's turn decided by all its faces
(``FaceChain.photo_turn``) and, for comparison, each face alone, it prints:

- the share of the upright photos' faces read more than 60° from their true angle;
- per turn, the share of faces found in both copies whose gender and age group (decade) are the
  upright copy's;
- the rotation error (mean, 95th percentile) of faces tilted by 0-60° in the upright photos;
- the chain's time per face, in the upright photos and in the turned copies (where a photo found
  turned is detected again, turned back);
- the regressor's own floor on the same faces: each face framed again on its surroundings turned back
  by its true tilt and read once more (what a perfect first reading leaves; the scan's error cannot
  go much below it).

Not a test; run it as

    python benchmarks/bench_turned.py [--photos 200] [--seed 11] [--half 1] [--models FOLDER]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.analyzer import FaceAnalyzer  # noqa: E402
from phototag.ages import age_decade  # noqa: E402
from phototag.models import wrapped_angles  # noqa: E402
from phototag.testing.photos import FaceCrop, paste_face, scene  # noqa: E402
from phototag.training import data  # noqa: E402

SOURCES = ("aaf", "utkface", "celeba_gender")
WIDTH, HEIGHT = 640, 480


def validation_faces(root: Path, rng: random.Random, half: int) -> list[tuple[str, float, float]]:
    """(path, age or NaN, P(female) label) of the validation sides of the sources, shuffled: the
    ``half`` (0 or 1) by a hash of the file name (the limits in phototag/turns.py were chosen on half 0)."""
    pool = []
    for name in SOURCES:
        _, val, _ = data.splits(root / name, 1337)
        pool += [face for face in zip(val.paths, val.age, val.gender)
                 if int(hashlib.sha1(Path(face[0]).name.encode()).hexdigest(), 16) % 2 == half]
    rng.shuffle(pool)
    return pool


def make_photo(faces: list, rng: random.Random) -> tuple[Image.Image, list[dict]]:
    """A scene with the faces pasted side by side, each upright or tilted; their records."""
    canvas = scene(WIDTH, HEIGHT, rng)
    slot = WIDTH / len(faces)
    pasted = []
    for i, (path, age, female) in enumerate(faces):
        side = rng.randint(90, min(220, int(slot * 0.8)))
        tilt = rng.uniform(-5, 5) if rng.random() < 0.7 else rng.uniform(-60, 60)
        centre = (slot * (i + 0.5), rng.uniform(side * 0.7, HEIGHT - side * 0.7))
        crop = FaceCrop(Image.open(path).convert("RGB"), int(age) if age == age else 0, female > 0.5, Path(path).name)
        paste_face(canvas, crop, centre, side, tilt)
        source = next((name for name in SOURCES if name in Path(path).parts), "?")
        pasted.append({"centre": centre, "side": side, "tilt": tilt, "age": age, "source": source})
    return canvas, pasted


def turned_centre(centre: tuple[float, float], turns: int) -> tuple[float, float]:
    """Where a point of the upright photo lies once it is turned counter-clockwise by ``turns``."""
    x, y = centre
    width, height = WIDTH, HEIGHT
    for _ in range(turns):
        x, y, width, height = y, width - x, height, width
    return x, y


def analyse(analyzer: FaceAnalyzer, pixels: np.ndarray, clock: list[float]) -> list:
    """The faces of a photo as the scan finds them; the chain's seconds and faces go to ``clock``."""
    detections = analyzer.detect(pixels)
    started = time.perf_counter()
    faces = analyzer.predict([(pixels, detections)])[0]
    clock[0] += time.perf_counter() - started
    clock[1] += len(faces)
    return faces


def nearest(faces: list, centre: tuple[float, float], side: float):
    found = [f for f in faces if math.dist((f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2), centre) < side * 0.35]
    return min(found, key=lambda f: math.dist((f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2), centre),
               default=None)


def measure(analyzer: FaceAnalyzer, photos: list) -> dict:
    clocks = {"upright": [0.0, 0], "turned": [0.0, 0]}
    upright_faces, astray, errors, same = 0, 0, [], {1: [], 2: [], 3: []}
    for canvas, pasted in photos:
        readings = []
        for turns in range(4):
            pixels = np.asarray(canvas.rotate(90 * turns, expand=True))
            faces = analyse(analyzer, pixels, clocks["turned" if turns else "upright"])
            readings.append([nearest(faces, turned_centre(p["centre"], turns), p["side"]) for p in pasted])
        for i, p in enumerate(pasted):
            face = readings[0][i]
            if face is None:
                continue
            upright_faces += 1
            error = abs(float(wrapped_angles(np.array(face.rotation - p["tilt"]))))
            astray += error > 60
            errors.append(error)
            for turns in (1, 2, 3):
                other = readings[turns][i]
                if other is not None:
                    same[turns].append(other.gender == face.gender and age_decade(other.age) == age_decade(face.age))
    errors = np.array(errors)
    return {"faces": upright_faces, "astray": astray, "error": errors,
            "same": {t: (sum(v), len(v)) for t, v in same.items()},
            "ms": {k: 1000 * seconds / max(faces, 1) for k, (seconds, faces) in clocks.items()}}


def model_floor(analyzer: FaceAnalyzer, photos: list) -> list[tuple]:
    """Per face found in the upright photos: its source, its tilt, the regressor's reading of it framed
    as the chain frames a face it has read perfectly (its surroundings turned back by the true tilt, the
    face found again there and cropped by those landmarks: ``chain.located_tilted``, as
    ``FaceChain.reframe`` does with the chain's own reading; a face not found again is left out)."""
    from phototag import chain

    rows = []
    for canvas, pasted in photos:
        pixels = np.asarray(canvas)
        detections = analyzer.detect(pixels)
        for p in pasted:
            found = nearest(detections, p["centre"], p["side"])
            again = None if found is None else chain.located_tilted(pixels, found, p["tilt"], analyzer.detect)
            if again is None:
                continue
            image, upright = again
            crop = chain.crop(image, *chain.face_square(upright), analyzer.chain.models.rotation_input_size)
            rows.append((p["source"], p["tilt"], float(analyzer.chain.rotation(crop[None])[0])))
    return rows


def report_floor(rows: list[tuple]) -> None:
    tilt, read = (np.array([r[k] for r in rows]) for k in (1, 2))
    bands = " ".join(f"{lo}-{hi}°: {np.abs(read[m]).mean():.2f}° (n={m.sum()})"
                     for lo, hi in ((0, 5), (5, 20), (20, 40), (40, 60))
                     if (m := (np.abs(tilt) >= lo) & (np.abs(tilt) < hi)).any())
    print(f"the regressor's floor (faces framed again on their surroundings turned back by their true tilt): mean {np.abs(read).mean():.2f}°, "
          f"signed {read.mean():+.2f}°; by tilt {bands}")
    for source in SOURCES:  # a source whose crops keep a roll of their own reads off by it on average
        read = np.array([r[2] for r in rows if r[0] == source])
        if len(read):
            print(f"  {source}: {len(read)} faces, mean {np.abs(read).mean():.2f}°, signed {read.mean():+.2f}°")


def report(name: str, m: dict) -> None:
    tilted = m["error"]  # every pasted face is tilted by 60° at most
    same = " ".join(f"{90 * t}°: {s}/{n} ({s / max(n, 1):.1%})" for t, (s, n) in m["same"].items())
    total_same = sum(s for s, _ in m["same"].values()) / max(sum(n for _, n in m["same"].values()), 1)
    print(f"{name}: upright faces read >60° off: {m['astray']}/{m['faces']} ({m['astray'] / max(m['faces'], 1):.2%}); "
          f"turned copies tagged as the upright one: {same}; all {total_same:.1%}; "
          f"rotation error (tilts within 60°): mean {tilted.mean():.2f}° ({tilted[tilted <= 60].mean():.2f}° without those "
          f"read >60° off), 95th percentile {np.percentile(tilted, 95):.1f}°; "
          f"chain ms/face: upright photos {m['ms']['upright']:.1f}, turned copies {m['ms']['turned']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--half", type=int, choices=(0, 1), default=1,
                        help="which half of the validation faces (by file name); the limits were chosen on 0")
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1].parent / "shared" / "data")
    parser.add_argument("--models", type=Path, help="a model folder to measure (default: the shipped models)")
    args = parser.parse_args()
    analyzer = FaceAnalyzer(models=args.models)
    rng = random.Random(args.seed)
    pool = iter(validation_faces(args.data, rng, args.half))
    photos = [make_photo([next(pool) for _ in range(rng.choice((1, 1, 2, 3)))], rng) for _ in range(args.photos)]
    print(f"{analyzer.describe()}; {args.photos} photos of validation faces (half {args.half}), seed {args.seed}")
    for photo_turn in (True, False):
        analyzer.chain.photo_turn = photo_turn
        report("the photo decides its turn" if photo_turn else "each face alone", measure(analyzer, photos))
    report_floor(model_floor(analyzer, photos))


if __name__ == "__main__":
    main()
