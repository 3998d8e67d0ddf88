"""The model chain on batches of faces: crop → rotation regressor → de-rotate → gender → age.

Face framing matches the training crops (UTKFace "aligned & cropped"): measured with MTCNN on 80
UTKFace 200 px crops, the eye-centre to mouth-centre distance is 0.39 of the crop side and the
eye centre sits 0.29 of the side below the top edge. The crop is placed from the landmarks along
the face's own axis, so it is centred on the face whatever its rotation; the rotation regressor
sees this square, then a 1.5× wider square is rotated back (Pillow, bilinear) and its centre is
what the gender/age model sees (the rotated corners stay outside it at any angle).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .models import AttributeModel, ModelSet, RotationModel
from .records import Detection, Face

EYE_MOUTH_SHARE = 0.39  # eye-to-mouth distance / crop side
EYE_HEIGHT = 0.29  # eye centre below the top edge / crop side
BOX_HEIGHT_SHARE = 0.965  # detector box height / crop side (fallback without landmarks)
CONTEXT = 1.5  # the de-rotated crop is taken from a square this much wider


def wide_size(size: int) -> int:
    """Side of the wide crop around a face the attribute model sees at ``size`` (even, ``CONTEXT`` wider)."""
    return int(math.ceil(size * CONTEXT / 2) * 2)


def eyes_and_mouth(det: Detection) -> tuple[np.ndarray, np.ndarray] | None:
    """The centres of the eyes and of the mouth from a detection's landmarks (None without them)."""
    lm = det.landmarks
    try:
        eyes = (np.asarray(lm["left_eye"], float) + np.asarray(lm["right_eye"], float)) / 2
        mouth = (np.asarray(lm["mouth_left"], float) + np.asarray(lm["mouth_right"], float)) / 2
    except KeyError:
        return None
    return eyes, mouth


def face_square(det: Detection) -> tuple[float, float, float]:
    """Centre (x, y) and side of the training-style square crop of a detected face, in image pixels."""
    eyes, mouth = eyes_and_mouth(det) or (None, None)
    x, y, w, h = det.box
    if eyes is not None and np.linalg.norm(mouth - eyes) > 1:
        d = np.linalg.norm(mouth - eyes)
        side = d / EYE_MOUTH_SHARE
        centre = eyes + (mouth - eyes) / d * (0.5 - EYE_HEIGHT) * side
        return float(centre[0]), float(centre[1]), float(side)
    return x + w / 2, y + h / 2, max(h / BOX_HEIGHT_SHARE, w, 1.0)


def quarter_turns(det: Detection) -> int:
    """How many quarter turns (counter-clockwise, 0-3) the face is from upright by its landmarks: the
    direction from the mouth to the eyes, to the nearest 90 degrees (0 without landmarks)."""
    found = eyes_and_mouth(det)
    if found is None:
        return 0
    eyes, mouth = found
    up = eyes - mouth
    return round(math.degrees(math.atan2(-up[0], -up[1])) / 90) % 4


def crop(image: Image.Image, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """Axis-aligned square of ``side`` pixels centred on (cx, cy), resampled to ``size``; outside is black."""
    half = side / 2
    box = (cx - half, cy - half, cx + half, cy + half)
    return np.asarray(image.transform((size, size), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR))


def derotate(wide: np.ndarray, angle: float, size: int) -> np.ndarray:
    """Undo ``angle`` (counter-clockwise as displayed) on a wide crop and keep its centre ``size`` square."""
    upright = Image.fromarray(wide).rotate(-angle, resample=Image.Resampling.BILINEAR)
    start = (wide.shape[0] - size) // 2
    return np.asarray(upright.crop((start, start, start + size, start + size)))


class FaceChain:
    """Runs the rotation, gender and age models on faces from many photos at once: crops them,
    measures the rotation (``rotation``), turns them upright and reads gender and age (``attributes``).

    ``flip_average``: also run each model on the mirrored face and average (test-time augmentation;
    about twice the model time, see models/README.md for what it gains).
    """

    def __init__(self, models: ModelSet, batch_size: int = 64, flip_average: bool = True):
        self.models = models
        self.batch_size = batch_size
        self.rotation = RotationModel(models.rotation, batch_size, flip_average)
        self.attributes = AttributeModel(models.attributes, batch_size, flip_average)

    @property
    def version(self) -> str:
        return self.models.version

    def predict_crops(self, rotation_crops: np.ndarray, wide_crops: np.ndarray, turns: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Angles, de-rotated faces, probabilities of female and ages for prepared crops.

        ``turns``: quarter turns (counter-clockwise) each face is from upright, as far as the detector
        tells; its rotation crop is turned back by them before the regressor (trained within ±90°)
        measures the rest, so the angles cover the full circle, in (-180, 180].
        """
        if turns is not None and turns.any():
            rotation_crops = np.stack([np.rot90(c, -int(k)) for c, k in zip(rotation_crops, turns)])
        angles = self.rotation(rotation_crops)
        if turns is not None:
            angles = 180 - (180 - angles - 90 * turns) % 360
        size = self.models.input_size
        upright = np.stack([derotate(w, a, size) for w, a in zip(wide_crops, angles)])
        p_female, age = self.attributes(upright)
        return angles, upright, p_female, age

    def predict(self, items: list[tuple[np.ndarray, list[Detection]]]) -> list[list[Face]]:
        """Faces with predictions for each (RGB uint8 image, detections in its pixels) pair."""
        rot_size, size = self.models.rotation_input_size, self.models.input_size
        wide = wide_size(size)
        rotation_crops, wide_crops, turns, owners = [], [], [], []
        for i, (pixels, detections) in enumerate(items):
            image = Image.fromarray(pixels) if detections else None  # once per photo, not per face
            for det in detections:
                cx, cy, side = face_square(det)
                rotation_crops.append(crop(image, cx, cy, side, rot_size))
                wide_crops.append(crop(image, cx, cy, side * wide / size, wide))
                turns.append(quarter_turns(det))
                owners.append((i, det))
        results: list[list[Face]] = [[] for _ in items]
        if not owners:
            return results
        angles, _, p_female, ages = self.predict_crops(np.stack(rotation_crops), np.stack(wide_crops),
                                                       np.array(turns))
        threshold = self.models.gender_threshold
        for (i, det), angle, p, age in zip(owners, angles, p_female, ages):
            results[i].append(Face(box=det.box, landmarks=det.landmarks, confidence=det.confidence,
                                   rotation=round(float(angle), 2), gender="f" if p >= threshold else "m",
                                   p_female=round(float(p), 4), age=round(float(max(age, 0.0)), 1)))
        return results
