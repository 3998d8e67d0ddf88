"""Benchmark ``phototag scan``: photos/s and faces/s, split into decode, detect and chain time.

Generates a folder of camera-sized JPEGs (default 200 photos of 3000 x 2000) with 0-5 UTKFace
faces each on generated scenes (cached in ``--folder`` between runs), scans it into a fresh index
and prints the scan's timings and how many pasted faces were found. Not a test; run it as

    python benchmarks/bench_scan.py --photos 20          # quick
    python benchmarks/bench_scan.py                      # full: 200 photos
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "tests")]

from photos import exif_block, face_files, jpeg_bytes, paste_face, scene  # noqa: E402

from phototag import index  # noqa: E402
from phototag.scan import ScanOptions, scan  # noqa: E402

MANIFEST = "manifest.json"


def generate(folder: Path, count: int, width: int, height: int, seed: int = 1) -> dict:
    """Write ``count`` photos into ``folder`` (kept if already there) and return the manifest:
    file name -> pasted faces [(centre x, centre y, crop side, angle)]."""
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["count"] == count and manifest["size"] == [width, height]:
            return manifest["photos"]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool = face_files()
    photos = {}
    for i in range(count):
        canvas = scene(width, height, rng)
        faces = []
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4, 5])):
            side = round(math.exp(rng.uniform(math.log(0.03), math.log(0.2))) * max(width, height))
            angle = rng.choice([0.0, 0.0, 0.0, rng.uniform(-35, 35)])
            center = (rng.uniform(side, width - side), rng.uniform(side, height - side))
            if any(math.dist(center, f[:2]) < (side + f[2]) * 0.75 for f in faces):
                continue
            paste_face(canvas, rng.choice(pool), center, side, angle)
            faces.append((*center, side, angle))
        name = f"IMG_{i:04d}.jpg"
        (folder / name).write_bytes(jpeg_bytes(canvas, quality=90, exif=exif_block(taken="2024:06:01 12:00:00")))
        photos[name] = faces
    manifest_path.write_text(json.dumps({"count": count, "size": [width, height], "photos": photos}))
    return photos


def recall(db_path: Path, folder: Path, photos: dict) -> tuple[int, int, int]:
    """(pasted faces found, pasted faces, detections not near a pasted face)."""
    db = index.open_index(db_path, create=False)
    found = total = extra = 0
    for name, pasted in photos.items():
        row = index.get_photo(db, folder / name)
        boxes = [] if row is None else [(f["x"] + f["w"] / 2, f["y"] + f["h"] / 2) for f in index.faces_of(db, row["id"])]

        def near(box, face):
            return math.dist(box, face[:2]) < face[2] * 0.3

        total += len(pasted)
        found += sum(any(near(b, f) for b in boxes) for f in pasted)
        extra += sum(not any(near(b, f) for f in pasted) for b in boxes)
    return found, total, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--size", default="3000x2000", help="photo size, WIDTHxHEIGHT")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "phototag-bench",
                        help="where the photos are generated (reused when the same size and count)")
    parser.add_argument("--models", type=Path, default=None, help="model folder (default: the shipped models)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--decode-size", type=int, default=ScanOptions.decode_size)
    parser.add_argument("--detect-size", type=int, default=ScanOptions.detect_size)
    parser.add_argument("--min-face", type=int, default=0)
    parser.add_argument("--exif", action="store_true", help="also write EXIF into the generated photos")
    args = parser.parse_args()
    width, height = map(int, args.size.lower().split("x"))
    folder = args.folder / f"{args.photos}x{width}x{height}"

    t = time.perf_counter()
    photos = generate(folder, args.photos, width, height)
    print(f"photos: {len(photos)} of {width}x{height} in {folder} ({time.perf_counter() - t:.0f} s to prepare)")

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "index.db"
        options = ScanOptions(paths=[os.fsencode(folder)], db_path=db_path, model_dir=args.models,
                              batch_size=args.batch_size, decode_size=args.decode_size,
                              detect_size=args.detect_size, min_face=args.min_face, exif=args.exif)
        summary = scan(options)
        found, total, extra = recall(db_path, folder, photos)
    t = summary.timings
    print(f"device: {summary.device}; models: {summary.model_version}")
    print(f"decode size {args.decode_size}, detect size {args.detect_size}, min face {args.min_face}, "
          f"batch size {args.batch_size}")
    print(f"scanned {summary.scanned} photos, {summary.faces} faces, {len(summary.failed)} failed")
    print(f"pasted faces found: {found}/{total} ({found / max(total, 1):.1%}); other detections: {extra}")
    print(f"total {t.total:.1f} s: {summary.scanned / t.total:.2f} photos/s, {summary.faces / t.total:.2f} faces/s")
    n = max(summary.scanned, 1)
    for stage in ("walk", "decode", "detect", "chain", "write"):
        seconds = getattr(t, stage)
        print(f"  {stage:7s} {seconds:7.1f} s  {1000 * seconds / n:7.1f} ms/photo")


if __name__ == "__main__":
    main()
