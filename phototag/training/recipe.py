"""The three models of the recipe, their losses and metrics.

1. ``rotation``: backbone → pooled features → (cos, sin) of the in-plane angle (degrees,
   counter-clockwise as displayed); no wrap-around discontinuity.
2. ``gender``: backbone → pooled features → probability of female.
3. ``age``: built on a trained gender model (same backbone pass): two age branches, female and
   male, mixed by the predicted probability of female (:class:`phototag.layers.GenderMix`).
   Its outputs are ``gender``, ``age_branches`` and ``age``; it is the model the scan runs.
   Two age heads: ``l1`` regresses each branch's age directly (L1 loss); ``distribution`` gives
   each branch a softmax over 0..100 years, trained towards a Gaussian-smoothed target (cross-
   entropy plus the L1 error of its expectation, DLDL-v2), and the branch age is the expectation
   (:class:`phototag.layers.AgeExpectation`); that model also outputs ``age_distribution``.

Labels passed to the losses carry masks, so data sets without an age (CelebA) or without a gender
(a CSV) can be mixed: ``gender`` targets are (label, has_label), age targets are
(age, gender or 0.5 if unknown, has_age, loss weight); the weight (e.g. decade-balanced) scales
the sample's age loss, never the reported MAE.
"""

from __future__ import annotations

import keras
from keras import ops

from phototag.layers import AGE_BINS, AgeExpectation, GenderMix

from .backbones import Backbone

AGE_OFFSET, AGE_SCALE = 33.0, 20.0  # age branches start near the data's mean age
AGE_HEADS = ("l1", "distribution")


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


def gender_head(pooled: keras.KerasTensor) -> keras.KerasTensor:
    """Probability of female from pooled (dropped-out) features."""
    g = keras.layers.Dense(256, activation="relu", name="gender_fc")(pooled)
    return keras.layers.Dense(1, activation="sigmoid", name="gender")(g)


def build_gender_model(backbone: Backbone, dropout: float = 0.3) -> keras.Model:
    """Gender classifier: face pixels (0..255) → probability of female."""
    face, x = _features(backbone, "attributes")
    x = keras.layers.Dropout(dropout, name="attributes_dropout")(x)
    return keras.Model(face, gender_head(x), name="gender_classifier")


def age_head(pooled: keras.KerasTensor, p_female: keras.KerasTensor, head: str = "l1", dropout: float = 0.3
             ) -> dict[str, keras.KerasTensor]:
    """The age outputs (``age_branches``, ``age``, and ``age_distribution`` for the distribution head)."""
    if head not in AGE_HEADS:
        raise ValueError(f"unknown age head {head!r}; choose from {', '.join(AGE_HEADS)}")
    a = keras.layers.Dense(256, activation="relu", name="age_fc")(pooled)
    a = keras.layers.Dropout(dropout, name="age_dropout")(a)
    out = {}
    if head == "l1":
        a = keras.layers.Dense(2, name="age_raw")(a)
        branches = keras.layers.Rescaling(AGE_SCALE, offset=AGE_OFFSET, name="age_branches")(a)
    else:
        a = keras.layers.Dense(2 * AGE_BINS, name="age_logits")(a)
        a = keras.layers.Reshape((2, AGE_BINS))(a)
        out["age_distribution"] = keras.layers.Softmax(axis=-1, name="age_distribution")(a)
        branches = AgeExpectation(name="age_branches")(out["age_distribution"])
    return out | {"age_branches": branches, "age": GenderMix(name="age")(p_female, branches)}


def build_age_model(gender_model: keras.Model, dropout: float = 0.3, head: str = "l1") -> keras.Model:
    """Age regressor on top of a gender model, with a female and a male branch mixed by gender."""
    pooled = gender_model.get_layer("attributes_dropout").output
    p_female = gender_model.output
    out = age_head(pooled, p_female, head, dropout)
    return keras.Model(gender_model.input, {"gender": p_female, **out}, name="age_regressor")


def age_output(model: keras.Model) -> str:
    """The output the age loss is applied to: ``age_distribution`` if the model has one, else ``age_branches``."""
    return "age_distribution" if "age_distribution" in model.output else "age_branches"


def _masked_mean(values, mask):
    """Per-sample values rescaled so that Keras' batch mean equals the mean over masked samples."""
    n = ops.cast(ops.shape(mask)[0], "float32")
    return values * mask * n / ops.maximum(ops.sum(mask), 1.0)


def gender_loss(y_true, y_pred):
    """Binary cross-entropy over the samples that have a gender label; y_true = (label, has_label)."""
    label, has = y_true[:, 0], y_true[:, 1]
    p = ops.clip(y_pred[:, 0], 1e-6, 1 - 1e-6)
    return _masked_mean(-(label * ops.log(p) + (1 - label) * ops.log(1 - p)), has)


class _LabelledMean(keras.metrics.Metric):
    """Mean of a per-sample value over every labelled sample seen (a batch without labels, such as
    CelebA's for age, adds nothing; Keras' mean of batch means would count it as 0)."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def values(self, y_true, y_pred):
        """(per-sample values, 0/1 label mask)."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, mask = self.values(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32"))
        self.total.assign_add(ops.sum(values * mask))
        self.count.assign_add(ops.sum(mask))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)


class GenderAccuracy(_LabelledMean):
    """Accuracy of P(female) > 0.5 over the faces with a gender label; y_true = (label, has_label)."""

    def __init__(self, name: str = "gender_accuracy", **kwargs):
        super().__init__(name, **kwargs)

    def values(self, y_true, y_pred):
        hit = ops.cast(ops.equal(ops.cast(y_pred[:, 0] > 0.5, "float32"), y_true[:, 0]), "float32")
        return hit, y_true[:, 1]


def _branch(y_true, y_pred):
    """The prediction of the true gender's branch (per-branch ages or distributions)."""
    g = y_true[:, 1]
    if len(y_pred.shape) == 3:
        g = g[:, None]
    return g * y_pred[:, 0] + (1 - g) * y_pred[:, 1]


def _age_of(prediction):
    """Ages (N,) from branch ages (N,) or branch distributions (N, AGE_BINS) (their expectation)."""
    if len(prediction.shape) == 2:
        return ops.sum(prediction * ops.arange(AGE_BINS, dtype="float32"), axis=-1)
    return prediction


def age_loss(y_true, y_pred):
    """Weighted L1 error in years of the true gender's branch; y_true = (age, gender, has_age, weight)."""
    return _masked_mean(ops.abs(_age_of(_branch(y_true, y_pred)) - y_true[:, 0]), y_true[:, 2] * y_true[:, 3])


def age_distribution_loss(sigma: float = 2.0, l1_weight: float = 1.0):
    """DLDL-v2 loss on branch distributions: cross-entropy to a Gaussian (``sigma`` years) around the
    true age, plus ``l1_weight`` times the L1 error of the expectation; weighted like :func:`age_loss`."""
    years = ops.arange(AGE_BINS, dtype="float32")

    def age_distribution_loss(y_true, y_pred):
        age = ops.clip(y_true[:, 0:1], 0.0, AGE_BINS - 1.0)
        target = ops.exp(-0.5 * ((years[None, :] - age) / sigma) ** 2)
        target = target / ops.sum(target, axis=-1, keepdims=True)
        dist = _branch(y_true, y_pred)
        ce = -ops.sum(target * ops.log(ops.clip(dist, 1e-7, 1.0)), axis=-1)
        l1 = ops.abs(_age_of(dist) - y_true[:, 0])
        return _masked_mean(ce + l1_weight * l1, y_true[:, 2] * y_true[:, 3])
    return age_distribution_loss


class AgeMAE(_LabelledMean):
    """Mean absolute error in years of the true gender's branch over the faces with an age (unweighted),
    for either head; y_true = (age, gender, has_age, weight)."""

    def __init__(self, name: str = "age_mae", **kwargs):
        super().__init__(name, **kwargs)

    def values(self, y_true, y_pred):
        return ops.abs(_age_of(_branch(y_true, y_pred)) - y_true[:, 0]), y_true[:, 2]


def angle_error(y_true, y_pred):
    """Absolute angle error in degrees between (cos, sin) targets and predictions."""
    diff = ops.arctan2(y_pred[:, 1], y_pred[:, 0]) - ops.arctan2(y_true[:, 1], y_true[:, 0])
    diff = ops.arctan2(ops.sin(diff), ops.cos(diff))
    return ops.abs(diff) * (180.0 / 3.141592653589793)
