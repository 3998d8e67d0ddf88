"""Evaluate a model folder on the held-out test split of labelled face data.

Reports gender accuracy; age MAE, RMSE and share within ±5 years, overall and by decade; rotation
MAE and share within ±5° on test faces rotated by known angles (``scipy.ndimage.rotate``, an
implementation independent of the training augmentation); and milliseconds per face for the
chain (rotation → de-rotate → gender/age) on this machine.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from phototag.chain import CONTEXT, FaceChain
from phototag.models import load_models

from . import data


def _age_report(age_true: np.ndarray, age_pred: np.ndarray) -> dict:
    err = age_pred - age_true
    report = {
        "n": int(len(err)),
        "mae": round(float(np.mean(np.abs(err))), 3),
        "rmse": round(float(np.sqrt(np.mean(err**2))), 3),
        "within_5": round(float(np.mean(np.abs(err) <= 5)), 4),
        "by_decade": {},
    }
    decade = np.minimum(age_true // 10 * 10, 90).astype(int)
    for d in sorted(set(decade)):
        m = decade == d
        report["by_decade"][f"{d}-{d + 9}" if d < 90 else "90+"] = {
            "n": int(m.sum()), "mae": round(float(np.mean(np.abs(err[m]))), 2),
            "bias": round(float(np.mean(err[m])), 2)}
    return report


def _rotation_report(true: np.ndarray, pred: np.ndarray, max_angle: float) -> dict:
    err = np.abs((pred - true + 180) % 360 - 180)
    return {"max_angle": max_angle, "n": int(len(err)), "mae": round(float(err.mean()), 3),
            "within_5": round(float(np.mean(err <= 5)), 4), "p95": round(float(np.percentile(err, 95)), 2)}


def test_split(sources: list[str | Path], seed: int, val: float = 0.1, test: float = 0.1, split: str = "test"
               ) -> data.Samples:
    """The chosen split (``test`` by default, ``val`` for model selection) of every source, concatenated."""
    which = {"train": 0, "val": 1, "test": 2}[split]
    return data.Samples.concat([data.split(data.read_any(s), seed, val, test)[which] for s in sources])


def split_settings(model_dir: Path) -> dict:
    """Seed and split fractions the models were trained with (from ``age.train.json``), else the defaults."""
    info = model_dir / "age.train.json"
    cfg = json.loads(info.read_text())["config"] if info.exists() else {}
    return {"seed": cfg.get("seed", 1337), "val": cfg.get("val_fraction", 0.1), "test": cfg.get("test_fraction", 0.1)}


def evaluate(model_dir: str | Path | None, sources: list[str | Path], seed: int | None = None, split: str = "test",
             limit: int | None = None, rotation_angles: tuple[float, ...] = (60.0, 90.0), batch_size: int = 64,
             flip_average: bool = True) -> dict:
    """Measure the models of ``model_dir`` (default: shipped) on the ``split`` of ``sources``.

    The split uses the seed and fractions of the models' training run unless ``seed`` is given.
    """
    models = load_models(model_dir)
    chain = FaceChain(models, batch_size=batch_size, flip_average=flip_average)
    settings = split_settings(models.directory)
    seed = settings["seed"] if seed is None else seed
    samples = test_split(sources, seed, settings["val"], settings["test"], split=split)
    if limit:
        samples = samples.take(np.arange(min(limit, len(samples))))
    if not len(samples):
        raise data.DataError("the split is empty")
    size = models.input_size
    wide_size = int(np.ceil(size * CONTEXT / 2) * 2)
    faces = data.load_images(samples, size)
    p_female, age = chain.attributes(faces)

    report: dict = {"models": models.version, "split": split, "seed": seed, "samples": len(samples),
                    "flip_average": flip_average,
                    "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"}
    has_gender = ~np.isnan(samples.gender)
    if has_gender.any():
        report["gender"] = {"n": int(has_gender.sum()), "accuracy": round(float(np.mean(
            (p_female[has_gender] >= 0.5) == (samples.gender[has_gender] == 1))), 4)}
    has_age = ~np.isnan(samples.age)
    if has_age.any():
        report["age"] = _age_report(samples.age[has_age], age[has_age])

    rng = np.random.default_rng(seed)
    pad = (wide_size - size) // 2  # the faces with reflected context around, as a photo would have
    wide = np.pad(faces, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    report["rotation"] = []
    seconds = 0.0
    for max_angle in rotation_angles:
        angles = rng.uniform(-max_angle, max_angle, len(samples))
        rotated = np.stack([ndimage.rotate(w, a, reshape=False, order=1, mode="reflect") for w, a in zip(wide, angles)])
        centre = rotated[:, pad:pad + size, pad:pad + size]
        t = time.perf_counter()
        pred, _, _, _ = chain.predict_crops(centre, rotated)
        seconds += time.perf_counter() - t
        report["rotation"].append(_rotation_report(angles, pred, max_angle))
    report["ms_per_face"] = round(1000 * seconds / (len(samples) * len(rotation_angles)), 2)
    return report


def format_report(report: dict) -> str:
    """A plain-text table of an :func:`evaluate` report."""
    lines = [f"models {report['models']}  split {report['split']} (seed {report['seed']})  {report['samples']} faces"]
    if "gender" in report:
        lines.append(f"gender accuracy      {report['gender']['accuracy'] * 100:6.2f} %   (n={report['gender']['n']})")
    if "age" in report:
        a = report["age"]
        lines.append(f"age MAE              {a['mae']:6.2f} years (n={a['n']})")
        lines.append(f"age RMSE             {a['rmse']:6.2f} years")
        lines.append(f"age within ±5 years  {a['within_5'] * 100:6.2f} %")
        lines.append("  decade     n    MAE   bias")
        for d, r in a["by_decade"].items():
            lines.append(f"  {d:>7} {r['n']:5d} {r['mae']:6.2f} {r['bias']:+6.2f}")
    for r in report.get("rotation", []):
        lines.append(f"rotation ±{r['max_angle']:.0f}°: MAE {r['mae']:.2f}°, within ±5° {r['within_5'] * 100:.1f} %, "
                     f"95th percentile {r['p95']:.1f}°")
    if "ms_per_face" in report:
        lines.append(f"chain time           {report['ms_per_face']:6.2f} ms per face (rotation + de-rotate + gender/age)")
    return "\n".join(lines)
