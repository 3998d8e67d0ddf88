"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as a Keras model.

The network of dlib's ``dnn_face_recognition_ex`` (``anet_type``): a 7×7/2 convolution, max pool
3×3/2, then residual levels 4..0 of 32, 64, 128, 256 and 256 filters (3, 4, 3, 3 and 1 blocks; every
level after the first starts with a stride-2 block), the average over all positions and a 128-d
linear descriptor. dlib's rules are kept exactly: a strided convolution or pool has no padding (a
stride-1 3×3 convolution pads 1), a stride-2 block's shortcut is the 2×2/2 average of its input, and
``add_prev`` zero-pads the smaller operand (:class:`phototag.layers.ZeroPadAdd`). dlib's ``affine``
layers (fixed per-channel scale and shift) are BatchNormalization layers with mean 0 and variance
``1 - epsilon``, so the model exports to LiteRT and fine-tunes with BatchNorm frozen like the others.

:func:`read_dat` parses dlib's serialised network with numpy alone (the stream format of dlib's
``serialize``: each layer's version header, then the layers input first), no dlib needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from phototag.layers import ZeroPadAdd

MEAN_RGB = (122.782, 117.001, 104.298)  # dlib's input_rgb_image_sized: (pixel - mean) / 256
SCALE = 256.0
LEVELS = ((4, 32, 3), (3, 64, 4), (2, 128, 3), (1, 256, 3), (0, 256, 1))  # (level, filters, blocks)
MIN_SIZE = 103  # smaller inputs leave level 0 nothing to convolve
AFFINE_EPSILON = 2.0**-10  # variance 1 - epsilon is exact in float32: BatchNorm divides by exactly 1


WEIGHTS_PACKAGE = "face_recognition_models"  # PyPI face-recognition-models: dlib's weights, CC0 1.0
WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class WeightsError(ValueError):
    """dlib's weights are missing, or the file is not the network this module builds."""


def installed_weights() -> Path:
    """The ``.dat`` file of the installed face-recognition-models package (found without importing it:
    its ``__init__`` needs setuptools' ``pkg_resources``)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    path = Path(spec.origin).parent / "models" / WEIGHTS_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise WeightsError(f"dlib_resnet needs dlib's weights: pip install face-recognition-models (or "
                           f'pip install -e ".[train]"), or pass --pretrained PATH/{WEIGHTS_FILE}')
    return path


class _Stream:
    """dlib's ``serialize`` primitives over a byte buffer."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self) -> int:
        """dlib's packed integer: a byte with the sign (0x80) and the length, then little-endian bytes."""
        head = self.byte()
        n = head & 0x0F
        value = int.from_bytes(self.data[self.pos:self.pos + n], "little")
        self.pos += n
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return mantissa * 2.0**exponent

    def string(self) -> str:
        n = self.int()
        self.pos += n
        return self.data[self.pos - n:self.pos].decode("ascii")

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise WeightsError(f"unknown tensor version at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        n = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", n, self.pos).reshape(shape)
        self.pos += 4 * n
        return values

    def alias(self) -> tuple[int, ...]:
        if self.int() != 1:
            raise WeightsError(f"unknown alias_tensor version at byte {self.pos}")
        return tuple(self.int() for _ in range(4))


def _layer_details(s: _Stream) -> dict:
    """One layer's details (dlib's ``serialize`` of con_, affine_, relu_, pools, add_prev_, fc_)."""
    kind = s.string()
    if kind == "con_4":
        params = s.tensor().ravel()
        s.int(), s.int(), s.int()  # filters, rows, columns: the kernel's shape below repeats them
        stride, padding = (s.int(), s.int()), (s.int(), s.int())
        kernel, bias = s.alias(), s.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            s.float()
        n = int(np.prod(kernel))
        return {"type": "con", "stride": stride, "padding": padding,
                "kernel": params[:n].reshape(kernel), "bias": params[n:n + int(np.prod(bias))]}
    if kind == "affine_":
        params = s.tensor().ravel()
        n = int(np.prod(s.alias()))  # gamma, then beta of the same shape
        s.alias()
        s.int()  # mode: CONV_MODE
        return {"type": "affine", "gamma": params[:n], "beta": params[n:2 * n]}
    if kind in ("max_pool_2", "avg_pool_2"):
        size, stride, padding = ((s.int(), s.int()) for _ in range(3))
        return {"type": kind[:-2], "size": size, "stride": stride, "padding": padding}
    if kind == "fc_2":
        outputs, inputs = s.int(), s.int()
        params = s.tensor().ravel()
        s.alias(), s.alias()  # weights (inputs, outputs), biases
        if s.int() != 1:  # bias mode FC_NO_BIAS (FC_HAS_BIAS is 0)
            raise WeightsError("fc layer with a bias")
        for _ in range(4):
            s.float()
        return {"type": "fc", "kernel": params[:inputs * outputs].reshape(inputs, outputs)}
    if kind in ("relu_", "add_prev_"):
        return {"type": kind[:-1]}
    raise WeightsError(f"unknown dlib layer {kind!r}")


def _network(s: _Stream) -> list[dict]:
    if s.int() != 1 or s.string() != "loss_metric_2":
        raise WeightsError("not a dlib loss_metric network")
    s.float(), s.float()  # margin, distance threshold
    layers = 0
    while (version := s.int()) != 3:  # add_layer 2, tag/skip 1 ... down to the input layer's add_layer 3
        layers += version == 2
    if s.string() != "input_rgb_image_sized":
        raise WeightsError("unexpected input layer")
    mean = tuple(s.float() for _ in range(3))
    s.int(), s.int()  # NR, NC
    if not np.allclose(mean, MEAN_RGB, atol=1e-3):
        raise WeightsError(f"input mean {mean}, expected {MEAN_RGB}")
    out = []
    for i in range(layers + 1):
        out.append(_layer_details(s))
        s.pos += 3  # bools: this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
        s.tensor(), s.tensor(), s.tensor()  # x_grad, cached_output, params_grad (grad_final)
        if i == 0:
            s.int()  # the input add_layer's sample expansion factor
    if s.pos != len(s.data):
        raise WeightsError(f"{len(s.data) - s.pos} bytes left after the network")
    return out


def read_dat(path: str | Path) -> list[dict]:
    """The layers of a serialised dlib metric-learning network, input first (tags and skips dropped).

    Each layer is a dict with its ``type`` (con, affine, relu, max_pool, avg_pool, add_prev, fc) and its
    parameters as numpy arrays in dlib's layout (con kernels (out, in, rows, cols), fc (in, out)).
    """
    try:
        return _network(_Stream(Path(path).read_bytes()))
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    except (IndexError, ValueError) as exc:  # a truncated or foreign file
        raise WeightsError(f"{path}: not dlib's face-recognition network ({exc})") from exc


def _conv(x, filters: int, size: int, stride: int, name: str):
    """dlib's con: padding size // 2 at stride 1, none when strided."""
    return keras.layers.Conv2D(filters, size, stride, "same" if stride == 1 else "valid", name=name)(x)


def _affine(x, name: str):
    return keras.layers.BatchNormalization(epsilon=AFFINE_EPSILON, name=name)(x)


def _block(x, filters: int, down: bool, name: str):
    """dlib's ares / ares_down: relu(add_prev(affine(con(relu(affine(con(x))))), shortcut))."""
    y = _conv(x, filters, 3, 2 if down else 1, f"{name}_conv1")
    y = keras.layers.ReLU(name=f"{name}_relu1")(_affine(y, f"{name}_affine1"))
    y = _affine(_conv(y, filters, 3, 1, f"{name}_conv2"), f"{name}_affine2")
    shortcut = keras.layers.AveragePooling2D(2, 2, name=f"{name}_pool")(x) if down else x
    return keras.layers.ReLU(name=f"{name}_relu")(ZeroPadAdd(name=f"{name}_add")([y, shortcut]))


def build(input_size: int = 150) -> keras.Model:
    """The network up to its last residual level: preprocessed pixels → a (n, n, 256) feature map
    (2×2 at 150 px; dlib's descriptor is :func:`descriptor_model` on top)."""
    if input_size < MIN_SIZE:
        raise ValueError(f"dlib_resnet needs an input of at least {MIN_SIZE} px, not {input_size}")
    face = keras.Input((input_size, input_size, 3), name="pixels")
    x = _affine(_conv(face, 32, 7, 2, "conv"), "affine")
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(3, 2, name="max_pool")(x)
    for level, filters, blocks in LEVELS:
        for b in range(blocks):
            x = _block(x, filters, down=level < 4 and b == 0, name=f"level{level}_block{b + 1}")
    return keras.Model(face, x, name="dlib_resnet")


def preprocess() -> keras.layers.Layer:
    """dlib's input scaling of RGB pixels 0..255: ``(pixel - mean) / 256``."""
    return keras.layers.Normalization(mean=list(MEAN_RGB), variance=[SCALE**2] * 3, name="preprocess")


def _check_geometry(layer: keras.layers.Layer, dlib: dict) -> None:
    stride = tuple(layer.strides)
    pad = (0, 0) if layer.padding == "valid" else tuple(k // 2 for k in layer.kernel_size)
    if dlib["stride"] != stride or dlib["padding"] != pad:
        raise WeightsError(f"{layer.name}: dlib stride {dlib['stride']} padding {dlib['padding']}, "
                       f"the Keras layer {stride} {pad}")


def load_weights(model: keras.Model, layers: list[dict]) -> None:
    """Copy the con and affine parameters of :func:`read_dat`'s layers, in order, into ``model``'s
    Conv2D and BatchNormalization layers (a model from :func:`build`)."""
    weighted = [layer for layer in model.layers
                if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization))]
    params = [d for d in layers if d["type"] in ("con", "affine")]
    kinds = {"con": keras.layers.Conv2D, "affine": keras.layers.BatchNormalization}
    if len(weighted) != len(params) or not all(isinstance(k, kinds[d["type"]]) for k, d in zip(weighted, params)):
        raise WeightsError(f"the file's {len(params)} con and affine layers do not match {model.name}'s {len(weighted)}")
    for layer, d in zip(weighted, params):
        if d["type"] == "con":
            _check_geometry(layer, d)
            layer.set_weights([d["kernel"].transpose(2, 3, 1, 0), d["bias"]])
        else:
            zeros = np.zeros_like(d["gamma"])
            layer.set_weights([d["gamma"], d["beta"], zeros, zeros + 1 - AFFINE_EPSILON])


def descriptor_model(path: str | Path | None = None, input_size: int = 150) -> keras.Model:
    """dlib's whole network with its weights (``path``, default :func:`installed_weights`): RGB pixels
    0..255 → the 128-d face descriptor."""
    path = path or installed_weights()
    layers = read_dat(path)
    if layers[-1]["type"] != "fc":
        raise WeightsError(f"{path}: the network does not end in a linear layer")
    features = build(input_size)
    load_weights(features, layers)
    face = keras.Input((input_size, input_size, 3), name="face")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool_everything")(features(preprocess()(face)))
    fc = keras.layers.Dense(layers[-1]["kernel"].shape[1], use_bias=False, name="fc")
    model = keras.Model(face, fc(x), name="dlib_descriptor")
    fc.set_weights([layers[-1]["kernel"]])
    return model
