"""Time typical ``phototag query``/``stats`` questions on a large synthetic index and show their plans.

Fills a temporary index with 1,000,000 faces over 300,000 photos (bulk executemany in one
transaction), then runs each query a few times and prints the best time, the number of photos
found and SQLite's EXPLAIN QUERY PLAN. Run from the repository root:
``python -m benchmarks.bench_query [--photos N] [--faces N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from phototag import query as q
from phototag.index import open_index

YEARS = range(2005, 2025)


def fill(db, n_photos: int, n_faces: int, seed: int = 1) -> None:
    """Insert ``n_photos`` photos (about 1% failed, 1% missing, 10% undated) and ``n_faces`` faces.

    Like a scan, photos get their ids in path order and each photo's faces consecutive ids.
    """
    rng = random.Random(seed)
    paths = sorted(f"/photos/{YEARS[i % len(YEARS)]}/{rng.randint(1, 12):02d}/IMG_{i:07d}.jpg"
                   for i in range(n_photos))
    failed = {pid for pid in range(1, n_photos + 1) if rng.random() < 0.01}
    # Faces go to 80% of the photos, so about a fifth have none.
    with_faces = [pid for pid in range(1, n_photos + 1) if pid not in failed and rng.random() < 0.8]
    owners = sorted(rng.choice(with_faces) for _ in range(n_faces))
    counts = [0] * (n_photos + 1)
    faces = []
    for fid, pid in enumerate(owners, start=1):
        p_female = rng.betavariate(0.4, 0.4)
        x, y = rng.uniform(0, 3800), rng.uniform(0, 2800)
        landmarks = json.dumps({k: [round(x + rng.uniform(0, 100), 1), round(y + rng.uniform(0, 100), 1)]
                                for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")})
        faces.append((fid, pid, counts[pid], "displayed", x, y, 120.0, 150.0, landmarks, rng.uniform(0.9, 1.0),
                      rng.uniform(-30, 30), "f" if p_female >= 0.5 else "m", p_female, rng.uniform(0, 90)))
        counts[pid] += 1
    photos = []
    for pid, path in enumerate(paths, start=1):
        year = path.split("/")[2]
        taken = None if rng.random() < 0.1 else (
            f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00")
        photos.append((pid, path, path.encode(), 3_000_000, 0, None, 4000, 3000, 4000, 3000, 1, taken, "JPEG",
                       "failed" if pid in failed else "done", "decode error" if pid in failed else None,
                       counts[pid], int(rng.random() < 0.01), "2024-01-01T00:00:00"))
    with db.conn:
        db.conn.executemany(
            "INSERT INTO photos (id, path, path_key, size, mtime_ns, sha256, width, height, stored_width,"
            " stored_height, orientation, taken_at, format, status, error, face_count, missing, scanned_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", photos)
        db.conn.executemany(
            "INSERT INTO faces (id, photo_id, face_index, frame, x, y, w, h, landmarks, confidence, rotation,"
            " gender, p_female, age) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", faces)


QUERIES = {
    "age 20-30, gender f": q.Query(age_min=20, age_max=30, gender="f"),
    "age 20-30, gender f, --limit 100": q.Query(age_min=20, age_max=30, gender="f", limit=100),
    "gender m, min confidence 0.95": q.Query(gender="m", min_gender_confidence=0.95),
    "gender f, age 60-, min confidence 0.9": q.Query(gender="f", age_min=60, min_gender_confidence=0.9),
    "min confidence 0.99 (any gender)": q.Query(min_gender_confidence=0.99),
    "path /photos/2015": q.Query(path=b"/photos/2015"),
    "path glob /photos/2016/0[1-3]/*": q.Query(path_glob="/photos/2016/0[1-3]/*"),
    "taken 2018-06..2018-08": q.Query(taken_after="2018-06", taken_before="2018-08"),
    "faces = 6": q.Query(faces=6),
    "age -12, min faces 4, sort taken, limit 50": q.Query(age_max=12, min_faces=4, sort="taken", limit=50),
    "age 60-, f, path /photos/2020, taken after 2020-03": q.Query(age_min=60, gender="f", path=b"/photos/2020",
                                                                    taken_after="2020-03"),
    "age 20-29, m, sort age, limit 100": q.Query(age_min=20, age_max=29, gender="m", sort="age", limit=100),
    "age 30-39, faces 2, sort faces --reverse": q.Query(age_min=30, age_max=39, faces=2, sort="faces",
                                                        reverse=True),
}


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def plan(db, sql: str, params: list) -> str:
    return "\n".join(f"      {row[3]}" for row in db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300_000)
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_index(Path(tmp) / "index.db")
        start = time.perf_counter()
        fill(db, args.photos, args.faces)
        print(f"filled {args.photos:,} photos / {db['faces'].count:,} faces in {time.perf_counter() - start:.1f} s\n")
        print("times: best of", args.repeat, "| count: SQL only (SELECT count(*) over the query) |"
              " paths: rows for --format paths | full: with the matching faces (json, csv, table)\n")
        for name, query in QUERIES.items():
            sql, params = q.build_query(query)
            count_s, _ = best_of(lambda: db.execute(f"SELECT count(*) FROM ({sql})", params).fetchone(), args.repeat)
            paths_s, _ = best_of(lambda: q.find_photos(db, query, with_faces=False), args.repeat)
            full_s, photos = best_of(lambda: q.find_photos(db, query), args.repeat)
            n_faces = sum(len(p["faces"]) for p in photos)
            print(f"{name}: {len(photos):,} photos, {n_faces:,} faces | count {count_s * 1000:.0f} ms | "
                  f"paths {paths_s * 1000:.0f} ms | full {full_s * 1000:.0f} ms")
            print(plan(db, sql, params))
        print("faces of the photos found (the same plan for every query):")
        print(plan(db, *q.build_faces_query(query, [p["id"] for p in photos])))
        seconds, stats = best_of(lambda: q.index_stats(db), args.repeat)
        print(f"stats: {stats['photos']:,} photos, {stats['faces']:,} faces; {seconds * 1000:.0f} ms")
        print(plan(db, q.STATS_PHOTOS_SQL, []))
        print(plan(db, q.STATS_AGE_RANGE_SQL, ["f", 19.5, 29.5]))
        print(plan(db, q.STATS_MISSING_FACES_SQL, []))
        db.conn.close()


if __name__ == "__main__":
    main()
