"""Answer questions from the index: find photos by their faces, show one photo, count everything.
The answers are records (dicts); :mod:`phototag.display` renders them.

Matching rules
--------------
* Face filters (age, gender, gender confidence) must all hold for the *same* face; a photo
  matches when at least one of its faces does.
* Ages are stored as predicted years (floats) and compared as whole years rounded half up
  (:mod:`phototag.ages`): ``--age A-B`` matches ``A - 0.5 <= age < B + 0.5`` (30.4 is 30 and
  matches ``20-30``; 30.5 is 31 and does not). Stats' decades and the keywords use the same rule,
  so the ``20-29`` decade holds exactly the faces ``--age 20-29`` finds.
* Gender confidence is ``p_female`` for f, ``1 - p_female`` for m, and the larger of the two
  when no gender is asked for.
* ``--taken-after``/``--taken-before`` are inclusive at the precision given:
  ``--taken-before 2020-12-31`` includes all of that day.
* ``turned``: only photos whose faces agree that they are the wrong way up (their ``turn``, see
  :mod:`phototag.orient`).
* Only scanned photos (status ``done``) that were present at the last scan are listed, unless
  ``include_missing`` is set.

All SQL is built from fixed fragments; every user value is a bound parameter.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from .ages import age_decade, decade_label, year_bounds
from .index import faces_of, get_photo, get_photo_of_sibling, siblings_of
from .names import display_path

GENDERS = {"f": "f", "female": "f", "m": "m", "male": "m"}
SORT_KEYS = ("path", "taken", "faces", "age")

FACE_COLUMNS = ", ".join(f"f.{c}" for c in ("id", "photo_id", "face_index", "frame", "x", "y", "w", "h", "rotation",
                                             "gender", "p_female", "age", "confidence", "person_id", "face_age",
                                             "face_p_female"))
_AGE_RANGE = re.compile(r"^\s*(\d+)?\s*(-)?\s*(\d+)?\s*$")
_DATE_FORMATS = {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d", 16: "%Y-%m-%dT%H:%M", 19: "%Y-%m-%dT%H:%M:%S"}
_AFTER_ALL = "\uffff"  # sorts after every character of an ISO 8601 date

# Stats are range counts on the covering indexes: a GROUP BY over a million faces takes a second.
STATS_PHOTOS_SQL = (
    "SELECT (SELECT count(*) FROM photos WHERE status = 'done' AND missing = 0),"
    " (SELECT sum(face_count) FROM photos WHERE status = 'done' AND missing = 0),"
    " (SELECT count(*) FROM photos WHERE status = 'done' AND missing = 0 AND face_count = 0),"
    " (SELECT count(*) FROM photos WHERE status = 'done' AND missing = 1),"
    " (SELECT count(*) FROM photos WHERE status = 'failed')"
)
# The path itself or anything below it, on the exact names: a range on the path_key index ("0"
# follows "/"), then a check that the byte after the prefix is "/".
UNDER_PATH_SQL = "{key} >= ? AND {key} < ? AND (length({key}) = ? OR substr({key}, ?, 1) = X'2F')"
STATS_AGE_RANGE_SQL = "SELECT count(*) FROM faces WHERE gender IS ? AND age >= ? AND age < ?"
STATS_MISSING_FACES_SQL = (
    "SELECT gender, age FROM faces WHERE photo_id IN (SELECT id FROM photos WHERE status = 'done' AND missing = 1)"
)


@dataclass(frozen=True)
class Query:
    """What ``phototag query`` asks for. ``None`` means "no constraint"."""

    age_min: int | None = None
    age_max: int | None = None
    gender: str | None = None  # "f" or "m"
    min_gender_confidence: float | None = None
    faces: int | None = None
    min_faces: int | None = None
    max_faces: int | None = None
    path: bytes | None = None  # an absolute path, exact bytes: the photo itself or any photo below it
    path_glob: str | None = None  # a glob on the photos' displayed paths (see ``path_filter``)
    taken_after: str | None = None
    taken_before: str | None = None
    include_missing: bool = False
    turned: bool = False  # only photos whose faces agree they are the wrong way up
    person: int | None = None  # only photos with a face of this person (its id); its faces are the matching ones
    sort: str = "path"
    reverse: bool = False
    limit: int | None = None

    @property
    def has_face_filter(self) -> bool:
        return any(v is not None for v in (self.age_min, self.age_max, self.gender, self.min_gender_confidence,
                                           self.person))


# --- parsing user text ---------------------------------------------------------------------------

def parse_age_range(text: str) -> tuple[int | None, int | None]:
    """``"20-30"``, ``"60-"``, ``"-12"`` or ``"25"`` as inclusive whole-year bounds; ValueError if malformed."""
    m = _AGE_RANGE.match(text)
    if not m or not (m[1] or m[3]) or (m[1] and m[3] and not m[2]):
        raise ValueError(f"{text!r} is not an age range; use A-B, A- or -B with whole years (e.g. 20-30)")
    low = int(m[1]) if m[1] else None
    high = int(m[3]) if m[3] else None
    if not m[2]:
        high = low
    if low is not None and high is not None and low > high:
        raise ValueError(f"age range {text!r} is empty: {low} > {high}")
    return low, high


def parse_gender(text: str) -> str:
    """``f``/``female``/``m``/``male`` (any case) as ``"f"`` or ``"m"``; ValueError otherwise."""
    try:
        return GENDERS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not a gender; use f, m, female or male") from None


def parse_date(text: str) -> str:
    """An ISO 8601 date or date-time prefix (``2020``, ``2020-05``, ``2020-05-17``, ``2020-05-17T08:30[:00]``)."""
    value = text.strip().replace(" ", "T")
    try:
        datetime.strptime(value, _DATE_FORMATS[len(value)])
    except (KeyError, ValueError):
        raise ValueError(f"{text!r} is not a date; use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]") from None
    return value


def path_filter(text: str, *, glob: bool = False, cwd: str | None = None,
                exists: Callable[[bytes], bool] = os.path.lexists) -> tuple[bytes | None, str | None]:
    """``--path TEXT`` as ``(path, glob)``, one of them None.

    A path that exists (``exists``: on disk, say, or in the index) is a path, whatever characters it
    holds (``[2020] trip``). TEXT is a glob with ``glob``, or when it has ``*``, ``?`` or ``[`` and no
    such path exists. A relative TEXT is taken from ``cwd``. Paths are exact bytes (a name that is not
    UTF-8 too); a glob matches the displayed path, where such bytes read ``\\xNN``.
    """
    cwd = cwd or os.getcwd()
    if not glob:
        path = os.path.abspath(os.path.join(os.fsencode(cwd), os.fsencode(os.path.expanduser(text)))).rstrip(b"/")
        if not is_glob(text) or exists(path):
            return path, None
    return None, display_path(text if text.startswith(("/", "*")) else os.path.join(cwd, text))


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def gender_confidence(face: dict) -> float | None:
    """How sure the model is of the face's stated gender (1 - P(female) without float noise: 0.8906
    for 0.1094, not 0.8906000000000001)."""
    p = face.get("p_female")
    if p is None:
        return None
    male = round(1.0 - p, 10)
    if face.get("gender") == "f":
        return p
    if face.get("gender") == "m":
        return male
    return max(p, male)


# --- SQL -----------------------------------------------------------------------------------------

def face_conditions(q: Query, indexed: bool = True) -> tuple[list[str], list]:
    """WHERE fragments (on alias ``f``) and parameters for the per-face filters.

    With ``indexed=False`` the columns are written ``+f.column`` so that SQLite does not use
    an index for them (when the faces are looked up by photo instead).
    """
    f = "f." if indexed else "+f."
    where, params = [], []
    if q.gender is not None:
        where.append(f"{f}gender = ?")
        params.append(q.gender)
    lower, upper = year_bounds(q.age_min, q.age_max)
    if lower is not None:
        where.append(f"{f}age >= ?")
        params.append(lower)
    if upper is not None:
        where.append(f"{f}age < ?")
        params.append(upper)
    if q.person is not None:
        where.append(f"{f}person_id = ?")
        params.append(q.person)
    if q.min_gender_confidence is not None:
        p = q.min_gender_confidence
        if q.gender == "f":
            where.append(f"{f}p_female >= ?")
            params.append(p)
        elif q.gender == "m":
            # The first bound (slightly loose) lets the (gender, p_female) index narrow the scan;
            # the second is the exact rule.
            where.append(f"{f}p_female <= ? AND 1.0 - f.p_female >= ?")
            params += [1.0 - p + 1e-9, p]
        else:
            where.append("max(f.p_female, 1.0 - f.p_female) >= ?")
            params.append(p)
    return where, params


def photo_conditions(q: Query) -> tuple[list[str], list]:
    """WHERE fragments (on alias ``p``) and parameters for the per-photo filters."""
    # Nearly every photo is done and present: "+" keeps SQLite from choosing the status index
    # over a selective one (path, taken_at, face_count).
    where, params = ["+p.status = 'done'"], []
    if not q.include_missing:
        where.append("+p.missing = 0")
    if q.turned:
        where.append("p.turn != 0")
    for op, value in (("=", q.faces), (">=", q.min_faces), ("<=", q.max_faces)):
        if value is not None:
            where.append(f"p.face_count {op} ?")
            params.append(value)
    if q.path is not None:
        where.append(UNDER_PATH_SQL.format(key="p.path_key"))
        params += under_path_params(q.path)
    if q.path_glob is not None:
        where.append("p.path GLOB ?")
        params.append(q.path_glob)
    if q.taken_after is not None:
        where.append("p.taken_at >= ?")
        params.append(q.taken_after)
    if q.taken_before is not None:
        where.append("p.taken_at < ?")
        params.append(q.taken_before + _AFTER_ALL)
    return where, params


def under_path_params(path: bytes) -> list:
    """The parameters of ``UNDER_PATH_SQL`` for ``path``."""
    return [path, path + b"0", len(path), len(path) + 1]


def has_photos_under(db: sqlite_utils.Database, path: bytes) -> bool:
    """Whether the index holds a photo at ``path`` or below it."""
    return db.execute("SELECT 1 FROM photos WHERE " + UNDER_PATH_SQL.format(key="path_key") + " LIMIT 1",
                      under_path_params(path)).fetchone() is not None


def build_query(q: Query) -> tuple[str, list]:
    """The SELECT for the photos matching ``q`` (sorted, limited) and its parameters."""
    if q.sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {q.sort!r}; use one of {', '.join(SORT_KEYS)}")
    where, params = photo_conditions(q)
    face_where, face_params = face_conditions(q)
    columns = "p.id, p.path, p.path_key, p.taken_at, p.width, p.height, p.face_count, p.missing, p.turn"
    source, source_params = "photos AS p", []
    matching_faces = "faces AS f WHERE " + " AND ".join(face_where)
    if face_where and q.sort == "age":
        # The youngest matching face; a join on a grouped subquery, since a correlated
        # subquery would search the faces by age instead of by photo.
        source = (f"photos AS p JOIN (SELECT f.photo_id, min(f.age) AS sort_age FROM {matching_faces}"
                  " GROUP BY f.photo_id) AS m ON m.photo_id = p.id")
        source_params = face_params
        columns += ", m.sort_age AS sort_age"
    elif face_where:
        where.append(f"p.id IN (SELECT f.photo_id FROM {matching_faces})")
        params += face_params
    elif q.sort == "age":
        columns += ", (SELECT min(f.age) FROM faces AS f WHERE f.photo_id = p.id) AS sort_age"
    direction = " DESC" if q.reverse else ""
    key = {"path": [], "taken": ["p.taken_at IS NULL", "p.taken_at" + direction],
           "faces": ["p.face_count" + direction], "age": ["sort_age IS NULL", "sort_age" + direction]}[q.sort]
    sql = (f"SELECT {columns} FROM {source} WHERE " + " AND ".join(where)
           + " ORDER BY " + ", ".join(key + ["p.path" + direction]))
    if q.limit is not None:
        sql += " LIMIT ?"
        params.append(q.limit)
    return sql, source_params + params


def find_photos(db: sqlite_utils.Database, q: Query, with_faces: bool = True) -> list[dict]:
    """The photos matching ``q``; with ``with_faces`` each gets ``faces``: its faces that match the filters."""
    sql, params = build_query(q)
    photos = list(db.query(sql, params))
    if not with_faces or not photos:
        return photos
    by_id = {p["id"]: p for p in photos}
    for p in photos:
        p["faces"] = []
    for face in db.query(*build_faces_query(q, list(by_id))):
        by_id[face["photo_id"]]["faces"].append(face)
    return photos


def build_faces_query(q: Query, photo_ids: list[int]) -> tuple[str, list]:
    """The SELECT for the faces of ``photo_ids`` that match ``q``'s face filters, and its parameters."""
    face_where, face_params = face_conditions(q, indexed=False)
    sql = (f"SELECT {FACE_COLUMNS} FROM faces AS f WHERE "
           + " AND ".join(["f.photo_id IN (SELECT value FROM json_each(?))"] + face_where)
           + " ORDER BY f.photo_id, f.face_index")
    return sql, [json.dumps(photo_ids)] + face_params


def photo_detail(db: sqlite_utils.Database, path) -> dict | None:
    """The photos row of ``path`` with all its ``faces`` and RAW ``siblings``, or None if it is not in
    the index. The RAW of a RAW+JPEG pair gives the JPEG's row."""
    photo = get_photo(db, path) or get_photo_of_sibling(db, path)
    if photo is not None:
        photo["faces"] = faces_of(db, photo["id"])
        names = dict(db.execute("SELECT id, name FROM people WHERE id IN (SELECT person_id FROM faces"
                                " WHERE photo_id = ?)", [photo["id"]]).fetchall())
        for face in photo["faces"]:
            face["person_name"] = names.get(face.get("person_id"))
        photo["siblings"] = siblings_of(db, photo["id"])
    return photo


def face_counts(db: sqlite_utils.Database) -> Counter:
    """Faces of the present, scanned photos by (gender, age decade); the decade is None for no age."""
    counts: Counter = Counter()
    for gender in _genders(db):
        low = db.execute("SELECT min(age) FROM faces WHERE gender IS ?", [gender]).fetchone()[0]
        high = db.execute("SELECT max(age) FROM faces WHERE gender IS ?", [gender]).fetchone()[0]
        counts[gender, None] = db.execute("SELECT count(*) FROM faces WHERE gender IS ? AND age IS NULL",
                                          [gender]).fetchone()[0]
        if low is not None:
            for decade in range(age_decade(low), age_decade(high) + 1, 10):
                counts[gender, decade] = db.execute(STATS_AGE_RANGE_SQL,
                                                    [gender, *year_bounds(decade, decade + 9)]).fetchone()[0]
    for gender, age in db.execute(STATS_MISSING_FACES_SQL):
        counts[gender, age_decade(age)] -= 1
    return +counts


def _genders(db: sqlite_utils.Database) -> list[str | None]:
    """The distinct genders of the faces, NULL included, by skipping through the gender index."""
    genders: list[str | None] = []
    if db.execute("SELECT 1 FROM faces WHERE gender IS NULL LIMIT 1").fetchone():
        genders.append(None)
    gender = db.execute("SELECT min(gender) FROM faces").fetchone()[0]
    while gender is not None:
        genders.append(gender)
        gender = db.execute("SELECT min(gender) FROM faces WHERE gender > ?", [gender]).fetchone()[0]
    return genders


def _by_decade(item: tuple[tuple[str | None, int | None], int]) -> tuple:
    (gender, decade), _ = item
    return decade is None, decade or 0, gender or ""


def index_stats(db: sqlite_utils.Database) -> dict:
    """Counts over the index; faces are those of the present, scanned photos."""
    photos, faces, without_faces, missing, failed = db.execute(STATS_PHOTOS_SQL).fetchone()
    by_gender: dict[str, int] = {}
    by_decade: dict[str, dict[str, int]] = {}
    for (gender, decade), count in sorted(face_counts(db).items(), key=_by_decade):
        gender = gender or "unknown"
        label = "unknown" if decade is None else decade_label(decade)
        by_gender[gender] = by_gender.get(gender, 0) + count
        bucket = by_decade.setdefault(label, {"total": 0})
        bucket[gender] = bucket.get(gender, 0) + count
        bucket["total"] += count
    return {"photos": photos or 0, "faces": faces or 0, "photos_without_faces": without_faces or 0,
            "missing": missing or 0, "failed": failed or 0,
            "faces_by_gender": dict(sorted(by_gender.items())), "faces_by_age": by_decade}


def failed_files(db: sqlite_utils.Database) -> list[dict]:
    """The files that failed at their last scan, with the reason, by path."""
    return [{"path": path, "error": error} for path, error in
            db.execute("SELECT path, error FROM photos WHERE status = 'failed' ORDER BY path_key").fetchall()]


# --- records (what the commands print: rendered by phototag.display) ---------------------------

def face_record(face: dict) -> dict:
    """A face row as output: box in the displayed frame, predictions and both confidences."""
    return {"face_index": face["face_index"], "box": [face["x"], face["y"], face["w"], face["h"]],
            "frame": face["frame"], "rotation": face["rotation"], "gender": face["gender"],
            "p_female": face["p_female"], "gender_confidence": gender_confidence(face),
            "age": face["age"], "confidence": face["confidence"], "face": face.get("id"),
            "person": face.get("person_id"),  # the face alone: as the tags until its person corrects it
            "face_age": _first(face.get("face_age"), face["age"]),
            "face_p_female": _first(face.get("face_p_female"), face["p_female"])}


def _first(*values):
    """The first of ``values`` that is not None."""
    return next((v for v in values if v is not None), None)


def photo_record(photo: dict) -> dict:
    """A photo as output, with its (matching) faces."""
    return {"path": photo["path"], "taken_at": photo["taken_at"], "width": photo["width"],
            "height": photo["height"], "face_count": photo["face_count"], "missing": bool(photo["missing"]),
            "turn": photo["turn"], "faces": [face_record(f) for f in photo.get("faces", [])]}


def detail_record(photo: dict) -> dict:
    """One photo as ``show --json`` prints it: the scan's facts and every face with its landmarks."""
    keys = ("path", "status", "error", "taken_at", "width", "height", "orientation", "turn", "format", "face_count",
            "model_version", "scanned_at")
    return {k: photo[k] for k in keys} | {
        "missing": bool(photo["missing"]),
        "siblings": photo.get("siblings", []),
        "faces": [face_record(f) | {"person_name": f.get("person_name"), "landmarks": f["landmarks"]}
                  for f in photo["faces"]],
    }


def person_id(db: sqlite_utils.Database, text: str) -> int:
    """The id of the person ``text`` names: an id, or a name (exactly, else ignoring case); ValueError
    when none or several match."""
    if text.strip().isdigit() and db.execute("SELECT 1 FROM people WHERE id = ?", [int(text)]).fetchone():
        return int(text)
    for sql in ("SELECT id FROM people WHERE name = ?", "SELECT id FROM people WHERE lower(name) = lower(?)"):
        found = [r[0] for r in db.execute(sql, [text])]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"{len(found)} people are named {text!r}; give an id (phototag people lists them)")
    raise ValueError(f"no person {text!r} (phototag people lists them)")

