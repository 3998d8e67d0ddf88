"""Loading the trained models: the shipped ones (inside the installed package) or any model folder.

A model folder holds ``manifest.json`` and the Keras files it names::

    {"name": "...", "models": {"rotation": {"file": "rotation.keras"}, "age": {"file": "age.keras"}}, ...}

``rotation`` is the rotation regressor, ``age`` the gender-conditioned age regressor (its outputs
include the gender probability); an optional ``identity`` entry names the face-recognition network
that gives each face an identity embedding (:mod:`phototag.identity`; not in the model version).
An optional ``gender_threshold`` (default 0.5) is the P(female) from which a face is tagged
female, and an optional ``gender_threshold_by_age`` (``[[age, threshold], ...]``, ascending) the
threshold for faces estimated at least that old; both are chosen for these model files. The
model version stored with every scanned photo is the name plus a hash of the model files (and of
the thresholds), so retrained models are told apart. What each model's inputs and outputs mean is
its class's business: :class:`RotationModel`, :class:`AttributeModel`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from . import identity
from .extras import MissingExtra, require

MANIFEST = "manifest.json"
EVALUATION = "evaluation.json"  # the models' numbers on data they never saw (phototag eval)
MODEL_KEYS = ("rotation", "age")  # the models a scan loads
MODEL_FILES = {"rotation": "rotation.keras", "gender": "gender.keras", "age": "age.keras"}  # as trained
ENV_MODELS = "PHOTOTAG_MODELS"
DEFAULT_GENDER_THRESHOLD = 0.5


class ModelError(RuntimeError):
    """The models cannot be loaded."""


GENDER_RULE = ("gender_threshold", "gender_threshold_by_age")  # the manifest's keys of the rule below


def gender_rule(manifest: dict) -> dict:
    """The manifest's gender thresholds alone (what :func:`gender_threshold_at` reads)."""
    return {key: manifest[key] for key in GENDER_RULE if key in manifest}


def gender_threshold_at(manifest: dict, age: float | None = None) -> float:
    """The P(female) from which a face is tagged female: the manifest's ``gender_threshold``, or for a
    face of this estimated ``age`` that of the last ``gender_threshold_by_age`` pair whose age it
    reaches (the chain's rule, and the people corrections')."""
    threshold = float(manifest.get("gender_threshold", DEFAULT_GENDER_THRESHOLD))
    if age is not None:
        for at, value in manifest.get("gender_threshold_by_age", []):
            if age >= at:
                threshold = float(value)
    return threshold


@dataclass
class ModelSet:
    """The rotation and attribute (gender + age) models, each a runner of :mod:`phototag.runtime`."""

    rotation: "runtime.KerasRunner | runtime.LiteRunner"  # noqa: F821
    attributes: "runtime.KerasRunner | runtime.LiteRunner"  # noqa: F821
    version: str
    directory: Path
    manifest: dict
    engine: str = "keras"  # "keras" or "litert"
    device: str = "CPU"  # "CPU" or "GPU: <names>"
    identity: "runtime.KerasRunner | runtime.LiteRunner | None" = None  # noqa: F821 - see phototag.identity

    @property
    def input_size(self) -> int:
        return self.attributes.input_size

    @property
    def rotation_input_size(self) -> int:
        return self.rotation.input_size

    @property
    def gender_threshold(self) -> float:
        """A face is tagged female when P(female) is at least this (the manifest's ``gender_threshold``),
        unless its estimated age has a threshold of its own (:meth:`gender_thresholds`)."""
        return gender_threshold_at(self.manifest)

    def gender_thresholds(self, ages: np.ndarray, base: float | None = None) -> np.ndarray:
        """Per face of these estimated ages, the P(female) from which it is tagged female
        (:func:`gender_threshold_at`; ``base``: another ``gender_threshold``)."""
        manifest = self.manifest if base is None else {**self.manifest, "gender_threshold": base}
        return np.array([gender_threshold_at(manifest, age) for age in np.asarray(ages, float).tolist()], float)

    def describe(self) -> str:
        return f"{'LiteRT' if self.engine == 'litert' else 'Keras/TensorFlow'} on {self.device}"


def run_batched(runner, inputs: np.ndarray, batch_size: int) -> np.ndarray | dict[str, np.ndarray]:
    """Run a model (a runner of :mod:`phototag.runtime`) on uint8 images in batches; for Keras padded
    to the batch size so the graph is traced once (LiteRT re-sizes cheaply and is not padded)."""
    outputs = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size].astype(np.float32)
        n = len(chunk)
        if n < batch_size and runner.fixed_batch:
            chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]), np.float32)])
        out = runner(chunk)
        outputs.append({k: v[:n] for k, v in out.items()} if isinstance(out, dict) else out[:n])
    if isinstance(outputs[0], dict):
        return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    return np.concatenate(outputs)


class _FaceModel:
    """A model run on square face images of ``input_size`` pixels, ``batch_size`` at a time."""

    def __init__(self, runner, batch_size: int = 64, flip_average: bool = True):
        self.runner = runner
        self.batch_size = batch_size
        self.flip_average = flip_average

    @property
    def input_size(self) -> int:
        return self.runner.input_size


class RotationModel(_FaceModel):
    """The rotation regressor: face crops -> their angles in degrees (counter-clockwise as displayed).

    The network predicts (cos, sin) of the angle. ``flip_average``: also run it on the mirror
    images, whose angle is the negative, and average the two estimates (a call may say otherwise)."""

    def __call__(self, crops: np.ndarray, flip_average: bool | None = None) -> np.ndarray:
        return self.read(crops, flip_average)[0]

    def read(self, crops: np.ndarray, flip_average: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(angles, strengths, spreads): the strength is the length of the (cos, sin) output, shorter on
        faces unlike the training faces (e.g. upside down); both mirror-averaged as ``flip_average``
        says. The spread is how far (degrees) the face's and its mirror image's readings disagree,
        NaN without mirror averaging."""
        angles, strength = self._read(crops)
        if not (self.flip_average if flip_average is None else flip_average):
            return angles, strength, np.full(len(crops), np.nan)
        mirrored, mirrored_strength = self._read(crops[:, :, ::-1])
        spread = np.abs(wrapped_angles(angles + mirrored))
        return (angles - mirrored) / 2, (strength + mirrored_strength) / 2, spread

    def _read(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = run_batched(self.runner, crops, self.batch_size)
        return target_angles(target), np.linalg.norm(target, axis=1)


def wrapped_angles(angles: np.ndarray) -> np.ndarray:
    """Angles (degrees) brought into (-180, 180]."""
    return 180 - (180 - angles) % 360


def target_angles(target: np.ndarray) -> np.ndarray:
    """The rotation network's (cos, sin) outputs as degrees in (-180, 180] (the inverse of
    ``training.augment.angle_to_target``)."""
    return np.degrees(np.arctan2(target[..., 1], target[..., 0]))


class AttributeModel(_FaceModel):
    """The gender/age model: upright faces -> (probability of female, age in years), its outputs
    ``gender`` and ``age``. ``flip_average``: averaged with the mirror images' predictions."""

    def __call__(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p_female, age = self._predict(faces)
        if self.flip_average:
            mirrored_p, mirrored_age = self._predict(faces[:, :, ::-1])
            p_female, age = (p_female + mirrored_p) / 2, (age + mirrored_age) / 2
        return p_female, age

    def _predict(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = run_batched(self.runner, faces, self.batch_size)
        return out["gender"][:, 0], out["age"][:, 0]


class IdentityModel(_FaceModel):
    """The identity network on faces (chips or de-rotated crops, 150 px): (n, 150, 150, 3) uint8 ->
    (n, 128) float32 embeddings.
    ``flip_average``: the mean of the face's and its mirror image's embeddings (twice the time)."""

    def __init__(self, runner, batch_size: int = 64, flip_average: bool = False):
        super().__init__(runner, batch_size, flip_average)

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        out = run_batched(self.runner, chips, self.batch_size)
        if self.flip_average:
            out = (out + run_batched(self.runner, chips[:, :, ::-1], self.batch_size)) / 2
        return np.asarray(out, np.float32)


def load_identity_runner(model_dir: Path, manifest: dict, engine: str):
    """The identity model of a model folder for ``engine`` (``litert`` or ``keras``), or None where
    the manifest lists none. Keras: dlib's network rebuilt from the installed face-recognition-models
    when its file is the one the manifest names (``weights_sha256``); otherwise, and for LiteRT,
    the exported file on the CPU."""
    from . import runtime

    entry = manifest.get("models", {}).get(identity.KEY)
    if entry is None:
        return None
    path = Path(model_dir) / entry["file"]
    if engine == "keras":
        runner = _keras_runner(entry)
        if runner is not None:
            return runner
    if not path.exists():
        raise ModelError(f"{path}: model file missing")
    try:
        return runtime.LiteRunner(path)
    except Exception as exc:  # noqa: BLE001 - any loading problem becomes one clear error
        raise ModelError(f"{path}: cannot load model ({exc})") from exc


def _keras_runner(entry: dict):
    """dlib's network in Keras from the installed weights, or None when they are absent or another file."""
    from . import runtime

    try:
        from .training import dlib_resnet

        weights = dlib_resnet.installed_weights()
    except Exception:  # noqa: BLE001 - no face-recognition-models (or no Keras): the LiteRT file serves
        return None
    if entry.get("weights_sha256") and identity.sha256(weights) != entry["weights_sha256"]:
        return None
    return runtime.KerasRunner(dlib_resnet.descriptor_model(weights, identity.CHIP_SIZE))


def package_model_dir() -> Path:
    """The models installed with the package (or ``models/`` in a checkout)."""
    installed = Path(str(resources.files("phototag"))) / "shipped_models"
    if (installed / MANIFEST).exists():
        return installed
    return Path(__file__).resolve().parents[1] / "models"


def shipped_model_dir() -> Path:
    """``$PHOTOTAG_MODELS``, else the models installed with the package."""
    if os.environ.get(ENV_MODELS):
        return Path(os.environ[ENV_MODELS])
    return package_model_dir()


def age_errors(model_dir: str | Path) -> list[tuple[float, float]]:
    """The age model's mean absolute error (years) per decade of true age, each decade at its middle
    (5, 15... 95), as measured on faces it never saw: ``evaluation.json``'s UTKFace test split through
    detection (``phototag eval``; no FG-NET or LAG image in it)."""
    evaluation = json.loads((Path(model_dir) / EVALUATION).read_text())
    by_decade = evaluation["utkface_test_detection"]["age"]["by_decade"]
    return sorted((float(decade.rstrip("+").split("-")[0]) + 5.0, float(v["mae"])) for decade, v in by_decade.items())


def read_manifest(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise ModelError(f"{path}: no model manifest (train models with `phototag train`)")
    return json.loads(path.read_text())


def model_version(model_dir: str | Path, manifest: dict | None = None) -> str:
    """``name-hash``: the manifest's name and the first 10 hex digits of the SHA-256 of the model files
    (and of the gender thresholds, where the manifest sets them: they change the tags too)."""
    manifest = manifest or read_manifest(model_dir)
    digest = hashlib.sha256()
    for key in MODEL_KEYS:
        digest.update((Path(model_dir) / manifest["models"][key]["file"]).read_bytes())
    if "gender_threshold" in manifest:
        digest.update(f"gender_threshold={float(manifest['gender_threshold'])!r}".encode())
    if "gender_threshold_by_age" in manifest:
        pairs = [(float(a), float(t)) for a, t in manifest["gender_threshold_by_age"]]
        digest.update(f"gender_threshold_by_age={pairs!r}".encode())
    return f"{manifest.get('name', 'phototag')}-{digest.hexdigest()[:10]}"


def write_manifest(model_dir: str | Path, name: str, extra: dict | None = None) -> dict:
    """Write a manifest naming the trained files of the ``MODEL_KEYS`` in ``model_dir`` (keeps other keys,
    and other models such as ``identity``, but the gender thresholds: they were chosen for the models
    before)."""
    path = Path(model_dir) / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest.pop("gender_threshold", None)
    manifest.pop("gender_threshold_by_age", None)
    models = manifest.get("models", {}) | {key: {"file": MODEL_FILES[key]} for key in MODEL_KEYS}
    manifest |= {"name": name, "models": models}
    manifest |= extra or {}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def runtime_path(model_file: Path) -> Path:
    """The LiteRT file exported beside a Keras model file (``rotation.keras`` -> ``rotation.tflite``)."""
    return model_file.with_suffix(".tflite")


def load_models(model_dir: str | Path | None = None, engine: str = "auto", verbose: bool = False) -> ModelSet:
    """Load the models of ``model_dir`` (default: the shipped ones) for inference (no network needed).

    ``engine``: ``litert`` (the exported ``.tflite`` files, CPU), ``keras`` (TensorFlow, GPU when
    there is one) or ``auto``: Keras on a GPU, else LiteRT when the ``.tflite`` files exist.
    TensorFlow's and LiteRT's start-up messages are hidden unless ``verbose``.
    """
    from . import runtime

    model_dir = Path(model_dir) if model_dir is not None else shipped_model_dir()
    manifest = read_manifest(model_dir)
    paths = {key: model_dir / manifest["models"][key]["file"] for key in MODEL_KEYS}
    for path in paths.values():
        if not path.exists():
            raise ModelError(f"{path}: model file missing")
    if engine not in runtime.ENGINES:
        raise ModelError(f"unknown engine {engine!r} (choose from {', '.join(runtime.ENGINES)})")
    with runtime.native_output_hidden(not verbose):
        gpus = runtime.tensorflow_gpus() if engine != "litert" else []
        if engine == "auto":
            have_files = all(runtime_path(p).exists() for p in paths.values())
            engine = "litert" if not gpus and have_files and runtime.litert_available() else "keras"
        loaded = {key: _load_runner(path, engine) for key, path in paths.items()}
        identity = load_identity_runner(model_dir, manifest, engine)  # None where the manifest lists none
    device = "GPU: " + ", ".join(gpus) if gpus and engine == "keras" else "CPU"
    return ModelSet(loaded["rotation"], loaded["age"], model_version(model_dir, manifest), model_dir, manifest,
                    engine=engine, device=device, identity=identity)



def _load_runner(path: Path, engine: str):
    from . import runtime

    try:
        if engine == "litert":
            lite = runtime_path(path)
            if not lite.exists():
                raise ModelError(f"{lite}: no LiteRT file (write it with `phototag export`)")
            return runtime.LiteRunner(lite)
        require("gpu", "the Keras engine")
        import keras

        from . import layers  # noqa: F401 - registers the custom layers the saved models use

        return runtime.KerasRunner(keras.saving.load_model(path, compile=False, safe_mode=True))
    except (ModelError, MissingExtra):
        raise
    except Exception as exc:  # noqa: BLE001 - any loading problem becomes one clear error
        raise ModelError(f"{path}: cannot load model ({exc})") from exc
