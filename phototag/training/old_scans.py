"""The old scans' head: a correction of the age model for scanned old photographs.

The age model reads scanned family photos (FG-NET's) years too old, and no change to their pixels
removes it (the model card's "Old scans read older"), but its own pooled features tell such photos
apart. The head is a ridge regression on those features (``attributes_pool``) and the age read,
added to the model's age: fitted to the residual (labelled age − age read) of labelled old scans,
and to 0 on modern faces the model never trained on (the validation side of its own data, half A
by a hash of the file name), so that it learns what sets old scans apart and leaves modern faces as
they are read. Half B of that validation side and the old scans by subject held out measure it.

    phototag train old-scans --data UTKFACE --data AAF --old-scans FGNET -o models

Each face is the one nearest the image centre, cut and de-rotated by the shipped chain (the crop the
age model sees in a scan); its features are the model's, averaged with the mirror image's as the
chain averages its readings, so the head adds the same correction the scan will.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phototag.images import DEFAULT_DECODE_SIZE, DecodeError, decode

from . import data
from .evaluate import central_face, select

HEAD = "old_scans"  # the head's Dense layer
AGE_READ = "age"  # the model's own age (GenderMix), the head's input
AGE_SCALE = 0.1  # the age read enters the head in tens of years, like the features' scale
# Chosen with benchmarks/bench_age_domain.py on FG-NET (subjects held out) and validation half B: the
# most FG-NET gain with no band of half B more than a quarter year worse (models/README.md).
ALPHA = 10.0  # ridge penalty
OLD_SCAN_WEIGHT = 0.5  # an old scan's weight in the fit against a validation face's
FOLDS = 5
REPORT = "old_scans.train.json"


@dataclass
class OldScans:
    """Labelled scanned photos: image files, their age and the person in them (folds keep a person together)."""

    paths: list[str]
    ages: np.ndarray
    subjects: np.ndarray


def read_old_scans(folder: str | Path) -> OldScans:
    """A folder laid out as FG-NET's: ``labels.csv`` with the columns ``file,subject,age`` and the
    images in ``images/``."""
    folder = Path(folder)
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise data.DataError(f"{folder}: needs labels.csv (file,subject,age) and the images in images/")
    paths, ages, subjects, bad, missing = [], [], [], [], []
    with open(labels, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                path, age, subject = folder / "images" / row["file"], float(row["age"]), str(row["subject"]).strip()
                if not 0 <= age <= data.MAX_AGE or not subject:
                    raise ValueError
            except (KeyError, TypeError, ValueError):
                bad.append(f"line {line}")
                continue
            if not path.is_file():
                missing.append(row["file"])
                continue
            paths.append(str(path))
            ages.append(age)
            subjects.append(subject)
    if bad:
        raise data.DataError(f"{labels}: " + data.problems(f"rows without a file, a subject and an age (0-{data.MAX_AGE:g})", bad))
    if missing:
        raise data.DataError(f"{labels}: " + data.problems("files not found", missing))
    if len(set(subjects)) < FOLDS:
        raise data.DataError(f"{labels}: needs at least {FOLDS} subjects (the head is measured by subject held out)")
    return OldScans(paths, np.array(ages, float), np.array(subjects))


def central_crops(analyzer, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The de-rotated crop the age model sees of each file's face nearest the centre, as ``phototag
    eval --detect`` reads it (decoded and detected as the scan does), and a mask of the files where
    a face was found (unreadable files count as none)."""
    seen: list[np.ndarray] = []
    attributes = analyzer.chain.attributes

    def keep(upright):
        seen.append(np.array(upright))
        return attributes(upright)

    analyzer.chain.attributes = keep
    crops, found = [], np.zeros(len(paths), bool)
    try:
        for i, path in enumerate(paths):
            try:
                with open(path, "rb") as fh:
                    pixels, info = decode(fh.read(), DEFAULT_DECODE_SIZE)
            except (OSError, DecodeError):
                continue
            face = central_face(analyzer.detect(pixels, info.scale), pixels.shape)
            if face is None:
                continue
            seen.clear()
            analyzer.predict([(pixels, [face])])
            crops.append(seen[-1][0])
            found[i] = True
    finally:
        analyzer.chain.attributes = attributes
    return np.array(crops), found


def features(model, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The head's inputs for upright face crops: the age model's pooled features and its own age
    (before any head), each averaged with the mirror image's."""
    import keras

    probe = keras.Model(model.inputs, [model.get_layer("attributes_pool").output, model.get_layer(AGE_READ).output])
    x = crops.astype("float32")
    (pool, age), (pool_m, age_m) = (probe.predict(v, batch_size=64, verbose=0) for v in (x, x[:, :, ::-1]))
    return (pool + pool_m) / 2, (age + age_m)[:, 0] / 2


def head_inputs(pool: np.ndarray, age: np.ndarray) -> np.ndarray:
    """The head's input rows: the pooled features and the age read (scaled as the model scales it)."""
    return np.concatenate([pool, age[:, None] * AGE_SCALE], axis=1)


def ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weighted ridge regression, the intercept not penalised: (coefficients, intercept)."""
    mu = np.average(x, axis=0, weights=w)
    xc = x - mu
    y_mean = np.average(y, weights=w)
    beta = np.linalg.solve(xc.T @ (xc * w[:, None]) + alpha * np.eye(x.shape[1]), xc.T @ (w * (y - y_mean)))
    return beta, float(y_mean - mu @ beta)


def half_b(names) -> np.ndarray:
    """Half B of a validation side (measured, never fitted): by a hash of each file's name."""
    return np.array([hashlib.sha256(f"age-domain:{Path(n).name}".encode()).digest()[0] % 2 == 1 for n in names], bool)


def subject_folds(subjects: np.ndarray, folds: int = FOLDS) -> list[np.ndarray]:
    """The subjects in ``folds`` seeded groups (each corrected by a head fitted without it)."""
    return np.array_split(np.random.default_rng(0).permutation(np.unique(subjects)), folds)


def with_head(model, beta: np.ndarray, intercept: float):
    """The age model with the head: ``age`` = max(0, age read + head(pooled features, age read)); its
    other outputs unchanged. A model that has a head already gets the new one in its place."""
    import keras

    pool, age = model.get_layer("attributes_pool").output, model.get_layer(AGE_READ).output
    scaled = keras.layers.Rescaling(AGE_SCALE, name=f"{HEAD}_age")(age)
    joined = keras.layers.Concatenate(name=f"{HEAD}_inputs")([pool, scaled])
    dense = keras.layers.Dense(1, name=HEAD)
    delta = dense(joined)
    dense.set_weights([beta.reshape(-1, 1).astype("float32"), np.array([intercept], "float32")])
    corrected = keras.layers.ReLU(name=f"{HEAD}_corrected")(keras.layers.Add(name=f"{HEAD}_add")([age, delta]))
    outputs = {name: tensor for name, tensor in model.output.items() if name != "age"}
    return keras.Model(model.inputs, {**outputs, "age": corrected}, name=model.name)


def _report(read: np.ndarray, age: np.ndarray) -> dict:
    err = read - age
    bands = {f"{lo}-{hi - 1}" if hi < 200 else f"{lo}+": (age >= lo) & (age < hi) for lo, hi in ((0, 10), (10, 20), (20, 200))}
    return {"faces": int(len(err)), "mae": round(float(np.abs(err).mean()), 3), "bias": round(float(err.mean()), 3),
            "mae_by_band": {k: round(float(np.abs(err[m]).mean()), 3) for k, m in bands.items() if m.any()}}


def fit(model_dir: str | Path, old_scans: str | Path, sources: list[str | Path], seed: int = 1337,
        alpha: float = ALPHA, weight: float = OLD_SCAN_WEIGHT, analyzer=None, progress=print) -> dict:
    """Fit the old scans' head to ``model_dir``'s age model and save it there (``age.keras``, written
    atomically; ``phototag train old-scans`` then exports the LiteRT files again); returns the
    report written beside it (:data:`REPORT`): the faces used, and the head measured on the old
    scans by subject held out and on validation half B (before and after)."""
    import keras

    from phototag import layers  # noqa: F401 - the custom layers the model file names
    from phototag.analyzer import FaceAnalyzer

    started = time.time()
    model_dir = Path(model_dir)
    scans = read_old_scans(old_scans)
    modern = select([Path(s) for s in sources], seed, split="val")
    keep = ~np.isnan(modern.age)
    modern_paths, modern_ages = list(np.asarray(modern.paths)[keep]), modern.age[keep]
    analyzer = analyzer or FaceAnalyzer(models=model_dir)
    progress(f"reading {len(scans.paths)} old scans and {len(modern_paths)} validation faces")
    crops_old, found_old = central_crops(analyzer, scans.paths)
    crops_new, found_new = central_crops(analyzer, modern_paths)
    if len(np.unique(scans.subjects[found_old])) < FOLDS or not found_new.any():
        raise data.DataError(f"faces found in {int(found_old.sum())} old scans of "
                             f"{len(np.unique(scans.subjects[found_old]))} subjects and {int(found_new.sum())} "
                             f"validation faces: the head needs {FOLDS} subjects and some validation faces")
    model = keras.saving.load_model(model_dir / "age.keras", compile=False, safe_mode=True)
    pool_old, read_old = features(model, crops_old)
    pool_new, read_new = features(model, crops_new)
    x_old, x_new = head_inputs(pool_old, read_old), head_inputs(pool_new, read_new)
    age_old, subjects = scans.ages[found_old], scans.subjects[found_old]
    age_new = modern_ages[found_new]
    b = half_b(np.asarray(modern_paths)[found_new])
    x_fit = np.concatenate([x_old, x_new[~b]])
    y_fit = np.concatenate([age_old - read_old, np.zeros((~b).sum())])
    w_fit = np.concatenate([np.full(len(x_old), weight), np.ones((~b).sum())])
    held_out = read_old.copy()
    for fold in subject_folds(subjects):
        held = np.isin(subjects, fold)
        rows = np.concatenate([~held, np.ones((~b).sum(), bool)])
        beta, c = ridge(x_fit[rows], y_fit[rows], w_fit[rows], alpha)
        held_out[held] = np.maximum(0.0, read_old[held] + x_old[held] @ beta + c)
    beta, c = ridge(x_fit, y_fit, w_fit, alpha)
    after_b = np.maximum(0.0, read_new[b] + x_new[b] @ beta + c)
    report = {
        "model": "age.keras", "head": HEAD, "seconds": round(time.time() - started, 1),
        "settings": {"old_scans": str(old_scans), "sources": [str(s) for s in sources], "seed": seed, "alpha": alpha,
                     "old_scan_weight": weight, "folds": FOLDS, "age_scale": AGE_SCALE},
        "faces": {"old_scans": int(found_old.sum()), "old_scans_without_face": int((~found_old).sum()),
                  "old_scan_subjects": int(len(np.unique(subjects))), "validation_a_fitted": int((~b).sum()),
                  "validation_b_measured": int(b.sum()), "validation_without_face": int((~found_new).sum())},
        "old_scans_subjects_held_out": {"before": _report(read_old, age_old), "after": _report(held_out, age_old)},
        "validation_b": {"before": _report(read_new[b], age_new[b]), "after": _report(after_b, age_new[b])},
        "old_scans_held_out_ages": {Path(p).name: round(float(a), 3)
                                    for p, a in zip(np.asarray(scans.paths)[found_old], held_out)},
    }
    headed = with_head(model, beta, c)
    temp = model_dir / ".age.keras.tmp.keras"
    headed.save(temp)
    with open(temp, "rb") as fh:
        os.fsync(fh.fileno())
    temp.replace(model_dir / "age.keras")
    (model_dir / REPORT).write_text(json.dumps(report, indent=1) + "\n")
    return report


def summary(report: dict) -> str:
    """The report in two lines."""
    old, val = report["old_scans_subjects_held_out"], report["validation_b"]
    return (f"old scans (subjects held out): age MAE {old['before']['mae']:.2f} -> {old['after']['mae']:.2f} "
            f"(bias {old['before']['bias']:+.2f} -> {old['after']['bias']:+.2f})\n"
            f"validation half B: age MAE {val['before']['mae']:.2f} -> {val['after']['mae']:.2f} "
            f"(bias {val['before']['bias']:+.2f} -> {val['after']['bias']:+.2f})")

