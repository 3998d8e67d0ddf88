"""People (issue 23): grouping on synthetic descriptors (clusters), corrections on synthetic dates, the
user's word, and the index staying consistent through rescans, rewrites and deletions."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3

import numpy as np
import pytest

from phototag import identity, index, neighbours, people
from phototag.records import Face, PhotoInfo

RNG_SEED = 7
SPREAD = 0.3 / np.sqrt(2 * 128)  # same person: descriptors about 0.3 apart
APART = 0.9 / np.sqrt(2 * 128)  # two people: about 0.9 apart


def centres(n, seed=RNG_SEED):
    return np.random.default_rng(seed).normal(0, APART, (n, 128)).astype(np.float32)


class Library:
    """An index in a temporary folder; photos are files whose faces are given with descriptors."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.db = index.open_index(tmp_path / "index.db")
        self.rng = np.random.default_rng(RNG_SEED + 1)
        self.count = 0

    def photo(self, faces, taken_at=None, name=None, side=50.0, scale=1.0):
        """faces: [(descriptor or None, age, p_female, box x)], each ``side`` pixels, in a photo decoded at
        ``scale``; returns the photo id."""
        self.count += 1
        path = self.tmp / (name or f"p{self.count:05d}.jpg")
        path.write_bytes(b"x" * self.count)
        recs = [Face(box=(x, 10.0, side, side), landmarks={}, confidence=0.9, rotation=0.0,
                     gender="f" if p >= 0.5 else "m", p_female=p, age=age) for _, age, p, x in faces]
        info = PhotoInfo(1000, 1000, 1000, 1000, 1, taken_at, "JPEG", scale=scale)
        pid = index.record_photo(self.db, path, os.stat(path), None, info, recs, "test-1")
        self.set_embeddings(pid, [v for v, *_ in faces])
        return pid

    def set_embeddings(self, photo_id, vectors):
        people.ensure_schema(self.db)
        ids = [r[0] for r in self.db.execute("select id from faces where photo_id = ? order by face_index", [photo_id])]
        with self.db.atomic():
            for fid, v in zip(ids, vectors):
                self.db.execute("update faces set embedding = ? where id = ?",
                                [None if v is None else identity.to_blob(v), fid])

    def near(self, centre, scale=SPREAD):
        return centre + self.rng.normal(0, scale, 128).astype(np.float32)

    def people_photos(self, count, each):
        """``each`` photos of one adult face for each of ``count`` people; {photo id: person}."""
        c = centres(count)
        return {self.photo([(self.near(c[p]), 30.0, 0.2, 10.0)]): p for p in range(count) for _ in range(each)}

    def persons(self, photo_id):
        return [r[0] for r in self.db.execute("select person_id from faces where photo_id = ? order by face_index",
                                              [photo_id])]

    def face(self, photo_id, i=0):
        return dict(zip(("id", "person_id", "age", "gender", "p_female", "face_age", "face_gender", "face_p_female"),
                        self.db.execute("select id, person_id, age, gender, p_female, face_age, face_gender, face_p_female"
                                        " from faces where photo_id = ? and face_index = ?", [photo_id, i]).fetchone()))


@pytest.fixture
def lib(tmp_path):
    return Library(tmp_path)


def test_groups_clusters_and_new_faces_join_without_regrouping(lib):
    c = centres(5)
    photos = {p: [lib.photo([(lib.near(c[p]), 30.0, 0.2, 10.0)]) for _ in range(6)] for p in range(5)}
    summary = people.update(lib.db)
    assert summary.seen == 30 and summary.grouped == 30 and summary.new_people == 5
    ids = {p: {lib.persons(ph)[0] for ph in photos[p]} for p in photos}
    assert all(len(v) == 1 for v in ids.values()) and len({next(iter(v)) for v in ids.values()}) == 5
    before = dict(lib.db.execute("select id, person_id from faces").fetchall())
    new = lib.photo([(lib.near(c[2]), 30.0, 0.2, 10.0)])
    stranger = lib.photo([(centres(1, seed=99)[0], 30.0, 0.2, 10.0)])
    summary = people.update(lib.db)
    assert summary.grouped == 2 and summary.joined == 1 and summary.new_people == 1
    assert lib.persons(new) == list(ids[2])
    assert lib.persons(stranger)[0] not in {next(iter(v)) for v in ids.values()}
    after = dict(lib.db.execute("select id, person_id from faces").fetchall())
    assert all(after[k] == v for k, v in before.items())  # nobody regrouped
    assert people.update(lib.db).grouped == 0  # nothing new: nothing done


def test_two_faces_in_one_photo_are_two_people(lib):
    c = centres(1)[0]
    twin = lib.photo([(lib.near(c, SPREAD / 3), 30.0, 0.2, 10.0), (lib.near(c, SPREAD / 3), 30.0, 0.2, 300.0)])
    people.update(lib.db)
    a, b = lib.persons(twin)
    assert a != b


def test_age_and_date_that_contradict_a_birth_date_keep_faces_apart(lib):
    c = centres(1)[0]
    kid = [lib.photo([(lib.near(c), 4.0, 0.2, 10.0)], taken_at=f"2010-0{m}-01T12:00:00") for m in range(1, 5)]
    people.update(lib.db)
    # same descriptor region, but a 60-year-old in 2011: born ~1951, not ~2006
    old = lib.photo([(lib.near(c), 60.0, 0.2, 10.0)], taken_at="2011-06-01T12:00:00")
    people.update(lib.db)
    assert lib.persons(old)[0] != lib.persons(kid[0])[0]
    # undated, it cannot contradict anything
    undated = lib.photo([(lib.near(c), 60.0, 0.2, 10.0)])
    people.update(lib.db)
    assert lib.persons(undated)[0] == lib.persons(kid[0])[0]


def test_regroup_is_deterministic_and_keeps_ids(lib):
    lib.people_photos(4, 5)
    people.update(lib.db)
    first = dict(lib.db.execute("select id, person_id from faces").fetchall())
    people.regroup(lib.db)
    second = dict(lib.db.execute("select id, person_id from faces").fetchall())
    people.regroup(lib.db)
    assert first == second == dict(lib.db.execute("select id, person_id from faces").fetchall())


def test_many_faces_through_the_cells(lib, monkeypatch):
    monkeypatch.setattr(neighbours, "MIN_CELLS", 64)
    monkeypatch.setattr(neighbours, "CELL_SIZE", 8)
    c = centres(40)
    truth = lib.people_photos(40, 5)
    people.update(lib.db)
    assert people._meta(lib.db)["built_for"] == 200  # trained: several cells
    assert len(neighbours.Cells.from_meta(people._meta(lib.db), people.DIM).fine) > 4
    got = {ph: lib.persons(ph)[0] for ph in truth}
    by_truth = {}
    for ph, p in truth.items():
        by_truth.setdefault(p, set()).add(got[ph])
    assert all(len(v) == 1 for v in by_truth.values()) and len({next(iter(v)) for v in by_truth.values()}) == 40
    new = {lib.photo([(lib.near(c[p]), 30.0, 0.2, 10.0)]): p for p in range(0, 40, 3)}
    people.update(lib.db)  # incremental: candidates read by cell
    assert all(lib.persons(ph)[0] == next(iter(by_truth[p])) for ph, p in new.items())


def test_deleted_photo_leaves_its_person_and_a_rewrite_keeps_it(lib):
    c = centres(1)[0]
    photos = [lib.photo([(lib.near(c), 30.0 + k, 0.7, 10.0)], taken_at=f"201{k}-05-01T10:00:00") for k in range(5)]
    people.update(lib.db)
    pid = lib.persons(photos[0])[0]
    assert people.list_people(lib.db)[0]["faces"] == 5
    # a rewrite: the scan records the photo again with its faces as the index holds them (corrected)
    f0 = lib.face(photos[1])
    key = index.path_key(lib.tmp / "p00002.jpg")
    info, faces, version = index.scanned_photo(lib.db, key)
    faces[0].age = f0["age"]
    index.record_photo(lib.db, key, os.stat(lib.tmp / "p00002.jpg"), None, info, faces, version)
    lib.set_embeddings(photos[1], [lib.near(c)])
    summary = people.update(lib.db)
    assert summary.kept == 1 and summary.new_people == 0
    f1 = lib.face(photos[1])
    assert f1["person_id"] == pid and f1["face_age"] == f0["face_age"] and f1["age"] == f0["age"]
    # a failed rescan and a pruned photo: their faces leave the person
    index.record_failure(lib.db, lib.tmp / "p00003.jpg", None, "broken")
    index.mark_missing(lib.db, set(), [index.path_key(lib.tmp / "p00004.jpg")], prune=True)
    people.update(lib.db)
    assert [p["faces"] for p in people.list_people(lib.db)] == [3]


def test_missing_photo_does_not_count_until_it_is_back(lib):
    c = centres(1)[0]
    photos = [lib.photo([(lib.near(c), 30.0, 0.7, 10.0)]) for _ in range(3)]
    people.update(lib.db)
    index.mark_missing(lib.db, set(), [index.path_key(lib.tmp / "p00001.jpg")])
    people.update(lib.db)
    assert people.list_people(lib.db)[0]["faces"] == 2
    assert lib.persons(photos[0])[0] is not None  # kept for when it comes back


def truth_person(lib, c, born=1960.4, ages=(1.0, 3.0, 6.0, 25.0, 35.0, 45.0), errors=(0.5, -1.0, 1.5, 8.0, -7.0, 9.0)):
    photos = []
    for age, err in zip(ages, errors):
        year = born + age
        month = int((year % 1) * 12) + 1
        photos.append(lib.photo([(lib.near(c), age + err, 0.8, 10.0)],
                                taken_at=f"{int(year)}-{month:02d}-15T12:00:00"))
    return photos


def test_dated_faces_correct_each_other_and_the_index_keeps_both(lib):
    c = centres(1)[0]
    ages = (1.0, 3.0, 6.0, 25.0, 35.0, 45.0)
    photos = truth_person(lib, c, ages=ages)
    summary = people.update(lib.db)
    assert summary.changed_photos >= 3
    rows = [lib.face(ph) for ph in photos]
    own = np.array([r["face_age"] for r in rows])
    corrected = np.array([r["age"] for r in rows])
    true = np.array(ages)
    assert np.abs(corrected - true)[3:].mean() < np.abs(own - true)[3:].mean() - 3  # adults: much better
    assert np.abs(corrected - true)[:3].mean() <= np.abs(own - true)[:3].mean() + 0.2  # children: no worse
    p = people.list_people(lib.db)[0]
    assert abs(p["born"] - 1960.4) < 1.5 and p["born_sd"] < 2 and not p["flagged"] and p["dated"] == 6
    assert set(people.changed_photos(lib.db)) == {ph for ph, r in zip(photos, rows) if r["age"] != r["face_age"]}
    people.mark_written(lib.db, people.changed_photos(lib.db)[:1])
    assert len(people.changed_photos(lib.db)) == len({ph for ph, r in zip(photos, rows) if r["age"] != r["face_age"]}) - 1
    people.mark_written(lib.db)
    assert people.changed_photos(lib.db) == []
    assert people.update(lib.db).changed_photos == 0  # nothing moved: nothing to write


def test_undated_placeholder_and_future_dates_keep_their_own_age(lib):
    c = centres(1)[0]
    truth_person(lib, c)
    undated = lib.photo([(lib.near(c), 38.0, 0.8, 10.0)])
    epoch = lib.photo([(lib.near(c), 38.0, 0.8, 10.0)], taken_at="1970-01-01T00:00:00")
    future = lib.photo([(lib.near(c), 38.0, 0.8, 10.0)], taken_at="2999-01-01T00:00:00")
    people.update(lib.db)
    for ph in (undated, epoch, future):
        f = lib.face(ph)
        assert f["person_id"] == lib.persons(1)[0] and f["age"] == 38.0
    assert people.list_people(lib.db)[0]["dated"] == 6
    assert people.photo_year("1970-01-01T00:00:00") is None and people.photo_year("2000-01-01T00:05:00") is None
    assert people.photo_year("2015-07-02T10:00:00+02:00") == pytest.approx(2015.5, abs=0.01)
    assert people.photo_year("garbage") is None and people.photo_year(None) is None


def test_age_sd_grows_with_age():
    sd = people.age_sd([0, 5, 15, 30, 50, 80])
    assert np.all(np.diff(sd) >= 0) and sd[1] < 2.5 and sd[4] > 7


def test_age_sds_are_the_age_models_measured_errors(tmp_path, monkeypatch):
    """Read from the models' evaluation.json ($PHOTOTAG_MODELS where it has one), made non-decreasing."""
    folder = tmp_path / "models"
    folder.mkdir()
    by_decade = {"0-9": {"mae": 2.0}, "10-19": {"mae": 1.0}, "90+": {"mae": 4.0}}
    (folder / "evaluation.json").write_text(json.dumps({"utkface_test_detection": {"age": {"by_decade": by_decade}}}))
    monkeypatch.setenv("PHOTOTAG_MODELS", str(folder))
    people._age_sd_table.cache_clear()
    try:
        assert people.age_sd([5, 15, 95]) / math.sqrt(math.pi / 2) == pytest.approx([2.0, 2.0, 4.0])
    finally:
        people._age_sd_table.cache_clear()


def test_gender_is_pooled_and_one_face_keeps_its_own(lib):
    c = centres(2)
    many = [lib.photo([(lib.near(c[0]), 30.0, p, 10.0)]) for p in (0.9, 0.85, 0.4, 0.8, 0.7)]
    alone = lib.photo([(lib.near(c[1]), 30.0, 0.45, 10.0)])
    people.update(lib.db)
    assert {lib.face(ph)["gender"] for ph in many} == {"f"}
    assert lib.face(many[2])["face_gender"] == "m" and lib.face(many[2])["face_p_female"] == 0.4
    assert lib.face(alone)["gender"] == "m" and lib.face(alone)["p_female"] == 0.45


def test_a_person_whose_faces_disagree_is_flagged_and_not_used(lib):
    c = centres(2)
    a = truth_person(lib, c[0], born=1950.0, ages=(30, 32, 34, 36), errors=(0, 0, 0, 0))
    b = truth_person(lib, c[1], born=2000.0, ages=(1, 3, 5, 7), errors=(0, 0, 0, 0))
    people.update(lib.db)
    pa, pb = lib.persons(a[0])[0], lib.persons(b[0])[0]
    assert pa != pb
    people.merge(lib.db, [pa, pb])  # the user's word: one person
    p = people.person(lib.db, pa)
    assert p["flagged"] and "birth" in p["flag_reason"]
    assert all(r["age"] == r["face_age"] for r in p["face_rows"])


def test_names_are_checked_and_stick_through_rescans_and_regrouping(lib):
    c = centres(2)
    photos = [lib.photo([(lib.near(c[k % 2]), 30.0, 0.2, 10.0)]) for k in range(8)]
    people.update(lib.db)
    pid = lib.persons(photos[0])[0]
    for bad in ("a/b", "a\\b", "a|b", "tab\there", "nl\nx", "", "   ", "x" * 300):
        with pytest.raises(people.PeopleError):
            people.name(lib.db, pid, bad)
    with pytest.raises(people.PeopleError):
        people.name(lib.db, 999, "Ann")
    people.name(lib.db, pid, "  Ann Lee ")
    people.regroup(lib.db)
    assert lib.persons(photos[0])[0] == pid
    names = {p["id"]: p["name"] for p in people.list_people(lib.db)}
    assert names[pid] == "Ann Lee" and sum(1 for v in names.values() if v) == 1
    # a rescan of one of her photos (new face row, same place): still hers
    key = index.path_key(lib.tmp / "p00003.jpg")
    info, faces, version = index.scanned_photo(lib.db, key)
    index.record_photo(lib.db, key, os.stat(lib.tmp / "p00003.jpg"), None, info, faces, version)
    lib.set_embeddings(photos[2], [lib.near(c[0])])
    people.update(lib.db)
    assert lib.persons(photos[2])[0] == pid


def test_merge_errors_and_merge(lib):
    c = centres(3)
    photos = [lib.photo([(lib.near(c[k % 3]), 30.0, 0.2, 10.0)]) for k in range(6)]
    people.update(lib.db)
    a, b, d = (lib.persons(photos[k])[0] for k in range(3))
    with pytest.raises(people.PeopleError, match="itself"):
        people.merge(lib.db, [a, a])
    with pytest.raises(people.PeopleError, match="no person"):
        people.merge(lib.db, [a, 12345])
    with pytest.raises(people.PeopleError):
        people.merge(lib.db, [a])
    people.name(lib.db, b, "Bo")
    assert people.merge(lib.db, [a, b]) == a
    assert {lib.persons(ph)[0] for ph in photos[:2] + photos[3:5]} == {a}
    listed = {p["id"]: p for p in people.list_people(lib.db)}
    assert b not in listed and listed[a]["name"] == "Bo" and listed[a]["faces"] == 4
    people.regroup(lib.db)  # the merge sticks
    assert {lib.persons(ph)[0] for ph in photos[:2] + photos[3:5]} == {a} and lib.persons(photos[2])[0] == d


def test_removed_face_never_rejoins(lib):
    c = centres(1)[0]
    photos = [lib.photo([(lib.near(c), 30.0, 0.2, 10.0)]) for _ in range(5)]
    people.update(lib.db)
    pid = lib.persons(photos[0])[0]
    face = lib.face(photos[4])["id"]
    with pytest.raises(people.PeopleError):
        people.remove_faces(lib.db, [10 ** 9])
    (new,) = people.remove_faces(lib.db, [face])
    assert new != pid and lib.persons(photos[4])[0] == new
    people.regroup(lib.db)
    assert lib.persons(photos[4])[0] != pid and lib.persons(photos[0])[0] == pid
    # a rewrite of that photo: the exclusion follows the new face row
    key = index.path_key(lib.tmp / "p00005.jpg")
    info, faces, version = index.scanned_photo(lib.db, key)
    index.record_photo(lib.db, key, os.stat(lib.tmp / "p00005.jpg"), None, info, faces, version)
    lib.set_embeddings(photos[4], [lib.near(c)])
    people.update(lib.db)
    people.regroup(lib.db)
    assert lib.persons(photos[4])[0] != pid


def test_users_gender_and_birth_beat_the_estimates(lib):
    c = centres(1)[0]
    photos = truth_person(lib, c, born=1960.4)
    undated = lib.photo([(lib.near(c), 33.0, 0.8, 10.0)])
    people.update(lib.db)
    pid = lib.persons(photos[0])[0]
    with pytest.raises(people.PeopleError):
        people.set(lib.db, pid, gender="x")
    with pytest.raises(people.PeopleError):
        people.set(lib.db, pid, born="nineteen")
    with pytest.raises(people.PeopleError):
        people.set(lib.db, pid, born=3000)
    people.set(lib.db, pid, gender="male", born=1955)
    for ph in photos:
        f = lib.face(ph)
        assert f["gender"] == "m" and f["p_female"] == 0.0
    taken = lib.db.execute("select taken_at from photos where id = ?", [photos[3]]).fetchone()[0]
    assert lib.face(photos[3])["age"] == pytest.approx(people.photo_year(taken) - 1955.5)
    assert lib.face(undated)["age"] == 33.0 and lib.face(undated)["gender"] == "m"
    people.regroup(lib.db)
    people.update(lib.db)
    assert lib.face(photos[3])["age"] == pytest.approx(people.photo_year(taken) - 1955.5)
    p = people.list_people(lib.db)[0]
    assert p["gender_set_by_user"] == "m" and p["born_set_by_user"] == "1955"
    people.set(lib.db, pid, gender="", born="")
    assert people.list_people(lib.db)[0]["gender_set_by_user"] is None


def test_faces_without_descriptor_are_left_alone(lib):
    ph = lib.photo([(None, 30.0, 0.2, 10.0)])
    people.update(lib.db)
    f = lib.face(ph)
    assert f["person_id"] is None and f["face_age"] == 30.0


def test_faces_seen_for_the_first_time_get_their_own_values_in_every_grouping(lib):
    """Written with the grouping's own write of each face (first, incremental, regroup), or after it
    for a face no grouping reads; a face seen before keeps its own values."""
    c = centres(2)
    first = lib.photo([(lib.near(c[0]), 30.0, 0.2, 10.0), (None, 41.0, 0.8, 300.0)])
    people.update(lib.db)
    joined = lib.photo([(lib.near(c[0]), 33.0, 0.3, 10.0), (lib.near(c[1]), 7.0, 0.6, 300.0)])
    people.update(lib.db)
    lib.db.execute("update faces set age = 31.5, p_female = 0.25 where photo_id = ?", [first])  # as if corrected
    regrouped = lib.photo([(lib.near(c[1]), 8.0, 0.7, 10.0)])
    people.regroup(lib.db)
    assert lib.db.execute("select count(*) from faces where face_age is null").fetchone()[0] == 0
    expected = {(first, 0): (30.0, "m", 0.2), (first, 1): (41.0, "f", 0.8), (joined, 0): (33.0, "m", 0.3),
                (joined, 1): (7.0, "f", 0.6), (regrouped, 0): (8.0, "f", 0.7)}
    for (photo, i), (age, gender, p) in expected.items():
        face = lib.face(photo, i)
        assert (face["face_age"], face["face_gender"], face["face_p_female"]) == (age, gender, pytest.approx(p))


def test_a_persons_genders_follow_the_thresholds_of_the_models_that_tagged_its_faces(lib):
    """The scan passes its models' manifest; the people commands later use the thresholds it kept.
    Without one, the shipped models' (0.5; 0.3 from 55)."""
    c = centres(2)
    adult = [lib.photo([(lib.near(c[0]), 30.0, p, 10.0)]) for p in (0.42, 0.44, 0.46)]
    older = [lib.photo([(lib.near(c[1]), 60.0, p, 10.0)]) for p in (0.32, 0.34, 0.36)]
    people.update(lib.db)
    assert [lib.face(ph)["gender"] for ph in adult + older] == ["m"] * 3 + ["f"] * 3
    lib.db.execute("update people set stale = 1")
    people.update(lib.db, manifest={"name": "other", "gender_threshold": 0.4, "gender_threshold_by_age": [[55, 0.35]]})
    assert [lib.face(ph)["gender"] for ph in adult + older] == ["f"] * 3 + ["m"] * 3
    adult_person = lib.persons(adult[0])[0]
    assert next(p for p in people.list_people(lib.db) if p["id"] == adult_person)["gender"] == "f"
    people.set(lib.db, adult_person, born="1990")  # a command corrects by the thresholds the scan kept
    assert lib.face(adult[1])["gender"] == "f"


def test_a_killed_update_is_finished_by_the_next(lib):
    c = centres(1)[0]
    truth_person(lib, c, ages=(1.0, 3.0, 6.0), errors=(0.5, -1.0, 1.5))
    people.update(lib.db)
    truth_person(lib, c, ages=(25.0, 35.0, 45.0), errors=(8.0, -7.0, 9.0))
    summary = people.Summary()
    people._reattach(lib.db, summary)
    people._group_new(lib.db, summary, None)  # killed before the corrections
    assert summary.joined == 3
    assert lib.db.execute("select count(*) from people where stale = 1").fetchone()[0] == 1
    assert people.update(lib.db).corrected == 1
    assert lib.db.execute("select count(*) from people where stale = 1").fetchone()[0] == 0


def test_a_first_grouping_corrects_its_people_as_a_later_correction_would(lib):
    """The first grouping corrects every person from the faces in memory, in its transaction; done
    again the usual way (each person's faces read back), nothing changes."""
    c = centres(4)
    truth_person(lib, c[0])
    truth_person(lib, c[1], born=1990.2, ages=(30.0, 32.0, 40.0), errors=(-6.0, 5.0, 7.0))
    lib.photo([(lib.near(c[2]), 40.0, 0.6, 10.0), (lib.near(c[3]), 8.0, 0.3, 300.0)], taken_at="2001-05-01T10:00:00",
              name="a-first.jpg")  # a name before the others: its faces come first in path order
    lib.photo([(lib.near(c[2]), 44.0, 0.7, 10.0), (None, 30.0, 0.5, 300.0)], name="z-last.jpg")
    lib.photo([(centres(1, seed=99)[0], 50.0, 0.1, 10.0)])  # a person of one face
    summary = people.Summary()
    people.ensure_schema(lib.db)
    people._reattach(lib.db, summary)
    people._group_new(lib.db, summary, None)
    assert summary.new_people == 5 and summary.corrected == 5 and summary.changed_faces > 0
    assert lib.db.execute("select count(*) from people where stale = 1").fetchone()[0] == 0
    query = ("select id, faces, dated, gender, p_female, born, born_sd, flagged, flag_reason, centroid, spread"
             " from people order by id")
    before = lib.db.execute(query).fetchall(), lib.db.execute("select * from faces order by id").fetchall()
    marked = lib.db.execute("select photo_id from people_dirty order by photo_id").fetchall()
    lib.db.execute("update people set stale = 1")
    again = people.Summary()
    people._correct_stale(lib.db, again)
    assert again.corrected == 5 and again.changed_faces == 0
    assert (lib.db.execute(query).fetchall(), lib.db.execute("select * from faces order by id").fetchall()) == before
    assert lib.db.execute("select photo_id from people_dirty order by photo_id").fetchall() == marked


def test_a_first_grouping_interrupted_in_its_corrections_leaves_no_people_and_is_done_again(lib, monkeypatch):
    c = centres(2)
    truth_person(lib, c[0])
    truth_person(lib, c[1], born=1990.2, ages=(30.0, 32.0, 40.0), errors=(-6.0, 5.0, 7.0))
    write = people._write_corrections

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(people, "_write_corrections", interrupted)
    with pytest.raises(KeyboardInterrupt):
        people.update(lib.db)
    assert lib.db.execute("select count(*) from people").fetchone()[0] == 0
    assert lib.db.execute("select count(*) from faces where person_id is not null").fetchone()[0] == 0
    monkeypatch.setattr(people, "_write_corrections", write)
    summary = people.update(lib.db)
    assert summary.grouped == 9 and summary.new_people == 2 and summary.corrected == 2
    assert lib.db.execute("select count(*) from people where stale = 1").fetchone()[0] == 0

def test_a_face_rewritten_while_its_person_is_merged_away_joins_the_merged_person(lib):
    c = centres(2)
    a = [lib.photo([(lib.near(c[0]), 30.0, 0.2, 10.0)]) for _ in range(3)]
    b = [lib.photo([(lib.near(c[1]), 30.0, 0.2, 10.0)]) for _ in range(3)]
    people.update(lib.db)
    pa, pb = lib.persons(a[0])[0], lib.persons(b[0])[0]
    key = index.path_key(lib.tmp / "p00004.jpg")
    info, faces, version = index.scanned_photo(lib.db, key)
    index.record_photo(lib.db, key, os.stat(lib.tmp / "p00004.jpg"), None, info, faces, version)
    lib.set_embeddings(b[0], [lib.near(c[1])])
    people.merge(lib.db, [pa, pb])  # before the update that reattaches the rewritten face
    people.update(lib.db)
    assert lib.persons(b[0])[0] == pa
    assert lib.db.execute("select count(*) from faces where person_id is not null and person_id not in"
                          " (select id from people)").fetchone()[0] == 0


def test_dated_children_link_further_only_when_their_birth_dates_agree():
    """A child's link is short (children look alike); between dated faces it may be longer
    (LINK_BY_AGE_DATED), but then the birth estimates must agree within BIRTH_Z_DATED SDs."""
    ages = np.array([4.0, 4.0])

    def group(distance, years):
        x = np.zeros((2, 128), np.float32)
        x[1, 0] = distance
        birth, sd = people._face_births(ages, np.array(years, float))
        labels = people.cluster(x, np.arange(2), birth, sd, np.full(2, -1), {}, {}, np.array([0]), np.array([1]),
                                np.array([distance], np.float32), limits=people.link_limits(ages),
                                dated_limits=people.link_limits(ages, people.LINK_BY_AGE_DATED))
        return len(set(labels.tolist()))

    assert group(0.34, [np.nan, np.nan]) == 2  # undated: the child's short link
    assert group(0.34, [2010.5, 2011.0]) == 1  # dated, born about the same year: the longer link
    assert group(0.34, [2010.5, 2018.5]) == 2  # ... born 8 years apart (beyond 2 SDs): not one person
    assert group(0.30, [2010.5, 2018.5]) == 1  # within the short link the usual 3 SDs apply


def test_links_with_queries_are_each_faces_nearest_among_those_it_may_pair_with():
    """With queries, a query's links are its k nearest of every face, another face's its k nearest of
    the queries (two faces that are not queries are never linked): brute force in one cell agrees."""
    rng = np.random.default_rng(3)
    x = (centres(6)[rng.integers(0, 6, 120)] + rng.normal(0, 0.2 / np.sqrt(128), (120, 128))).astype(np.float32)
    queries = rng.random(120) < 0.2
    i, j, d = neighbours.links(x, np.zeros(120, np.int64), np.full(120, -1, np.int64), queries=queries, limit=0.5, k=3)
    full = np.sqrt(np.square(x[:, None, :].astype(np.float64) - x[None, :, :]).sum(-1))
    allowed = (queries[:, None] | queries[None, :]) & ~np.eye(120, dtype=bool) & (full <= 0.5)
    expected = set()
    for a in range(120):
        partners = np.flatnonzero(allowed[a])
        for b in partners[np.argsort(full[a, partners], kind="stable")][:3].tolist():
            expected.add((min(a, b), max(a, b)))
    assert set(zip(i.tolist(), j.tolist())) == expected and len(expected) > 50
    assert np.allclose(d, full[i, j], atol=1e-5)
    assert (queries[i] | queries[j]).all()


def test_adults_merge_as_groups_by_centroid_and_spread():
    """Two groups of adults merge along a link of up to ADULT_LINK when their centroids are within
    ADULT_CENTROID and the root mean square distance between their faces within ADULT_MEAN; two loose
    groups at the same centroid distance, or children, stay apart."""
    def group(apart, within, age):
        # faces a1, a2 and b1, b2: ``within`` apart in each group, the groups ``apart`` apart
        x = np.zeros((4, 128), np.float32)
        x[[1, 3], 1] = within
        x[[2, 3], 0] = apart
        i, j, d = neighbours.links(x, np.zeros(4, np.int64), np.full(4, -1, np.int64), limit=people.LINK)
        ages = np.full(4, age)
        birth, sd = people._face_births(ages, np.full(4, np.nan))
        labels = people.cluster(x, np.arange(4), birth, sd, np.full(4, -1), {}, {}, i, j, d,
                                limits=people.link_limits(ages))
        return len(set(labels.tolist()))

    assert people.CENTROID < 0.45 < people.ADULT_CENTROID < 0.48
    assert group(0.45, 0.2, 35.0) == 1  # centroids 0.45 apart, RMS distance 0.47: one person
    assert group(0.48, 0.2, 35.0) == 2  # centroids 0.48 apart
    assert group(0.45, 0.44, 35.0) == 2  # loose groups: RMS distance 0.55
    assert group(0.45, 0.2, 10.0) == 2  # children keep their short links
    assert group(0.45, 0.2, 35.0) == group(0.45, 0.2, np.nan)  # unknown age: an adult's


def test_an_index_from_before_the_spread_gets_it_and_groups_on(lib):
    c = centres(1)[0]
    first = [lib.photo([(lib.near(c), 40.0, 0.2, 10.0)]) for _ in range(3)]
    people.update(lib.db)
    lib.db.execute("alter table people drop column spread")  # as an index of the last release
    later = lib.photo([(lib.near(c), 41.0, 0.2, 10.0)])
    people.update(lib.db)
    assert "spread" in lib.db["people"].columns_dict
    assert len({lib.persons(p)[0] for p in first + [later]}) == 1
    spread = lib.db.execute("select spread from people where id = ?", [lib.persons(later)[0]]).fetchone()[0]
    assert 0 < spread < 0.2  # the mean squared distance of its faces to their centroid (about 0.09 here)


def test_small_faces_link_only_when_close(tmp_path):
    """A face the chain read at under SMALL_FACE pixels links within SMALL_FACE_LINK at most: two such
    faces 0.45 apart stay two people, where two larger ones (or small ones of photos scanned before
    the size was recorded) are one."""
    a = centres(1)[0]
    b = a.copy()
    b[0] += 0.45
    assert people.SMALL_FACE_LINK < 0.45 < people.ADULT_CENTROID

    def grouped(name, side, scale):
        (tmp_path / name).mkdir()
        lib = Library(tmp_path / name)
        first = lib.photo([(a, 40.0, 0.2, 10.0)], side=side, scale=scale)
        second = lib.photo([(b, 40.0, 0.2, 10.0)], side=side, scale=scale)
        people.update(lib.db)
        return lib, len({lib.persons(first)[0], lib.persons(second)[0]})

    small, count = grouped("small", 120.0, 0.25)
    assert count == 2  # 30 px as read
    small.db.execute("update photos set scale = null")  # an index from before the size was recorded
    people.regroup(small.db)
    assert len({r[0] for r in small.db.execute("select person_id from faces")}) == 1
    assert grouped("large", 120.0, 0.5)[1] == 1  # 60 px as read


def test_the_index_keeps_each_photos_decode_scale_and_an_older_index_gets_it(tmp_path):
    import sqlite3

    path = tmp_path / "index.db"
    db = index.open_index(path)
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    index.record_photo(db, photo, os.stat(photo), None, PhotoInfo(4000, 3000, 4000, 3000, scale=0.25), [], "v1")
    assert index.get_photo(db, photo)["scale"] == 0.25
    assert index.scanned_photo(db, photo)[0].scale == 0.25  # tags written again from the index keep it
    db.close()
    raw = sqlite3.connect(path)
    raw.execute("alter table photos drop column scale")  # as an index of the last release
    raw.commit()
    raw.close()
    db = index.open_index(path)
    assert index.get_photo(db, photo)["scale"] is None and index.scanned_photo(db, photo)[0].scale is None


def test_cells_assign_the_same_whatever_the_chunk():
    x = np.random.default_rng(3).normal(0, APART, (neighbours.MIN_CELLS + 500, 128)).astype(np.float32)
    cells, first, second = neighbours.Cells.fit(x)
    assert (first != second).all() and len(np.unique(first)) > 50
    assert all(np.array_equal(a, b) for a, b in zip(cells.assign(x), (first, second)))  # the coarse cells found again
    small_first, small_second = cells.assign(x, chunk=7)  # several chunks a coarse cell
    assert np.array_equal(first, small_first) and np.array_equal(second, small_second)


def _partition(labels):
    """Group labels as a canonical partition: each label replaced by the position it first appears at."""
    first = {}
    return [first.setdefault(v, k) for k, v in enumerate(labels)]


def test_new_faces_join_as_if_every_face_were_read(lib, monkeypatch):
    """The incremental grouping reads only the faces linked to the new ones, yet gives the new faces the
    people that reading every face gives (each person's link limits being its faces' least)."""
    monkeypatch.setattr(neighbours, "MIN_CELLS", 64)
    monkeypatch.setattr(neighbours, "CELL_SIZE", 8)
    rng = np.random.default_rng(11)
    c = centres(40)
    for p in range(40):
        for k in range(5):  # children, teenagers and adults; half the people dated
            age = float(rng.choice([4.0, 16.0, 30.0, 45.0]))
            lib.photo([(lib.near(c[p]), age, 0.2, 10.0)],
                      taken_at=f"{1990 + p % 20 + int(age)}-06-01T12:00:00" if p % 2 else None)
    # a person whose child face (0.25 from its adult faces) limits its links to a child's (0.34)
    base, u = centres(1, seed=5)[0], rng.normal(0, 1, 128).astype(np.float32)
    u /= np.linalg.norm(u)
    adults = [lib.photo([(base + rng.normal(0, 0.01 / np.sqrt(128), 128).astype(np.float32), 30.0, 0.2, 10.0)])
              for _ in range(4)]
    child = lib.photo([(base - 0.25 * u, 4.0, 0.2, 10.0)])
    people.update(lib.db)
    assert lib.persons(child) == lib.persons(adults[0])
    for p in range(0, 40, 2):
        lib.photo([(lib.near(c[p]), 30.0, 0.2, 10.0)])
    for s in centres(5, seed=42):
        lib.photo([(s, 30.0, 0.2, 10.0)])
    # 0.40 from the adult faces, 0.65 from the child's: near enough for an adult, not for the person
    beyond = lib.photo([(base + 0.40 * u, 30.0, 0.2, 10.0)])
    people.ensure_schema(lib.db)
    people._reattach(lib.db, people.Summary())
    cells = neighbours.Cells.from_meta(people._meta(lib.db), people.DIM)
    with lib.db.atomic():
        every = people._live_faces(lib.db)
        fresh = every.person < 0
        every.cell1[fresh], every.cell2[fresh] = cells.assign(every.x[fresh])
        expected = people._group(lib.db, every, fresh)[fresh]
        new = every.take(fresh)
        read, found = people._linked_to(lib.db, new, None)
        got = people._group(lib.db, read, read.person < 0, found=found, now=None)[read.person < 0]
    assert 0 < len(read) - len(new) < len(every) - len(new)  # only some old faces read
    face_of = dict(lib.db.execute("select photo_id, id from faces").fetchall())
    assert face_of[child] not in read.ids and face_of[adults[0]] in read.ids
    assert got[new.ids == face_of[beyond]][0] != lib.persons(adults[0])[0]
    assert np.array_equal(read.ids[read.person < 0], every.ids[fresh])
    joined = expected >= 0
    assert 0 < joined.sum() < len(expected)  # some joined a person, some did not
    assert np.array_equal(got[joined], expected[joined]) and (got[~joined] < 0).all()
    assert _partition(got[~joined].tolist()) == _partition(expected[~joined].tolist())


def test_the_faces_of_cells_are_read_by_either_cell_and_only_live_ones(lib, monkeypatch):
    """An addition reads as candidates the faces whose first cell is one of some cells or whose second
    is one of others, leaving out the faces of photos missing or failed, as the full reading does."""
    monkeypatch.setattr(neighbours, "MIN_CELLS", 64)
    monkeypatch.setattr(neighbours, "CELL_SIZE", 8)
    lib.people_photos(20, 4)
    people.update(lib.db)
    index.mark_missing(lib.db, set(), [index.path_key(lib.tmp / "p00003.jpg")])
    index.record_failure(lib.db, lib.tmp / "p00007.jpg", None, "broken")
    every = people._live_faces(lib.db)
    assert len(every) == 78
    cells = sorted(set(every.cell1.tolist()))
    ids, cell1, cell2, x = people._in_cells(lib.db, cells, cells)
    assert np.array_equal(ids, every.ids) and np.array_equal(x, every.x)
    assert np.array_equal(cell1, every.cell1) and np.array_equal(cell2, every.cell2)
    some = [k for k in cells if k not in set(every.cell2.tolist())][:2] + [int(every.cell2[0])]
    ids, *_ = people._in_cells(lib.db, some[:2], some[2:])
    wanted = np.isin(every.cell1, some[:2]) | np.isin(every.cell2, some[2:])
    assert 0 < len(ids) < len(every) and np.array_equal(ids, every.ids[wanted])


def test_an_addition_reads_its_candidates_mapped_and_leaves_the_mapping_as_it_was(lib, monkeypatch, tmp_path):
    with contextlib.closing(sqlite3.connect(tmp_path / "probe.db")) as probe:
        if probe.execute("pragma mmap_size = 1048576").fetchone() in (None, (0,)):
            pytest.skip("this SQLite was built without memory-mapped I/O")
    monkeypatch.setattr(neighbours, "MIN_CELLS", 64)
    monkeypatch.setattr(neighbours, "CELL_SIZE", 8)
    lib.people_photos(20, 4)
    people.update(lib.db)
    for s in centres(2, seed=7):
        lib.photo([(s, 30.0, 0.2, 10.0)])
    seen = []
    in_cells = people._in_cells
    monkeypatch.setattr(people, "_in_cells", lambda db, *a: seen.append(db.execute("pragma mmap_size").fetchone()[0])
                        or in_cells(db, *a))
    before = lib.db.execute("pragma mmap_size").fetchone()[0]
    assert people.update(lib.db).grouped == 2
    assert len(seen) == 1 and seen[0] > max(before, 0)
    assert lib.db.execute("pragma mmap_size").fetchone()[0] == before


def test_person_limits_are_the_least_of_all_its_faces(lib):
    c = centres(1)[0]
    for age in (4.0, 30.0, 45.0):
        lib.photo([(lib.near(c), age, 0.2, 10.0)])
    people.update(lib.db)
    (pid,) = {r[0] for r in lib.db.execute("select person_id from faces")}
    limits = people._person_limits(lib.db, [pid])
    assert limits == {pid: (people.LINK_BY_AGE[0][1], people.LINK_BY_AGE_DATED[0][1])}
    # read as its youngest and smallest face's: that holds while the limits grow with age
    for table in (people.LINK_BY_AGE, people.LINK_BY_AGE_DATED):
        assert [lim for _, lim in table] == sorted(lim for _, lim in table) and table[-1][1] <= people.LINK
    # adults, one of them read small: the small face's limit, dated or not; an unknown age: an adult's
    d = centres(2, seed=9)[1]
    lib.photo([(lib.near(d), 45.0, 0.2, 10.0)])
    lib.photo([(lib.near(d), None, 0.2, 10.0)])
    lib.photo([(lib.near(d), 30.0, 0.2, 10.0)], side=people.SMALL_FACE - 10)
    people.update(lib.db)
    (other,) = {r[0] for r in lib.db.execute("select person_id from faces")} - {pid}
    assert people._person_limits(lib.db, [other, pid, other]) == {
        pid: limits[pid], other: (people.SMALL_FACE_LINK, people.SMALL_FACE_LINK)}


def test_a_grouping_of_most_faces_rebuilds_its_indexes_and_a_killed_one_keeps_them(lib):
    lib.people_photos(3, 4)
    people.ensure_schema(lib.db)

    def definitions():
        return lib.db.execute("select name, sql from sqlite_master where type = 'index' and name in"
                              f" ({','.join('?' * len(people.GROUPING_INDEXES))}) order by name",
                              people.GROUPING_INDEXES).fetchall()

    before = definitions()
    assert len(before) == len(people.GROUPING_INDEXES)
    with pytest.raises(RuntimeError), lib.db.atomic():
        with people._grouping_indexes_off(lib.db, written=12):
            assert definitions() == []  # dropped: every face is written
            raise RuntimeError("killed")
    assert definitions() == before
    people.update(lib.db)
    assert definitions() == before
    assert lib.db.execute("select count(*) from faces indexed by faces_person_id where person_id is not null"
                          ).fetchone()[0] == 12


def test_a_corrected_value_is_written_when_it_moves_enough_changes_gender_or_goes_back_to_the_face_own():
    nan = np.nan
    # per face: own age, own p, own gender; stored age, p, gender; the corrected age, p, gender; written?
    cases = [
        (30.0, 0.2, "m", nan, nan, None, 30.0, 0.2, "m", True),  # nothing stored yet
        (30.0, 0.2, "m", 30.0, 0.2, "m", 30.0, 0.2, "m", False),  # as stored
        (30.0, 0.2, "m", 31.0, 0.2, "m", 31.3, 0.2, "m", False),  # moved 0.3 years: under AGE_STEP
        (30.0, 0.2, "m", 31.0, 0.2, "m", 31.6, 0.2, "m", True),  # moved 0.6 years
        (30.0, 0.2, "m", 30.0, 0.40, "m", 30.0, 0.42, "m", False),  # P(female) moved under P_STEP
        (30.0, 0.2, "m", 30.0, 0.48, "m", 30.0, 0.52, "f", True),  # ... but the gender changed
        (30.0, 0.2, "m", 30.2, 0.22, "m", 30.0, 0.2, "m", True),  # back to the face's own values
        (nan, nan, None, 30.0, 0.2, "m", 35.0, 0.9, "f", False),  # no age of its own: never written
    ]
    n = len(cases)
    col = list(zip(*cases))
    m = people._Members(np.arange(n), np.arange(100, 100 + n), np.arange(200, 200 + n), np.array(col[0]),
                        list(col[2]), np.array(col[1]), np.array(col[3]), list(col[5]), np.array(col[4]),
                        np.full(n, nan), np.full(n, -1), np.zeros((0, 128), np.float32))
    updates, photos = people._changed_faces(m, np.arange(n), np.array(col[6]), np.array(col[7]),
                                            np.array(col[8], object))
    written = [k for k in range(n) if cases[k][9]]
    assert [u[3] for u in updates] == [100 + k for k in written]
    assert photos == {200 + k for k in written}
    assert updates[0] == (30.0, "m", 0.2, 100)
