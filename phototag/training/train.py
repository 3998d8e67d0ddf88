"""The training loop: two-stage transfer learning for the rotation, gender and age models.

Stage 1 trains the new top with most of the backbone frozen (``Backbone.stage1_frozen`` layers,
the recipe's "first 115 layers" of Xception), stage 2 fine-tunes with only the first half frozen
and a lower, cosine-decayed learning rate; an optional stage 3 (``epochs3``) unfreezes more
(all but ``frozen3`` layers). Augmentation runs in every stage. Images are decoded once into
memory (optionally cached as ``.npy``); the test split is never loaded here.

Mixing data sets: ``balance`` draws each epoch's training faces (with replacement) with a
probability proportional to ``count ** -balance`` of their (source, gender, decade) cell, so at 1
every cell is drawn equally often and at 0 every face once (the default). ``age_balance`` weights
each face's age loss by ``count ** -age_balance`` of its decade (mean weight 1).
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np

from phototag.ages import decades
from phototag.export import RUNTIME_WEIGHTS, export_model
from phototag.models import MODEL_FILES, MODEL_KEYS, runtime_path

from . import augment, backbones, data, recipe



@dataclass
class TrainConfig:
    """Everything that defines a training run (stored beside the models)."""

    data: list[str]
    out: str = "models"
    backbone: str = "mobilenet_v2"
    input_size: int | None = None
    pretrained: str | None = None
    epochs1: int = 3
    epochs2: int = 20
    epochs3: int = 0  # optional final stage that unfreezes more of the backbone
    frozen3: int = 0  # backbone layers still frozen in stage 3
    batch_size: int = 64
    lr1: float = 1e-4
    lr2: float = 5e-5
    lr3: float = 1e-5
    age_head: str = "l1"  # or "distribution" (recipe.AGE_HEADS)
    age_sigma: float = 2.0  # years: width of the distribution head's Gaussian targets
    balance: float = 0.0  # sampling by (source, gender, decade) cell, see the module docstring
    age_balance: float = 0.0  # decade-balanced age loss weights, see the module docstring
    old_prints: float = 0.0  # gender and age: share of the training faces degraded as old prints (augment.OldPrint)
    seed: int = 1337
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_angle: float = 90.0
    age_loss_weight: float = 0.1
    time_budget_s: float | None = None  # per model; stops training (keeping the best weights) when spent
    resume: str | None = None  # a saved rotation or age model to continue training (e.g. stage 2 only)
    cache_dir: str | None = None
    extra: dict = field(default_factory=dict)


class ArrayBatches(keras.utils.PyDataset):
    """Batches drawn from in-memory arrays; ``make_batch(index, rng)`` builds ``(x, y)``.

    ``weights`` (training only): each epoch draws ``n`` indices with replacement, with these
    relative probabilities, instead of a permutation.
    """

    def __init__(self, n: int, batch_size: int, make_batch, seed: int, shuffle: bool,
                 weights: np.ndarray | None = None):
        super().__init__()
        self.n, self.batch_size, self.make_batch, self.shuffle = n, batch_size, make_batch, shuffle
        self.p = None if weights is None else weights / weights.sum()
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(n)
        self.on_epoch_end()

    def __len__(self) -> int:
        # training drops the last partial batch (fixed shapes, no recompilation); evaluation keeps it
        return self.n // self.batch_size if self.shuffle and self.n >= self.batch_size else math.ceil(self.n / self.batch_size)

    def __getitem__(self, i: int):
        return self.make_batch(self.order[i * self.batch_size:(i + 1) * self.batch_size], self.rng)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self.rng.choice(self.n, self.n, p=self.p) if self.p is not None else self.rng.permutation(self.n)


class TimeBudget(keras.callbacks.Callback):
    """Stop training once a deadline (``time.monotonic()``) has passed."""

    def __init__(self, deadline: float | None):
        super().__init__()
        self.deadline = deadline

    last_epoch_seconds = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch_seconds = time.monotonic() - self._epoch_start

    def on_train_batch_end(self, batch, logs=None):
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.model.stop_training = True


@dataclass
class Prepared:
    """Train and validation splits, decoded."""

    train: data.Samples
    val: data.Samples
    train_images: np.ndarray
    val_images: np.ndarray
    n_test: int


def prepare(cfg: TrainConfig, input_size: int) -> Prepared:
    """Read every data source, split each deterministically and decode train + validation images."""
    parts = [data.splits(src, cfg.seed, cfg.val_fraction, cfg.test_fraction) for src in cfg.data]
    train = data.Samples.concat([p[0] for p in parts])
    val = data.Samples.concat([p[1] for p in parts])
    n_test = sum(len(p[2]) for p in parts)
    return Prepared(train, val, data.load_images(train, input_size, cfg.cache_dir),
                    data.load_images(val, input_size, cfg.cache_dir), n_test)


def _gender_targets(s: data.Samples) -> np.ndarray:
    has = ~np.isnan(s.gender)
    return np.stack([np.nan_to_num(s.gender), has], axis=-1).astype(np.float32)


def _inverse_count(keys: list[tuple], power: float) -> np.ndarray:
    """``count(key) ** -power`` for each key."""
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    cell = np.array([index[k] for k in keys])
    return np.bincount(cell)[cell].astype(np.float64) ** -power


def sampling_weights(s: data.Samples, power: float) -> np.ndarray | None:
    """Relative sampling probability of each face: ``count ** -power`` of its (source, gender, decade)
    cell (None for ``power`` 0: every face once per epoch)."""
    if power == 0:
        return None
    return _inverse_count(list(zip(s.source, np.nan_to_num(s.gender, nan=-1), decades(s.age))), power)


def age_weights(s: data.Samples, power: float) -> np.ndarray:
    """Age loss weight of each face: ``count ** -power`` of its decade, scaled to mean 1 over the aged faces."""
    has = ~np.isnan(s.age)
    w = np.zeros(len(s))
    if has.any():
        w[has] = _inverse_count([(d,) for d in decades(s.age[has])], power)
        w[has] /= w[has].mean()
    return w


def _age_targets(s: data.Samples, power: float = 0.0) -> np.ndarray:
    has = ~np.isnan(s.age)
    g = np.where(np.isnan(s.gender), 0.5, s.gender)
    return np.stack([np.nan_to_num(s.age), g, has, age_weights(s, power)], axis=-1).astype(np.float32)


def _fit_stages(train_model, bb, train_ds, val_ds, loss, metrics, cfg, monitor, loss_weights=None) -> list[dict]:
    deadline = time.monotonic() + cfg.time_budget_s if cfg.time_budget_s else None
    history = []
    for stage, frozen, lr, epochs in ((1, bb.stage1_frozen, cfg.lr1, cfg.epochs1),
                                      (2, bb.stage2_frozen, cfg.lr2, cfg.epochs2),
                                      (3, cfg.frozen3, cfg.lr3, cfg.epochs3)):
        if epochs <= 0:
            continue
        backbones.set_frozen(bb, frozen)
        if stage > 1 and deadline is not None and history:
            epochs = _epochs_that_fit(epochs, history[-1], deadline)
        steps = epochs * len(train_ds)
        rate = lr if stage == 1 else keras.optimizers.schedules.CosineDecay(
            lr / 10, steps, alpha=0.01, warmup_target=lr, warmup_steps=max(1, steps // 20))
        train_model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=metrics,
                            loss_weights=loss_weights)  # re-compile after changing `trainable`
        started = time.monotonic()
        timer = TimeBudget(deadline)
        h = train_model.fit(
            train_ds, validation_data=val_ds, epochs=epochs, verbose=2,
            callbacks=[keras.callbacks.EarlyStopping(monitor, mode="min", patience=epochs, restore_best_weights=True),
                       timer],
        )
        history.append({"stage": stage, "frozen_layers": frozen, "learning_rate": lr, "epochs_planned": epochs,
                        "epochs_run": len(h.history.get("loss", [])), "seconds": round(time.monotonic() - started, 1),
                        "last_epoch_seconds": round(timer.last_epoch_seconds, 2),
                        "history": {k: [round(float(v), 5) for v in vs] for k, vs in h.history.items()}})
    return history


def _epochs_that_fit(epochs: int, previous: dict, deadline: float, slowdown: float = 2.0) -> int:
    """Shorten a later stage so that its learning-rate schedule completes before the deadline.

    Its epochs are assumed ``slowdown`` times slower than the previous stage's last epoch (more trainable layers).
    """
    per_epoch = previous["last_epoch_seconds"] * slowdown
    if per_epoch <= 0:
        return epochs
    return max(1, min(epochs, int((deadline - time.monotonic()) / per_epoch)))


def train_rotation(cfg: TrainConfig, prep: Prepared, model: keras.Model | None = None
                   ) -> tuple[keras.Model, list[dict]]:
    """Train the rotation regressor on upright faces rotated by random angles (the labels).

    ``model``: a saved rotation regressor to continue training instead of a new one.
    """
    if model is None:
        bb = backbones.build(cfg.backbone, cfg.input_size, cfg.pretrained)
        model = recipe.build_rotation_model(bb)
    else:
        bb = backbones.from_model(cfg.backbone, model)
    size = bb.input_size
    face = keras.Input((size, size, 3), name="face")
    angle = keras.Input((1,), name="angle")
    x = augment.RotateByAngle()(face, angle)
    x = augment.face_augmenter(cfg.seed, flip=False, tilt=False)(x)
    train_model = keras.Model([face, angle], model(x))

    def batches(images, seed, shuffle):
        fixed = augment.random_angles(np.random.default_rng(seed), len(images), cfg.max_angle)

        def make(idx, rng):
            faces = images[idx].astype(np.float32)
            if shuffle:  # flip before rotating: the label stays the rotation angle
                flip = rng.random(len(idx)) < 0.5
                faces[flip] = faces[flip, :, ::-1]
                angles = augment.random_angles(rng, len(idx), cfg.max_angle)
            else:
                angles = fixed[idx]
            return (faces, angles[:, None]), augment.angle_to_target(angles)
        return ArrayBatches(len(images), cfg.batch_size, make, seed, shuffle)

    history = _fit_stages(train_model, bb, batches(prep.train_images, cfg.seed, True),
                              batches(prep.val_images, cfg.seed + 1, False),
                              "mse", [recipe.angle_error], cfg, "val_angle_error")
    return model, history


def _attribute_batches(images, samples, cfg, seed, shuffle, age_output=None):
    """Gender (and, with ``age_output``, age) batches; training batches are balanced as configured."""
    g, a = _gender_targets(samples), _age_targets(samples, cfg.age_balance if shuffle else 0.0)

    def make(idx, rng):
        y = {"gender": g[idx]}
        if age_output:
            y[age_output] = a[idx]
        return images[idx].astype(np.float32), y
    weights = sampling_weights(samples, cfg.balance) if shuffle else None
    return ArrayBatches(len(images), cfg.batch_size, make, seed, shuffle, weights)


def train_gender(cfg: TrainConfig, prep: Prepared) -> tuple[keras.Model, backbones.Backbone, list[dict]]:
    """Train the gender classifier (samples without a gender label are masked out)."""
    bb = backbones.build(cfg.backbone, cfg.input_size, cfg.pretrained)
    model = recipe.build_gender_model(bb)
    face = keras.Input((bb.input_size,) * 2 + (3,), name="face")
    train_model = keras.Model(face, {"gender": model(augment.face_augmenter(cfg.seed, old_prints=cfg.old_prints)(face))})
    history = _fit_stages(
        train_model, bb,
        _attribute_batches(prep.train_images, prep.train, cfg, cfg.seed, True),
        _attribute_batches(prep.val_images, prep.val, cfg, cfg.seed + 1, False),
        {"gender": recipe.gender_loss}, {"gender": [recipe.GenderAccuracy()]}, cfg, "val_loss")
    return model, bb, history


def train_age(cfg: TrainConfig, prep: Prepared, gender_model: keras.Model | None = None,
              bb: backbones.Backbone | None = None, model: keras.Model | None = None) -> tuple[keras.Model, list[dict]]:
    """Train the gender-conditioned age regressor on the trained gender model (gender keeps training too).

    ``model``: a saved age regressor to continue training instead (``gender_model`` and ``bb`` unused;
    its own age head is kept).
    """
    if model is None:
        model = recipe.build_age_model(gender_model, head=cfg.age_head)
    else:
        bb = backbones.from_model(cfg.backbone, model)
    key = recipe.age_output(model)
    loss = recipe.age_distribution_loss(cfg.age_sigma) if key == "age_distribution" else recipe.age_loss
    face = keras.Input((bb.input_size,) * 2 + (3,), name="face")
    out = model(augment.face_augmenter(cfg.seed, old_prints=cfg.old_prints)(face))
    train_model = keras.Model(face, {"gender": out["gender"], key: out[key]})
    history = _fit_stages(
        train_model, bb,
        _attribute_batches(prep.train_images, prep.train, cfg, cfg.seed, True, key),
        _attribute_batches(prep.val_images, prep.val, cfg, cfg.seed + 1, False, key),
        {"gender": recipe.gender_loss, key: loss},
        {"gender": [recipe.GenderAccuracy()], key: [recipe.AgeMAE()]}, cfg, f"val_{key}_age_mae",
        loss_weights={"gender": 1.0, key: cfg.age_loss_weight})
    return model, history


def _save(model: keras.Model, out: Path, name: str, cfg: TrainConfig, prep: Prepared, history: list[dict],
          seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILES[name])
    if name in MODEL_KEYS:  # the scan's fast CPU runtime file, beside the .keras file
        export_model(model, runtime_path(out / MODEL_FILES[name]), RUNTIME_WEIGHTS[name])
    info = {
        "model": name, "file": MODEL_FILES[name], "config": asdict(cfg), "backend": keras.backend.backend(),
        "keras": keras.__version__, "hardware": _hardware(), "train_samples": len(prep.train),
        "val_samples": len(prep.val), "test_samples_held_out": prep.n_test, "seconds": round(seconds, 1),
        "stages": history,
    }
    (out / f"{name}.train.json").write_text(json.dumps(info, indent=2))


def _hardware() -> str:
    devices = []
    try:
        if keras.backend.backend() == "jax":
            import jax
            devices = [d.device_kind for d in jax.devices()]
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            devices = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # noqa: BLE001 - hardware description is informative only
        devices = []
    return f"{platform.machine()} {platform.processor() or ''} ".strip() + (f"; {', '.join(devices)}" if devices else "; CPU")


def run(what: str, cfg: TrainConfig) -> dict[str, Path]:
    """Train ``rotation``, ``gender``, ``age`` (trains gender first unless ``gender.keras`` exists in
    ``cfg.out``) or ``all``; save each model and its ``.train.json`` in ``cfg.out``; return the files."""
    import phototag.layers  # noqa: F401 - custom layers of saved models (for --resume)

    keras.utils.set_random_seed(cfg.seed)
    resumed = None
    if cfg.resume:
        if what not in ("rotation", "age"):
            raise ValueError("resume continues one model: rotation or age")
        resumed = keras.saving.load_model(cfg.resume, compile=False)
        cfg = replace(cfg, backbone=backbones.saved_name(resumed))  # the saved model's, whatever --backbone says
    size = resumed.input_shape[1] if resumed else cfg.input_size or backbones.DEFAULT_SIZE[cfg.backbone]
    prep = prepare(cfg, size)
    out, saved = Path(cfg.out), {}
    if resumed:
        t = time.monotonic()
        model, hist = (train_rotation(cfg, prep, model=resumed) if what == "rotation"
                       else train_age(cfg, prep, model=resumed))
        _save(model, out, what, cfg, prep, hist, time.monotonic() - t)
        return {what: out / MODEL_FILES[what]}
    if what in ("rotation", "all"):
        t = time.monotonic()
        model, hist = train_rotation(cfg, prep)
        _save(model, out, "rotation", cfg, prep, hist, time.monotonic() - t)
        saved["rotation"] = out / MODEL_FILES["rotation"]
    if what in ("gender", "age", "all"):
        t = time.monotonic()
        gender_file = out / MODEL_FILES["gender"]
        if what == "age" and gender_file.exists():
            gender_model = keras.saving.load_model(gender_file)
            bb = backbones.from_model(cfg.backbone, gender_model)
        else:
            gender_model, bb, hist = train_gender(cfg, prep)
            _save(gender_model, out, "gender", cfg, prep, hist, time.monotonic() - t)
            saved["gender"] = gender_file
        if what in ("age", "all"):
            t = time.monotonic()
            model, hist = train_age(cfg, prep, gender_model, bb)
            _save(model, out, "age", cfg, prep, hist, time.monotonic() - t)
            saved["age"] = out / MODEL_FILES["age"]
    if all((out / MODEL_FILES[k]).exists() for k in MODEL_KEYS):
        from phototag.models import write_manifest
        write_manifest(out, f"{cfg.backbone}-{size}")
    return saved


def summary(out: str | Path, names) -> list[dict]:
    """One line per trained model from its ``.train.json``: epochs, time and the best validation metrics."""
    rows = []
    for name in names:
        info = json.loads((Path(out) / f"{name}.train.json").read_text())
        last = info["stages"][-1]["history"] if info["stages"] else {}
        best = {k: min(v) if "accuracy" not in k else max(v) for k, v in last.items() if k.startswith("val_")}
        rows.append({"model": name, "epochs": [s["epochs_run"] for s in info["stages"]],
                     "seconds": info["seconds"], "best_validation": best})
    return rows

