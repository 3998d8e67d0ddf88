"""People (issue 23) measured the way a user gets them: FG-NET's photos, dated, through ``phototag scan``.

    python benchmarks/bench_people_cli.py [--work /tmp/phototag-people-cli] [--seed 23] [--keep]
    python benchmarks/bench_people_cli.py --regroup-only --work DIR   # the people step again, on a kept index
    python benchmarks/bench_people_cli.py --regroup-only --work DIR --face-ages FILE   # ... with other face-alone ages

Each FG-NET image is copied into a temporary folder (outside the repository; removed at the end unless
``--keep``) with an EXIF DateTimeOriginal = a birth date chosen per subject (seeded) + the image's
labelled age (+ a random part of that year); nothing else in the file changes (``piexif.insert``
replaces or adds only the APP1 EXIF segment). Then ``phototag scan FOLDER --db TMP.db --no-exif`` runs
in a subprocess (the shipped models, the real path; its own empty config folder), and the index is read:

* the grouping: ``faces.person_id`` against the subjects, pairwise precision / recall (each photo's
  largest face is the subject's; other faces are left out and counted);
* the ages: ``faces.face_age`` (the face alone) and ``faces.age`` (the corrected value the tags hold)
  against the labelled age, mean absolute error per band (0-9, 10-19, 20+, all), and the face
  alone's mean signed error (its bias: FG-NET's old scans read older);
* the photos where no face was found.

``--regroup-only`` copies a kept index and runs ``people.regroup`` on it with the current thresholds
(for trying settings without scanning again: the same faces, the same people code). The data
(``../shared/data/fgnet``) is research-only: nothing of it is written into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FGNET = ROOT.parent / "shared" / "data" / "fgnet"
BANDS = (("0-9", 0, 10), ("10-19", 10, 20), ("20+", 20, 999), ("all", 0, 999))
LATEST = datetime(2024, 12, 31)  # no photo is dated later (the people rules ignore future dates)
PLACEHOLDER_DAYS = {(1970, 1, 1), (1980, 1, 1), (2000, 1, 1), (1904, 1, 1)}


def labels() -> list[dict]:
    with open(FGNET / "labels.csv") as fh:
        return [{"file": r["file"], "subject": int(r["subject"]), "age": float(r["age"])} for r in csv.DictReader(fh)]


def dates(rows: list[dict], seed: int, span: float | None = None) -> dict[str, datetime]:
    """Each photo's date: the subject's birth date (uniform between 1930 and the latest that keeps
    every photo of the subject before ``LATEST``; with ``span``, within the ``span`` years before that
    latest: births closer together, the birth-date check weaker) + the labelled age + a random part of
    that year."""
    rng = random.Random(seed)
    oldest: dict[int, float] = {}
    for r in rows:
        oldest[r["subject"]] = max(oldest.get(r["subject"], 0.0), r["age"])
    born = {}
    for s in sorted(oldest):
        last = LATEST - timedelta(days=365.25 * (oldest[s] + 1))
        first = datetime(1930, 1, 1) if span is None else last - timedelta(days=365.25 * span)
        born[s] = first + timedelta(seconds=rng.uniform(0, (last - first).total_seconds()))
    out = {}
    for r in rows:
        when = born[r["subject"]] + timedelta(days=365.25 * (r["age"] + rng.uniform(0.0, 0.99)))
        when = when.replace(microsecond=0)
        if (when.year, when.month, when.day) in PLACEHOLDER_DAYS:
            when += timedelta(days=1)
        out[r["file"]] = when
    return out


def dated_copy(src: Path, dst: Path, when: datetime) -> None:
    """``src`` with an EXIF DateTimeOriginal of ``when``: its own EXIF kept where it has readable EXIF,
    else a fresh block (orientation 1: upright, as without one); the image bytes are untouched."""
    import io

    import piexif

    from phototag.testing.photos import exif_block

    data = src.read_bytes()
    taken = when.strftime("%Y:%m:%d %H:%M:%S")
    try:
        exif = piexif.load(data)
        if not any(exif.get(k) for k in ("0th", "Exif", "GPS")):
            raise ValueError("no EXIF")
        exif.setdefault("Exif", {})[piexif.ExifIFD.DateTimeOriginal] = taken.encode()
        exif.pop("thumbnail", None)
        exif.pop("1st", None)
        block = piexif.dump(exif)
    except Exception:
        block = exif_block(taken=taken)
    out = io.BytesIO()
    piexif.insert(block, data, out)
    dst.write_bytes(out.getvalue())


def prepare(rows: list[dict], folder: Path, seed: int, span: float | None = None) -> dict[str, datetime]:
    when = dates(rows, seed, span)
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        dated_copy(FGNET / "images" / r["file"], folder / r["file"], when[r["file"]])
    return when


def scan(folder: Path, db: Path, log: Path) -> dict:
    env = dict(os.environ, XDG_CONFIG_HOME=str(db.parent / "config"), PHOTOTAG_DB=str(db))
    exe = Path(sys.executable).with_name("phototag")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "phototag"]),
           "scan", str(folder), "--db", str(db), "--no-exif", "--json"]
    t = time.perf_counter()
    with open(log, "w") as err:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"phototag scan exited {done.returncode}; see {log}")
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        summary = {"stdout": done.stdout[-2000:]}
    return {"command": " ".join(["phototag", *cmd[cmd.index("scan"):]]), "wall_s": round(wall, 1), "summary": summary}


def pairwise(labels_: np.ndarray, truth: np.ndarray, mask_a: np.ndarray | None = None,
             mask_b: np.ndarray | None = None) -> tuple[float, float, int, int]:
    """Pairwise precision, recall, predicted pairs, true pairs (over a in mask_a, b in mask_b, a != b)."""
    n = len(labels_)
    mask_a = np.ones(n, bool) if mask_a is None else mask_a
    mask_b = np.ones(n, bool) if mask_b is None else mask_b
    same_pred = labels_[:, None] == labels_[None, :]
    same_true = truth[:, None] == truth[None, :]
    pairs = (mask_a[:, None] & mask_b[None, :]) | (mask_b[:, None] & mask_a[None, :])
    pairs = np.triu(pairs, 1)
    tp = int((same_pred & same_true & pairs).sum())
    pred = int((same_pred & pairs).sum())
    true = int((same_true & pairs).sum())
    return (tp / pred if pred else 1.0), (tp / true if true else 1.0), pred, true


def measure(db: Path, rows: list[dict], folder_name: str | None = None) -> dict:
    """Read the index: the grouping and the ages of each photo's largest face."""
    by_file = {r["file"]: r for r in rows}
    con = sqlite3.connect(str(db))
    photos = con.execute("select id, path, status, face_count from photos").fetchall()
    faces = con.execute("select photo_id, w * h, person_id, face_age, age from faces").fetchall()
    con.close()
    largest: dict[int, tuple] = {}
    extra = 0
    for photo_id, area, person, face_age, age in faces:
        if photo_id in largest:
            extra += 1
            if area <= largest[photo_id][0]:
                continue
        largest[photo_id] = (area, person, face_age, age)
    truth, person, face_age, age, label = [], [], [], [], []
    no_face, failed, ungrouped = 0, 0, 0
    for photo_id, path, status, _ in photos:
        r = by_file.get(os.path.basename(path))
        if r is None:
            continue
        if status != "done":
            failed += 1
            continue
        if photo_id not in largest:
            no_face += 1
            continue
        _, p, fa, a = largest[photo_id]
        if p is None:
            ungrouped += 1
        truth.append(r["subject"])
        person.append(p if p is not None else -1 - photo_id)  # no person: alone
        face_age.append(np.nan if fa is None else fa)
        age.append(np.nan if a is None else a)
        label.append(r["age"])
    truth, person = np.array(truth), np.array(person)
    face_age, age, label = np.array(face_age, float), np.array(age, float), np.array(label, float)
    p, r, pred, true = pairwise(person, truth)
    young = label < 18
    yp, yr, _, ytrue = pairwise(person, truth, young, ~young)
    out = {"photos": len(photos), "failed": failed, "no_face": no_face, "other_faces": extra,
           "faces": len(truth), "ungrouped": ungrouped, "people": int(len(np.unique(person))),
           "subjects": int(len(np.unique(truth))),
           "pairwise": {"precision": round(p, 4), "recall": round(r, 4), "predicted_pairs": pred, "true_pairs": true},
           "young_adult": {"precision": round(yp, 4), "recall": round(yr, 4), "true_pairs": ytrue},
           "age_mae": {}}
    for band, lo, hi in BANDS:
        m = (label >= lo) & (label < hi) & ~np.isnan(face_age) & ~np.isnan(age)
        out["age_mae"][band] = {"faces": int(m.sum()),
                                "face_alone": round(float(np.abs(face_age[m] - label[m]).mean()), 3),
                                "corrected": round(float(np.abs(age[m] - label[m]).mean()), 3),
                                "face_alone_bias": round(float((face_age[m] - label[m]).mean()), 3),
                                "moved": int((np.abs(age[m] - face_age[m]) >= 0.05).sum())}
    return out


def regroup_only(work: Path, rows: list[dict], seed: int | None = None, span: float | None = None,
                 face_ages: dict[str, float] | None = None) -> dict:
    """The kept index copied, every face grouped and corrected again with the current people code; with
    ``seed``, the photos' dates in the copy replaced by that seed's (and ``span``'s): the same faces,
    other birth dates; with ``face_ages`` (file name: age), each such photo's largest face reads that
    age alone (another age model's reading, e.g. ``bench_age_domain.py --predictions``)."""
    import sqlite_utils

    from phototag import people

    src = work / "index.db"
    dst = work / "regroup.db"
    for suffix in ("", "-wal", "-shm"):
        if (work / f"regroup.db{suffix}").exists():
            (work / f"regroup.db{suffix}").unlink()
    con = sqlite3.connect(str(src))
    con.execute(f"vacuum into '{dst}'")
    con.close()
    db = sqlite_utils.Database(str(dst))
    # forget the people entirely: a fresh first update, as at the end of the first scan
    db.execute("update faces set person_id = null, age = face_age, gender = face_gender, p_female = face_p_female,"
               " cell1 = null, cell2 = null")
    for table in ("people", "people_exclusions", "people_memory", "people_dirty", "people_meta"):
        db.execute(f"delete from {table}")
    for photo_id, path in db.execute("select id, path from photos").fetchall() if face_ages else ():
        if os.path.basename(path) in face_ages:
            value = face_ages[os.path.basename(path)]
            db.execute("update faces set face_age = ?, age = ? where id = (select id from faces where photo_id = ?"
                       " order by w * h desc limit 1)", [value, value, photo_id])
    if seed is not None:
        when = dates(rows, seed, span)
        for photo_id, path in db.execute("select id, path from photos").fetchall():
            if os.path.basename(path) in when:
                db.execute("update photos set taken_at = ? where id = ?",
                           [when[os.path.basename(path)].isoformat(), photo_id])
    db.conn.commit()
    t = time.perf_counter()
    people.update(db)
    wall = time.perf_counter() - t
    db.conn.close()
    out = measure(dst, rows)
    out["people_update_s"] = round(wall, 2)
    return out


def thresholds() -> dict:
    from phototag import people

    return {k: getattr(people, k) for k in ("LINK", "CENTROID", "LINK_BY_AGE", "LINK_BY_AGE_DATED", "BIRTH_Z", "BIRTH_Z_DATED",
                                                 "ADULT_LINK", "ADULT_MEAN", "ADULT_CENTROID", "MIN_DATED",
                                                 "DISAGREE_Z")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the dated copies and the index (default: a new temporary folder)")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--born-span", type=float, default=None,
                        help="the subjects' birth dates within this many years (default: 1930 on)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (for --regroup-only)")
    parser.add_argument("--face-ages", type=Path, default=None,
                        help="with --regroup-only: a JSON file of FG-NET file name -> the face alone's age to use "
                             "instead of the index's (bench_age_domain.py --predictions)")
    parser.add_argument("--regroup-only", action="store_true",
                        help="no scan: the kept index in --work grouped again with the current thresholds")
    args = parser.parse_args()
    rows = labels()
    if args.regroup_only:
        if args.work is None:
            raise SystemExit("--regroup-only needs --work (a folder kept by an earlier run)")
        redate = args.seed != 23 or args.born_span is not None
        print(json.dumps({"thresholds": thresholds(), "seed": args.seed, "born_span": args.born_span,
                          "face_ages": None if args.face_ages is None else str(args.face_ages),
                          **regroup_only(args.work, rows, args.seed if redate else None, args.born_span,
                                         json.loads(args.face_ages.read_text()) if args.face_ages else None)}))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="phototag-people-cli-"))
    if ROOT in work.resolve().parents:
        raise SystemExit("the work folder must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)
    folder, db = work / "fgnet", work / "index.db"
    for p in (db, work / "index.db-wal", work / "index.db-shm"):
        if p.exists():
            p.unlink()
    try:
        t = time.perf_counter()
        prepare(rows, folder, args.seed, args.born_span)
        print(f"{len(rows)} dated copies in {folder} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        ran = scan(folder, db, work / "scan.log")
        print(f"scan: {ran['wall_s']} s", file=sys.stderr)
        result = {"thresholds": thresholds(), "seed": args.seed, "born_span": args.born_span, "scan_wall_s": ran["wall_s"],
                  "command": ran["command"], **measure(db, rows)}
        print(json.dumps(result))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
