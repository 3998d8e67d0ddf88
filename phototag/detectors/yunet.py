"""YuNet (OpenCV Zoo, MIT licence) through ``cv2.FaceDetectorYN``; the model file ships in ``models/``.

YuNet finds faces of about 10-300 px in its input; larger ones score lower and are lost. Each image
is therefore detected twice, at ``detect_size`` and again at :data:`LARGE_FACE_SIZE` for the faces
that fill much of the frame, and the two results are merged.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..records import Detection, to_full_resolution
from .base import LANDMARKS, WEAK_CONFIDENCE, Detector, merge_duplicates, resized

MODEL_FILE = "face_detection_yunet.onnx"
LARGE_FACE_SIZE = 400  # long side of the second pass (faces over ~1/4 of the frame)
NMS_IOU = 0.3
TOP_K = 5000


def model_path() -> Path:
    """The YuNet file shipped with the package (``models/`` in a checkout)."""
    from ..models import package_model_dir

    return package_model_dir() / MODEL_FILE


class YuNetDetector(Detector):
    """YuNet on a copy at ``detect_size`` plus one at :data:`LARGE_FACE_SIZE`.

    YuNet's landmarks come as right eye, left eye (of the person: the eye on the image's left
    first), nose, right and left mouth corner, i.e. image-left before image-right, which is
    phototag's ``left_eye, right_eye, nose, mouth_left, mouth_right``.
    """

    name = "yunet"
    min_input_face = 24
    default_confidence = 0.6  # see README: recall vs other detections
    default_detect_size = 1200

    def __init__(self, min_face: int = 0, min_confidence: float | None = None, detect_size: int | None = None,
                 any_angle: bool = False):
        super().__init__(min_face, min_confidence, detect_size, any_angle)
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # "setPreferableTarget" warning
        # weak detections too: a photo without a face looks at them turned (see Detector.detect)
        self._net = cv2.FaceDetectorYN.create(str(model_path()), "", (320, 320), min(self.min_confidence, WEAK_CONFIDENCE),
                                              NMS_IOU, TOP_K)
        self._size: tuple[int, int] | None = None

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        found = self._run(rgb)
        long_side = max(rgb.shape[:2])
        if long_side > 1.5 * LARGE_FACE_SIZE:
            f = LARGE_FACE_SIZE / long_side
            found += [to_full_resolution(d, f) for d in self._run(resized(rgb, f))]
        return merge_duplicates(found)

    def _run(self, rgb: np.ndarray) -> list[Detection]:
        size = (rgb.shape[1], rgb.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, rows = self._net.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
        if rows is None:
            return []
        return [Detection(box=tuple(float(v) for v in row[:4]),
                          landmarks={k: (float(row[4 + 2 * i]), float(row[5 + 2 * i])) for i, k in enumerate(LANDMARKS)},
                          confidence=float(row[14])) for row in rows]
