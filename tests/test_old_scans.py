"""The old scans' head (``phototag train old-scans``): the head's arithmetic, its export, its data, its command."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from phototag.cli import app
from phototag.export import export_model
from phototag.runtime import LiteRunner
from phototag.testing.photos import face_crops, write_utkface
from phototag.training import backbones, data, old_scans, recipe

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_age_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return recipe.build_age_model(recipe.build_gender_model(backbones.build("mobilenet_v2", 32)))


def _faces(n: int = 6, size: int = 32) -> np.ndarray:
    return np.random.default_rng(3).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_the_head_adds_its_linear_correction_to_the_age_and_keeps_the_other_outputs(tiny_age_model):
    x = _faces()
    pool, age = keras.Model(tiny_age_model.inputs, [tiny_age_model.get_layer("attributes_pool").output,
                                                   tiny_age_model.get_layer("age").output]).predict(x, verbose=0)
    beta = np.random.default_rng(4).normal(0, 0.05, pool.shape[1] + 1)
    headed = old_scans.with_head(tiny_age_model, beta, 40.0)
    before, after = tiny_age_model.predict(x, verbose=0), headed.predict(x, verbose=0)
    assert sorted(after) == sorted(before)
    expected = np.maximum(0, age[:, 0] + old_scans.head_inputs(pool, age[:, 0]) @ beta + 40.0)
    np.testing.assert_allclose(after["age"][:, 0], expected, rtol=1e-4, atol=1e-3)
    for name in ("gender", "age_branches"):
        np.testing.assert_allclose(after[name], before[name], rtol=1e-5)
    # a second head replaces the first: it reads the model's own age, not the corrected one
    again = old_scans.with_head(headed, np.zeros_like(beta), -1e6)
    assert np.all(again.predict(x, verbose=0)["age"] == 0)  # clipped at 0 years
    assert sum(layer.name == old_scans.HEAD for layer in again.layers) == 1


def test_a_model_with_the_head_exports_to_litert_with_the_outputs_the_scan_reads(tiny_age_model, tmp_path):
    beta = np.zeros(tiny_age_model.get_layer("attributes_pool").output.shape[-1] + 1)
    beta[-1] = -2.0  # age -> age - 0.2 * age + 1
    headed = old_scans.with_head(tiny_age_model, beta, 1.0)
    lite = LiteRunner(export_model(headed, tmp_path / "age.tflite", "float16"))
    x = _faces()
    out, want = lite(x), headed.predict(x, verbose=0)
    assert {"gender", "age"} <= set(out)
    np.testing.assert_allclose(out["age"][:, 0], want["age"][:, 0], rtol=2e-2, atol=0.5)


def test_ridge_recovers_a_linear_rule_and_leaves_its_intercept_unpenalised():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (400, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 7.0
    beta, c = old_scans.ridge(x, y, np.ones(len(y)), alpha=1e-6)
    np.testing.assert_allclose(beta, [1.0, -2.0, 0.5], atol=1e-6)
    assert c == pytest.approx(7.0, abs=1e-6)
    shrunk, c2 = old_scans.ridge(x, y, np.ones(len(y)), alpha=1e6)
    assert np.abs(shrunk).max() < 0.01 and c2 == pytest.approx(y.mean(), abs=0.1)


def _write_old_scans(folder: Path, subjects: int, per_subject: int = 2) -> Path:
    crops = face_crops()
    (folder / "images").mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "subject", "age"])
        for s in range(subjects):
            for k in range(per_subject):
                crop = crops[(s * per_subject + k) % len(crops)]
                name = f"{s:03d}A{k * 10 + 2:02d}.JPG"
                crop.image.save(folder / "images" / name, quality=92)
                writer.writerow([name, f"{s:03d}", k * 10 + 2])
    return folder


def test_old_scans_are_read_with_their_subjects_and_bad_folders_say_why(tmp_path):
    scans = old_scans.read_old_scans(_write_old_scans(tmp_path / "ok", subjects=5))
    assert len(scans.paths) == 10 and len(set(scans.subjects)) == 5 and scans.ages.max() == 12
    with pytest.raises(data.DataError, match="labels.csv"):
        old_scans.read_old_scans(tmp_path)
    with pytest.raises(data.DataError, match="at least 5 subjects"):
        old_scans.read_old_scans(_write_old_scans(tmp_path / "few", subjects=4))
    missing = _write_old_scans(tmp_path / "missing", subjects=5)
    next((missing / "images").iterdir()).unlink()
    with pytest.raises(data.DataError, match="files not found"):
        old_scans.read_old_scans(missing)
    bad = _write_old_scans(tmp_path / "bad", subjects=5)
    rows = (bad / "labels.csv").read_text().splitlines()
    rows[2] = rows[2].rsplit(",", 1)[0] + ",150"
    rows[4] = rows[4].rsplit(",", 1)[0] + ",ten"
    (bad / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(data.DataError, match=r"an age \(0-120\).*line 3, line 5"):
        old_scans.read_old_scans(bad)


def test_train_old_scans_fits_the_head_exports_it_and_reports_held_out_subjects(tiny_model_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models)
    before = (models / "age.tflite").read_bytes()
    scans = _write_old_scans(tmp_path / "scans", subjects=5)
    modern = write_utkface(tmp_path / "utk", face_crops())
    result = runner.invoke(app, ["train", "old-scans", "--data", str(modern), "--old-scans", str(scans),
                                 "-o", str(models)])
    assert result.exit_code == 0, result.output
    assert "old scans (subjects held out)" in result.output
    report = json.loads((models / old_scans.REPORT).read_text())
    assert report["faces"]["old_scan_subjects"] == 5
    assert report["faces"]["validation_a_fitted"] + report["faces"]["validation_b_measured"] == 8
    assert len(report["old_scans_held_out_ages"]) == report["faces"]["old_scans"] > 0
    model = keras.saving.load_model(models / "age.keras", compile=False, safe_mode=True)
    assert old_scans.HEAD in [layer.name for layer in model.layers]
    assert (models / "age.tflite").read_bytes() != before


def test_train_old_scans_needs_its_folder_and_an_age_model(tmp_path):
    scans = _write_old_scans(tmp_path / "scans", subjects=5)
    modern = write_utkface(tmp_path / "utk", face_crops()[:4])
    result = runner.invoke(app, ["train", "old-scans", "--data", str(modern), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--old-scans" in result.output
    result = runner.invoke(app, ["train", "age", "--data", str(modern), "--old-scans", str(scans), "-o", str(tmp_path)])
    assert result.exit_code == 2
    result = runner.invoke(app, ["train", "old-scans", "--data", str(modern), "--old-scans", str(scans),
                                 "-o", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "train the age model first" in result.output


def test_the_shipped_age_model_carries_the_head_its_report_describes_and_its_litert_file_applies_it():
    from PIL import Image

    from phototag.models import shipped_model_dir

    import phototag.layers  # noqa: F401

    folder = shipped_model_dir()
    report = json.loads((folder / old_scans.REPORT).read_text())
    assert report["settings"]["alpha"] == old_scans.ALPHA
    assert report["settings"]["old_scan_weight"] == old_scans.OLD_SCAN_WEIGHT
    model = keras.saving.load_model(folder / "age.keras", compile=False, safe_mode=True)
    assert old_scans.HEAD in [layer.name for layer in model.layers]
    faces = np.stack([np.asarray(c.image.convert("RGB").resize((150, 150), Image.Resampling.BILINEAR))
                      for c in face_crops()[:8]]).astype(np.float32)
    headed = model.predict(faces, verbose=0)["age"][:, 0]
    own = keras.Model(model.inputs, model.get_layer("age").output).predict(faces, verbose=0)[:, 0]
    lite = LiteRunner(folder / "age.tflite")(faces)["age"][:, 0]
    shift = np.abs(headed - own).mean()
    assert shift > 0.5  # the head moves these faces' ages (by about a year) ...
    assert np.abs(lite - headed).mean() < shift / 2  # ... and the file the scan runs has it (int8 weights)
