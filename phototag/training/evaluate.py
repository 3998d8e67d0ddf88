"""Evaluate a model folder on the held-out test split (or another split) of labelled face data.

Two ways in: the files as face crops (as in training), or through detection, exactly as
``phototag scan`` sees a photo (decode, detect, the chain on the face nearest the image centre;
a file without a face is a miss). Reports gender accuracy (at the models' gender threshold), per
data set and gender x decade cell with the worst cell, and the reliability of P(female)
(:mod:`.balance`); age MAE, RMSE and share within ±5 years, overall and by decade; rotation MAE
and share within ±5° on test faces rotated by known angles (``scipy.ndimage.rotate``, an
implementation independent of the training augmentation); and milliseconds per face for the
chain (rotation → de-rotate → gender/age) on this machine.
"""

from __future__ import annotations

import csv
import json
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from phototag import detectors
from phototag.ages import LAST_DECADE, decade_label, decades
from phototag.analyzer import FaceAnalyzer
from phototag.chain import FaceChain, wide_size
from phototag.images import DEFAULT_DECODE_SIZE, DecodeError, decode
from phototag.models import ModelSet, load_models
from phototag.records import Detection

from . import balance, data


def _age_report(age_true: np.ndarray, age_pred: np.ndarray) -> dict:
    err = age_pred - age_true
    report = {
        "n": int(len(err)),
        "mae": round(float(np.mean(np.abs(err))), 3),
        "rmse": round(float(np.sqrt(np.mean(err**2))), 3),
        "within_5": round(float(np.mean(np.abs(err) <= 5)), 4),
        "by_decade": {},
    }
    decade = decades(age_true)
    for d in sorted(set(decade)):
        m = decade == d
        report["by_decade"][decade_label(d, LAST_DECADE)] = {
            "n": int(m.sum()), "mae": round(float(np.mean(np.abs(err[m]))), 2),
            "bias": round(float(np.mean(err[m])), 2)}
    return report


def _rotation_report(true: np.ndarray, pred: np.ndarray, max_angle: float) -> dict:
    err = np.abs((pred - true + 180) % 360 - 180)
    return {"max_angle": max_angle, "n": int(len(err)), "mae": round(float(err.mean()), 3),
            "within_5": round(float(np.mean(err <= 5)), 4), "p95": round(float(np.percentile(err, 95)), 2)}


SPLITS = ("test", "val", "train", "all")


def select(sources: list[str | Path], seed: int, val: float = 0.1, test: float = 0.1, split: str = "test",
           limit: int | None = None) -> data.Samples:
    """The chosen split of every source, concatenated (``all``: every file, unsplit).

    ``limit``: a random sample of that many files, drawn with ``seed`` (the same files every run).
    """
    if split == "all":
        samples = data.Samples.concat([data.read_any(s) for s in sources])
    else:
        which = {"train": 0, "val": 1, "test": 2}[split]
        samples = data.Samples.concat([data.splits(s, seed, val, test)[which] for s in sources])
    if limit and limit < len(samples):
        samples = samples.take(np.sort(np.random.default_rng(seed).choice(len(samples), limit, replace=False)))
    if not len(samples):
        raise data.DataError(f"the {split} split of {', '.join(map(str, sources))} is empty")
    return samples


def split_settings(model_dir: Path) -> dict:
    """Seed and split fractions the models were trained with (from ``age.train.json``), else the defaults."""
    info = model_dir / "age.train.json"
    cfg = json.loads(info.read_text())["config"] if info.exists() else {}
    return {"seed": cfg.get("seed", 1337), "val": cfg.get("val_fraction", 0.1), "test": cfg.get("test_fraction", 0.1)}


def _attribute_report(report: dict, samples: data.Samples, p_female: np.ndarray, age: np.ndarray,
                      models: ModelSet, choose_threshold: bool = False) -> None:
    """Gender (at the models' thresholds for the estimated ``age``) and age reports into ``report``."""
    has_gender = ~np.isnan(samples.gender)
    if has_gender.any():
        s, female, p = samples.take(np.flatnonzero(has_gender)), samples.gender[has_gender] == 1, p_female[has_gender]
        thresholds = models.gender_thresholds(age[has_gender])
        report["gender"] = {"n": int(has_gender.sum()), "threshold": models.gender_threshold,
                            "threshold_by_age": models.manifest.get("gender_threshold_by_age", []),
                            "min_cell": balance.MIN_CELL,
                            "accuracy": round(float(np.mean((p >= thresholds) == female)), 4),
                            "by_source": balance.cell_report(s.source, female, s.age, p, thresholds),
                            "reliability": {str(src): balance.reliability(female[s.source == src], p[s.source == src])
                                            for src in dict.fromkeys(s.source)}}
        if choose_threshold:
            estimated = age[has_gender]
            report["gender"]["threshold_choice"] = balance.choose_threshold(
                s.source, female, s.age, p, models.gender_threshold,
                thresholds_at=lambda t: models.gender_thresholds(estimated, base=t))
    has_age = ~np.isnan(samples.age)
    if has_age.any():
        report["age"] = _age_report(samples.age[has_age], age[has_age])


def write_predictions(path: str | Path, samples: data.Samples, p_female: np.ndarray, age: np.ndarray,
                      found: np.ndarray) -> None:
    """One CSV row per file: its labels and what the models said (empty where no face was found)."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["path", "source", "gender", "age", "found", "p_female", "predicted_age"])
        for row in zip(samples.paths, samples.source, samples.gender, samples.age, found, p_female, age):
            path_, src, g, a, f, p, pa = row
            out.writerow([path_, src, "" if np.isnan(g) else "fm"[int(g == 0)], "" if np.isnan(a) else f"{a:g}",
                          int(f), f"{p:.4f}" if f else "", f"{pa:.2f}" if f else ""])


def central_face(detections: list[Detection], shape: tuple[int, ...]) -> Detection | None:
    """The detection whose box centre is nearest the image centre."""
    def distance(d: Detection) -> float:
        x, y, w, h = d.box
        return (x + w / 2 - shape[1] / 2) ** 2 + (y + h / 2 - shape[0] / 2) ** 2
    return min(detections, key=distance, default=None)


def _detect_and_predict(samples: data.Samples, analyzer: FaceAnalyzer, decode_size: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """As ``phototag scan`` does: decode each file, detect, run the chain on the face nearest the centre.

    Returns P(female), age (NaN where no face was found), whether a face was found, the seconds
    spent in all and the seconds spent in the chain.
    """
    n = len(samples)
    p_female, age, found = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, bool)
    pending: list[tuple[int, np.ndarray, Detection]] = []
    started, chain_seconds = time.perf_counter(), 0.0

    def flush():
        nonlocal chain_seconds
        t = time.perf_counter()
        results = analyzer.predict([(pixels, [det]) for _, pixels, det in pending])
        chain_seconds += time.perf_counter() - t
        for (i, _, _), (face,) in zip(pending, results):
            p_female[i], age[i], found[i] = face.p_female, face.age, True
        pending.clear()

    unreadable = []
    for i, path in enumerate(samples.paths):
        try:
            with open(path, "rb") as fh:
                pixels, info = decode(fh.read(), decode_size)
        except (OSError, DecodeError) as exc:
            unreadable.append(f"{path} ({exc})")
            continue
        face = central_face(analyzer.detect(pixels, info.scale), pixels.shape)
        if face is not None:
            pending.append((i, pixels, face))
        if len(pending) >= analyzer.chain.batch_size:
            flush()
    if pending:
        flush()
    if unreadable:
        raise data.DataError(data.problems("unreadable images", unreadable))
    return p_female, age, found, time.perf_counter() - started, chain_seconds


def evaluate(model_dir: str | Path | None, sources: list[str | Path], seed: int | None = None, split: str = "test",
             limit: int | None = None, rotation_angles: tuple[float, ...] = (60.0, 90.0), batch_size: int = 64,
             flip_average: bool = True, detect: bool = False, detector: str = detectors.DEFAULT,
             engine: str = "auto", choose_threshold: bool = False, predictions: str | Path | None = None) -> dict:
    """Measure the models of ``model_dir`` (default: shipped) on the ``split`` of ``sources``.

    The split uses the seed and fractions of the models' training run unless ``seed`` is given.
    ``detect``: run ``detector`` on each file and the chain on the face nearest its centre with the
    scan's :class:`~phototag.analyzer.FaceAnalyzer` (files without a face are misses, listed in the
    report); otherwise the files are taken as face crops, and the rotation regressor is measured on
    them too. ``engine``: how the models run (see :func:`phototag.models.load_models`).
    ``choose_threshold``: also choose the gender threshold by the worst cell
    (:func:`.balance.choose_threshold`; on validation splits only). ``predictions``: write each
    file's labels and predictions to this CSV file.
    """
    analyzer = None
    if detect:
        analyzer = FaceAnalyzer(detector, models=model_dir, engine=engine, batch_size=batch_size,
                                flip_average=flip_average)
        chain = analyzer.chain
    else:
        chain = FaceChain(load_models(model_dir, engine=engine), batch_size=batch_size, flip_average=flip_average)
    models = chain.models
    settings = split_settings(models.directory)
    seed = settings["seed"] if seed is None else seed
    samples = select(sources, seed, settings["val"], settings["test"], split, limit)
    report: dict = {"models": models.version, "split": split, "seed": seed, "samples": len(samples),
                    "flip_average": flip_average, "through": "detection" if detect else "crops",
                    "runtime": analyzer.describe() if analyzer else models.describe(),
                    "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"}
    if detect:
        p_female, age, found, seconds, chain_seconds = _detect_and_predict(samples, analyzer, DEFAULT_DECODE_SIZE)
        report["detection"] = {"found": int(found.sum()), "misses": int((~found).sum()),
                               "missed": [Path(p).name for p in samples.paths[~found]],
                               "misses_by_source": {str(src): int((~found & (samples.source == src)).sum())
                                                    for src in dict.fromkeys(samples.source)}}
        _attribute_report(report, samples.take(np.flatnonzero(found)), p_female[found], age[found], models,
                          choose_threshold)
        if "gender" in report:  # a miss counts as a wrong answer here
            has = ~np.isnan(samples.gender)
            hit = found & ((p_female >= models.gender_thresholds(age)) == (samples.gender == 1))
            report["gender"]["accuracy_with_misses"] = round(float(np.mean(hit[has])), 4)
        report["ms_per_image"] = round(1000 * seconds / len(samples), 2)
        report["ms_per_face"] = round(1000 * chain_seconds / max(int(found.sum()), 1), 2)
        if predictions:
            write_predictions(predictions, samples, p_female, age, found)
        return report

    size = models.input_size
    faces = data.load_images(samples, size)
    p_female, age = chain.attributes(faces)
    _attribute_report(report, samples, p_female, age, models, choose_threshold)
    if predictions:
        write_predictions(predictions, samples, p_female, age, np.ones(len(samples), bool))
    rng = np.random.default_rng(seed)
    pad = (wide_size(size) - size) // 2  # the faces with reflected context around, as a photo would have
    wide = np.pad(faces, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    report["rotation"] = []
    seconds = 0.0
    for max_angle in rotation_angles:
        angles = rng.uniform(-max_angle, max_angle, len(samples))
        rotated = np.stack([ndimage.rotate(w, a, reshape=False, order=1, mode="reflect") for w, a in zip(wide, angles)])
        centre = rotated[:, pad:pad + size, pad:pad + size]
        if models.rotation_input_size != size:  # as the scan crops it: resampled to the regressor's size
            rot = (models.rotation_input_size,) * 2
            centre = np.stack([np.asarray(Image.fromarray(c).resize(rot, Image.Resampling.BILINEAR)) for c in centre])
        t = time.perf_counter()
        pred, _, _, _ = chain.predict_crops(centre, rotated)
        seconds += time.perf_counter() - t
        report["rotation"].append(_rotation_report(angles, pred, max_angle))
    report["ms_per_face"] = round(1000 * seconds / (len(samples) * len(rotation_angles)), 2)
    return report
