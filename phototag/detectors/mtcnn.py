"""MTCNN (the ``mtcnn`` package, TensorFlow), kept for comparison with YuNet (``--detector mtcnn``)."""

from __future__ import annotations

import numpy as np

from ..extras import require
from ..records import Detection
from .base import LANDMARKS, Detector

MTCNN_MIN_FACE = 20  # px in the detector's input; mtcnn 1.0 finds nothing when min_face_size > ~20
MTCNN_MIN_INPUT = 12  # px: PNet's input size


class MTCNNDetector(Detector):
    """MTCNN; ``min_confidence`` is its final (ONet) threshold. Its ``left_eye`` is the eye on the
    image's left, as in phototag's convention."""

    name = "mtcnn"
    min_input_face = MTCNN_MIN_FACE
    default_confidence = 0.8
    default_detect_size = 1200

    def __init__(self, min_face: int = 0, min_confidence: float | None = None, detect_size: int | None = None,
                 any_angle: bool = False, device: str = "CPU:0"):
        super().__init__(min_face, min_confidence, detect_size, any_angle)
        require("mtcnn", "the MTCNN detector")
        from mtcnn import MTCNN

        self._mtcnn = MTCNN(device=device)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        if min(rgb.shape[:2]) < MTCNN_MIN_INPUT:
            return []
        found = self._mtcnn.detect_faces(rgb, min_face_size=MTCNN_MIN_FACE, threshold_onet=self.min_confidence)
        return [Detection(box=tuple(float(v) for v in f["box"]),
                          landmarks={k: (float(f["keypoints"][k][0]), float(f["keypoints"][k][1])) for k in LANDMARKS},
                          confidence=float(f["confidence"])) for f in found]
