"""Where and how the models run: LiteRT (TFLite, XNNPACK) on the CPU, Keras/TensorFlow on a GPU.

Each model is wrapped in a runner with one call, ``runner(batch) -> array or {output name: array}``,
on float32 batches of RGB faces (0-255). ``engine="auto"`` picks Keras when TensorFlow sees a CUDA
GPU and LiteRT otherwise; on a machine without an NVIDIA driver TensorFlow is never imported.
The LiteRT files are exported from the Keras models (:mod:`phototag.export`) and sit beside them.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from . import extras

ENGINES = ("auto", "litert", "keras")
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


@contextlib.contextmanager
def native_output_hidden(hide: bool = True) -> Iterator[None]:
    """Send what C/C++ libraries print on stderr (TensorFlow's cuInit and oneDNN lines, LiteRT's
    "Created delegate") to /dev/null for the duration, along with Python warnings."""
    if not hide:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def start_keras_quietly() -> None:
    """Import Keras and start its backend with the native start-up lines (TensorFlow's oneDNN and
    CUDA probing) hidden; what Keras prints afterwards (progress, errors) is not touched."""
    with native_output_hidden():
        import keras

        keras.ops.zeros(1)


def tensorflow_gpus() -> list[str]:
    """Names of the GPUs TensorFlow sees; imports TensorFlow only when an NVIDIA driver is present
    and the ``gpu`` extra is installed (without it: none)."""
    if not NVIDIA_DRIVER.exists() or extras.missing("gpu"):
        return []
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]


def litert_available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def _check_size(batch: np.ndarray, size: int) -> None:
    """Refuse faces of another size (LiteRT would silently run the model at that size)."""
    if batch.shape[1:3] != (size, size):
        raise ValueError(f"the model takes {size}×{size} faces, not {batch.shape[1]}×{batch.shape[2]}")


class KerasRunner:
    """A Keras model (TensorFlow, GPU when there is one)."""

    fixed_batch = True  # every new batch size traces the graph again

    def __init__(self, model):
        self.model = model
        self.input_size = int(model.input_shape[1])

    def __call__(self, batch: np.ndarray):
        _check_size(batch, self.input_size)
        out = self.model.predict_on_batch(batch)
        return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else np.asarray(out)


class LiteRunner:
    """A LiteRT (TFLite) model on the CPU through its serving signature (XNNPACK delegate)."""

    fixed_batch = False  # a new batch size only re-allocates the tensors

    def __init__(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
        self.runner = self.interpreter.get_signature_runner()
        (self.input_name, details), = self.runner.get_input_details().items()
        self.input_size = int(details["shape_signature"][1])
        outputs = list(self.runner.get_output_details())
        self.single_output = outputs == ["output_0"]
        self(np.zeros((1, self.input_size, self.input_size, 3), np.float32))  # applies the delegate now

    def __call__(self, batch: np.ndarray):
        _check_size(batch, self.input_size)
        out = self.runner(**{self.input_name: np.ascontiguousarray(batch, np.float32)})
        return out["output_0"] if self.single_output else out
