"""Face detectors behind one interface: ``create(name, ...)`` returns a :class:`Detector`.

Every detector returns :class:`~phototag.records.Detection` records (box, five landmarks, score)
in phototag's convention: landmarks ``left_eye``, ``right_eye``, ``nose``, ``mouth_left``,
``mouth_right`` where *left* and *right* are the sides of the image when the face is upright
(``left_eye`` is the person's right eye), coordinates in the pixels of the image passed in.

``yunet`` (default): OpenCV's YuNet (``cv2.FaceDetectorYN``), fast and finds faces tilted up to
about ±60°. ``mtcnn``: the TensorFlow MTCNN of the ``mtcnn`` package (the ``mtcnn`` extra), kept for comparison.
"""

from __future__ import annotations

from .base import LANDMARKS, Detector, located_upright, merge_duplicates, nearest_within, resized, surroundings, turned_back

__all__ = ["DEFAULT", "LANDMARKS", "NAMES", "Detector", "create", "located_upright", "merge_duplicates", "nearest_within",
           "resized", "surroundings", "turned_back"]

NAMES = ("yunet", "mtcnn")
DEFAULT = "yunet"


def create(name: str = DEFAULT, min_face: int = 0, min_confidence: float | None = None,
           detect_size: int | None = None, any_angle: bool = False, device: str = "CPU:0") -> Detector:
    """The detector called ``name`` (one of :data:`NAMES`); ``any_angle``: also find faces turned
    by 90, 180 or 270 degrees (four times the detection time); ``device`` is for MTCNN (TensorFlow)."""
    if name == "yunet":
        from .yunet import YuNetDetector

        return YuNetDetector(min_face, min_confidence, detect_size, any_angle)
    if name == "mtcnn":
        from .mtcnn import MTCNNDetector

        return MTCNNDetector(min_face, min_confidence, detect_size, any_angle, device=device)
    raise ValueError(f"unknown detector {name!r} (choose from {', '.join(NAMES)})")
