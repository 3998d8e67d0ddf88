"""Custom Keras layers that the shipped models contain (imported before loading them)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="phototag")
class GenderMix(keras.layers.Layer):
    """Mix the female and male age branches by the predicted probability of female.

    Inputs: ``p_female`` (N, 1) and ``branches`` (N, 2) holding the (female, male) age predictions.
    """

    def call(self, p_female, branches):
        return p_female * branches[:, 0:1] + (1.0 - p_female) * branches[:, 1:2]

    def compute_output_shape(self, p_female_shape, branches_shape):
        return (branches_shape[0], 1)


AGE_BINS = 101  # the label-distribution age head's classes: 0..100 years


@keras.saving.register_keras_serializable(package="phototag")
class AgeExpectation(keras.layers.Layer):
    """Expected age of each branch's distribution over 0..100 years: (N, 2, AGE_BINS) → (N, 2)."""

    def call(self, distributions):
        return ops.sum(distributions * ops.arange(AGE_BINS, dtype=distributions.dtype), axis=-1)

    def compute_output_shape(self, shape):
        return shape[:-1]


@keras.saving.register_keras_serializable(package="phototag")
class ZeroPadAdd(keras.layers.Layer):
    """dlib's ``add_prev``: the sum of two (N, H, W, C) maps, the smaller zero-padded at the bottom,
    right and last channels to their common shape (dlib's ResNet, :mod:`phototag.training.dlib_resnet`)."""

    def call(self, inputs):
        a, b = inputs
        shape = [max(i, j) for i, j in zip(a.shape[1:], b.shape[1:])]
        a, b = (ops.pad(t, [(0, 0)] + [(0, s - n) for s, n in zip(shape, t.shape[1:])]) for t in (a, b))
        return a + b

    def compute_output_shape(self, shapes):
        return (shapes[0][0], *(max(i, j) for i, j in zip(shapes[0][1:], shapes[1][1:])))
