"""Benchmark: what photos without a face cost the detector, and whether it invents faces in them.

A photo where the detector finds no face is looked at again in case it is stored turned without an
orientation tag (``Detector.detect``, ``look_turned``): its weak detections' surroundings turned by
each quarter, then the whole photo, shrunk, turned by each quarter. Landscapes, documents and
screenshots pay for these looks. Generated faceless scenes (``phototag.testing.photos.scene``: a
sky-to-ground gradient, blobs and shapes, sensor noise) at a camera's size and a small one are
detected with and without the looks, alternating; printed per size: the detection's time per photo
(median of the runs) and the photos in which a face was found (each one a false face).

Not a test; run it as

    python benchmarks/bench_faceless.py [--photos 200] [--repeats 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag import detectors  # noqa: E402
from phototag.testing.photos import scene  # noqa: E402

SIZES = ((1600, 1200), (640, 480))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200, help="scenes of each size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--detector", default=detectors.DEFAULT)
    args = parser.parse_args()
    detector = detectors.create(args.detector)
    rng = random.Random(args.seed)
    print(f"detector {detector.name}; {args.photos} generated faceless scenes a size, {args.repeats} runs each way")
    for width, height in SIZES:
        photos = [np.asarray(scene(width, height, rng)) for _ in range(args.photos)]
        times: dict[bool, list[float]] = {False: [], True: []}
        found: dict[bool, int] = {}
        for _ in range(args.repeats):
            for look in (False, True):
                started = time.perf_counter()
                faces = [detector.detect(p, look_turned=look) for p in photos]
                times[look].append((time.perf_counter() - started) / len(photos) * 1000)
                found[look] = sum(bool(f) for f in faces)
        parts = [f"{'with' if look else 'without'} the looks {np.median(times[look]):.1f} ms a photo, "
                 f"{found[look]} with a face" for look in (False, True)]
        print(f"  {width} x {height}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
