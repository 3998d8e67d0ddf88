"""How YuNet's score threshold and detection size trade found faces against false detections.

Generates photos (generated scenes with 0-4 UTKFace faces each, 30-600 px, tilted within ±60°),
runs YuNet at a low threshold once per detection size, and prints, per threshold, the share of
pasted faces found and the other detections. Not a test; run it as

    python benchmarks/bench_yunet_settings.py [--photos 60]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag import detectors  # noqa: E402
from phototag.testing.photos import face_files, paste_face, scene  # noqa: E402

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def photos(count: int, width: int, height: int, seed: int = 2):
    rng = random.Random(seed)
    pool = face_files()
    for _ in range(count):
        canvas = scene(width, height, rng)
        faces = []
        for _ in range(rng.choice([0, 1, 2, 3, 4])):
            side = round(math.exp(rng.uniform(math.log(30), math.log(min(600, 0.8 * height)))))
            center = (rng.uniform(side / 2, width - side / 2), rng.uniform(side / 2, height - side / 2))
            if any(math.dist(center, f[:2]) < (side + f[2]) * 0.6 for f in faces):
                continue
            paste_face(canvas, rng.choice(pool), center, side, rng.uniform(-60, 60))
            faces.append((*center, side))
        yield np.asarray(canvas), faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--size", default="1600x1067", help="photo size, WIDTHxHEIGHT")
    parser.add_argument("--detect-sizes", default="640,960,1200")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    data = list(photos(args.photos, width, height))
    total = sum(len(f) for _, f in data)
    small = sum(1 for _, fs in data for f in fs if f[2] < 80)
    print(f"{len(data)} photos of {width}x{height}, {total} faces ({small} under 80 px), tilted within ±60°")
    for size in map(int, args.detect_sizes.split(",")):
        yunet = detectors.create("yunet", min_confidence=min(THRESHOLDS), detect_size=size)
        matched, extra, seconds = [], [], 0.0
        for pixels, faces in data:
            t = time.perf_counter()
            found = yunet.detect(pixels)
            seconds += time.perf_counter() - t
            for d in found:
                c = (d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2)
                hit = [i for i, f in enumerate(faces) if math.dist(c, f[:2]) < 0.3 * f[2]]
                (matched if hit else extra).append((hit[0] if hit else -1, d.confidence, id(faces)))
        print(f"detect size {size}: {1000 * seconds / len(data):.0f} ms/photo")
        for th in THRESHOLDS:
            found = {(m[2], m[0]) for m in matched if m[1] >= th}
            false = sum(1 for e in extra if e[1] >= th)
            print(f"  threshold {th:.1f}: found {len(found)}/{total} ({len(found) / total:.1%}), "
                  f"other detections {false}")


if __name__ == "__main__":
    main()
