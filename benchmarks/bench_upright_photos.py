"""Benchmark: real upright photos read the right way up (issue 24's first target).

The people sets of ``../shared/data`` (research use only, read in place) are real photos taken or
scanned upright: LAG (celebrities' photos, young and adult) and FG-NET (family-album scans). Each
file goes through what ``phototag scan`` runs (``FaceAnalyzer.analyze_file``: decoded with its
EXIF orientation, YuNet, the shipped chain with the photo deciding its turn). Printed per set: the
photos, their faces, and how many faces (all of them, and the largest of each photo) were read
more than 20, 45, 60 and 90 degrees from upright; then the files of the faces read beyond 60°.
A face really tilted in its photo (a head on one side) counts too: look at the listed files.
Not a test; run it as

    python benchmarks/bench_upright_photos.py [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.analyzer import FaceAnalyzer  # noqa: E402

LIMITS = (20, 45, 60, 90)


def photo_sets(data: Path) -> dict[str, list[Path]]:
    return {"LAG": sorted((data / "lag").rglob("*.jpg")), "FG-NET": sorted((data / "fgnet" / "images").iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1].parent / "shared" / "data")
    parser.add_argument("--limit", type=int, help="only the first N photos of each set")
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


if __name__ == "__main__":
    main()
