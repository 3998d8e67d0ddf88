"""The three models of the recipe, their losses and metrics.

1. ``rotation``: backbone → pooled features → (cos, sin) of the in-plane angle (degrees,
   counter-clockwise as displayed); no wrap-around discontinuity.
2. ``gender``: backbone → pooled features → probability of female.
3. ``age``: built on a trained gender model (same backbone pass): two age branches, female and
   male, mixed by the predicted probability of female (:class:`phototag.layers.GenderMix`).
   Its outputs are ``gender``, ``age_branches`` and ``age``; it is the model the scan runs.

Labels passed to the losses carry masks, so data sets without an age (CelebA) or without a gender
(a CSV) can be mixed: ``gender`` targets are (label, has_label), ``age_branches`` targets are
(age, gender or 0.5 if unknown, has_age).
"""

from __future__ import annotations

import keras
from keras import ops

from phototag.layers import GenderMix

from .backbones import Backbone

AGE_OFFSET, AGE_SCALE = 33.0, 20.0  # age branches start near the data's mean age


def _features(backbone: Backbone, name: str) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    size = backbone.input_size
    face = keras.Input((size, size, 3), name="face")
    x = backbone.preprocess(face)
    x = backbone.model(x, training=False)  # BatchNorm in inference mode, frozen or not
    x = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    return face, x


def build_rotation_model(backbone: Backbone, dropout: float = 0.2) -> keras.Model:
    """Rotation regressor: face pixels (0..255) → (cos, sin) of its rotation angle."""
    face, x = _features(backbone, "rotation")
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(256, activation="relu", name="rotation_fc")(x)
    out = keras.layers.Dense(2, name="rotation")(x)
    return keras.Model(face, out, name="rotation_regressor")


def build_gender_model(backbone: Backbone, dropout: float = 0.3) -> keras.Model:
    """Gender classifier: face pixels (0..255) → probability of female."""
    face, x = _features(backbone, "attributes")
    x = keras.layers.Dropout(dropout, name="attributes_dropout")(x)
    g = keras.layers.Dense(256, activation="relu", name="gender_fc")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="gender")(g)
    return keras.Model(face, out, name="gender_classifier")


def build_age_model(gender_model: keras.Model, dropout: float = 0.3) -> keras.Model:
    """Age regressor on top of a gender model, with a female and a male branch mixed by gender."""
    face = gender_model.input
    pooled = gender_model.get_layer("attributes_dropout").output
    p_female = gender_model.output
    a = keras.layers.Dense(256, activation="relu", name="age_fc")(pooled)
    a = keras.layers.Dropout(dropout, name="age_dropout")(a)
    a = keras.layers.Dense(2, name="age_raw")(a)
    branches = keras.layers.Rescaling(AGE_SCALE, offset=AGE_OFFSET, name="age_branches")(a)
    age = GenderMix(name="age")(p_female, branches)
    return keras.Model(face, {"gender": p_female, "age_branches": branches, "age": age}, name="age_regressor")


def _masked_mean(values, mask):
    """Per-sample values rescaled so that Keras' batch mean equals the mean over masked samples."""
    n = ops.cast(ops.shape(mask)[0], "float32")
    return values * mask * n / ops.maximum(ops.sum(mask), 1.0)


def gender_loss(y_true, y_pred):
    """Binary cross-entropy over the samples that have a gender label; y_true = (label, has_label)."""
    label, has = y_true[:, 0], y_true[:, 1]
    p = ops.clip(y_pred[:, 0], 1e-6, 1 - 1e-6)
    return _masked_mean(-(label * ops.log(p) + (1 - label) * ops.log(1 - p)), has)


def gender_accuracy(y_true, y_pred):
    label, has = y_true[:, 0], y_true[:, 1]
    hit = ops.cast(ops.equal(ops.cast(y_pred[:, 0] > 0.5, "float32"), label), "float32")
    return _masked_mean(hit, has)


def _branch_age(y_true, y_pred):
    g = y_true[:, 1]
    return g * y_pred[:, 0] + (1 - g) * y_pred[:, 1]


def age_loss(y_true, y_pred):
    """L1 error in years of the branch of the true gender; y_true = (age, gender, has_age)."""
    return _masked_mean(ops.abs(_branch_age(y_true, y_pred) - y_true[:, 0]), y_true[:, 2])


def age_mae(y_true, y_pred):
    """Mean absolute error in years (the same quantity as the loss, reported as a metric)."""
    return age_loss(y_true, y_pred)


def angle_error(y_true, y_pred):
    """Absolute angle error in degrees between (cos, sin) targets and predictions."""
    diff = ops.arctan2(y_pred[:, 1], y_pred[:, 0]) - ops.arctan2(y_true[:, 1], y_true[:, 0])
    diff = ops.arctan2(ops.sin(diff), ops.cos(diff))
    return ops.abs(diff) * (180.0 / 3.141592653589793)
