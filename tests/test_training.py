"""The training package: data readers, splits, backbones, augmentation, tiny real training runs, eval."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from phototag.cli import app
from phototag.layers import GenderMix
from phototag.models import target_angles
from phototag.training import augment, backbones, data
from phototag.display import format_evaluation
from phototag.training.evaluate import evaluate
from phototag.training.train import TrainConfig, run

from conftest import NPZ_WEIGHTS, UTKFACE, needs_shared_data
from phototag.testing.photos import face_crops, write_gender_folders, write_utkface

needs_npz_weights = pytest.mark.skipif(not NPZ_WEIGHTS.exists(), reason=f"needs the ImageNet weights at {NPZ_WEIGHTS}")


@pytest.fixture(scope="module")
def utk_small(tmp_path_factory) -> Path:
    """A UTKFace-style folder of 24 face crops (both genders, many ages; made-up labels)."""
    return write_utkface(tmp_path_factory.mktemp("utk") / "utkface", face_crops()[:24])


def test_utkface_reader_parses_labels(utk_small):
    s = data.read_utkface(utk_small)
    assert len(s) == 24
    for path, age, gender in zip(s.paths, s.age, s.gender):
        a, g = Path(path).name.split("_")[:2]
        assert (age, gender) == (float(a), float(g))


def test_utkface_reader_rejects_bad_names_and_empty_folders(tmp_path, utk_small):
    bad = tmp_path / "bad"
    shutil.copytree(utk_small, bad)
    shutil.copy(next((bad / "crop_part1").glob("*.jpg")), bad / "crop_part1" / "holiday.jpg")
    with pytest.raises(data.DataError, match="holiday.jpg"):
        data.read_utkface(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no images"):
        data.read_utkface(tmp_path / "empty")


@needs_shared_data
def test_utkface_duplicate_groups_stay_on_one_side():
    s = data.read_utkface(UTKFACE)
    parts = data.split(s, seed=1337)
    side = {}
    for i, part in enumerate(parts):
        for g in part.group:
            if g.startswith("dup:"):
                assert side.setdefault(g, i) == i
    assert sum(len(p) for p in parts) == len(s)
    again = data.split(s, seed=1337)
    assert all(np.array_equal(a.paths, b.paths) for a, b in zip(parts, again))
    assert 0.08 < len(parts[2]) / len(s) < 0.12


def test_gender_folder_reader(tmp_path):
    write_gender_folders(tmp_path, {"train": 3})
    s = data.read_any(tmp_path)
    assert len(s) == 6 and sorted(s.gender) == [0, 0, 0, 1, 1, 1] and np.isnan(s.age).all()
    (tmp_path / "train" / "female" / "x").mkdir()
    (tmp_path / "other" / "male").mkdir(parents=True)
    with pytest.raises(data.DataError, match="no images"):
        data.read_gender_folders(tmp_path)


def test_csv_reader_and_its_errors(tmp_path, utk_small):
    faces = sorted((utk_small / "crop_part1").glob("*.jpg"))
    (tmp_path / "img").mkdir()
    for f in faces[:3]:
        shutil.copy(f, tmp_path / "img" / f.name)
    rows = [f"img/{faces[0].name},31,f", f"img/{faces[1].name},,male", f"img/{faces[2].name},7,"]
    (tmp_path / "labels.csv").write_text("path,age,gender\n" + "\n".join(rows) + "\n")
    s = data.read_any(tmp_path / "labels.csv")
    assert s.age[0] == 31 and s.gender[0] == 1 and np.isnan(s.age[1]) and s.gender[1] == 0 and np.isnan(s.gender[2])

    (tmp_path / "bad.csv").write_text("path,age,gender\nimg/x.jpg,abc,f\n")
    with pytest.raises(data.DataError, match="line 2"):
        data.read_csv(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("path,age,gender\nimg/nope.jpg,3,f\n")
    with pytest.raises(data.DataError, match="nope.jpg"):
        data.read_csv(tmp_path / "missing.csv")


def test_unreadable_images_are_named(tmp_path, utk_small):
    folder = tmp_path / "utk"
    shutil.copytree(utk_small, folder)
    (folder / "crop_part1" / "30_1_0_20170101000000000.jpg.chip.jpg").write_text("not a jpeg")
    with pytest.raises(data.DataError, match="30_1_0_20170101000000000"):
        data.load_images(data.read_utkface(folder), 32)


@needs_npz_weights
def test_npz_weights_reproduce_the_imagenet_check():
    """The shared weights' README: chelsea → 285 Egyptian cat 0.7571, coffee → 967 espresso 0.9547."""
    skimage_data = pytest.importorskip("skimage.data")
    model = keras.applications.MobileNetV2(weights=None, include_top=True, input_shape=(224, 224, 3),
                                           classifier_activation=None)
    backbones.load_npz_weights(model, NPZ_WEIGHTS)
    pre = backbones._torch_preprocess()
    for photo, cls, prob in ((skimage_data.chelsea(), 285, 0.7571), (skimage_data.coffee(), 967, 0.9547)):
        x = np.asarray(Image.fromarray(photo).resize((224, 224), Image.Resampling.BILINEAR), np.float32)[None]
        p = keras.ops.convert_to_numpy(keras.ops.softmax(model(pre(x))))[0]
        assert p.argmax() == cls
        assert p[cls] == pytest.approx(prob, abs=0.02)


def test_backbone_builders():
    with pytest.warns(UserWarning, match="RANDOM INITIALISATION"):
        bb = backbones.build("xception", 71, None)
    assert bb.stage1_frozen == 115 and bb.stage2_frozen == len(bb.model.layers) // 2
    with pytest.warns(UserWarning, match="random initialisation"):
        mb = backbones.build("mobilenet_v2", 32, None)
    assert mb.model.output_shape == (None, 1, 1, 1280)
    backbones.set_frozen(mb, mb.stage2_frozen)
    trainable = [layer.trainable for layer in mb.model.layers]
    assert not any(trainable[:mb.stage2_frozen]) and any(trainable[mb.stage2_frozen:])
    assert not any(layer.trainable for layer in mb.model.layers if isinstance(layer, keras.layers.BatchNormalization))


def test_rotation_layer_matches_scipy_convention(utk_small):
    face = data.load_image(next((utk_small / "crop_part1").glob("*.jpg")), 64).astype(np.float32)
    for angle in (30.0, -55.0):
        ours = keras.ops.convert_to_numpy(augment.RotateByAngle(fill_mode="constant")(face[None], np.array([[angle]])))[0]
        ref = ndimage.rotate(face, angle, reshape=False, order=1)
        inside = (ours.sum(-1) > 0) & (ref.sum(-1) > 0)
        assert np.abs(ours - ref)[inside].mean() < 1.0
    angles = np.array([-170.0, -90.0, 0.0, 45.0, 179.0])
    assert np.allclose(target_angles(augment.angle_to_target(angles)), angles, atol=1e-4)


def test_old_prints_soften_flatten_and_grain_a_share_of_the_faces_in_training_only(utk_small):
    faces = np.stack([data.load_image(p, 64) for p in sorted((utk_small / "crop_part1").glob("*.jpg"))[:8]]
                     ).astype(np.float32)
    layer = augment.OldPrint(1.0, seed=5)
    old = keras.ops.convert_to_numpy(layer(faces, training=True))
    assert old.shape == faces.shape and 0 <= old.min() and old.max() <= 255
    assert np.array_equal(keras.ops.convert_to_numpy(layer(faces, training=False)), faces)
    assert np.array_equal(keras.ops.convert_to_numpy(augment.OldPrint(0.0, seed=5)(faces, training=True)), faces)
    spread = faces.std(axis=(1, 2, 3))
    assert (old.std(axis=(1, 2, 3)) < spread + 1.0).all()  # flatter (grain adds a little back)
    greys = np.abs(old - old.mean(-1, keepdims=True)).max(axis=(1, 2, 3)) < 1e-3
    assert 0 < greys.sum() < len(faces)  # about half of them grey
    half = keras.ops.convert_to_numpy(augment.OldPrint(0.5, seed=5)(np.repeat(faces, 8, 0), training=True))
    untouched = (half == np.repeat(faces, 8, 0)).all(axis=(1, 2, 3))
    assert 0.2 < untouched.mean() < 0.8


def test_gender_mix_blends_the_branches():
    out = GenderMix()(np.array([[1.0], [0.0], [0.25]]), np.array([[30.0, 50.0]] * 3))
    assert np.allclose(keras.ops.convert_to_numpy(out)[:, 0], [30.0, 50.0, 45.0])


@pytest.mark.slow
def test_tiny_training_run_and_eval(utk_small, tmp_path):
    out = tmp_path / "models"
    cfg = TrainConfig(data=[str(utk_small)], out=str(out), input_size=32,
                      epochs1=1, epochs2=1, batch_size=4, val_fraction=0.25, test_fraction=0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = run("all", cfg)
    assert set(saved) == {"rotation", "gender", "age"}
    info = json.loads((out / "age.train.json").read_text())
    assert [s["stage"] for s in info["stages"]] == [1, 2] and info["test_samples_held_out"] > 0

    assert (out / "manifest.json").exists()
    assert (out / "rotation.tflite").exists() and (out / "age.tflite").exists()  # the CPU runtime files
    report = evaluate(out, [str(utk_small)], seed=cfg.seed, rotation_angles=(60.0,))
    assert report["samples"] == info["test_samples_held_out"]
    assert 0 <= report["gender"]["accuracy"] <= 1 and report["age"]["mae"] >= 0
    assert report["age"]["rmse"] >= report["age"]["mae"]
    assert report["rotation"][0]["max_angle"] == 60 and 0 <= report["rotation"][0]["mae"] <= 180
    assert report["ms_per_face"] > 0
    text = format_evaluation(report)
    assert "gender accuracy" in text and "age RMSE" in text and "rotation ±60°" in text

    result = CliRunner().invoke(app, ["eval", "--data", str(utk_small), "--models", str(out), "--json", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["samples"] == 3


@pytest.mark.slow
def test_train_cli_trains_and_summarises(utk_small, tmp_path):
    args = ["train", "rotation", "--data", str(utk_small), "--out", str(tmp_path), "--input-size", "32",
            "--epochs1", "1", "--epochs2", "0", "--batch-size", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rotation.keras").exists() and "angle_error" in result.output
    resumed = tmp_path / "resumed"
    args = ["train", "rotation", "--data", str(utk_small), "--out", str(resumed), "--resume",
            str(tmp_path / "rotation.keras"), "--epochs1", "0", "--epochs2", "1", "--batch-size", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads((resumed / "rotation.train.json").read_text())
    assert [s["stage"] for s in info["stages"]] == [2] and info["config"]["resume"].endswith("rotation.keras")


def test_a_resumed_model_keeps_its_backbone():
    """``--resume`` continues with the saved model's backbone (its freezing plan and its record),
    not the ``--backbone`` default: the shipped models hold both kinds."""
    import keras

    import phototag.layers  # noqa: F401 - custom layers of the saved models
    from phototag.models import package_model_dir
    from phototag.training import backbones

    saved = {name: keras.saving.load_model(package_model_dir() / f"{name}.keras", compile=False)
             for name in ("age", "rotation")}
    assert backbones.saved_name(saved["age"]) == "dlib_resnet"
    assert backbones.saved_name(saved["rotation"]) == "mobilenet_v2"
    bb = backbones.from_model(backbones.saved_name(saved["age"]), saved["age"])
    assert (bb.stage1_frozen, bb.stage2_frozen) == (99, 53)  # dlib_resnet's plan (mobilenet_v2's: 93, 53)


def test_train_cli_reports_bad_data(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["train", "gender", "--data", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no images" in result.output
    result = CliRunner().invoke(app, ["train", "everything", "--data", str(tmp_path)])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["train", "all", "--data", str(tmp_path), "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "--resume" in result.output


@pytest.mark.slow
def test_train_in_a_fresh_process_prints_no_library_start_up_lines(tmp_path):
    """TensorFlow's native start-up lines (oneDNN, CUDA probing) ignore TF_CPP_MIN_LOG_LEVEL in a
    fresh process; ``phototag train`` hides them, so bad data gets its one error line."""
    (tmp_path / "empty").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", "from phototag.cli import main; main()", "train", "gender",
                           "--data", str(tmp_path / "empty")], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {tmp_path / 'empty'}: no images found"], done.stderr


@pytest.fixture(scope="module")
def celeba_small(tmp_path_factory) -> Path:
    """CelebA-style crops in their own train/ and val/ folders: 6 + 4 faces of each gender."""
    return write_gender_folders(tmp_path_factory.mktemp("celeba") / "celeba_gender", {"train": 6, "val": 4})


def test_balanced_sampling_and_decade_weights(utk_small, celeba_small):
    from phototag.ages import decades
    from phototag.training.train import age_weights, sampling_weights

    s = data.Samples.concat([data.read_utkface(utk_small), data.splits(celeba_small, 1337)[0]])
    assert sampling_weights(s, 0.0) is None
    w = sampling_weights(s, 1.0)
    cells = list(zip(s.source, s.gender, decades(s.age)))
    totals = {c: w[[i for i, k in enumerate(cells) if k == c]].sum() for c in set(cells)}
    assert np.allclose(list(totals.values()), 1.0)  # every cell drawn equally often
    celeba = np.isnan(s.age)
    a = age_weights(s, 1.0)
    assert (a[celeba] == 0).all() and a[~celeba].mean() == pytest.approx(1.0)
    per_decade = [a[~celeba][decades(s.age[~celeba]) == d].sum() for d in set(decades(s.age[~celeba]))]
    assert np.allclose(per_decade, per_decade[0])
    assert np.allclose(age_weights(s, 0.0)[~celeba], 1.0)


def test_distribution_loss_and_mae():
    from phototag.training import recipe

    years = np.arange(101, dtype=np.float32)
    def peaked(age):
        p = np.exp(-0.5 * ((years - age) / 2.0) ** 2)
        return p / p.sum()
    # female true age 30: the female branch is the one scored
    y_true = np.array([[30.0, 1.0, 1.0, 1.0]], np.float32)
    good = np.stack([peaked(30), peaked(70)])[None]
    bad = np.stack([peaked(70), peaked(30)])[None]
    loss = recipe.age_distribution_loss(2.0)
    lg, lb = (float(keras.ops.convert_to_numpy(loss(y_true, p))[0]) for p in (good, bad))
    assert lg < lb
    mae = recipe.AgeMAE()
    mae.update_state(y_true, bad)
    mae.update_state(np.array([[0.0, 1.0, 0.0, 0.0]], np.float32), good)  # a batch without an age: no say
    assert float(mae.result()) == pytest.approx(40.0, abs=0.1)
    # a zero loss weight or a missing age removes the sample from the loss
    assert float(keras.ops.convert_to_numpy(loss(np.array([[30.0, 1.0, 1.0, 0.0]], np.float32), bad))[0]) == 0


@pytest.mark.slow
def test_tiny_mixed_data_distribution_head_run_loads_in_the_chain(utk_small, celeba_small, tmp_path, tiny_model_dir):
    from phototag.chain import FaceChain
    from phototag.export import export_model
    from phototag.models import load_models, write_manifest

    out = tmp_path / "models"
    args = ["train", "age", "--data", str(utk_small), "--data", str(celeba_small), "--out", str(out),
            "--input-size", "32", "--epochs1", "1", "--epochs2", "0",
            "--epochs3", "1", "--batch-size", "4", "--age-head", "distribution", "--balance", "1",
            "--age-balance", "0.5", "--old-prints", "0.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "age.train.json").read_text())
    assert [s["stage"] for s in info["stages"]] == [1, 3] and info["stages"][1]["frozen_layers"] == 0
    assert info["config"]["old_prints"] == 0.5
    assert info["config"]["age_head"] == "distribution" and "val_age_distribution_age_mae" in info["stages"][0]["history"]
    gender_info = json.loads((out / "gender.train.json").read_text())
    assert gender_info["train_samples"] == info["train_samples"] and gender_info["val_samples"] == info["val_samples"]
    assert info["val_samples"] == len(data.splits(utk_small, 1337)[1]) + 8  # CelebA's own val/ folder

    shutil.copy(tiny_model_dir / "rotation.keras", out / "rotation.keras")
    export_model(keras.saving.load_model(out / "rotation.keras"), out / "rotation.tflite")
    write_manifest(out, "tiny-distribution")
    models = load_models(out, engine="keras")
    faces = data.load_images(data.read_utkface(utk_small).take(np.arange(5)), 32)
    raw = models.attributes(faces.astype(np.float32))
    assert raw["age_distribution"].shape == (5, 2, 101)
    assert np.allclose(raw["age_distribution"].sum(-1), 1, atol=1e-4)
    expected = (raw["age_distribution"] * np.arange(101)).sum(-1)
    assert np.allclose(raw["age_branches"], expected, atol=1e-3)
    p_female, age = FaceChain(models, batch_size=8, flip_average=False).attributes(faces)
    assert ((0 <= p_female) & (p_female <= 1)).all() and ((0 <= age) & (age <= 100)).all()
    lite = load_models(out, engine="litert")  # the file phototag train exported for the scan's CPU runtime
    p_lite, age_lite = FaceChain(lite, batch_size=8, flip_average=False).attributes(faces)
    assert np.allclose(p_lite, p_female, atol=1e-3) and np.allclose(age_lite, age, atol=0.05)  # float16 weights


def test_train_cli_rejects_an_unknown_age_head(utk_small):
    result = CliRunner().invoke(app, ["train", "age", "--data", str(utk_small), "--age-head", "gaussian"])
    assert result.exit_code == 2 and "--age-head" in result.output


def test_pack_keeps_the_train_and_val_sides_and_leaves_test_out(utk_small, celeba_small, tmp_path):
    from phototag.training.pack import pack

    out = tmp_path / "gpu_data"
    report = pack([utk_small, celeba_small], out, size=48, quality=80, limits={"celeba_gender": 6}, part_mib=0.02)
    assert len(report["parts"]) > 1 and max(report["parts"]) <= 0.02 * 2**20
    parts = sorted(out.glob("part*"))
    for source in (utk_small, celeba_small):
        before = data.splits(source, 1337)
        after = [data.Samples.concat(sides) for sides in zip(*(data.splits(p / source.name, 1337)
                                                               for p in parts if (p / source.name).exists()))]
        names = [sorted(Path(p).name for p in side.paths) for side in after]
        assert names[1] == sorted(Path(p).name for p in before[1].paths)  # the same validation faces
        assert set(names[0]) <= {Path(p).name for p in before[0].paths} and names[2] == []
        assert set(after[0].source) == {source.name}  # the parts are one source
    assert report["sources"]["celeba_gender"]["train"] == 6
    assert report["sources"]["utkface"]["test_not_packed"] == len(data.splits(utk_small, 1337)[2])
    assert all(max(Image.open(p).size) <= 48 for p in out.rglob("*.jpg"))


def test_backbone_from_a_saved_model_at_another_input_size(tiny_model_dir, tmp_path):
    saved = keras.saving.load_model(tiny_model_dir / "age.keras", compile=False)
    inner = next(layer for layer in saved.layers if isinstance(layer, keras.Model))
    bb = backbones.build("mobilenet_v2", 48, str(tiny_model_dir / "age.keras"))
    assert bb.input_size == 48
    assert all(np.array_equal(a, b) for a, b in zip(bb.model.get_weights(), inner.get_weights()))
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="not a"):
        backbones.build("mobilenet_v2", 48, str(tmp_path / "other.keras"))


def _labelled_folder(root: Path, faces: list[Path]) -> Path:
    """An All-Age-Faces-like folder: ``labels.csv`` (path,age,gender) and its data set's train split in ``train/``."""
    (root / "train").mkdir(parents=True)
    rows = []
    for i, face in enumerate(faces):
        shutil.copy(face, root / "train" / f"{i:05d}A{20 + i:02d}.jpg")
        rows.append(f"train/{i:05d}A{20 + i:02d}.jpg,{20 + i},{'female' if i % 2 else 'male'}")
    (root / "labels.csv").write_text("path,age,gender\n" + "\n".join(rows) + "\n")
    return root


def test_labelled_folder_with_only_a_train_split_draws_its_validation_from_it(tmp_path, utk_small):
    faces = sorted((utk_small / "crop_part1").glob("*.jpg"))
    root = _labelled_folder(tmp_path / "aaf", (faces * 3)[:60])
    train, val, test = data.splits(root, 1337)
    assert len(test) == 0 and len(train) + len(val) == 60 and 1 <= len(val) <= 15
    assert set(train.source) == set(val.source) == {"aaf"}
    first = np.flatnonzero([p.endswith("00003A23.jpg") for p in data.Samples.concat([train, val]).paths])
    assert data.Samples.concat([train, val]).take(first).age[0] == 23
    names = {Path(p).name for p in val.paths}
    assert names == {Path(p).name for p in data.split(data.read_any(root), 1337, 0.1, 0.0)[1].paths}  # by name
    assert names != {Path(p).name for p in data.splits(root, 7)[1].paths}

    with open(root / "labels.csv", "a") as fh:
        fh.write("train/../00000A20.jpg,30,male\n")
    shutil.copy(faces[0], root / "00000A20.jpg")
    with pytest.raises(data.DataError, match="outside the folder's train/, val/, test/"):
        data.splits(root, 1337)


def test_crops_are_the_chains_crops_of_the_detected_face_and_a_data_set(tmp_path, utk_small):
    from phototag import detectors
    from phototag.training import crops

    source = _labelled_folder(tmp_path / "faces", sorted((utk_small / "crop_part1").glob("*.jpg"))[:6])
    Image.new("RGB", (120, 150), (90, 90, 90)).save(source / "train" / "00099A40.jpg")  # no face
    with open(source / "labels.csv", "a") as fh:
        fh.write("train/00099A40.jpg,40,female\n")
    out = tmp_path / "crops"
    report = crops.build(source, out, size=64)
    assert (report["crops"], report["misses"], report["missed"]) == (6, 1, ["train/00099A40.jpg"])
    assert report["by_folder"] == {"train": {"crops": 6, "misses": 1}}

    before = [sorted(Path(p).name for p in side.paths) for side in data.splits(source, 1337)]
    after = [sorted(Path(p).name for p in side.paths) for side in data.splits(out / "faces", 1337)]
    assert after == [[n for n in side if n != "00099A40.jpg"] for side in before]  # the same sides, less the miss
    crop_file = out / "faces" / "train" / "00002A22.jpg"
    expected, _ = crops.face_crop(source / "train" / "00002A22.jpg", detectors.create("yunet"), 64)
    saved = np.asarray(Image.open(crop_file), dtype=float)
    assert saved.shape == (64, 64, 3) and np.abs(saved - expected).mean() < 4  # JPEG quality 95
    assert data.read_any(out / "faces").age.tolist() == data.read_any(source).age[:6].tolist()

    index = (out / "faces" / crops.INDEX).read_text()
    crop_file.unlink()  # a resumed build does only what its index does not list
    assert crops.build(source, out, size=64)["crops"] == 6 and not crop_file.exists()
    assert (out / "faces" / crops.INDEX).read_text() == index
    (out / "faces" / crops.INDEX).write_text("file,face,outside\n")  # killed after the header
    assert crops.build(source, out, size=64)["crops"] == 6 and crop_file.exists()
    assert (out / "faces" / crops.INDEX).read_text().count("file,face") == 1
    with pytest.raises(data.DataError, match="other settings"):
        crops.build(source, out, size=80)

    tight = tmp_path / "tight.jpg"  # a face cropped closer than the chain crops: its crop reaches beyond
    Image.open(source / "train" / "00002A22.jpg").crop((40, 40, 160, 160)).save(tight, quality=95)
    black, beyond = crops.face_crop(tight, detectors.create("yunet"), 64)
    reflected, same = crops.face_crop(tight, detectors.create("yunet"), 64, outside="reflect")
    assert beyond == same > 0.1 and black[0].max() < 10 < reflected[0].mean()  # the top row
    assert np.abs(black[24:40, 24:40].astype(float) - reflected[24:40, 24:40]).max() == 0  # the face untouched


def test_pack_gives_each_part_of_a_labelled_folder_its_rows(tmp_path, utk_small):
    from phototag.training.pack import pack

    source = _labelled_folder(tmp_path / "aaf", sorted((utk_small / "crop_part1").glob("*.jpg"))[:12])
    report = pack([source], tmp_path / "gpu_data", size=48, quality=80, part_mib=0.005)
    parts = [p / "aaf" for p in sorted((tmp_path / "gpu_data").glob("part*"))]
    assert len(parts) == len(report["parts"]) > 1
    packed = [data.splits(p, 1337) for p in parts]
    assert sum(len(train) + len(val) for train, val, _ in packed) == 12  # every row in exactly one part
    names = sorted(Path(p).name for _, val, _ in packed for p in val.paths)
    assert names == sorted(Path(p).name for p in data.splits(source, 1337)[1].paths)
