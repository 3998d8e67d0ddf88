"""The fast CPU runtime: LiteRT files give Keras' predictions, and need no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from phototag.chain import FaceChain
from phototag.models import load_models, shipped_model_dir
from phototag.runtime import NVIDIA_DRIVER
from phototag.testing.photos import face_crops


def real_crops(size: int, count: int = 12) -> np.ndarray:
    """Face crops at ``size`` px, every other one turned by 30 degrees (uint8)."""
    crops = []
    for i, crop in enumerate(face_crops()[:count]):
        face = crop.image.resize((size, size), Image.Resampling.BILINEAR)
        crops.append(np.asarray(face.rotate(30 * (i % 2), resample=Image.Resampling.BILINEAR)))
    return np.stack(crops)


@pytest.fixture(scope="module")
def shipped():
    return {engine: load_models(engine=engine) for engine in ("keras", "litert")}


def test_shipped_litert_models_equal_keras_on_real_faces(shipped):
    keras_models, lite = shipped["keras"], shipped["litert"]
    assert (keras_models.engine, lite.engine) == ("keras", "litert") and keras_models.version == lite.version
    crops = real_crops(lite.rotation_input_size).astype(np.float32)
    assert np.allclose(keras_models.rotation(crops), lite.rotation(crops), atol=2e-3)  # float16 weights
    crops = real_crops(lite.input_size).astype(np.float32)
    expected, got = keras_models.attributes(crops), lite.attributes(crops)
    # the age model's LiteRT file has int8 weights (phototag.export.RUNTIME_WEIGHTS): on these faces,
    # half of them turned by 30° and read once, P(female) moves by 0.084 and ages by 1.1 years at most
    # (mirror-averaged on the 2,154 upright UTKFace test faces, against the float16 file: 0.055 and
    # 1.44 years at most, medians 1e-4 and 0.06 years, no gender changed)
    p_gap, age_gap = np.abs(expected["gender"] - got["gender"]), np.abs(expected["age"] - got["age"])
    assert p_gap.max() < 0.12 and p_gap.mean() < 0.03
    assert age_gap.max() < 1.5 and age_gap.mean() < 0.6  # years


def test_the_chain_predicts_the_same_through_both_engines(shipped):
    results = {}
    for engine, models in shipped.items():
        chain = FaceChain(models, batch_size=8)  # 12 faces: a full and a padded batch
        wide = int(np.ceil(models.input_size * 1.5 / 2) * 2)
        angles, _, p_female, age = chain.predict_crops(real_crops(models.rotation_input_size), real_crops(wide))
        results[engine] = angles, p_female, age
    (a_k, p_k, age_k), (a_l, p_l, age_l) = results["keras"], results["litert"]
    # A 30° face is read twice (the second time de-rotated), so the engines' float16 differences add
    # up in its angle (0.05° measured), and the attribute model is that sensitive to it: on the same
    # engine (LiteRT, mirror-averaged), turning these faces by 0.05° more moves ages by 0.45 y on
    # average and up to 1.35 y (1.6 y with the crops Pillow cut). With the age model's int8 LiteRT
    # file the engines' ages differ by up to 1.92 y here (1.05 y with Pillow's crops).
    assert np.abs(a_k - a_l).max() < 0.2 and np.abs(p_k - p_l).max() < 2e-2 and np.abs(age_k - age_l).max() < 2.5  # years
    assert np.median(np.abs(a_k[1::2] - 30)) < 10  # and the models do see the turned faces


def test_a_model_refuses_faces_of_another_size(shipped):
    for models in shipped.values():  # LiteRT would otherwise run the model at that size, silently
        n = models.rotation_input_size
        with pytest.raises(ValueError, match=f"takes {n}×{n} faces, not {n + 22}×{n + 22}"):
            models.rotation(np.zeros((2, n + 22, n + 22, 3), np.float32))


def test_export_keeps_the_weights_custom_layers_and_output_names(tmp_path):
    """``export_model`` (what ``phototag train`` calls) on a small model shaped like the age model:
    a custom GenderMix layer and named outputs; LiteRT predicts what Keras does."""
    import keras

    from phototag.export import export_model
    from phototag.layers import GenderMix
    from phototag.models import runtime_path
    from phototag.runtime import KerasRunner, LiteRunner

    keras.utils.set_random_seed(3)
    face = keras.Input((24, 24, 3), name="face")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(face / 255.0))
    gender = keras.layers.Dense(1, activation="sigmoid", name="gender")(x)
    branches = keras.layers.Dense(2, name="age_branches")(x)
    age = GenderMix(name="age")(gender, branches)
    model = keras.Model(face, {"gender": gender, "age_branches": branches, "age": age})
    path = export_model(model, runtime_path(tmp_path / "age.keras"))
    assert path == tmp_path / "age.tflite"
    batch = np.random.default_rng(0).uniform(0, 255, (5, 24, 24, 3)).astype(np.float32)
    expected, got = KerasRunner(model)(batch), LiteRunner(path)(batch)
    assert set(got) == {"gender", "age_branches", "age"} and LiteRunner(path).input_size == 24
    for key in expected:
        assert np.allclose(expected[key], got[key], atol=2e-3, rtol=1e-3), key  # float16 weights
    assert np.std(got["age"]) > 0  # real weights, not zeros


AUTO_ENGINE = """
import sys
import numpy as np
from PIL import Image
from phototag import FaceAnalyzer
canvas = np.zeros((300, 400, 3), np.uint8)
canvas[50:250, 100:300] = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
analyzer = FaceAnalyzer()
faces = analyzer.analyze(canvas)
print(analyzer.chain.models.engine, analyzer.chain.models.device, len(faces), "tensorflow" in sys.modules)
"""


@pytest.mark.skipif(NVIDIA_DRIVER.exists(), reason="a machine with an NVIDIA driver may use TensorFlow")
def test_on_a_cpu_the_default_analyzer_runs_without_tensorflow(tmp_path):
    face_crops()[0].image.save(tmp_path / "face.jpg")
    result = subprocess.run([sys.executable, "-c", AUTO_ENGINE, str(tmp_path / "face.jpg")], capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["litert", "CPU", "1", "False"], result.stdout + result.stderr
    assert result.stderr == ""  # no start-up noise (LiteRT's "Created delegate", OpenCV's warning)


def test_export_command_needs_a_model_folder(tmp_path):
    from typer.testing import CliRunner

    from phototag.cli import app

    assert CliRunner().invoke(app, ["export", str(tmp_path / "missing")]).exit_code == 2
    result = CliRunner().invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 1 and "no model manifest" in result.output


def test_export_refuses_an_unknown_weight_type(tmp_path):
    from phototag.export import RUNTIME_WEIGHTS, WEIGHT_TYPES, export_model

    assert set(RUNTIME_WEIGHTS.values()) <= set(WEIGHT_TYPES)
    with pytest.raises(ValueError, match="one of float16, int8, not 'int4'"):
        export_model(None, tmp_path / "age.tflite", "int4")
    assert not list(tmp_path.iterdir())  # nothing written
