"""Data augmentation: the recipe's shifts, zooms and flips (plus brightness, contrast and a small tilt),
and the random rotations whose angles are the rotation regressor's labels.

Everything runs as Keras layers inside the training graph (any backend, CPU or GPU); the saved
models do not contain these layers.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def face_augmenter(seed: int | None = None, flip: bool = True, tilt: bool = True,
                   old_prints: float = 0.0) -> keras.Sequential:
    """Random shifts (±8 %), zooms (±15 %), brightness and contrast (±20 %), and unless disabled
    horizontal flips and a small tilt (±8°, which the de-rotation leaves as residual error);
    ``old_prints``: the share of faces then made to look like an old print scanned (:class:`OldPrint`).

    The rotation regressor is trained with ``flip=False, tilt=False``: both would change its label.
    """
    layers = [keras.layers.RandomFlip("horizontal", seed=seed)] if flip else []
    if tilt:
        layers.append(keras.layers.RandomRotation(8 / 360, fill_mode="reflect", seed=seed))
    layers += [
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed),
        keras.layers.RandomZoom((-0.15, 0.15), fill_mode="reflect", seed=seed),
        keras.layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed),
        keras.layers.RandomContrast(0.2, value_range=(0, 255), seed=seed),
    ]
    if old_prints > 0:
        layers.append(OldPrint(old_prints, seed=seed))
    return keras.Sequential(layers, name="augment")


@keras.saving.register_keras_serializable(package="phototag")
class OldPrint(keras.layers.Layer):
    """Make a random ``share`` of the faces (pixels 0-255) look like an old print scanned, each by its own
    amount: softened (up to a Gaussian blur of ``blur`` px), flattened (contrast down to ``contrast``),
    grainy (brightness noise up to ``grain`` of 255) and, half of them, grey. The age model read such copies of
    validation faces 12 years older (models/README.md, "Old scans read older"). Training only."""

    def __init__(self, share: float, blur: float = 2.0, contrast: float = 0.55, grain: float = 10.0,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.share, self.blur, self.contrast, self.grain, self.seed = share, blur, contrast, grain, seed
        self.generator = keras.random.SeedGenerator(seed)
        radius = int(np.ceil(3 * blur))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / blur) ** 2)
        self.taps = (taps / taps.sum()).astype(np.float32)

    def _blurred(self, images):
        kernel = ops.convert_to_tensor(self.taps)
        channels = ops.shape(images)[-1]
        across = ops.tile(ops.reshape(kernel, (1, -1, 1, 1)), (1, 1, channels, 1))
        down = ops.tile(ops.reshape(kernel, (-1, 1, 1, 1)), (1, 1, channels, 1))
        return ops.depthwise_conv(ops.depthwise_conv(images, across, padding="same"), down, padding="same")

    def call(self, images, training=None):
        if not training:
            return images
        n = ops.shape(images)[0]

        def draw(low=0.0, high=1.0):
            return keras.random.uniform((n, 1, 1, 1), low, high, seed=self.generator)
        x = images + draw() * (self._blurred(images) - images)  # softened by its own share of the blur
        grey = ops.mean(x, axis=-1, keepdims=True)
        x = ops.where(draw() < 0.5, ops.broadcast_to(grey, ops.shape(x)), x)
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        x = mean + draw(self.contrast, 1.0) * (x - mean)
        x = x + draw(0.0, self.grain) * keras.random.normal(ops.shape(grey), seed=self.generator)  # in brightness
        return ops.where(draw() < self.share, ops.clip(x, 0.0, 255.0), images)

    def get_config(self):
        return super().get_config() | {"share": self.share, "blur": self.blur, "contrast": self.contrast,
                                        "grain": self.grain, "seed": self.seed}


def rotation_transforms(angles_deg, size: int):
    """Affine transforms (``keras.ops.image.affine_transform`` layout) that rotate square images of
    ``size`` pixels about their centre by ``angles_deg``, counter-clockwise as displayed — the same
    as ``scipy.ndimage.rotate(image, angle, reshape=False)``."""
    t = ops.deg2rad(ops.cast(angles_deg, "float32"))
    c, s = ops.cos(t), ops.sin(t)
    centre = (size - 1) / 2
    zero = ops.zeros_like(c)
    return ops.stack([c, -s, centre - c * centre + s * centre,
                      s, c, centre - s * centre - c * centre, zero, zero], axis=-1)


@keras.saving.register_keras_serializable(package="phototag")
class RotateByAngle(keras.layers.Layer):
    """Rotate each image of a batch by its own angle (degrees, counter-clockwise as displayed)."""

    def __init__(self, fill_mode: str = "reflect", **kwargs):
        super().__init__(**kwargs)
        self.fill_mode = fill_mode

    def call(self, images, angles):
        size = ops.shape(images)[1]
        return ops.image.affine_transform(images, rotation_transforms(ops.reshape(angles, (-1,)), size),
                                          interpolation="bilinear", fill_mode=self.fill_mode)

    def get_config(self):
        return super().get_config() | {"fill_mode": self.fill_mode}


def random_angles(rng: np.random.Generator, n: int, max_angle: float) -> np.ndarray:
    """Uniform random angles in [-max_angle, max_angle] degrees."""
    return rng.uniform(-max_angle, max_angle, size=n).astype(np.float32)


def angle_to_target(angles_deg: np.ndarray) -> np.ndarray:
    """Encode angles as (cos, sin) so the regression has no wrap-around discontinuity."""
    t = np.deg2rad(angles_deg)
    return np.stack([np.cos(t), np.sin(t)], axis=-1).astype(np.float32)

