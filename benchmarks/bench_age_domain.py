"""Old scans read older: can the age model's own features tell such photos and undo their bias?

FG-NET's scanned family photos read +5 years old through the shipped chain (docs/people.md), and no
change to the pixels removes it (colour balance, grey, contrast stretch, half or a third the size,
blur, denoising, a grey border: each moves the bias by under 0.5 years; the card's "Old scans read
older"). This benchmark asks whether the age model's pooled features (``attributes_pool``, 256
values, before the gender and age heads) carry the domain: a ridge regression on them (and the
age read) predicts each face's residual (labelled age − age read), fitted on

* FG-NET's odd subjects (the only ones here), measured **by subject held out**: five folds of the
  41 subjects, each fold's faces corrected by a head fitted without them;
* validation faces of the age model's own data (UTKFace and All-Age-Faces, the training split's
  validation side, seed 1337: faces the model never trained on) as anchors: half A (by a hash of
  the file name) in the fit, half B measured (does the head harm modern photos?). ``--anchors
  keep`` (default; the shipped head's form, ``phototag.training.old_scans``) fits 0 there (keep the
  reading), so the head learns only what sets the old scans apart; ``--anchors residual`` fits
  their residual too.

The test split is never read. Each face is the one nearest the image centre, read by the shipped
analyzer (YuNet, LiteRT chain, mirror-averaged); its features by the shipped Keras model on the
same de-rotated crop, mirror-averaged as the chain does. Crops and features are cached in
``~/.cache/phototag-bench/age-domain/`` (outside the repository: the data is research-only).

    python benchmarks/bench_age_domain.py [--anchors keep|residual] [--alphas 3 10 30 100] [--fgnet-weights 0.5 1 2]

Prints, per setting, the face-alone MAE per band and its bias on FG-NET (held-out subjects) and on
validation half B, before and after the head; with ``--predictions FILE``, FG-NET's held-out
corrected ages per image (for ``bench_people_cli.py --face-ages FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from phototag.training import old_scans  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = Path.home() / ".cache" / "phototag-bench" / "age-domain"
BANDS = ((0, 10), (10, 20), (20, 200), (50, 200))


def capture(cache: Path) -> dict:
    """The chain's de-rotated crop and age of each image's central face: FG-NET, then the validation
    sides of UTKFace and All-Age-Faces (cached)."""
    path = cache / "crops.npz"
    if path.exists():
        return dict(np.load(path))
    from phototag import FaceAnalyzer
    from phototag.training.evaluate import select

    analyzer = FaceAnalyzer()
    scans = old_scans.read_old_scans(DATA / "fgnet")
    modern = select([DATA / "utkface", DATA / "aaf"], 1337, split="val")
    keep = ~np.isnan(modern.age)
    paths = scans.paths + list(np.asarray(modern.paths)[keep])
    crops, found = old_scans.central_crops(analyzer, paths)
    kind = np.array(["fgnet"] * len(scans.paths) + list(np.asarray(modern.source)[keep]))
    subject = np.concatenate([scans.subjects.astype(int), np.full(keep.sum(), -1)])
    arrays = {"crop": crops, "age": np.concatenate([scans.ages, modern.age[keep]])[found], "set": kind[found],
              "subject": subject[found], "name": np.array([Path(p).name for p in paths])[found]}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def features(crops: np.ndarray, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The shipped Keras age model's pooled features and its own age per crop, mirror-averaged (cached)."""
    path = cache / "features.npz"
    if path.exists():
        d = np.load(path)
        return d["pool"], d["age"]
    import keras

    import phototag.layers  # noqa: F401  (the custom layers the model file names)

    model = keras.saving.load_model(ROOT / "models" / "age.keras", compile=False, safe_mode=True)
    pool, age = old_scans.features(model, crops)
    np.savez(path, pool=pool, age=age)
    return pool, age


def ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float):
    """The head's ridge fit (:func:`phototag.training.old_scans.ridge`) as a predictor."""
    beta, intercept = old_scans.ridge(x, y, w, alpha)
    return lambda z: z @ beta + intercept


def report(read: np.ndarray, age: np.ndarray) -> dict:
    err = read - age
    out = {(f"{lo}-{hi - 1}" if hi < 200 else f"{lo}+"): round(float(np.abs(err[(age >= lo) & (age < hi)]).mean()), 2)
           for lo, hi in BANDS}
    out.update(all=round(float(np.abs(err).mean()), 2), bias=round(float(err.mean()), 2), faces=int(len(err)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphas", type=float, nargs="+", default=[3.0, 10.0, 30.0, 100.0])
    parser.add_argument("--fgnet-weights", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                        help="weight of an FG-NET face against a validation face in the fit")
    parser.add_argument("--anchors", choices=("residual", "keep"), default="keep",
                        help="what the head learns on the validation faces: their residual (labelled age - "
                             "age read), or to keep their reading (target 0: only the old scans' correction)")
    parser.add_argument("--predictions", type=Path, help="write FG-NET's held-out corrected ages (JSON) for the "
                        "first setting here")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    d = capture(args.cache)
    pool, read = features(d["crop"], args.cache)
    x = old_scans.head_inputs(pool, read)
    fg = d["set"] == "fgnet"
    residual = d["age"] - read if args.anchors == "residual" else np.where(fg, d["age"] - read, 0.0)
    b = ~fg & old_scans.half_b(d["name"])
    a = ~fg & ~b
    folds = old_scans.subject_folds(d["subject"][fg])
    print(json.dumps({"faces": {"fgnet": int(fg.sum()), "val_a": int(a.sum()), "val_b": int(b.sum())},
                      "before": {"fgnet": report(read[fg], d["age"][fg]), "val_b": report(read[b], d["age"][b])}}))
    first = True
    for alpha in args.alphas:
        for weight in args.fgnet_weights:
            corrected = read.copy()
            for fold in folds:
                held = fg & np.isin(d["subject"], fold)
                fit = (fg & ~held) | a
                head = ridge(x[fit], residual[fit], np.where(fg, weight, 1.0)[fit], alpha)
                corrected[held] = np.maximum(0.0, read[held] + head(x[held]))
            head = ridge(x[fg | a], residual[fg | a], np.where(fg, weight, 1.0)[fg | a], alpha)
            corrected[b] = np.maximum(0.0, read[b] + head(x[b]))
            print(json.dumps({"anchors": args.anchors, "alpha": alpha, "fgnet_weight": weight,
                              "fgnet_held_out_subjects": report(corrected[fg], d["age"][fg]),
                              "val_b": report(corrected[b], d["age"][b])}))
            if first and args.predictions:
                args.predictions.write_text(json.dumps({f: round(float(v), 3) for f, v in
                                                        zip(d["name"][fg], corrected[fg])}))
            first = False


if __name__ == "__main__":
    main()
