"""The model chain on batches of faces: crop → rotation regressor → de-rotate → gender → age.

Face framing matches the training crops (UTKFace "aligned & cropped"): measured with MTCNN on 80
UTKFace 200 px crops, the eye-centre to mouth-centre distance is 0.39 of the crop side and the
eye centre sits 0.29 of the side below the top edge. The crop is placed from the landmarks along
the face's own axis, so it is centred on the face whatever its rotation; the rotation regressor
sees this square, then a 1.5× wider square is rotated back (Pillow, bilinear) and its centre is
what the gender/age model sees (the rotated corners stay outside it at any angle).

The angle covers the full circle although the regressor was trained within ±90° (see
:meth:`FaceChain.angles`), in the default scan too: YuNet finds faces turned by a quarter or half
turn, but its landmarks follow an upright template, so they do not show the turn; such a face
(landmarks more than :data:`ASTRAY_LANDMARKS` from the regressor's angle) is framed by its box.
For a face tilted by 45-60° the landmarks sit about 30° nearer upright than the face, putting the
crop 7 % of its side off centre (measured on benchmarks/bench_scan.py's tilted set), so a face
found tilted by more than :data:`REFRAME_ANGLE` is found again on its surroundings turned upright
(one small detection), framed by the landmarks found there and read once more, where the
regressor is most accurate (:meth:`FaceChain.reframe`); when that finds no face, it is read once
more on its de-rotated crop. The three turned readings are skipped for a face the detector is
sure of whose first reading says it is nearly upright (the ``SURE_*`` limits): most faces of most
photos, and never, in the validation measured, an upside-down one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np
from PIL import Image

from .detectors import located_upright, nearest_within, surroundings, turned_back
from .identity import KEY as IDENTITY, face_chip, to_blob
from .models import AttributeModel, IdentityModel, ModelSet, RotationModel, wrapped_angles
from .records import Detection, Face
from .turns import photo_turn, quarter_evidence, within_turn

EYE_MOUTH_SHARE = 0.39  # eye-to-mouth distance / crop side
EYE_HEIGHT = 0.29  # eye centre below the top edge / crop side
BOX_HEIGHT_SHARE = 0.965  # detector box height / crop side (fallback without landmarks)
CONTEXT = 1.5  # the de-rotated crop is taken from a square this much wider
TURNED_BOX_SHARE = 0.91  # longer box side / crop side for faces turned by a quarter or half turn (YuNet)
REFINE_ANGLE = 20.0  # degrees: faces tilted more are measured again on their de-rotated crop
REFINE_LIMIT = 15.0  # degrees: the most that second reading may add
REFRAME_ANGLE = 20.0  # degrees: faces tilted more are found again on their surroundings turned upright
AGREEMENT = 25.0  # degrees within which two estimates of a face's angle agree
ASTRAY_LANDMARKS = 45.0  # degrees between the landmarks' and the regressor's angle: crop by the box
# A face read as nearly upright is believed without the turned readings when all of these hold
# (chosen on pasted and turned UTKFace/AAF validation faces, see models/README.md "The upright
# shortcut"; benchmarks/bench_upright_shortcut.py checks them on others):
SURE_DETECTION = 0.91  # detector confidence at least this (YuNet's on upside-down faces stays below)
SURE_STRENGTH = 0.88  # the mirror-averaged reading's strength at least this
SURE_SPREAD = 10.0  # degrees: the face's and its mirror image's readings disagree by at most this
SURE_ANGLE = 45.0  # degrees: the reading is within this of upright
SURE_LANDMARKS = 20.0  # degrees: and within this of the landmarks' angle
SURE_SCORE = 5.0  # the score of such a reading: above any that four readings can give (4.95)
TURN_TRIGGER = 45.0  # degrees: a face read further from upright makes its photo decide its turn (60°,
# where YuNet's upright faces end, lost 0.8 points of turned copies read as upright: models/README.md)
# What the identity model sees (the manifest's models.identity.crop, default IDENTITY_CROP):
# "upright", the de-rotated crop the gender/age model sees; "chip", dlib's face chip placed by the
# landmarks (phototag.identity.face_chip). Measured equal on LAG (models/README.md "Identity
# embedding"); the upright crop costs nothing more.
IDENTITY_CROPS = ("upright", "chip")
IDENTITY_CROP = "upright"


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
    points = eyes_and_mouth(det)
    if points is not None and np.linalg.norm(points[1] - points[0]) > 1:
        eyes, mouth = points
        d = np.linalg.norm(mouth - eyes)
        side = d / EYE_MOUTH_SHARE
        centre = eyes + (mouth - eyes) / d * (0.5 - EYE_HEIGHT) * side
        return float(centre[0]), float(centre[1]), float(side)
    return box_square(det)


def box_square(det: Detection, turned: bool = False) -> tuple[float, float, float]:
    """The square crop of :func:`face_square` placed by the detector's box alone (``turned``: for a
    face turned by about a quarter or half turn, whose box is no longer taller than wide)."""
    x, y, w, h = det.box
    if turned:
        return x + w / 2, y + h / 2, max(w, h, 1.0) / TURNED_BOX_SHARE
    return x + w / 2, y + h / 2, max(h / BOX_HEIGHT_SHARE, w, 1.0)


def landmark_angle(det: Detection) -> float | None:
    """The face's rotation (degrees, counter-clockwise) by its landmarks: the direction from the mouth
    to the eyes (None without landmarks)."""
    points = eyes_and_mouth(det)
    if points is None:
        return None
    up = points[0] - points[1]
    return math.degrees(math.atan2(-up[0], -up[1]))


def quarter_turns(det: Detection) -> int:
    """How many quarter turns (counter-clockwise, 0-3) the face is from upright by its landmarks, to
    the nearest 90 degrees (0 without landmarks)."""
    angle = landmark_angle(det)
    return 0 if angle is None else round(angle / 90) % 4


OPENCV_MAX_SIDE = 32767  # OpenCV's warpAffine indexes images with 16-bit integers


def warp(pixels: np.ndarray, matrix: tuple[float, ...], width: int, height: int) -> np.ndarray:
    """``width`` × ``height`` pixels sampled bilinearly from ``pixels`` (H×W or H×W×C, uint8) where
    ``matrix`` (a, b, c, d, e, f) maps each output pixel's centre (x + 0.5, y + 0.5) to (a x' + b y'
    + c, d x' + e y' + f), as Pillow's ``Image.transform`` samples (pixel centres at +0.5): a sample
    within the image whose neighbours fall outside takes the edge pixels, one outside the image is
    black. OpenCV's ``warpAffine`` does the sampling, 4-10x faster than Pillow here; its values are
    rounded where Pillow's are truncated and its positions kept to 1/32 pixel."""
    a, b, c, d, e, f = matrix
    rows, columns = pixels.shape[:2]
    corners = [(a * x + b * y + c, d * x + e * y + f) for x in (0.5, width - 0.5) for y in (0.5, height - 0.5)]
    x0, y0, x1, y1 = 0, 0, columns, rows
    if max(rows, columns) >= OPENCV_MAX_SIDE:  # only the part the samples reach, with their neighbours
        x0 = max(0, math.floor(min(u for u, _ in corners)) - 2)
        y0 = max(0, math.floor(min(v for _, v in corners)) - 2)
        x1 = min(columns, math.ceil(max(u for u, _ in corners)) + 2)
        y1 = min(rows, math.ceil(max(v for _, v in corners)) + 2)
        if x1 <= x0 or y1 <= y0:  # every sample outside
            return np.zeros((height, width, *pixels.shape[2:]), pixels.dtype)
    m = np.array([[a, b, c - x0 + (a + b) / 2 - 0.5], [d, e, f - y0 + (d + e) / 2 - 0.5]])  # centres at integers
    out = cv2.warpAffine(np.ascontiguousarray(pixels[y0:y1, x0:x1]), m, (width, height),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    if all(0 <= u < columns and 0 <= v < rows for u, v in corners):  # every sample inside (a convex square)
        return out
    x, y = np.arange(width) + 0.5, np.arange(height) + 0.5
    if b == 0 and d == 0:  # axis-aligned: rows and columns apart
        u, v = a * x + c, e * y + f
        out[~((v >= 0) & (v < rows))] = 0
        out[:, ~((u >= 0) & (u < columns))] = 0
    else:
        u = a * x[None, :] + b * y[:, None] + c
        v = d * x[None, :] + e * y[:, None] + f
        out[~((u >= 0) & (u < columns) & (v >= 0) & (v < rows))] = 0
    return out


def crop(pixels: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """Axis-aligned square of ``side`` pixels centred on (cx, cy), resampled to ``size``; outside is black."""
    k = side / size
    return warp(pixels, (k, 0.0, cx - side / 2, 0.0, k, cy - side / 2), size, size)


def derotate(wide: np.ndarray, angle: float, size: int, out: int | None = None) -> np.ndarray:
    """Undo ``angle`` (counter-clockwise as displayed) on a wide crop and keep its centre ``size``
    square (resampled to ``out`` pixels, in the same single bilinear step, when given)."""
    out = out or size
    t = math.radians(angle)
    k = size / out
    a, b, d, e = math.cos(t) * k, math.sin(t) * k, -math.sin(t) * k, math.cos(t) * k
    c = wide.shape[0] / 2
    return warp(wide, (a, b, c - (a + b) * out / 2, d, e, c - (d + e) * out / 2), out, out)


def rotated(pixels: np.ndarray, angle: float, centre: tuple[float, float]) -> np.ndarray:
    """``pixels`` turned by ``angle`` degrees counter-clockwise about ``centre``, the same size;
    outside is black (Pillow's ``Image.rotate(angle, center=centre)``, bilinear)."""
    t = -math.radians(angle)
    a, b, d, e = math.cos(t), math.sin(t), -math.sin(t), math.cos(t)
    cx, cy = centre
    return warp(pixels, (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy), pixels.shape[1], pixels.shape[0])


class FaceChain:
    """Runs the rotation, gender and age models on faces from many photos at once: crops them,
    measures the rotation (``rotation``), turns them upright and reads gender and age (``attributes``).

    ``flip_average``: also run each model on the mirrored face and average (test-time augmentation;
    about twice the model time, see models/README.md for what it gains). ``upright_shortcut``: skip
    the turned readings of faces that the detector and the first reading agree are nearly upright
    (see :meth:`angles`; off, every face gets all four readings). ``photo_turn``: a photo's faces
    decide its quarter turn together, then each is read within 90° of it (see :meth:`predict`;
    off, each face decides alone).

    Where the models include an identity model (:mod:`phototag.identity`), each face also gets its
    embedding (``Face.embedding``), in the same batches: on the de-rotated crop the gender/age model
    saw, or on dlib's face chip (``identity_crop``; default the manifest's ``models.identity.crop``).
    """

    def __init__(self, models: ModelSet, batch_size: int = 64, flip_average: bool = True,
                 upright_shortcut: bool = True, photo_turn: bool = True, identity_crop: str | None = None):
        listed = models.manifest.get("models", {}).get(IDENTITY, {})
        identity_crop = identity_crop or listed.get("crop", IDENTITY_CROP)
        if identity_crop not in IDENTITY_CROPS:
            raise ValueError(f"identity_crop: one of {', '.join(IDENTITY_CROPS)}, not {identity_crop!r}")
        self.models = models
        self.batch_size = batch_size
        self.rotation = RotationModel(models.rotation, batch_size, flip_average)
        self.attributes = AttributeModel(models.attributes, batch_size, flip_average)
        self.identity = None if models.identity is None else IdentityModel(models.identity, batch_size)
        self.identity_crop = identity_crop
        self.upright_shortcut = upright_shortcut
        self.photo_turn = photo_turn

    @property
    def version(self) -> str:
        return self.models.version

    def angles(self, crops: np.ndarray, turned_crops: np.ndarray | None = None,
               vouched: np.ndarray | None = None) -> np.ndarray:
        """Rotation angles (degrees, in (-180, 180]) of face crops, over the full circle (see :meth:`readings`)."""
        return self.readings(crops, turned_crops, vouched)[0]

    def readings(self, crops: np.ndarray, turned_crops: np.ndarray | None = None,
                 vouched: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(angles, estimates, scores): rotation angles (degrees, in (-180, 180]) of face crops over
        the full circle, and per face (rows) the four estimates they were chosen from with their scores.

        The regressor was trained within ±90° and reads a face beyond that as some small angle, so
        it reads the crop as it is (mirror-averaged) and, once each, the face turned back by one,
        two and three quarter turns (``turned_crops``: the same faces framed for those cases,
        default ``crops``). Each reading plus its turn estimates the angle; the estimate that most
        others agree with (within :data:`AGREEMENT`) wins, between equals the one whose agreeing
        readings are the strongest (a face outside the training range reads short), within those
        the one read nearest upright (where the regressor is most accurate); and when the
        reading of the crop as it is (the mirror-averaged one) agrees with the winner, it is taken.
        An estimate's score is the number of readings agreeing with it plus half their mean
        strength (at most 4.95).

        ``vouched``: per face, the landmarks' angle in the crop's frame where the detector is sure
        of the face (confidence at least :data:`SURE_DETECTION`), else NaN. A vouched face whose
        first reading is strong, mirror-consistent, nearly upright and near the landmarks (the
        ``SURE_*`` limits) keeps that reading without the turned ones (``upright_shortcut``): its
        one estimate scores :data:`SURE_SCORE`, the others NaN.
        """
        as_is, strength, spread = self.rotation.read(crops)
        result = as_is.copy()
        estimates = np.full((len(crops), 4), np.nan)
        scores = np.full((len(crops), 4), np.nan)
        estimates[:, 0], scores[:, 0] = as_is, SURE_SCORE
        rest = np.ones(len(crops), bool)
        if self.upright_shortcut and vouched is not None:
            rest = ~((np.abs(wrapped_angles(vouched - as_is)) <= SURE_LANDMARKS) & (np.abs(as_is) <= SURE_ANGLE)
                     & (strength >= SURE_STRENGTH) & (spread <= SURE_SPREAD))  # NaN is never sure
        if not rest.any():
            return wrapped_angles(result), estimates, scores
        source = (crops if turned_crops is None else turned_crops)[rest]
        turned = np.concatenate([np.rot90(source, -k, axes=(1, 2)) for k in (1, 2, 3)])
        other, other_strength, _ = self.rotation.read(turned, flip_average=False)
        readings = np.concatenate([as_is[rest][None], other.reshape(3, -1)])
        strengths = np.concatenate([strength[rest][None], other_strength.reshape(3, -1)])
        candidates = readings + 90 * np.arange(4)[:, None]
        agree = np.abs(wrapped_angles(candidates[:, None] - candidates[None])) < AGREEMENT
        support = agree.sum(axis=1)
        cluster_strength = (agree * strengths[None]).sum(axis=1) / support  # mean over the agreeing readings
        score = support + np.clip(cluster_strength, 0, 1.9) / 2
        best = candidates[np.argmax(score - np.abs(readings) / 1e4, axis=0), np.arange(len(source))]  # ties: nearest upright
        first = np.abs(wrapped_angles(candidates[0] - best)) < AGREEMENT  # then the mirror-averaged reading, if it agrees
        result[rest] = np.where(first, candidates[0], best)
        estimates[rest], scores[rest] = wrapped_angles(candidates.T), score.T
        return wrapped_angles(result), estimates, scores

    def first_readings(self, rotation_crops: np.ndarray, turns: np.ndarray | None = None,
                       turned_crops: np.ndarray | None = None, vouched: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full-circle angles of rotation crops, with their estimates and scores (:meth:`readings`).
        ``turns``: quarter turns (counter-clockwise) each face is from upright, as far as the
        detector tells; its crops are turned back by them before the regressor measures the rest.
        ``vouched``: the landmarks' angles of faces the detector is sure of, NaN for the others."""
        if turns is not None and turns.any():
            def back(crops):
                return None if crops is None else np.stack([np.rot90(c, -int(k)) for c, k in zip(crops, turns)])
            rotation_crops, turned_crops = back(rotation_crops), back(turned_crops)
            vouched = None if vouched is None else vouched - 90 * turns
        angles, estimates, scores = self.readings(rotation_crops, turned_crops, vouched)
        if turns is None:
            return angles, estimates, scores
        return wrapped_angles(angles + 90 * turns), wrapped_angles(estimates + 90 * turns[:, None]), scores

    def first_angles(self, rotation_crops: np.ndarray, turns: np.ndarray | None = None,
                     turned_crops: np.ndarray | None = None, vouched: np.ndarray | None = None) -> np.ndarray:
        """Full-circle angles of rotation crops (see :meth:`first_readings`)."""
        return self.first_readings(rotation_crops, turns, turned_crops, vouched)[0]

    def finish(self, angles: np.ndarray, wide_crops: np.ndarray, frame_angles: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Angles, de-rotated faces, probabilities of female and ages from first angles and wide crops.

        A face found tilted by more than :data:`REFINE_ANGLE` is measured again on its de-rotated
        crop (the regressor is most accurate near upright) and de-rotated by the sum; a second
        reading beyond :data:`REFINE_LIMIT` is not believed (the first was nearer than that).
        ``frame_angles``: per face, how far its wide crop was already turned (a face framed again on
        its surroundings turned upright, see :meth:`reframe`; 0 for the others).
        """
        angles = np.array(angles, float)
        turned = np.zeros(len(angles)) if frame_angles is None else np.asarray(frame_angles, float)
        size = self.models.input_size
        upright = np.stack([derotate(w, a, size) for w, a in zip(wide_crops, angles - turned)])
        tilted = np.flatnonzero(np.abs(angles - turned) > REFINE_ANGLE)
        if len(tilted):
            again = np.stack([derotate(wide_crops[i], angles[i] - turned[i], size, self.models.rotation_input_size)
                              for i in tilted])
            second = self.rotation(again)
            tilted, second = tilted[np.abs(second) <= REFINE_LIMIT], second[np.abs(second) <= REFINE_LIMIT]
            angles[tilted] = wrapped_angles(angles[tilted] + second)
            for i in tilted:
                upright[i] = derotate(wide_crops[i], angles[i] - turned[i], size)
        p_female, age = self.attributes(upright)
        return angles, upright, p_female, age

    def reframe(self, pixels: list[np.ndarray], detections: list[Detection], angles: np.ndarray,
                detect: Callable[..., list[Detection]]) -> tuple[np.ndarray, list]:
        """Faces tilted by more than :data:`REFRAME_ANGLE` framed again where the detector sees them
        upright: each face's surroundings turned back by its angle (:func:`located_tilted`), the face
        found there, its crops placed by those landmarks and its angle read once more (a tilted face's
        landmarks sit nearer upright than the face, which puts its crop off centre). Returns the
        angles and, per face, None or (the turned surroundings as an image, the detection there, the
        angle they were turned by, the wide crop)."""
        angles = np.array(angles, float)
        framed: list = [None] * len(angles)
        rot_size, size = self.models.rotation_input_size, self.models.input_size
        wide = wide_size(size)
        todo, crops = [], []
        for j in np.flatnonzero(np.abs(angles) > REFRAME_ANGLE).tolist():
            found = located_tilted(pixels[j], detections[j], angles[j], detect)
            if found is None:
                continue
            image, det = found
            cx, cy, side = face_square(det)
            todo.append((j, image, det, crop(image, cx, cy, side * wide / size, wide)))
            crops.append(crop(image, cx, cy, side, rot_size))
        if todo:
            residual = self.rotation(np.stack(crops))
            for (j, image, det, wide_crop), r in zip(todo, residual.tolist()):
                if abs(r) <= REFINE_LIMIT:  # else the first reading stands, refined as usual
                    framed[j] = (image, det, float(angles[j]), wide_crop)
                    angles[j] = wrapped_angles(np.array(angles[j] + r))
        return angles, framed

    def predict_crops(self, rotation_crops: np.ndarray, wide_crops: np.ndarray, turns: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Angles, de-rotated faces, probabilities of female and ages for prepared crops (see
        :meth:`first_angles` and :meth:`finish`)."""
        return self.finish(self.first_angles(rotation_crops, turns), wide_crops)

    def predict(self, items: list[tuple[np.ndarray, list[Detection]]],
                detect: Callable[..., list[Detection]] | None = None, oriented: list[bool] | None = None,
                scales: list[float] | None = None) -> list[list[Face]]:
        """Faces with predictions for each (RGB uint8 image, detections in its pixels) pair.

        ``detect`` (the detector, called as ``detect(pixels, scale)``): a face whose landmarks are
        astray (YuNet's on a face turned by a quarter or half turn) is found again on its
        surroundings turned upright, which gives its true landmarks (one small detection, for such
        faces only); without ``detect``, or when that finds nothing, the face is framed by its box.

        The photo decides first: a photo is turned as a whole far more often than its faces are
        turned each their own way. Where a face of a photo reads beyond :data:`TURN_TRIGGER`, or the
        detector is unsure of one (under :data:`SURE_DETECTION`: then upside down is weighed too)
        (``photo_turn``, with ``detect``), the photo's quarter turn is decided by all its faces
        (:func:`phototag.turns.photo_turn`): the readings' scores for each quarter and the
        detector's confidence on each face turned back from it, with a prior for upright
        (``oriented``, per photo: an orientation was applied, a stronger prior). A photo found
        turned is turned back and its faces are detected and read there, as in an upright copy
        (``scales``: per photo, the decoded pixels per full-resolution pixel, for the detector's
        limits); each face is read within 90° of its photo's turn unless its own evidence is
        clearly stronger (:func:`phototag.turns.within_turn`). A photo whose faces all read
        nearly upright costs nothing more.
        """
        return self._read(items, detect, oriented, scales)

    def _turned_back(self, pixels: np.ndarray, turn: int, detect: Callable[..., list[Detection]],
                     scale: float) -> list[Face] | None:
        """The faces of a photo found turned by ``turn`` quarter turns, detected and read in its
        upright copy, in the photo's frame; None when none is found there."""
        back = (4 - turn) % 4  # counter-clockwise quarter turns that show the photo upright
        upright = np.ascontiguousarray(np.rot90(pixels, back))
        found = detect(upright, scale)
        if not found:
            return None
        return [in_turned_frame(face, back, pixels.shape)
                for face in self._read([(upright, found)], detect, upright=True)[0]]

    def _read(self, items: list[tuple[np.ndarray, list[Detection]]], detect: Callable[..., list[Detection]] | None,
              oriented: list[bool] | None = None, scales: list[float] | None = None,
              upright: bool = False) -> list[list[Face]]:
        """The faces of each photo (see :meth:`predict`): a photo found turned is read again in its
        upright copy, and its faces here are not read further. ``upright``: the photos are known
        upright (turned back already), each face is read within 90° of upright."""
        rot_size, size = self.models.rotation_input_size, self.models.input_size
        wide = wide_size(size)
        rotation_crops, box_crops, wide_crops, turns, vouched, owners = [], [], [], [], [], []
        for i, (pixels, detections) in enumerate(items):
            for det in detections:
                cx, cy, side = face_square(det)
                rotation_crops.append(crop(pixels, cx, cy, side, rot_size))
                wide_crops.append(crop(pixels, cx, cy, side * wide / size, wide))
                box_crops.append(crop(pixels, *box_square(det, turned=True), rot_size))
                turns.append(quarter_turns(det))
                marked = landmark_angle(det)
                vouched.append(np.nan if marked is None or det.confidence < SURE_DETECTION else marked)
                owners.append((i, det, pixels))  # the photo's pixels, not a copy
        results: list[list[Face]] = [[] for _ in items]
        photo_turns = [0] * len(items)
        if not owners:
            return results
        angles, estimates, scores = self.first_readings(np.stack(rotation_crops), np.array(turns),
                                                        np.stack(box_crops), np.array(vouched))
        found_again: dict[tuple[int, int], Detection | None] = {}  # (face, quarter) -> found on its region
        every = owners  # ``again`` takes positions in every face, also after the settled photos' leave

        def again(j: int, quarter: int) -> Detection | None:
            if (j, quarter) not in found_again:
                i, det, _ = every[j]
                found_again[j, quarter] = located_upright(items[i][0], det, quarter, detect)
            return found_again[j, quarter]

        if upright:
            for j in range(len(owners)):
                angles[j] = within_turn(angles[j], estimates[j], scores[j], 0, np.zeros(4))
        elif self.photo_turn and detect is not None:
            for i in range(len(items)):
                faces = [j for j, owner in enumerate(owners) if owner[0] == i]
                # the quarters its faces read, and where the detector is unsure of a face the quarter
                # opposite its reading (a blurred scan upside down can read as a face the right way up)
                candidates = {0} | {round(angles[j] / 90) % 4 for j in faces if abs(angles[j]) > TURN_TRIGGER} \
                    | {(round(angles[j] / 90) + 2) % 4 for j in faces if owners[j][1].confidence < SURE_DETECTION}
                if candidates == {0}:
                    continue
                confidences = np.zeros((len(faces), 4))
                for row, j in enumerate(faces):
                    for quarter in candidates:
                        found = again(j, quarter)
                        confidences[row, quarter] = found.confidence if found is not None else 0.0
                    # a face the look at its surroundings as they lie misses (a tilted one, often)
                    # was found as it lies in the whole photo all the same: that detection's
                    # confidence stands for upright (not that of a face found only turned)
                    if not owners[j][1].turned_look and again(j, 0) is None:
                        confidences[row, 0] = owners[j][1].confidence
                evidence = quarter_evidence(estimates[faces], scores[faces], confidences)
                sides = np.array([max(owners[j][1].box[2:]) for j in faces])
                photo_turns[i] = photo_turn(evidence, sides, candidates, bool(oriented and oriented[i]))
                for row, j in enumerate(faces):
                    angles[j] = within_turn(angles[j], estimates[j], scores[j], photo_turns[i], evidence[row])
        settled = set()  # photos found turned whose upright copy gave their faces
        for i, turn in enumerate(photo_turns):
            if turn and (read := self._turned_back(items[i][0], turn, detect, scales[i] if scales else 1.0)) is not None:
                results[i] = read
                settled.add(i)
        rest = [j for j, owner in enumerate(owners) if owner[0] not in settled]
        if not rest:
            return results
        owners, angles = [owners[j] for j in rest], angles[rest]
        wide_crops = [wide_crops[j] for j in rest]
        frames: list[Detection | None] = [det for _, det, _ in owners]  # whose landmarks place each face
        sources = [pixels for _, _, pixels in owners]  # ... in which pixels
        for k, (j, (i, det, pixels)) in enumerate(zip(rest, owners)):
            marked = landmark_angle(det)
            if marked is not None and abs(wrapped_angles(marked - angles[k])) > ASTRAY_LANDMARKS:
                found = None if detect is None else again(j, round(angles[k] / 90) % 4)
                cx, cy, side = face_square(found) if found is not None else box_square(det, turned=True)
                wide_crops[k] = crop(pixels, cx, cy, side * wide / size, wide)
                frames[k] = found
        frame_angles = np.zeros(len(owners))
        if detect is not None:
            angles, framed = self.reframe([items[i][0] for i, _, _ in owners], [det for _, det, _ in owners],
                                          angles, detect)
            for k, f in enumerate(framed):
                if f is not None:
                    sources[k], frames[k], frame_angles[k], wide_crops[k] = f
        angles, upright_faces, p_female, ages = self.finish(angles, np.stack(wide_crops), frame_angles)
        embeddings = self.embeddings(sources, frames, upright_faces)
        thresholds = self.models.gender_thresholds(ages)
        for k, ((i, det, _), angle, p, age, threshold) in enumerate(zip(owners, angles, p_female, ages, thresholds)):
            results[i].append(Face(box=det.box, landmarks=det.landmarks, confidence=det.confidence,
                                   rotation=round(float(angle), 2), gender="f" if p >= threshold else "m",
                                   p_female=round(float(p), 4), age=round(float(max(age, 0.0)), 1),
                                   embedding=None if embeddings is None else to_blob(embeddings[k])))
        return results

    def identity_crops(self, images: list[np.ndarray], frames: list[Detection | None],
                       upright_faces: np.ndarray) -> np.ndarray:
        """The faces as the identity model sees them (``identity_crop``): dlib's face chip placed by
        the landmarks of ``frames`` (the detection whose landmarks frame each face; None for a face
        framed by its box), or for ``upright`` and faces without landmarks the de-rotated crop the
        gender/age model saw, resized to the identity model's input."""
        size = self.identity.input_size
        crops, photos = [], {}  # each photo as a Pillow image once, for the chips of its faces
        for image, frame, face in zip(images, frames, upright_faces):
            chip = None
            if self.identity_crop == "chip" and frame is not None:
                if id(image) not in photos:
                    photos[id(image)] = Image.fromarray(image)
                chip = face_chip(photos[id(image)], frame, size)
            if chip is None:
                chip = face if face.shape[0] == size else np.asarray(
                    Image.fromarray(face).resize((size, size), Image.Resampling.BILINEAR))
            crops.append(chip)
        return np.stack(crops)

    def embeddings(self, images: list[np.ndarray], frames: list[Detection | None],
                   upright_faces: np.ndarray) -> np.ndarray | None:
        """The identity embeddings (n, 128) of the faces (see :meth:`identity_crops`); None without
        an identity model."""
        if self.identity is None:
            return None
        return self.identity(self.identity_crops(images, frames, upright_faces))


def in_turned_frame(face: Face, turns: int, shape: tuple[int, ...]) -> Face:
    """A face read in ``np.rot90(image, turns)`` (turned counter-clockwise) in the frame of ``image``
    of ``shape``: box, landmarks and rotation."""
    back = turned_back(face, turns, shape)
    rotation = float(wrapped_angles(np.array(face.rotation - 90.0 * turns)))
    return replace(face, box=back.box, landmarks=back.landmarks, rotation=round(rotation, 2))


def located_tilted(pixels: np.ndarray, det: Detection, angle: float,
                   detect: Callable[[np.ndarray], list[Detection]]) -> tuple[np.ndarray, Detection] | None:
    """The face of ``det``, tilted by ``angle`` (degrees, counter-clockwise), found again by
    ``detect`` on its surroundings (twice its box) turned back by that angle about its centre:
    (the turned surroundings, the detection nearest the centre, within half the face's size, in
    their pixels), or None when none is."""
    around = surroundings(pixels, det)
    if around is None:
        return None
    region, _, _, centre, reach = around
    upright = rotated(region, -angle, centre)
    best = nearest_within(detect(upright), centre, reach)
    return None if best is None else (upright, best)
