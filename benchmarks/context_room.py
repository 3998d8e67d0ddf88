"""How much of a wider face crop (hair and shoulders as context) the training images can fill.

The chain's crop frames a face as UTKFace does. A model reading a wider crop needs training images
that hold the face's surroundings. For a seeded sample of each source's training and validation
sides (never the test side), YuNet finds the face nearest the centre as the scan does, and the
chain's square is widened by each factor; the script prints the mean share of the widened square
that lies beyond the image (what would be black) and how many crops lose more than a tenth.

    python benchmarks/context_room.py --files 300
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from phototag import chain, detectors  # noqa: E402
from phototag.images import DEFAULT_DECODE_SIZE, decode  # noqa: E402
from phototag.training import data  # noqa: E402
from phototag.training.evaluate import central_face  # noqa: E402

SOURCES = ("aaf", "utkface", "celeba_gender")
FACTORS = (1.0, 1.25, 1.5)


def beyond_share(cx: float, cy: float, side: float, width: int, height: int) -> float:
    """Share of the square (centre, side) outside a ``width`` × ``height`` image."""
    inside_x = max(0.0, min(cx + side / 2, width) - max(cx - side / 2, 0))
    inside_y = max(0.0, min(cy + side / 2, height) - max(cy - side / 2, 0))
    return 1 - inside_x * inside_y / side**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="folder of the sources")
    parser.add_argument("--files", type=int, default=300, help="files drawn per source")
    args = parser.parse_args()
    detector = detectors.create(detectors.DEFAULT)
    print("| source | faces | " + " | ".join(f"beyond the image at {k}× (share > 10 %)" for k in FACTORS) + " |")
    print("|---|---:|" + "---:|" * len(FACTORS))
    for name in SOURCES:
        train, val, _ = data.splits(args.data / name, 1337, 0.1, 0.1)
        paths = sorted(data.Samples.concat([train, val]).paths)
        random.Random(0).shuffle(paths)
        shares = []
        for path in paths[: args.files]:
            pixels, info = decode(Path(path).read_bytes(), DEFAULT_DECODE_SIZE)
            face = central_face(detector.detect(pixels, info.scale), pixels.shape)
            if face is not None:
                cx, cy, side = chain.face_square(face)
                shares.append([beyond_share(cx, cy, side * k, pixels.shape[1], pixels.shape[0]) for k in FACTORS])
        s = np.array(shares)
        cells = [f"{s[:, i].mean():.1%} ({(s[:, i] > 0.1).mean():.0%})" for i in range(len(FACTORS))]
        print(f"| {name} | {len(s)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
