"""Fault injection: kill -9 ``phototag scan`` at random and at aimed points, edit photos while it
runs, and check after every next scan that no photo was harmed and that file and index agree
(the experiment is described in :mod:`phototag.testing.fault_harness`). Not a test; run as

    python benchmarks/bench_faults.py                      # 30 photos, 40 kills (12 aimed)
    python benchmarks/bench_faults.py --photos 6 --kills 3 --aimed 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.testing.fault_harness import make_models, report, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--kills", type=int, default=40, help="kills to make happen (rounds go on until then)")
    parser.add_argument("--aimed", type=int, default=12, help="how many of the kills are aimed (cycling the points)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phototag-faults-") as work:
        models = (make_models(Path(work, "models-a"), args.seed), make_models(Path(work, "models-b"), args.seed + 1))
        figures = run(args.photos, args.kills, args.aimed, args.seed, Path(work), models)
    print(report(figures, args.photos))
    sys.exit(0 if figures.zero() else 1)


if __name__ == "__main__":
    main()
