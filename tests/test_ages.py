"""One rule for a stored age's year and decade: keywords, regions, ``query --age``, ``stats``, training."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from phototag import ages, index, policy
from phototag.cli import app
from phototag.records import Face, PhotoInfo

runner = CliRunner()
INFO = PhotoInfo(width=400, height=300, stored_width=400, stored_height=300, format="JPEG")


def face(age: float) -> Face:
    return Face(box=(10.0, 20.0, 100.0, 120.0), landmarks={}, confidence=0.99, rotation=0.0, gender="f",
                p_female=0.9, age=age)


@pytest.mark.parametrize("age, years, decade", [(29.4, 29, 20), (29.5, 30, 30), (29.96, 30, 30), (30.0, 30, 30),
                                                (-0.3, 0, 0), (None, None, None)])
def test_year_and_decade_of_a_stored_age(age, years, decade):
    assert ages.age_years(age) == years
    assert ages.age_decade(age) == decade
    if age is not None:
        assert ages.decades(np.array([age]))[0] == decade


@pytest.mark.parametrize("age, decade", [(29.4, "20-29"), (29.5, "30-39"), (29.96, "30-39"), (30.0, "30-39")])
def test_keyword_region_query_and_stats_agree(tmp_path, age, decade):
    assert f"age {decade}" in policy.photo_keywords([face(age)])
    assert policy.face_region(face(age), INFO).description == f"female, age {ages.age_years(age)}"
    db_path = tmp_path / "index.db"
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    db = index.open_index(db_path)
    index.record_photo(db, photo, os.stat(photo), None, INFO, [face(age)], "test-1")
    db.conn.close()
    result = runner.invoke(app, ["query", "--age", decade, "--format", "paths", "--db", str(db_path)])
    assert result.exit_code == 0 and result.stdout.strip() == str(photo)
    result = runner.invoke(app, ["stats", "--json", "--db", str(db_path)])
    assert result.exit_code == 0 and list(json.loads(result.stdout)["faces_by_age"]) == [decade]


def test_training_decades_put_nan_apart_and_90_plus_together():
    assert ages.decades(np.array([np.nan, 9.5, 95.0, 130.0])).tolist() == [-1, 10, 90, 90]


def test_decade_labels_put_the_last_decade_and_above_together_only_when_asked():
    from phototag.ages import LAST_DECADE, decade_label

    assert [decade_label(d, LAST_DECADE) for d in (0, 80, 90, 110)] == ["0-9", "80-89", "90+", "90+"]
    assert decade_label(90) == "90-99"  # keywords and stats name every decade
