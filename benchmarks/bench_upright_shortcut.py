"""Benchmark: what the chain's upright shortcut saves and whether it ever changes an answer.

The chain reads every face at four quarter turns to find faces that are upside down or on their
side; a face the detector is sure of and whose first reading is strong, mirror-consistent and
nearly upright keeps that reading without the three turned ones (``FaceChain.upright_shortcut``,
the ``SURE_*`` limits in ``phototag/chain.py``). This script pastes validation-side faces of
All-Age-Faces and UTKFace (never their test side) tilted by up to ±50° onto generated scenes,
turns each photo by 0, 90, 180 and 270 degrees, detects the faces with the default detector and
runs the shipped chain on them with and without the shortcut. Per turn it prints the share of
faces that took the shortcut, the faces whose angle differs between the two (by 25° or more), the
share whose angle is 25° or more off the truth, and the chain's time per face for each. Not a test;
run it as

    python benchmarks/bench_upright_shortcut.py [--photos 300] [--seed 23]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.analyzer import FaceAnalyzer  # noqa: E402
from phototag.chain import FaceChain  # noqa: E402
from phototag.models import wrapped_angles  # noqa: E402
from phototag.testing.photos import FaceCrop, paste_face, scene  # noqa: E402
from phototag.training import data  # noqa: E402

SOURCES = ("aaf", "utkface")


def validation_faces(root: Path, rng: random.Random) -> list[tuple[str, float, float]]:
    pool = []
    for name in SOURCES:
        _, val, _ = data.splits(root / name, 1337)
        pool += list(zip(val.paths, val.age, val.gender))
    rng.shuffle(pool)
    return pool


def timed(chain: FaceChain, items, detect) -> tuple[list, float]:
    started = time.perf_counter()
    faces = chain.predict(items, detect=detect)
    return faces, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1].parent / "shared" / "data")
    args = parser.parse_args()
    analyzer = FaceAnalyzer()
    shortcut = analyzer.chain
    full = FaceChain(shortcut.models, shortcut.batch_size, upright_shortcut=False)
    turned_counts = []  # faces given the turned readings, per call of the shortcut chain
    read = shortcut.rotation.read

    def counting_read(crops, flip_average=None):
        if flip_average is False:
            turned_counts.append(len(crops) // 3)
        return read(crops, flip_average)
    shortcut.rotation.read = counting_read

    rng = random.Random(args.seed)
    faces = validation_faces(args.data, rng)[:args.photos]
    rows = {k: {"faces": 0, "turned": 0, "differ": 0, "off_shortcut": 0, "off_full": 0, "s_shortcut": 0.0,
                "s_full": 0.0} for k in range(4)}
    for path, age, gender in faces:
        canvas = scene(448, 448, rng)
        tilt = rng.uniform(-50, 50)
        paste_face(canvas, FaceCrop(Image.open(path).convert("RGB"), int(age), gender > 0.5, Path(path).name),
                   (224, 224), rng.randint(120, 260), tilt)
        for k in range(4):
            pixels = np.asarray(canvas.rotate(90 * k, expand=True))
            detections = analyzer.detect(pixels)
            if not detections:
                continue
            items = [(pixels, [max(detections, key=lambda d: d.box[2] * d.box[3])])]
            turned_counts.clear()
            (with_shortcut,), s_shortcut = timed(shortcut, items, analyzer.detector.detect)
            (without,), s_full = timed(full, items, analyzer.detector.detect)
            row, truth = rows[k], wrapped_angles(np.array(tilt + 90 * k))
            a, b = with_shortcut[0].rotation, without[0].rotation
            row["faces"] += 1
            row["turned"] += sum(turned_counts)
            row["differ"] += abs(wrapped_angles(np.array(a - b))) >= 25
            row["off_shortcut"] += abs(wrapped_angles(a - truth)) >= 25
            row["off_full"] += abs(wrapped_angles(b - truth)) >= 25
            row["s_shortcut"] += s_shortcut
            row["s_full"] += s_full
    print(f"{analyzer.describe()}; {len(faces)} validation faces tilted by up to ±50°, seed {args.seed}")
    for k, row in rows.items():
        n = max(row["faces"], 1)
        print(f"turned {90 * k:3d}°: faces {row['faces']:4d}  shortcut {1 - row['turned'] / n:6.1%}  "
              f"answers that differ {row['differ']:2d}  25°+ off: {row['off_shortcut'] / n:5.1%} "
              f"(without the shortcut {row['off_full'] / n:5.1%})  "
              f"chain ms/face {1000 * row['s_shortcut'] / n:5.1f} (without {1000 * row['s_full'] / n:5.1f})")


if __name__ == "__main__":
    main()
