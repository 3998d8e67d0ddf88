"""Benchmark: is a photo stored turned (90°, 180°, 270°, no orientation tag) tagged like its upright copy?

``--photos`` UTKFace faces (from ``../shared/data``) are pasted upright onto generated 448 x 448 scenes;
each photo is analysed as it is and turned by 90, 180 and 270 degrees with the default detector and
the shipped models (``FaceAnalyzer``, as ``phototag scan`` runs them). Per turn the script prints the
faces found, the gender accuracy and age MAE against the UTKFace labels, the rotation error, how
often the gender equals the upright copy's and the age difference to it. Not a test; run it as

    python benchmarks/bench_turned.py [--photos 60]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.analyzer import FaceAnalyzer  # noqa: E402
from phototag.testing.photos import face_files, paste_face, scene, utkface_crop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    analyzer = FaceAnalyzer()
    rng = random.Random(args.seed)
    pool = face_files()
    found = {t: [] for t in range(4)}  # per turn: (gender right, age, rotation error, gender) or None
    for _ in range(args.photos):
        path = rng.choice(pool)
        face = utkface_crop(path)
        age, female = face.age, face.female
        side = rng.randint(140, 300)
        canvas = scene(448, 448, rng)
        centre = (rng.uniform(side / 2, 448 - side / 2), rng.uniform(side / 2, 448 - side / 2))
        paste_face(canvas, face, centre, side)
        for turns in range(4):
            pixels = np.asarray(canvas.rotate(90 * turns, expand=True))  # counter-clockwise
            x, y = centre
            for _ in range(turns):
                x, y = y, 448 - x
            faces = [f for f in analyzer.analyze(pixels)
                     if math.dist((f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2), (x, y)) < side * 0.3]
            found[turns].append(None if not faces else (
                faces[0].gender == ("f" if female else "m"), faces[0].age, abs(age - faces[0].age),
                abs((faces[0].rotation - 90 * turns + 180) % 360 - 180), faces[0].gender))
    upright = found[0]
    print(f"{analyzer.describe()}; {args.photos} photos")
    for turns in range(4):
        rows = found[turns]
        both = [i for i in range(args.photos) if rows[i] and upright[i]]
        age_diff = [abs(rows[i][1] - upright[i][1]) for i in both]
        print(f"turned {90 * turns:3d}°: found {sum(r is not None for r in rows)}/{args.photos}  "
              f"gender right {np.mean([rows[i][0] for i in both]):.1%}  age MAE {np.mean([rows[i][2] for i in both]):.2f}  "
              f"rotation error {np.mean([rows[i][3] for i in both]):.1f}° (max {max(rows[i][3] for i in both):.0f}°)  "
              f"gender as upright {np.mean([rows[i][4] == upright[i][4] for i in both]):.1%}  "
              f"|age - upright| mean {np.mean(age_diff):.2f}, 90th percentile {np.percentile(age_diff, 90):.1f}")


if __name__ == "__main__":
    main()
