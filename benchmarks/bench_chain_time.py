"""Benchmark: the chain's time per face on upright photos, as the scan gives it faces (batches of
about 50), with each part of this release: the photo deciding its turn (``FaceChain.photo_turn``)
and the identity embedding (``FaceChain.identity``).

80 generated photos of 1-3 validation faces (``bench_turned.py``'s scenes, its held-out half: most
faces upright, about 30 % tilted by up to ±60°) are detected once; then the shipped chain reads
them three times over in each configuration, alternating. Not a test; run it as

    python benchmarks/bench_chain_time.py [--photos 80] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parent)]

import bench_turned  # noqa: E402
from phototag.analyzer import FaceAnalyzer  # noqa: E402

BATCH_PHOTOS = 30  # photos a call: about 50 faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1].parent / "shared" / "data")
    args = parser.parse_args()
    analyzer = FaceAnalyzer()
    rng = random.Random(args.seed)
    pool = iter(bench_turned.validation_faces(args.data, rng, 1))
    photos = [np.asarray(bench_turned.make_photo([next(pool) for _ in range(rng.choice((1, 1, 2, 3)))], rng)[0])
              for _ in range(args.photos)]
    items = [(pixels, analyzer.detect(pixels)) for pixels in photos]
    faces = sum(len(found) for _, found in items)
    chain, identity = analyzer.chain, analyzer.chain.identity
    configurations = {"this release": (True, identity), "without the photo's turn": (False, identity),
                      "without the embedding": (True, None), "without both": (False, None)}
    times: dict[str, list[float]] = {name: [] for name in configurations}
    for _ in range(args.repeats):
        for name, (photo_turn, model) in configurations.items():
            chain.photo_turn, chain.identity = photo_turn, model
            started = time.perf_counter()
            for k in range(0, len(items), BATCH_PHOTOS):
                analyzer.predict(items[k:k + BATCH_PHOTOS])
            times[name].append(1000 * (time.perf_counter() - started) / faces)
    print(f"{analyzer.describe()}; {faces} faces in {len(items)} upright photos; chain ms per face, "
          f"{args.repeats} runs alternating:")
    for name, values in times.items():
        print(f"  {name:26s} " + " / ".join(f"{v:.2f}" for v in values) + f"  (min {min(values):.2f})")


if __name__ == "__main__":
    main()
