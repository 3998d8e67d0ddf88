"""Gender errors per (data set, gender, decade) cell, P(female) reliability, the threshold chosen by the
worst cell, and the threshold as a model setting that the chain tags with."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from phototag.chain import FaceChain
from phototag.models import load_models, model_version, write_manifest
from phototag.records import Detection
from phototag.training import balance


def _set(n_per_cell: int, p_women: list[float], p_men: list[float], source: str = "s"):
    """A synthetic validation set: women and men of two decades, every face of a cell with the same P(female)."""
    rows = [(True, age, p) for age, p in zip((5, 35), p_women)] + [(False, age, p) for age, p in zip((5, 35), p_men)]
    female = np.repeat([r[0] for r in rows], n_per_cell)
    age = np.repeat([float(r[1]) for r in rows], n_per_cell)
    p = np.repeat([r[2] for r in rows], n_per_cell)
    return np.full(len(p), source, dtype=object), female, age, p


def test_cells_worst_best_and_spread():
    source, female, age, p = _set(25, [0.4, 0.9], [0.1, 0.2])
    p[:5] = 0.6  # 5 of the 25 girls right
    r = balance.cell_report(source, female, age, p)["s"]
    assert r["cells"]["f 0-9"] == {"n": 25, "accuracy": 0.2}
    assert r["cells"]["f 30-39"]["accuracy"] == 1.0 and r["cells"]["m 0-9"]["accuracy"] == 1.0
    assert r["women"] == 0.6 and r["men"] == 1.0 and r["accuracy"] == 0.8
    assert r["worst"] == {"cell": "f 0-9", "accuracy": 0.2} and r["spread"] == 0.8
    small = balance.cell_report(source, female, age, p, min_cell=26)["s"]
    assert "worst" not in small and small["cells"]["f 0-9"]["n"] == 25  # shown, not ranked


def test_faces_without_an_age_form_one_cell_per_gender():
    source, female, _, p = _set(10, [0.9, 0.9], [0.1, 0.6])
    r = balance.cell_report(source, female, np.full(len(p), np.nan), p, min_cell=5)["s"]
    assert set(r["cells"]) == {"f all", "m all"} and r["cells"]["m all"] == {"n": 20, "accuracy": 0.5}


def test_reliability_table_and_ece():
    female = np.array([True, False, True, True, False, False, True, True])
    p = np.array([0.95, 0.95, 0.95, 0.95, 0.05, 0.05, 0.05, 0.05])
    rel = balance.reliability(female, p)
    assert [b["bin"] for b in rel["bins"]] == ["0.0-0.1", "0.9-1.0"]
    assert rel["bins"][1] == {"bin": "0.9-1.0", "n": 4, "mean_p_female": 0.95, "female_share": 0.75}
    assert rel["ece"] == pytest.approx(0.5 * 0.2 + 0.5 * 0.45)
    assert balance.reliability(np.array([True]), np.array([1.0]))["bins"][0]["bin"] == "0.9-1.0"


def test_threshold_raises_the_worst_cell_within_the_overall_budget():
    # the girls sit at P(female) 0.4: a threshold just below lifts their cell from 0 to 100 %
    source, female, age, p = _set(25, [0.4, 0.9], [0.1, 0.2])
    choice = balance.choose_threshold(source, female, age, p)
    assert 0.2 < choice["chosen"] <= 0.4 and choice["worst_before"] == 0.0 and choice["worst_after"] == 1.0
    assert choice["cells_after"]["s"]["accuracy"] == 1.0 and choice["sweep"]

    # a second set whose men sit at 0.35 would lose a whole cell below 0.35: the choice stays above it
    s2, f2, a2, p2 = _set(25, [0.9, 0.9], [0.35, 0.1], "t")
    both = [np.concatenate(x) for x in zip((source, female, age, p), (s2, f2, a2, p2))]
    choice = balance.choose_threshold(*both)
    assert 0.35 < choice["chosen"] <= 0.4 and choice["worst_after"] == 1.0


def test_the_sweep_keeps_the_thresholds_faces_have_by_estimated_age():
    # the women of 35 sit at 0.2 but have a threshold of their own (0.15); only the girls (0.4) need the sweep
    source, female, age, p = _set(25, [0.4, 0.2], [0.1, 0.1])
    own = (age == 35) & female

    def thresholds_at(t):
        return np.where(own, 0.15, t)

    held = balance.choose_threshold(source, female, age, p, thresholds_at=thresholds_at)
    assert held["chosen"] == 0.4 and held["worst_after"] == 1.0  # the nearest to 0.5 that lifts the girls
    assert held["cells_after"]["s"]["cells"]["f 30-39"]["accuracy"] == 1.0
    assert balance.choose_threshold(source, female, age, p)["chosen"] <= 0.2  # swept for everyone, it must go lower


def test_threshold_stays_when_nothing_helps_or_it_costs_too_much():
    source, female, age, p = _set(25, [0.9, 0.9], [0.1, 0.1])
    assert balance.choose_threshold(source, female, age, p)["chosen"] == 0.5  # all right already
    # 5 of the girls and all boys of 0-9 at 0.4: no threshold raises the worst cell
    source, female, age, p = _set(25, [0.9, 0.9], [0.4, 0.1])
    p[:5] = 0.4
    assert balance.choose_threshold(source, female, age, p)["chosen"] == 0.5

    # set s: 5 girls at 0.4 (cell 80 %); set t: 2 of 100 men at 0.42, so a threshold below the girls
    # raises the worst cell but costs set t 1 point overall
    source, female, age, p = _set(25, [0.9, 0.9], [0.1, 0.1])
    p[:5] = 0.4
    t_female = np.repeat([True, False], 100)
    t_p = np.where(t_female, 0.9, 0.1)
    t_p[100:102] = 0.42
    both = [np.concatenate(x) for x in zip((source, female, age, p),
                                           (np.full(200, "t", dtype=object), t_female, np.full(200, 35.0), t_p))]
    choice = balance.choose_threshold(*both)
    assert choice["chosen"] == 0.5 and choice["worst_after"] == choice["worst_before"] == 0.8
    assert 0.1 < balance.choose_threshold(*both, max_drop=0.02)["chosen"] <= 0.4


@pytest.fixture
def threshold_models(tiny_model_dir, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _set_threshold(folder, value):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["gender_threshold"] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_the_chain_tags_gender_at_the_manifests_threshold(threshold_models):
    face = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    det = Detection(box=(50, 50, 100, 100), landmarks={"left_eye": (80, 90), "right_eye": (120, 90), "nose": (100, 110),
                                                       "mouth_left": (85, 130), "mouth_right": (115, 130)}, confidence=0.9)
    default = load_models(threshold_models, engine="keras")
    assert default.gender_threshold == 0.5
    (result,) = FaceChain(default).predict([(face, [det])])[0:1]
    p = result[0].p_female
    version = default.version
    for threshold, gender in ((p - 0.001, "f"), (p + 0.001, "m")):
        _set_threshold(threshold_models, threshold)
        models = load_models(threshold_models, engine="keras")
        assert models.gender_threshold == threshold and models.version != version  # rescans retag
        assert FaceChain(models).predict([(face, [det])])[0][0].gender == gender
    write_manifest(threshold_models, "retrained")  # new model files: the old threshold does not carry over
    assert "gender_threshold" not in json.loads((threshold_models / "manifest.json").read_text())
    assert model_version(threshold_models).startswith("retrained-")


def test_a_threshold_of_their_own_for_faces_estimated_old(threshold_models):
    """``gender_threshold_by_age``: the chain tags faces estimated at least that old female from that
    threshold, the model version changes with it, and retrained files do not inherit it."""
    face = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    det = Detection(box=(50, 50, 100, 100), landmarks={"left_eye": (80, 90), "right_eye": (120, 90), "nose": (100, 110),
                                                       "mouth_left": (85, 130), "mouth_right": (115, 130)}, confidence=0.9)
    plain = load_models(threshold_models, engine="keras")
    (tagged,) = FaceChain(plain).predict([(face, [det])])[0]
    manifest = json.loads((threshold_models / "manifest.json").read_text())
    for from_age, gender in ((tagged.age - 1, "f"), (tagged.age + 1, "m")):
        manifest |= {"gender_threshold": tagged.p_female + 0.001, "gender_threshold_by_age": [[from_age, 0.0]]}
        (threshold_models / "manifest.json").write_text(json.dumps(manifest))
        models = load_models(threshold_models, engine="keras")
        assert FaceChain(models).predict([(face, [det])])[0][0].gender == gender
        assert models.version != plain.version
    ages = np.array([from_age - 10, from_age - 0.1, from_age, from_age + 20])
    assert list(models.gender_thresholds(ages)) == [tagged.p_female + 0.001] * 2 + [0.0] * 2
    write_manifest(threshold_models, "retrained")
    assert "gender_threshold_by_age" not in json.loads((threshold_models / "manifest.json").read_text())
