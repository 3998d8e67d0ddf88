"""Benchmark: real upright photos read the right way up (issue 24's first target).

The people sets of ``../shared/data`` (research use only, read in place) are real photos taken or
scanned upright: LAG (celebrities' photos, young and adult) and FG-NET (family-album scans). Each
file goes through what ``phototag scan`` runs (``FaceAnalyzer.analyze_file``: decoded with its
EXIF orientation, YuNet, the shipped chain with the photo deciding its turn). Printed per set: the
photos, their faces, and how many faces (all of them, and the largest of each photo) were read
more than 20, 45, 60 and 90 degrees from upright; then the files of the faces read beyond 60°.
A face really tilted in its photo (a head on one side) counts too: look at the listed files.

Turned copies (issue 24's second target): ``--turned N`` photos of each set (drawn with a fixed
seed) are also read turned by 90, 180 and 270 degrees without an orientation tag, as a camera that
wrote none would store them; the largest face of each copy is compared with the upright copy's
largest face: the same gender and age group (decade)?

Not a test; run it as

    python benchmarks/bench_upright_photos.py [--limit N] [--turned 300]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.analyzer import FaceAnalyzer  # noqa: E402
from phototag.images import decode_file  # noqa: E402

LIMITS = (20, 45, 60, 90)


def photo_sets(data: Path) -> dict[str, list[Path]]:
    return {"LAG": sorted((data / "lag").rglob("*.jpg")), "FG-NET": sorted((data / "fgnet" / "images").iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1].parent / "shared" / "data")
    parser.add_argument("--limit", type=int, help="only the first N photos of each set")
    parser.add_argument("--turned", type=int, default=300, help="photos of each set also read turned (0: none)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    analyzer = FaceAnalyzer()
    print(f"{analyzer.describe()}; faces read more than N degrees from upright in upright photos:")
    beyond = []
    for name, files in photo_sets(args.data).items():
        files = files[:args.limit] if args.limit else files
        started, angles, largest, photos, unread = time.perf_counter(), [], [], 0, 0
        for path in files:
            try:
                faces = analyzer.analyze_file(path)
            except Exception:  # noqa: BLE001 - a file the scan would record as failed
                unread += 1
                continue
            photos += 1
            if not faces:
                continue
            biggest = max(faces, key=lambda f: f.box[2] * f.box[3])
            for face in faces:
                angles.append(face.rotation)
                largest.append(face is biggest)
                if abs(face.rotation) > 60:
                    beyond.append((name, path.name, face.rotation, face.confidence, max(face.box[2:])))
        angles, largest = np.abs(np.array(angles, float)), np.array(largest, bool)
        for label, keep in (("all faces", np.ones(len(angles), bool)), ("largest face", largest)):
            counts = "  ".join(f">{t}°: {int((angles[keep] > t).sum())}" for t in LIMITS)
            share = (angles[keep] > 60).mean() if keep.any() else 0.0
            print(f"  {name:7s} {label:13s} {int(keep.sum()):5d} faces  {counts}  (beyond 60°: {100 * share:.2f} %)")
        print(f"  {name:7s} {photos} photos read ({unread} unreadable), {time.perf_counter() - started:.0f} s")
    for name, file, rotation, confidence, side in beyond:
        print(f"  beyond 60°: {name} {file}: read at {rotation:+.1f}°, detector {confidence:.2f}, {side:.0f} px")
    if args.turned:
        turned(analyzer, photo_sets(args.data), args.turned, args.seed)


def largest_read(analyzer: FaceAnalyzer, pixels: np.ndarray, scale: float):
    """The largest face of a photo given as pixels (no orientation tag), as the scan reads it."""
    faces = analyzer.predict([(pixels, analyzer.detect(pixels, scale))], scales=[scale])[0]
    return max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None


def turned(analyzer: FaceAnalyzer, sets: dict[str, list[Path]], count: int, seed: int) -> None:
    """Each set's ``count`` photos read as they are and turned by 90/180/270° without a tag: how
    often the turned copy's largest face gets the upright copy's gender and age group."""
    print(f"turned copies without an orientation tag, {count} photos a set (seed {seed}): the largest face"
          " with the upright copy's gender and age group (decade)")
    for name, files in sets.items():
        chosen = random.Random(seed).sample(files, min(count, len(files)))
        same, found, lost = {k: 0 for k in (1, 2, 3)}, {k: 0 for k in (1, 2, 3)}, {k: 0 for k in (1, 2, 3)}
        for path in chosen:
            pixels, info = decode_file(path)
            upright = largest_read(analyzer, pixels, info.scale)
            if upright is None:
                continue
            for k in (1, 2, 3):
                face = largest_read(analyzer, np.ascontiguousarray(np.rot90(pixels, k)), info.scale)
                if face is None:
                    lost[k] += 1
                    continue
                found[k] += 1
                same[k] += face.gender == upright.gender and int(face.age // 10) == int(upright.age // 10)
        parts = [f"{90 * k}°: {same[k]}/{found[k]} ({100 * same[k] / max(found[k], 1):.1f} %, {lost[k]} not found)"
                 for k in (1, 2, 3)]
        total = sum(same.values()) / max(sum(found.values()), 1)
        copies = sum(found.values()) + sum(lost.values())
        print(f"  {name:7s} " + "  ".join(parts) + f"  all {100 * total:.1f} %; a face not found counting as"
              f" wrong: {sum(same.values())}/{copies} ({100 * sum(same.values()) / max(copies, 1):.1f} %)")


if __name__ == "__main__":
    main()
