"""Face detection with MTCNN (the ``mtcnn`` package, TensorFlow).

MTCNN runs on a copy of the decoded image scaled so that its long side is at most
``detect_size``, but never so small that a face of ``min_face`` full-resolution pixels drops below
MTCNN's smallest reliable face (20 px). Detections are returned in the decoded image's pixels.
"""

from __future__ import annotations

import numpy as np
from mtcnn import MTCNN
from PIL import Image

from .records import Detection

MTCNN_MIN_FACE = 20  # px in the detector's input; mtcnn 1.0 finds nothing when min_face_size > ~20
MTCNN_MIN_INPUT = 12  # px: PNet's input size
DEFAULT_DETECT_SIZE = 1200
DEFAULT_MIN_CONFIDENCE = 0.8  # MTCNN's own ONet threshold
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class FaceDetector:
    """MTCNN with the scan's size and confidence limits.

    ``min_face``: smallest face (longer box side) to report, in full-resolution displayed pixels;
    0 means whatever ``detect_size`` allows. ``min_confidence``: MTCNN's final (ONet) score.
    """

    def __init__(self, min_face: int = 0, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 detect_size: int = DEFAULT_DETECT_SIZE, device: str = "CPU:0"):
        self.min_face = min_face
        self.min_confidence = min_confidence
        self.detect_size = detect_size
        self._mtcnn = MTCNN(device=device)

    def detection_factor(self, shape: tuple[int, ...], scale: float) -> float:
        """How much to shrink an image of ``shape`` (decoded at ``scale``) before running MTCNN."""
        factor = min(1.0, self.detect_size / max(shape[0], shape[1]))
        if self.min_face:
            factor = max(factor, MTCNN_MIN_FACE / (self.min_face * scale))
        return min(1.0, factor)

    def detect(self, pixels: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Faces in an RGB uint8 image decoded at ``scale`` (decoded px per full-resolution px),
        left to right, in the image's own pixel coordinates."""
        factor = self.detection_factor(pixels.shape, scale)
        small = pixels
        if factor < 1.0:
            size = (max(1, round(pixels.shape[1] * factor)), max(1, round(pixels.shape[0] * factor)))
            small = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        if min(small.shape[:2]) < MTCNN_MIN_INPUT:
            return []
        fx, fy = small.shape[1] / pixels.shape[1], small.shape[0] / pixels.shape[0]
        found = self._mtcnn.detect_faces(small, min_face_size=MTCNN_MIN_FACE,
                                         threshold_onet=self.min_confidence)
        detections = []
        for f in found:
            x, y, w, h = (float(v) for v in f["box"])
            x, y, w, h = x / fx, y / fy, w / fx, h / fy
            if float(f["confidence"]) < self.min_confidence or max(w, h) < self.min_face * scale:
                continue
            landmarks = {k: (float(f["keypoints"][k][0]) / fx, float(f["keypoints"][k][1]) / fy)
                         for k in LANDMARKS}
            detections.append(Detection(box=(x, y, w, h), landmarks=landmarks, confidence=float(f["confidence"])))
        detections.sort(key=lambda d: (d.box[0], d.box[1]))
        return detections
