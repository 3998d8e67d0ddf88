"""Frozen-backbone comparison of the age heads, age weights and gender data, on validation splits.

Not the shipped models and not a substitute for fine-tuning: the ImageNet MobileNetV2 (128 px, the
shipped input size) is run once, frozen, on the UTKFace train/validation splits (seed 1337, as
``phototag train``) and on CelebA train (a seeded sample) and val; the pooled features are cached
outside the repository. Then small heads built by :mod:`phototag.training.recipe` (the same head, loss and
weighting code as ``phototag train``) are trained on the cached features and measured on the
validation splits. The test split is never read.

    python benchmarks/frozen_heads.py --cache /work/cache8

Prints one table per question: gender data (UTKFace only vs UTKFace + CelebA, balanced), and the
age head (L1 vs label distribution, with and without decade-balanced weights): MAE and bias per decade.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _threads(n: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def feature_sets(utkface: Path, celeba: Path, weights: Path, cache: Path, celeba_train: int, seed: int = 1337
                 ) -> dict[str, dict[str, np.ndarray]]:
    """Pooled frozen MobileNetV2 features (and labels) of the four sets, computed once and cached."""
    import keras

    from phototag.training import backbones, data

    utk_train, utk_val, _ = data.splits(utkface, seed)  # the test side is dropped here, never loaded
    cel_train, cel_val, _ = data.splits(celeba, seed)
    pick = np.random.default_rng(seed).permutation(len(cel_train))
    by_gender = [pick[cel_train.gender[pick] == g][:celeba_train // 2] for g in (0.0, 1.0)]
    cel_train = cel_train.take(np.sort(np.concatenate(by_gender)))
    sets = {"utk_train": utk_train, "utk_val": utk_val, "celeba_train": cel_train, "celeba_val": cel_val}
    model = None
    out = {}
    for name, samples in sets.items():
        file = cache / f"features-{name}-{len(samples)}.npz"
        if not file.exists():
            if model is None:
                bb = backbones.build("mobilenet_v2", 128, weights)
                face = keras.Input((128, 128, 3))
                pooled = keras.layers.GlobalAveragePooling2D()(bb.model(bb.preprocess(face), training=False))
                model = keras.Model(face, pooled)
            t = time.monotonic()
            features = np.concatenate([
                model.predict(data.load_images(samples.take(np.arange(i, min(i + 512, len(samples)))), 128),
                              batch_size=128, verbose=0)
                for i in range(0, len(samples), 512)])
            cache.mkdir(parents=True, exist_ok=True)
            np.savez(file, features=features.astype(np.float32), age=samples.age, gender=samples.gender,
                     paths=samples.paths.astype(str))
            print(f"features {name}: {len(samples)} faces in {time.monotonic() - t:.0f} s")
        out[name] = dict(np.load(file))
    return out


def _samples(sets: dict, name: str):
    from phototag.training import data

    f = sets[name]
    return data.Samples(f["paths"].astype(object), f["age"], f["gender"], f["paths"].astype(object),
                        np.array([name.split("_")[0]] * len(f["paths"]), dtype=object))


def _fit(model, key, features, samples, cfg, epochs: int, lr: float):
    """Train a head model on cached features with the training code's batches, losses and weights."""
    import keras

    from phototag.training import recipe
    from phototag.training.train import _attribute_batches

    batches = _attribute_batches(features, samples, cfg, cfg.seed, True, key)
    losses, weights = {"gender": recipe.gender_loss}, {"gender": 1.0}
    if key:
        losses[key] = recipe.age_distribution_loss(cfg.age_sigma) if key == "age_distribution" else recipe.age_loss
        weights[key] = cfg.age_loss_weight
    outputs = {"gender": model.output} if not key else {"gender": model.output["gender"], key: model.output[key]}
    train_model = keras.Model(model.input, outputs)
    steps = epochs * len(batches)
    train_model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.01)),
                        loss=losses, loss_weights=weights)
    train_model.fit(batches, epochs=epochs, verbose=0)


def _gender_model(dim: int):
    import keras

    from phototag.training import recipe

    x = keras.Input((dim,), name="features")
    return keras.Model(x, recipe.gender_head(keras.layers.Dropout(0.3, name="attributes_dropout")(x)))


def _accuracy(model, sets, name) -> float:
    p = model.predict(sets[name]["features"], batch_size=1024, verbose=0)
    p = p["gender"] if isinstance(p, dict) else p
    return float(np.mean((p[:, 0] >= 0.5) == (sets[name]["gender"] == 1)))


def compare(sets: dict, epochs: int, seed: int = 1337) -> dict:
    """Train the gender variants, then the age variants on the chosen gender head; measure on validation."""
    import keras

    from phototag.training import data, recipe
    from phototag.training.evaluate import _age_report
    from phototag.training.train import TrainConfig

    keras.utils.set_random_seed(seed)
    dim = sets["utk_train"]["features"].shape[1]
    utk = _samples(sets, "utk_train")
    mixed = data.Samples.concat([utk, _samples(sets, "celeba_train")])
    mixed_features = np.concatenate([sets["utk_train"]["features"], sets["celeba_train"]["features"]])
    results: dict = {"gender": [], "age": []}
    gender_heads = {}
    for label, samples, features, balance in (
            ("UTKFace only", utk, sets["utk_train"]["features"], 0.0),
            ("UTKFace + CelebA", mixed, mixed_features, 0.0),
            ("UTKFace + CelebA, balance 0.5", mixed, mixed_features, 0.5),
            ("UTKFace + CelebA, balance 1", mixed, mixed_features, 1.0)):
        t = time.monotonic()
        model = _gender_model(dim)
        _fit(model, None, features, samples, TrainConfig(data=[], batch_size=256, balance=balance, seed=seed),
             epochs, 1e-3)
        gender_heads[label] = model
        row = {"variant": label, "train_faces": len(samples), "utk_val": _accuracy(model, sets, "utk_val"),
               "celeba_val": _accuracy(model, sets, "celeba_val"), "seconds": round(time.monotonic() - t, 1)}
        results["gender"].append(row)
        print(f"gender  {label:32s} UTKFace val {row['utk_val'] * 100:5.2f} %  CelebA val {row['celeba_val'] * 100:5.2f} %")

    base = gender_heads["UTKFace + CelebA, balance 0.5"].get_weights()
    val = sets["utk_val"]
    for label, head, age_balance, balance, sigma in (
            ("L1", "l1", 0.0, 0.0, 2.0),
            ("L1, decade weights 0.5", "l1", 0.5, 0.0, 2.0),
            ("L1, decade weights 1", "l1", 1.0, 0.0, 2.0),
            ("L1, decade sampling 1", "l1", 0.0, 1.0, 2.0),
            ("distribution s=2", "distribution", 0.0, 0.0, 2.0),
            ("distribution s=3", "distribution", 0.0, 0.0, 3.0),
            ("distribution s=2, decade weights 0.5", "distribution", 0.5, 0.0, 2.0),
            ("distribution s=2, decade weights 1", "distribution", 1.0, 0.0, 2.0)):
        t = time.monotonic()
        gender = _gender_model(dim)
        gender.set_weights(base)
        model = recipe.build_age_model(gender, head=head)
        cfg = TrainConfig(data=[], batch_size=256, age_head=head, age_sigma=sigma, balance=balance,
                          age_balance=age_balance, seed=seed)
        _fit(model, recipe.age_output(model), sets["utk_train"]["features"], utk, cfg, epochs, 1e-3)
        out = model.predict(val["features"], batch_size=1024, verbose=0)
        report = _age_report(val["age"], out["age"][:, 0])  # branches mixed by the predicted gender, as the chain
        row = {"variant": label, "mae": report["mae"], "rmse": report["rmse"], "by_decade": report["by_decade"],
               "gender_utk_val": float(np.mean((out["gender"][:, 0] >= 0.5) == (val["gender"] == 1))),
               "seconds": round(time.monotonic() - t, 1)}
        results["age"].append(row)
        print(f"age     {label:38s} MAE {row['mae']:5.2f}  RMSE {row['rmse']:5.2f}  "
              + " ".join(f"{d}:{r['bias']:+.1f}" for d, r in report["by_decade"].items()))
    return results


def markdown(results: dict) -> str:
    """The tables for the model card."""
    lines = ["| gender head trained on | faces | UTKFace val | CelebA val |", "|---|---:|---:|---:|"]
    for r in results["gender"]:
        lines.append(f"| {r['variant']} | {r['train_faces']:,} | {r['utk_val'] * 100:.2f} % | {r['celeba_val'] * 100:.2f} % |")
    decades = list(results["age"][0]["by_decade"])
    lines += ["", "| age head | MAE | RMSE | " + " | ".join(decades) + " |",
              "|---|---:|---:|" + "---:|" * len(decades)]
    for r in results["age"]:
        cells = [f"{r['by_decade'][d]['mae']:.1f} ({r['by_decade'][d]['bias']:+.1f})" for d in decades]
        lines.append(f"| {r['variant']} | {r['mae']:.2f} | {r['rmse']:.2f} | " + " | ".join(cells) + " |")
    n = results["age"][0]["by_decade"]
    lines.append("| faces (val) | | | " + " | ".join(str(n[d]["n"]) for d in decades) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder for the cached features (outside the repo)")
    parser.add_argument("--utkface", type=Path, default=SHARED / "data" / "utkface")
    parser.add_argument("--celeba", type=Path, default=SHARED / "data" / "celeba_gender")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "mobilenet_v2_imagenet.npz")
    parser.add_argument("--celeba-train", type=int, default=4000, help="CelebA train faces used (half female)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (the CPU is shared)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per head")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--features-only", action="store_true")
    args = parser.parse_args()
    _threads(args.threads)
    sets = feature_sets(args.utkface, args.celeba, args.weights, args.cache, args.celeba_train)
    if args.features_only:
        return
    results = compare(sets, args.epochs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(markdown(results))


if __name__ == "__main__":
    main()
