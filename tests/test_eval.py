"""phototag eval: split selection (seeded samples, whole folders, pre-split folders) and the detection mode."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from phototag.cli import app
from phototag.records import Detection
from phototag.training import data
from phototag.training.evaluate import central_face, select

from conftest import UTKFACE, needs_shared_data
from phototag.testing.photos import face_crops, jpeg_bytes, paste_face, scene, write_gender_folders


@needs_shared_data
def test_limit_draws_a_seeded_random_sample():
    val = select([UTKFACE], seed=1337, split="val")
    sample = select([UTKFACE], seed=1337, split="val", limit=50)
    assert len(sample) == 50 and set(sample.paths) <= set(val.paths)
    assert list(sample.paths) != list(val.paths[:50])  # not the first 50 files
    assert list(select([UTKFACE], seed=1337, split="val", limit=50).paths) == list(sample.paths)
    assert list(select([UTKFACE], seed=7, split="val", limit=50).paths) != list(sample.paths)
    assert 20 < np.mean(sample.age) < 45  # the first files of the split are mostly children; a sample is not


def test_presplit_folders_keep_their_split_and_all_takes_everything(tmp_path):
    root = write_gender_folders(tmp_path / "celeba", {"train": 3, "val": 2})
    train, val, test = data.splits(root, seed=1337)
    assert (len(train), len(val), len(test)) == (6, 4, 0)
    assert all("/val/" in p for p in val.paths) and set(train.source) == {"celeba"}
    assert len(select([root], seed=1, split="all")) == 10
    assert len(select([root], seed=1, split="val")) == 4
    with pytest.raises(data.DataError, match="test split .* is empty"):
        select([root], seed=1, split="test")


def test_central_face_is_chosen():
    def det(x, y):
        return Detection(box=(x - 10, y - 10, 20, 20), landmarks={}, confidence=0.9)
    faces = [det(20, 20), det(95, 60), det(180, 100)]
    assert central_face(faces, (120, 200, 3)) is faces[1]
    assert central_face([], (120, 200, 3)) is None


@pytest.fixture(scope="module")
def labelled_photos(tmp_path_factory) -> Path:
    """Three photos with one pasted face each and one without a face, labelled in a CSV file (made-up labels)."""
    root = tmp_path_factory.mktemp("labelled")
    rng = random.Random(3)
    rows = []
    for i, crop in enumerate(face_crops()[1:4]):
        canvas = scene(640, 480, rng)
        paste_face(canvas, crop, (320 + 40 * i, 240), 200)
        (root / f"face{i}.jpg").write_bytes(jpeg_bytes(canvas))
        rows.append(f"face{i}.jpg,{crop.age},{'f' if crop.female else 'm'}")
    (root / "empty.jpg").write_bytes(jpeg_bytes(scene(640, 480, rng)))
    rows.append("empty.jpg,30,m")  # male: a miss must not count as a right "not female"
    (root / "labels.csv").write_text("path,age,gender\n" + "\n".join(rows) + "\n")
    return root


def test_eval_through_detection_counts_misses(labelled_photos, tiny_model_dir):
    args = ["eval", "--data", str(labelled_photos / "labels.csv"), "--models", str(tiny_model_dir),
            "--split", "all", "--detect"]
    result = CliRunner().invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["through"] == "detection" and report["samples"] == 4
    assert report["detection"] == {"found": 3, "misses": 1, "missed": ["empty.jpg"], "misses_by_source": {"labels.csv": 1}}
    g = report["gender"]
    assert g["n"] == 3 and round(g["accuracy"] * 3, 3) in (0, 1, 2, 3)
    assert g["accuracy_with_misses"] == pytest.approx(g["accuracy"] * 3 / 4, abs=1e-3)
    assert report["age"]["n"] == 3 and report["age"]["mae"] >= 0 and "rotation" not in report
    assert 0 < report["ms_per_face"] * 3 <= report["ms_per_image"] * 4  # the chain's share of the whole, per face

    cells = g["by_source"]["labels.csv"]
    assert cells["n"] == 3 and sum(c["n"] for c in cells["cells"].values()) == 3 and g["threshold"] == 0.5
    assert sum(b["n"] for b in g["reliability"]["labels.csv"]["bins"]) == 3

    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "misses 1: empty.jpg" in text.output and "misses as errors" in text.output
    assert "worst cell" in text.output and "reliability of P(female)" in text.output


def test_eval_chooses_a_threshold_on_validation_only_and_writes_predictions(labelled_photos, tiny_model_dir,
                                                                           tmp_path):
    args = ["eval", "--data", str(labelled_photos / "labels.csv"), "--models", str(tiny_model_dir), "--detect"]
    result = CliRunner().invoke(app, args + ["--choose-threshold"])
    assert result.exit_code == 2 and "test split" in result.output
    result = CliRunner().invoke(app, args + ["--split", "all", "--choose-threshold", "--json",
                                             "--predictions", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    choice = json.loads(result.output)["gender"]["threshold_choice"]
    assert choice["current"] == 0.5 and 0.05 <= choice["chosen"] <= 0.95 and choice["sweep"]
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "path,source,gender,age,found,p_female,predicted_age" and len(rows) == 5
    assert rows[-1].endswith("empty.jpg,labels.csv,m,30,0,,")


def test_eval_through_detection_names_unreadable_files(labelled_photos, tiny_model_dir, tmp_path):
    shutil.copytree(labelled_photos, tmp_path / "set")
    (tmp_path / "set" / "face0.jpg").write_bytes(b"not a jpeg")
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path / "set" / "labels.csv"), "--models",
                                      str(tiny_model_dir), "--split", "all", "--detect"])
    assert result.exit_code == 2 and "face0.jpg" in result.output
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path / "set" / "labels.csv"), "--split", "train"])
    assert result.exit_code == 2 and "--split" in result.output


@needs_shared_data
def test_the_shipped_chain_is_measured_at_each_models_own_input_size():
    """The rotation regressor and the gender/age model take different sizes: each gets its own."""
    from phototag.training.evaluate import evaluate

    report = evaluate(None, [str(UTKFACE)], split="val", limit=12, rotation_angles=(60.0,))
    assert report["samples"] == 12 and report["rotation"][0]["mae"] < 10  # the regressor's ±60° MAE is ~1.6°
