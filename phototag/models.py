"""Loading the trained models: the shipped ones (inside the installed package) or any model folder.

A model folder holds ``manifest.json`` and the Keras files it names::

    {"name": "...", "models": {"rotation": {"file": "rotation.keras"}, "age": {"file": "age.keras"}}, ...}

``rotation`` is the rotation regressor, ``age`` the gender-conditioned age regressor (its outputs
include the gender probability). The model version stored with every scanned photo is the name
plus a hash of the model files, so retrained models are told apart.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .extras import MissingExtra, require

MANIFEST = "manifest.json"
MODEL_KEYS = ("rotation", "age")
ENV_MODELS = "PHOTOTAG_MODELS"


class ModelError(RuntimeError):
    """The models cannot be loaded."""


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

    @property
    def input_size(self) -> int:
        return self.attributes.input_size

    @property
    def rotation_input_size(self) -> int:
        return self.rotation.input_size

    def describe(self) -> str:
        return f"{'LiteRT' if self.engine == 'litert' else 'Keras/TensorFlow'} on {self.device}"


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


def read_manifest(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise ModelError(f"{path}: no model manifest (train models with `phototag train`)")
    return json.loads(path.read_text())


def model_version(model_dir: str | Path, manifest: dict | None = None) -> str:
    """``name-hash``: the manifest's name and the first 10 hex digits of the model files' SHA-256."""
    manifest = manifest or read_manifest(model_dir)
    digest = hashlib.sha256()
    for key in MODEL_KEYS:
        digest.update((Path(model_dir) / manifest["models"][key]["file"]).read_bytes())
    return f"{manifest.get('name', 'phototag')}-{digest.hexdigest()[:10]}"


def write_manifest(model_dir: str | Path, name: str, extra: dict | None = None) -> dict:
    """Write a manifest naming ``rotation.keras`` and ``age.keras`` in ``model_dir`` (keeps other keys)."""
    path = Path(model_dir) / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest |= {"name": name, "models": {"rotation": {"file": "rotation.keras"}, "age": {"file": "age.keras"}}}
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
    device = "GPU: " + ", ".join(gpus) if gpus and engine == "keras" else "CPU"
    return ModelSet(loaded["rotation"], loaded["age"], model_version(model_dir, manifest), model_dir, manifest,
                    engine=engine, device=device)


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
