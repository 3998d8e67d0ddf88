"""Pretrained backbones for transfer learning, with their preprocessing and freezing plan.

Each backbone takes float RGB pixels in 0..255 (the preprocessing is a layer of the model, so a
saved model needs nothing but the pixels) and returns a feature map.

* ``mobilenet_v2`` (default, 128 px): weights from the torchvision ``.npz`` (``--pretrained``,
  loaded as its README prescribes: every BatchNorm epsilon 1e-5, torchvision mean/std
  preprocessing), from the backbone of a model saved by ``phototag train`` (a ``.keras`` file,
  e.g. the shipped ``models/age.keras``; any input size) or from the Keras download when online
  (``pretrained="imagenet"``).
* ``xception`` (the original recipe, 299 px): Keras download when online or a local ``.h5``/
  ``.weights.h5`` file; random initialisation only with a loud warning.
* ``dlib_resnet`` (150 px, face-pretrained): dlib's face-recognition ResNet
  (:mod:`phototag.training.dlib_resnet`) up to its last residual level, weights from dlib's ``.dat`` file
  (``--pretrained``, default the one of the installed face-recognition-models package) or from a
  model saved by ``phototag train`` on it.

``stage1_frozen`` / ``stage2_frozen`` are how many backbone layers stay frozen in the two
training stages. For Xception they are the recipe's: the first 115 layers, then half the
network. For MobileNetV2 the same proportions of its 154 layers are used. For dlib_resnet stage 1
trains only its last residual level (level 0, 21 % of its weights: all but 8 of its 107 layers
frozen): Xception's 115 end at a block boundary (its exit flow trains), while the same share of
dlib's layers would split a level-1 block; stage 2 freezes half the layers, like the others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

TORCH_MEAN = np.array([0.485, 0.456, 0.406]) * 255.0
TORCH_STD = np.array([0.229, 0.224, 0.225]) * 255.0


@dataclass
class Backbone:
    """A feature extractor with its input size, preprocessing layer and freezing plan."""

    name: str
    model: keras.Model
    input_size: int
    preprocess: keras.layers.Layer
    stage1_frozen: int
    stage2_frozen: int


def _torch_preprocess() -> keras.layers.Layer:
    return keras.layers.Normalization(mean=TORCH_MEAN.tolist(), variance=(TORCH_STD**2).tolist(), name="preprocess")


def _keras_preprocess() -> keras.layers.Layer:
    return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")


def load_npz_weights(model: keras.Model, path: str | Path) -> None:
    """Load torchvision-converted weights keyed by Keras variable path (the shared weights' README recipe)."""
    weights = np.load(path)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.epsilon = 1e-5
    missing = [v.path for v in model.weights if v.path not in weights]
    if missing:
        raise ValueError(f"{path}: no weights for {len(missing)} variables, e.g. {missing[:3]}")
    for v in model.weights:
        v.assign(weights[v.path])


def load_saved_backbone(model: keras.Model, path: str | Path) -> None:
    """Copy the backbone weights of a model saved by ``phototag train`` (built on torchvision's or dlib's
    weights: a Normalization preprocessing layer)."""
    import phototag.layers  # noqa: F401 - custom layers of the saved models

    saved = keras.saving.load_model(path, compile=False)
    inner = next((layer for layer in saved.layers if isinstance(layer, keras.Model)), None)
    weights = {v.path: v for v in inner.weights} if inner is not None else {}
    missing = [v.path for v in model.weights if v.path not in weights]
    preprocess = [layer for layer in saved.layers if layer.name == "preprocess"]
    if missing or not preprocess or not isinstance(preprocess[0], keras.layers.Normalization):
        raise ValueError(f"{path}: not a {model.name} model saved by phototag train")
    for layer, source in zip(model.layers, inner.layers):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.epsilon = source.epsilon
    for v in model.weights:
        v.assign(weights[v.path])


def frozen_plan(name: str, model: keras.Model) -> tuple[int, int]:
    """Layers frozen in stage 1 and stage 2 (see the module docstring), then half of them."""
    n_layers = len(model.layers)
    if name == "xception":
        stage1 = 115
    elif name == "dlib_resnet":
        stage1 = next(i for i, layer in enumerate(model.layers) if layer.name.startswith("level0_"))
    else:
        stage1 = round(n_layers * 115 / 132)
    return stage1, n_layers // 2


def saved_name(model: keras.Model) -> str:
    """Which backbone (a key of :data:`BACKBONES`) a model built by :mod:`phototag.training.recipe`
    holds, by the name of its inner model (``dlib_resnet``, ``mobilenetv2_1.00_128``, ``xception``)."""
    inner = next(layer for layer in model.layers if isinstance(layer, keras.Model)).name.replace("_", "")
    name = next((key for key in BACKBONES if inner.startswith(key.replace("_", ""))), None)
    if name is None:
        raise ValueError(f"not a backbone phototag trains: {inner}")
    return name


def from_model(name: str, model: keras.Model) -> Backbone:
    """The backbone inside a saved model built by :mod:`phototag.training.recipe` (to continue training it)."""
    inner = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    return Backbone(name, inner, model.input_shape[1], model.get_layer("preprocess"), *frozen_plan(name, inner))


def mobilenet_v2(input_size: int = 128, pretrained: str | Path | None = None, include_top: bool = False) -> Backbone:
    """MobileNetV2 (alpha 1.0). ``pretrained``: an ``.npz`` path, a saved ``.keras`` model, ``"imagenet"``
    (download) or None (random)."""
    shape = (input_size, input_size, 3)
    if pretrained == "imagenet":
        model = keras.applications.MobileNetV2(weights="imagenet", include_top=include_top, input_shape=shape)
        preprocess = _keras_preprocess()
    else:
        model = keras.applications.MobileNetV2(weights=None, include_top=include_top, input_shape=shape)
        if pretrained is None:
            warnings.warn("mobilenet_v2: random initialisation (no --pretrained weights given)", stacklevel=2)
        elif str(pretrained).endswith(".keras"):
            load_saved_backbone(model, pretrained)
        else:
            load_npz_weights(model, pretrained)
        preprocess = _torch_preprocess()
    return Backbone("mobilenet_v2", model, input_size, preprocess, *frozen_plan("mobilenet_v2", model))


def xception(input_size: int = 299, pretrained: str | Path | None = "imagenet") -> Backbone:
    """Xception as in the original recipe. ``pretrained``: ``"imagenet"`` (download), a weights file, or None."""
    shape = (input_size, input_size, 3)
    if pretrained == "imagenet":
        model = keras.applications.Xception(weights="imagenet", include_top=False, input_shape=shape)
    else:
        model = keras.applications.Xception(weights=None, include_top=False, input_shape=shape)
        if pretrained is None:
            warnings.warn(
                "xception: RANDOM INITIALISATION - no ImageNet weights; the recipe's transfer learning "
                "will not work and accuracy will be poor. Pass --pretrained imagenet (online) or a weights file.",
                stacklevel=2,
            )
        else:
            model.load_weights(str(pretrained))
    return Backbone("xception", model, input_size, _keras_preprocess(), *frozen_plan("xception", model))


def dlib_resnet(input_size: int = 150, pretrained: str | Path | None = None) -> Backbone:
    """dlib's face-recognition ResNet without its pooling and descriptor. ``pretrained``: dlib's ``.dat``
    file (default: the installed face-recognition-models package's) or a saved ``.keras`` model."""
    from . import dlib_resnet as dlib

    model = dlib.build(input_size)
    if str(pretrained).endswith(".keras"):
        load_saved_backbone(model, pretrained)
    else:
        dlib.load_weights(model, dlib.read_dat(pretrained or dlib.installed_weights()))
    return Backbone("dlib_resnet", model, input_size, dlib.preprocess(), *frozen_plan("dlib_resnet", model))


BACKBONES = {"mobilenet_v2": mobilenet_v2, "xception": xception, "dlib_resnet": dlib_resnet}
DEFAULT_SIZE = {"mobilenet_v2": 128, "xception": 299, "dlib_resnet": 150}


def build(name: str, input_size: int | None = None, pretrained: str | Path | None = None) -> Backbone:
    """Build a backbone by name."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return BACKBONES[name](input_size or DEFAULT_SIZE[name], pretrained)


def set_frozen(backbone: Backbone, frozen: int) -> None:
    """Freeze the first ``frozen`` layers of the backbone and unfreeze the rest.

    BatchNorm layers stay frozen everywhere: the backbone is called with ``training=False`` so they
    run in inference mode, and their scale/offset are kept (keras-io transfer-learning guide).
    Re-compile the model after calling this.
    """
    backbone.model.trainable = True
    for i, layer in enumerate(backbone.model.layers):
        layer.trainable = i >= frozen and not isinstance(layer, keras.layers.BatchNormalization)
