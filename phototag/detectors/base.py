"""What every face detector shares: the :class:`Detector` base class (resizing, quarter turns,
limits, a second look at weak detections turned) and the geometry of detections (turning back,
merging duplicates, a face found again on its surroundings turned upright)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from ..records import Detection, to_full_resolution

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
DUPLICATE_IOU = 0.4  # boxes overlapping more than this are one face (two scales, quarter turns)
WEAK_CONFIDENCE = 0.2  # a face turned by a quarter or half turn often scores this low (YuNet) ...
TURNED_CANDIDATES = 3  # ... so a photo without a face has its best few such detections looked at turned
# A photo still without a face is looked at whole, turned by each quarter (a face filling much of a photo
# stored turned, a portrait or a tight crop, often scores nothing at all); these looks, and those at the
# weak detections' surroundings, are made at most this large (px, long side)
TURNED_LOOK_SIZE = 400


class Detector:
    """A face detector run on a copy whose long side is at most ``detect_size``.

    ``min_face``: smallest face (longer box side) to report, in full-resolution displayed pixels;
    0 means whatever the detection size allows. ``min_confidence``: the detector's score.
    Subclasses set ``name``, ``min_input_face`` (smallest face, in detector pixels, that they find
    reliably) and implement :meth:`_detect` on the resized copy.
    """

    name = ""
    min_input_face = 20
    default_confidence = 0.8
    default_detect_size = 1200

    def __init__(self, min_face: int = 0, min_confidence: float | None = None, detect_size: int | None = None,
                 any_angle: bool = False):
        self.min_face = min_face
        self.min_confidence = self.default_confidence if min_confidence is None else min_confidence
        self.detect_size = detect_size or self.default_detect_size
        self.any_angle = any_angle
        self._lock = threading.Lock()  # the chain's thread may ask again (see FaceChain.predict)

    def detection_factor(self, shape: tuple[int, ...], scale: float) -> float:
        """How much to shrink an image of ``shape`` (decoded at ``scale``) before detection."""
        factor = min(1.0, self.detect_size / max(shape[0], shape[1]))
        if self.min_face:
            factor = max(factor, self.min_input_face / (self.min_face * scale))
        return min(1.0, factor)

    def detect(self, rgb: np.ndarray, scale: float = 1.0, *, look_turned: bool = True) -> list[Detection]:
        """Faces in an RGB uint8 image decoded at ``scale`` (decoded px per full-resolution px),
        left to right, in the image's own pixel coordinates.

        A face turned by a quarter or half turn (a photo stored turned without an orientation tag)
        often scores under ``min_confidence``: in an image where no face passes it, the best weak
        detections (:data:`WEAK_CONFIDENCE` and more, at most :data:`TURNED_CANDIDATES`) are looked
        at again on their surroundings turned by one, two and three quarter turns, and a face found
        there is kept, in this image's pixels; where that finds none either, the whole image is
        looked at turned, shrunk (``look_turned``; not with ``any_angle``, which looks at the whole
        image turned at full size)."""
        factor = self.detection_factor(rgb.shape, scale)
        small = resized(rgb, factor)
        with self._lock:  # one image at a time: YuNet's network keeps the input size between calls
            found = self._detect(small)
            if self.any_angle:  # also on the image turned by 90, 180 and 270 degrees, mapped back
                for turns in (1, 2, 3):
                    found += [turned_back(d, turns, small.shape) for d in self._detect(np.rot90(small, turns))]
        if self.any_angle:
            found = merge_duplicates(found)
        found = [to_full_resolution(d, factor) for d in found]
        large = [d for d in found if max(d.box[2:]) >= self.min_face * scale]
        kept = [d for d in large if d.confidence >= self.min_confidence]
        if not kept and look_turned and not self.any_angle:
            weak = sorted((d for d in large if d.confidence >= WEAK_CONFIDENCE), key=lambda d: -d.confidence)
            kept = self._found_turned(rgb, weak[:TURNED_CANDIDATES], scale) or self._found_whole_turned(rgb, scale)
        return sorted(kept, key=lambda d: (d.box[0], d.box[1]))

    def _found_turned(self, rgb: np.ndarray, candidates: list[Detection], scale: float) -> list[Detection]:
        """The faces found on the candidates' surroundings (shrunk to :data:`TURNED_LOOK_SIZE` at most)
        turned by a quarter, a half or three quarter turns (the surest of the three for each), in
        ``rgb``'s pixels."""
        def again(region: np.ndarray, factor: float) -> list[Detection]:
            return self.detect(region, scale * factor, look_turned=False)

        found = []
        for candidate in candidates:
            seen = [d for quarter in (1, 2, 3)
                    if (d := located_upright(rgb, candidate, quarter, again, TURNED_LOOK_SIZE)) is not None]
            if seen:
                found.append(max(seen, key=lambda d: d.confidence))
        return merge_duplicates(found)

    def _found_whole_turned(self, rgb: np.ndarray, scale: float) -> list[Detection]:
        """The faces found on the whole image (shrunk to :data:`TURNED_LOOK_SIZE` at most) turned by the
        one quarter, half or three quarter turn whose surest face is surest, in ``rgb``'s pixels."""
        factor = min(1.0, TURNED_LOOK_SIZE / max(rgb.shape[0], rgb.shape[1]))
        small = resized(rgb, factor)
        best: list[Detection] = []
        for turns in (1, 2, 3):
            with self._lock:
                found = self._detect(np.ascontiguousarray(np.rot90(small, turns)))
            found = [to_full_resolution(turned_back(d, turns, small.shape), factor) for d in found
                     if d.confidence >= self.min_confidence]
            found = [d for d in found if max(d.box[2:]) >= self.min_face * scale]
            if found and (not best or max(d.confidence for d in found) > max(d.confidence for d in best)):
                best = found
        return merge_duplicates(best)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        raise NotImplementedError


def resized(rgb: np.ndarray, factor: float) -> np.ndarray:
    """``rgb`` shrunk by ``factor`` (OpenCV's area averaging; unchanged when ``factor`` is 1)."""
    if factor >= 1.0:
        return rgb
    import cv2

    size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def turned_back(det: Detection, turns: int, shape: tuple[int, ...]) -> Detection:
    """A detection made in ``np.rot90(image, turns)`` (turned counter-clockwise) in the pixels of
    ``image`` of ``shape``."""
    height, width = shape[:2]

    def back(x: float, y: float) -> tuple[float, float]:
        for k in range(turns, 0, -1):  # undo one counter-clockwise quarter turn at a time
            w = width if k % 2 else height  # width of the image after k - 1 turns
            x, y = w - y, x
        return float(x), float(y)

    x, y, w, h = det.box
    corners = [back(x, y), back(x + w, y), back(x, y + h), back(x + w, y + h)]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return Detection(box=(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)),
                     landmarks={k: back(*p) for k, p in det.landmarks.items()}, confidence=det.confidence,
                     turned_look=det.turned_look or turns % 4 != 0)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def merge_duplicates(detections: list[Detection], threshold: float = DUPLICATE_IOU) -> list[Detection]:
    """Keep the best-scoring of the detections whose boxes overlap by more than ``threshold``."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.confidence):
        if all(iou(det.box, k.box) <= threshold for k in kept):
            kept.append(det)
    return kept


def surroundings(pixels: np.ndarray, det: Detection) -> tuple[np.ndarray, float, float, float, float] | None:
    """The pixels around a detection (twice its box), with their left and top edge in ``pixels``, the
    face's centre in them and its size; None for a box outside the image."""
    x, y, w, h = det.box
    cx, cy, reach = x + w / 2, y + h / 2, max(w, h)
    x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
    region = pixels[y0:int(cy + reach), x0:int(cx + reach)]
    return (region, x0, y0, (cx - x0, cy - y0), reach) if region.size else None


def nearest_within(found: list[Detection], centre: tuple[float, float], reach: float) -> Detection | None:
    """The detection whose centre is nearest ``centre``, within ``reach / 2`` (None when none is)."""
    distance = {id(d): math.dist((d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2), centre) for d in found}
    near = [d for d in found if distance[id(d)] <= reach / 2]
    return min(near, key=lambda d: distance[id(d)]) if near else None


def located_upright(pixels: np.ndarray, det: Detection, quarter: int,
                    detect: Callable[[np.ndarray, float], list[Detection]], size: int | None = None) -> Detection | None:
    """The face of ``det``, lying ``quarter`` quarter turns (counter-clockwise) from upright, found
    again by ``detect`` (image, its scale) on its surroundings (twice its box; shrunk to ``size`` px
    at most, when given) turned back upright, in ``pixels``' coordinates: the detection nearest its
    centre, within half its size (None when none is)."""
    around = surroundings(pixels, det)
    if around is None:
        return None
    region, x0, y0, centre, reach = around
    factor = 1.0 if size is None else min(1.0, size / max(region.shape[0], region.shape[1]))
    small = resized(region, factor)
    back = (4 - quarter) % 4  # counter-clockwise quarter turns that make the face upright
    found = [to_full_resolution(turned_back(d, back, small.shape), factor)
             for d in detect(np.ascontiguousarray(np.rot90(small, back)), factor)]
    best = nearest_within(found, centre, reach)
    if best is None:
        return None
    return Detection(box=(best.box[0] + x0, best.box[1] + y0, *best.box[2:]), confidence=best.confidence,
                     landmarks={k: (px + x0, py + y0) for k, (px, py) in best.landmarks.items()},
                     turned_look=best.turned_look)
