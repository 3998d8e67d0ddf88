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

MANIFEST = "manifest.json"
ENV_MODELS = "PHOTOTAG_MODELS"


class ModelError(RuntimeError):
    """The models cannot be loaded."""


@dataclass
class ModelSet:
    """The loaded rotation and attribute (gender + age) models."""

    rotation: "keras.Model"  # noqa: F821 - keras is imported lazily
    attributes: "keras.Model"  # noqa: F821
    version: str
    directory: Path
    manifest: dict

    @property
    def input_size(self) -> int:
        return int(self.attributes.input_shape[1])

    @property
    def rotation_input_size(self) -> int:
        return int(self.rotation.input_shape[1])


def shipped_model_dir() -> Path:
    """``$PHOTOTAG_MODELS``, else the models installed with the package (or ``models/`` in a checkout)."""
    if os.environ.get(ENV_MODELS):
        return Path(os.environ[ENV_MODELS])
    installed = Path(str(resources.files("phototag"))) / "shipped_models"
    if (installed / MANIFEST).exists():
        return installed
    return Path(__file__).resolve().parents[1] / "models"


def read_manifest(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise ModelError(f"{path}: no model manifest (train models with `phototag train`)")
    return json.loads(path.read_text())


def model_version(model_dir: str | Path, manifest: dict | None = None) -> str:
    """``name-hash``: the manifest's name and the first 10 hex digits of the model files' SHA-256."""
    manifest = manifest or read_manifest(model_dir)
    digest = hashlib.sha256()
    for key in ("rotation", "age"):
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


def load_models(model_dir: str | Path | None = None) -> ModelSet:
    """Load the models of ``model_dir`` (default: the shipped ones) for inference (no network needed)."""
    import keras

    from . import layers  # noqa: F401 - registers the custom layers the saved models use

    model_dir = Path(model_dir) if model_dir is not None else shipped_model_dir()
    manifest = read_manifest(model_dir)
    loaded = {}
    for key in ("rotation", "age"):
        path = model_dir / manifest["models"][key]["file"]
        if not path.exists():
            raise ModelError(f"{path}: model file missing")
        try:
            loaded[key] = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - any loading problem becomes one clear error
            raise ModelError(f"{path}: cannot load model ({exc})") from exc
    return ModelSet(loaded["rotation"], loaded["age"], model_version(model_dir, manifest), model_dir, manifest)
