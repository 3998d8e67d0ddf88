"""One object for the whole face pipeline of an image: detector + rotation/gender/age chain.

    from phototag import FaceAnalyzer
    analyzer = FaceAnalyzer()                       # YuNet + the shipped models
    faces = analyzer.analyze_file("beach.jpg")      # [Face(box, landmarks, rotation, gender, age, ...)]

Everything heavy (OpenCV, the models, TensorFlow for MTCNN or a GPU) is loaded when the analyzer
is built, not when this module is imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import detectors
from .chain import FaceChain
from .images import decode_file
from .models import load_models
from .records import Detection, Face, to_full_resolution
from .runtime import native_output_hidden


class FaceAnalyzer:
    """A face detector and the model chain, ready to analyse images.

    ``detector``: ``yunet`` or ``mtcnn`` (or a :class:`~phototag.detectors.Detector`);
    ``min_face``, ``min_confidence``, ``detect_size``: the detector's limits (None: its defaults);
    ``any_angle``: also find faces turned by 90, 180 or 270 degrees (see :func:`detectors.create`);
    ``models``: a model folder (default: the shipped models); ``engine``: ``auto``, ``litert`` or
    ``keras`` (see :func:`phototag.models.load_models`); ``batch_size``: faces per model call;
    ``flip_average``: average each model with the mirrored face; ``verbose``: let the libraries'
    start-up messages through.
    """

    def __init__(self, detector: str | detectors.Detector = detectors.DEFAULT, *, models: str | Path | None = None,
                 engine: str = "auto", min_face: int = 0, min_confidence: float | None = None,
                 detect_size: int | None = None, any_angle: bool = False, batch_size: int = 64,
                 flip_average: bool = True, verbose: bool = False):
        with native_output_hidden(not verbose):
            model_set = load_models(models, engine=engine, verbose=verbose)
            if isinstance(detector, str):
                detector = detectors.create(detector, min_face, min_confidence, detect_size, any_angle,
                                            device="GPU:0" if model_set.device != "CPU" else "CPU:0")
        self.detector = detector
        self.chain = FaceChain(model_set, batch_size=batch_size, flip_average=flip_average)

    @property
    def version(self) -> str:
        """The model version recorded with every photo analysed."""
        return self.chain.version

    def describe(self) -> str:
        """Which detector, engine and device are used, in words."""
        return f"detector {self.detector.name}; models {self.chain.models.describe()}"

    def detect(self, rgb: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Faces in an RGB uint8 image decoded at ``scale`` (see :meth:`Detector.detect`)."""
        return self.detector.detect(rgb, scale)

    def predict(self, items: list[tuple[np.ndarray, list[Detection]]], oriented: list[bool] | None = None,
                scales: list[float] | None = None) -> list[list[Face]]:
        """The chain's faces for many (image, detections) pairs at once, in each image's pixels;
        per image, ``oriented``: whether an EXIF/HEIF orientation was applied to it, ``scales``:
        its decoded pixels per full-resolution pixel (see :meth:`phototag.chain.FaceChain.predict`)."""
        return self.chain.predict(items, detect=self._detect_again, oriented=oriented, scales=scales)

    def _detect_again(self, rgb: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """The detector as the chain asks it again (a face's surroundings turned, a photo turned
        back): the faces that pass its threshold only, without looking at weak detections turned
        (the chain weighs the turns itself)."""
        return self.detector.detect(rgb, scale, look_turned=False)

    def analyze(self, rgb: np.ndarray) -> list[Face]:
        """The faces of one RGB uint8 image, in its pixels."""
        return self.predict([(rgb, self.detect(rgb))])[0]

    def analyze_file(self, path: str | Path) -> list[Face]:
        """The faces of an image file, in full-resolution pixels of the displayed frame (EXIF
        orientation applied)."""
        pixels, info = decode_file(path)
        detections = self.detect(pixels, info.scale)
        faces = self.predict([(pixels, detections)], oriented=[info.orientation != 1], scales=[info.scale])[0]
        return [to_full_resolution(f, info.scale) for f in faces]
