"""Benchmark ``phototag scan`` side by side: the default (YuNet) against ``--detector mtcnn``.

Four kinds of generated photos (UTKFace faces from ``../shared/data`` pasted onto generated scenes,
cached in ``--folder`` between runs):

- ``portrait``: 448 x 448 photos, one upright face of 140-320 px with context around it;
- ``camera``: 3000 x 2000 JPEGs with 0-5 faces of 3-20 % of the long side (some tilted by up to 35°);
- ``tilted``: 448 x 448 photos, one face tilted by -60° to 60°;
- ``turned``: ``portrait`` photos stored turned by 0, 90, 180 or 270 degrees without an orientation
  tag, scanned as they are and with ``--any-angle``.

Each kind is scanned into a fresh index with each detector (shipped models, CPU); the script prints
photos/s, pasted faces found, other detections, the rotation error of the found faces (also of
those tilted by 45° or more) and the seconds per stage. Not a test; run it as

    python benchmarks/bench_scan.py                       # all kinds, both detectors
    python benchmarks/bench_scan.py --kinds camera --detectors yunet --photos 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag import index  # noqa: E402
from phototag.scan import ScanOptions, scan  # noqa: E402
from phototag.testing.photos import exif_block, face_files, jpeg_bytes, paste_face, scene  # noqa: E402

MANIFEST = "manifest.json"
KINDS = {"portrait": 100, "camera": 40, "tilted": 100, "turned": 60}  # default number of photos


def generate(folder: Path, kind: str, count: int, seed: int = 1) -> dict:
    """Write ``count`` photos of ``kind`` into ``folder`` (kept if already there) and return
    file name -> pasted faces [(centre x, centre y, crop side, angle)] in the displayed frame."""
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["count"] == count and manifest["kind"] == kind:
            return manifest["photos"]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool = face_files()
    photos = {}
    for i in range(count):
        if kind == "camera":
            canvas, faces = _camera_photo(rng, pool)
        else:
            canvas = scene(448, 448, rng)
            side = rng.randint(160, 260) if kind == "tilted" else rng.randint(140, 320)
            angle = rng.uniform(-60, 60) if kind == "tilted" else 0.0
            margin = side / 2 if kind != "tilted" else side * 0.6
            center = (rng.uniform(min(margin, 224), max(448 - margin, 224)),
                      rng.uniform(min(margin, 224), max(448 - margin, 224)))
            paste_face(canvas, rng.choice(pool), center, side, angle)
            faces = [(*center, side, angle)]
            if kind == "turned":
                turns = i % 4
                canvas = canvas.rotate(90 * turns, expand=True)  # counter-clockwise
                faces = [(*_turned(center, turns, 448, 448), side, 90.0 * turns)]
        name = f"IMG_{i:04d}.jpg"
        exif = exif_block(taken="2024:06:01 12:00:00") if kind == "camera" else None
        (folder / name).write_bytes(jpeg_bytes(canvas, quality=90, exif=exif))
        photos[name] = faces
    manifest_path.write_text(json.dumps({"count": count, "kind": kind, "photos": photos}))
    return photos


def _camera_photo(rng: random.Random, pool: list, width: int = 3000, height: int = 2000):
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
    return canvas, faces


def _turned(point: tuple[float, float], turns: int, width: int, height: int) -> tuple[float, float]:
    """Where a point goes when the image is turned counter-clockwise by ``turns`` quarter turns."""
    x, y = point
    for _ in range(turns):
        x, y, width, height = y, width - x, height, width
    return x, y


def compare(db_path: Path, folder: Path, photos: dict) -> dict:
    """Pasted faces found, pasted faces, detections not near a pasted face, mean rotation error."""
    db = index.open_index(db_path, create=False)
    found = total = extra = 0
    errors, steep = [], []
    for name, pasted in photos.items():
        row = index.get_photo(db, folder / name)
        rows = [] if row is None else index.faces_of(db, row["id"])
        centres = [((f["x"] + f["w"] / 2, f["y"] + f["h"] / 2), f["rotation"]) for f in rows]
        total += len(pasted)
        for face in pasted:
            near = [rot for c, rot in centres if math.dist(c, face[:2]) < face[2] * 0.3]
            if near:
                found += 1
                errors.append(abs((near[0] - face[3] + 180) % 360 - 180))
                if 45 <= abs((face[3] + 180) % 360 - 180) <= 60:
                    steep.append(errors[-1])
        extra += sum(not any(math.dist(c, f[:2]) < f[2] * 0.3 for f in pasted) for c, _ in centres)
    return {"found": found, "total": total, "extra": extra,
            "rotation_mae": sum(errors) / len(errors) if errors else float("nan"),
            "rotation_mae_45_60": sum(steep) / len(steep) if steep else float("nan")}


def run(kind: str, detector: str, any_angle: bool, folder: Path, photos: dict, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "index.db"
        options = ScanOptions(paths=[os.fsencode(folder)], db_path=db_path, model_dir=args.models,
                              detector=detector, any_angle=any_angle, exif=False,
                              detect_size=args.detect_size)
        summary = scan(options)
        result = compare(db_path, folder, photos)
    t = summary.timings
    work = t.total - t.startup - t.walk
    result |= {"kind": kind, "detector": detector + (" --any-angle" if any_angle else ""),
               "photos": summary.scanned, "engine": f"{summary.engine} on {summary.device}",
               "photos_per_s": summary.scanned / work, "timings": {k: round(v, 2) for k, v in vars(t).items()}}
    return result


def report(r: dict) -> str:
    t = r["timings"]
    return (f"{r['kind']:8s} {r['detector']:19s} {r['photos']:4d} photos {r['photos_per_s']:6.2f}/s  "
            f"found {r['found']}/{r['total']} ({r['found'] / max(r['total'], 1):.1%})  other {r['extra']}  "
            f"rotation MAE {r['rotation_mae']:.1f}° (45-60°: {r['rotation_mae_45_60']:.1f}°)\n"
            f"{'':28s} start-up {t['startup']:.1f} s, then {t['total'] - t['startup'] - t['walk']:.1f} s: "
            f"decode {t['decode']:.1f}, detect {t['detect']:.1f}, chain {t['chain']:.1f}, "
            f"write {t['write']:.1f}, main thread waiting {t['waiting']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--detectors", default="yunet,mtcnn")
    parser.add_argument("--photos", type=int, default=None, help="photos per kind (default: per kind)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "phototag-bench",
                        help="where the photos are generated (reused when the same kind and count)")
    parser.add_argument("--models", type=Path, default=None, help="model folder (default: the shipped models)")
    parser.add_argument("--detect-size", type=int, default=None,
                        help="scan's --detect-size (default: the detector's own)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args()
    results = []
    for kind in args.kinds.split(","):
        count = args.photos or KINDS[kind]
        folder = args.folder / f"{kind}-{count}"
        photos = generate(folder, kind, count)
        for detector in args.detectors.split(","):
            for any_angle in (False, True) if kind == "turned" else (False,):
                results.append(run(kind, detector, any_angle, folder, photos, args))
                print(report(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
