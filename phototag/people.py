"""People (issue 23): faces grouped into persons by their identity descriptor (dlib's 128-D
face-recognition vector, ``faces.embedding``), and each person's faces correcting one another's
gender and age. See ``docs/people.md`` for the rules, the thresholds and the measurements.

What the scan and the CLI call:

* :func:`update` at the end of every scan: faces seen for the first time get their face-alone values,
  faces that replace a face of the same photo (a rewrite, a rescan) take over its person, new faces
  join people or form new ones (incremental: nobody is regrouped), changed people are corrected.
* :func:`regroup`: every face grouped again from scratch; the people the user touched are kept.
* :func:`list_people`, :func:`person`; the user's word: :func:`name`, :func:`merge`,
  :func:`remove_faces`, :func:`set` (each raises :class:`PeopleError`, which the CLI maps to exit 2).
* :func:`changed_photos` / :func:`mark_written`: the photos whose corrected tags changed, for the scan
  to write again.

Index side (created by :func:`ensure_schema`; the faces table keeps its columns):

* ``faces.age``, ``faces.gender``, ``faces.p_female`` are the **corrected** values: what the tags,
  ``query`` and ``stats`` use, and what the photo's tags hold (once rewritten). Before a face is
  corrected they are the face's own.
* ``faces.face_age``, ``faces.face_gender``, ``faces.face_p_female``: the face alone (the chain's
  answer), filled by :func:`update` the first time it sees the face (NULL until then).
* ``faces.person_id`` (NULL: no descriptor, or not grouped yet), ``faces.cell1``/``cell2`` (the search
  cells of the descriptor, for the incremental search), ``faces.embedding`` (128 float32, little-endian).
* ``people``: one row per person; ``people_exclusions`` (this face is not that person, the user said);
  ``people_memory`` (faces deleted since the last update, filled by a trigger, so that a rewritten or
  rescanned photo's faces keep their person and face-alone values); ``people_dirty`` (photos whose
  corrected values changed: their tags are to be written again); ``people_meta`` (the search cells,
  and the gender thresholds of the models that tagged the faces).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import re
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone

import numpy as np
import sqlite_utils

from . import models, neighbours
from .identity import DIMENSIONS as DIM  # dlib's face descriptor
from .identity import to_blob
from .records import BLOB_DTYPE

_log = logging.getLogger(__name__)

# --- thresholds (docs/people.md says how each was chosen) ------------------------------------------
LINK = 0.48  # two adults' faces may be one person when their descriptors are at most this far apart
CENTROID = 0.44  # ... and the two groups' mean descriptors at most this far apart (scaled like the link)
# Children's descriptors lie close together whoever they are: the link is shorter for a face estimated
# younger than each age here (FG-NET pairs: no other child within these, see docs/people.md).
LINK_BY_AGE = ((6.0, 0.34), (13.0, 0.38), (20.0, 0.42))
# Between two groups that both have a birth estimate (dated photos) the link may be longer, up to
# LINK_BY_AGE_DATED, but a merge that needs more than LINK_BY_AGE allows must have birth estimates within
# BIRTH_Z_DATED SDs (not BIRTH_Z). Chosen on FG-NET through the CLI (benchmarks/bench_people_cli.py,
# docs/people.md); undated faces (LAG) keep the short links: there the longer ones merge strangers' children.
LINK_BY_AGE_DATED = ((6.0, 0.40), (13.0, 0.44), (20.0, 0.48))
BIRTH_Z_DATED = 2.0
# Two groups of adults (every face's limit LINK: estimated 20 or over, or unknown) are judged as groups:
# along a link of at most ADULT_LINK they merge when the root mean square distance between their faces
# (sqrt(|centroid a - centroid b|^2 + spread a + spread b), spread: the mean squared distance of a
# group's faces to its centroid) is at most ADULT_MEAN and their centroids at most ADULT_CENTROID apart
# (two single faces: their distance at most ADULT_CENTROID). Chosen on LAG half A + FG-NET, the centroid
# limit then on CelebA's validation faces (0.48 put a woman and a man in one person twice as often;
# docs/people.md "Adults as groups").
ADULT_LINK = 0.54
ADULT_MEAN = 0.54
ADULT_CENTROID = 0.46
SPREAD = 0.08  # an existing person's spread when not known: LAG A adults' (unbiased) mean, times 1 - 1/faces
# A face read at under SMALL_FACE pixels (its longer box side in the pixels the chain read) has a
# poor descriptor: two such strangers came within 0.48 twelve times as often (LAG half A adults read
# at 29 px), so it links as a teenager's, within SMALL_FACE_LINK at most (0.42 brings them back to
# the full-size rate; docs/people.md "Small faces").
SMALL_FACE = 40.0
SMALL_FACE_LINK = 0.42
BIRTH_Z = 3.0  # birth estimates further apart than this many standard deviations: not one person
MIN_DATED = 3  # dated faces a person needs before its birth date corrects ages
DISAGREE_Z = 2.5  # a face whose age differs from its person's by more than this many SDs keeps its own
INLIER_SHARE = 0.67  # a person whose dated faces agree less than this on a birth date is flagged
BORN_SD_FLOOR = 1.0  # years: a person's faces err together, so its birth date is never known better
AGE_STEP = 0.5  # a corrected age is rewritten only when it moves by at least this much (years)
P_STEP = 0.05  # ... a corrected P(female) by at least this much (or the gender changes)
CHILD = 13.0  # faces estimated younger weigh less in the gender vote (the model's children's gender is weak)
CHILD_WEIGHT = 0.3

# Dates that cameras and software write when they know none: they do not vote.
PLACEHOLDER_DAYS = {date(1970, 1, 1), date(1980, 1, 1), date(2000, 1, 1), date(1904, 1, 1), date(1601, 1, 1)}
FIRST_PHOTO_YEAR = 1826

REBUILD_GROWTH = 2.0  # the cells are trained again when the faces grew this much since
PAGE_CACHE_KIB = 256 * 1024  # SQLite's page cache while grouping (the default 2 MB thrashes at a million faces)
MMAP_BYTES = 1 << 31  # the index mapped while an addition reads its candidates (SQLite's usual cap: 2 GB)

FACE_PEOPLE_COLUMNS = {"embedding": bytes, "person_id": int, "face_age": float, "face_gender": str,
                       "face_p_female": float, "cell1": int, "cell2": int}

_NAME_FORBIDDEN = re.compile(r"[/\\|]")
MAX_NAME = 200


class PeopleError(ValueError):
    """The user's request cannot be done (an unknown person, a bad name...); the CLI exits with 2."""


# --- schema ------------------------------------------------------------------------------------------

def ensure_schema(db: sqlite_utils.Database) -> None:
    """Add the people columns to ``faces`` and the people tables, indexes and triggers (idempotent)."""
    with db.atomic():
        columns = db["faces"].columns_dict
        for column, kind in FACE_PEOPLE_COLUMNS.items():
            if column not in columns:
                db["faces"].add_column(column, kind)
        db.execute("create index if not exists faces_person_id on faces(person_id)")
        db.execute("create index if not exists faces_cell1 on faces(cell1)")
        db.execute("create index if not exists faces_cell2 on faces(cell2)")
        db.execute("create index if not exists faces_unseen on faces(id) where face_age is null")
        db.execute("create index if not exists faces_ungrouped on faces(photo_id)"
                   " where person_id is null and embedding is not null")
        db.execute(
            "create table if not exists people (id integer primary key, name text,"
            " gender_set_by_user text, born_set_by_user text, pinned integer not null default 0,"
            " gender text, p_female real, born real, born_sd real, faces integer not null default 0,"
            " dated integer not null default 0, flagged integer not null default 0, flag_reason text,"
            " centroid blob, spread real, stale integer not null default 1, updated_at text)")
        if "spread" not in db["people"].columns_dict:  # an index from before the adults' group rule
            db["people"].add_column("spread", float)
        db.execute("create index if not exists people_stale on people(id) where stale = 1")
        db.execute("create table if not exists people_exclusions (face_id integer not null,"
                   " person_id integer not null, primary key (face_id, person_id)) without rowid")
        db.execute(
            "create table if not exists people_memory (old_id integer, photo_id integer, x real, y real,"
            " w real, h real, person_id integer, face_age real, face_gender text, face_p_female real,"
            " age real, gender text, p_female real)")
        db.execute("create table if not exists people_dirty (photo_id integer primary key)")
        db.execute("create table if not exists people_meta (key text primary key, value)")
        # A face seen by people and deleted (its photo rewritten, rescanned, failed, cleaned, pruned) is
        # remembered until the next update, which hands its person to the face that replaces it.
        db.execute(
            "create trigger if not exists people_face_deleted after delete on faces"
            " when old.face_age is not null or old.person_id is not null begin"
            " insert into people_memory values (old.id, old.photo_id, old.x, old.y, old.w, old.h, old.person_id,"
            " old.face_age, old.face_gender, old.face_p_female, old.age, old.gender, old.p_female); end")
        # A photo gone missing (or back) changes its people's counts and estimates.
        db.execute(
            "create trigger if not exists people_photo_missing after update of missing, status on photos"
            " when old.missing is not new.missing or old.status is not new.status begin"
            " update people set stale = 1 where id in (select person_id from faces where photo_id = new.id"
            " and person_id is not null); end")


LIVE = "p.status = 'done' and p.missing = 0"


# --- numbers -----------------------------------------------------------------------------------------

def age_sd(age) -> np.ndarray:
    """The standard deviation (years) of a face-alone age estimate of ``age`` years (it grows with age:
    :func:`_age_sd_table`)."""
    return np.interp(np.maximum(np.asarray(age, float), 0.0), *_age_sd_table())


@functools.cache
def _age_sd_table() -> tuple[np.ndarray, np.ndarray]:
    """Ages and the face-alone age's SD at each: the age model's mean absolute error per decade as its
    ``evaluation.json`` gives it (:func:`phototag.models.age_errors`; the models of ``$PHOTOTAG_MODELS``
    where it has one, else the shipped ones), made non-decreasing; SD = MAE * sqrt(pi / 2) (a normal
    error)."""
    folder = models.shipped_model_dir()
    if not (folder / models.EVALUATION).exists():
        folder = models.package_model_dir()
    ages, errors = zip(*models.age_errors(folder))
    return np.array(ages, float), np.maximum.accumulate(np.array(errors, float)) * math.sqrt(math.pi / 2)


_YEARS: dict[str, float | None] = {}


def photo_year(taken_at: str | None, now: datetime | None = None) -> float | None:
    """A photo's date as a decimal year, or None when it has none that can vote: unparseable, a
    placeholder day (1970-01-01, 1980-01-01, 2000-01-01...), before photography, or in the future."""
    if not taken_at:
        return None
    if now is None:
        if taken_at not in _YEARS:
            if len(_YEARS) > 1_000_000:
                _YEARS.clear()
            _YEARS[taken_at] = photo_year(taken_at, datetime.now(timezone.utc).replace(tzinfo=None))
        return _YEARS[taken_at]
    try:
        when = datetime.fromisoformat(taken_at.strip())
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    if when.date() in PLACEHOLDER_DAYS or when.year < FIRST_PHOTO_YEAR or when > now + timedelta(days=1):
        return None
    return decimal_year(when)


def decimal_year(when: datetime | date) -> float:
    start = datetime(when.year, 1, 1)
    length = (datetime(when.year + 1, 1, 1) - start).total_seconds()
    moment = when if isinstance(when, datetime) else datetime(when.year, when.month, when.day, 12)
    return when.year + (moment - start).total_seconds() / length


def parse_born(born: int | str) -> tuple[str, float, float]:
    """The user's birth date (a year, ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``) as (stored text,
    decimal year, its SD in years); PeopleError when it is not one."""
    text = str(born).strip()
    this_year = datetime.now(timezone.utc).year
    try:
        if re.fullmatch(r"\d{4}", text):
            year = int(text)
            value, sd = year + 0.5, 0.29  # anywhere in the year
        elif re.fullmatch(r"\d{4}-\d{2}", text):
            d = datetime.strptime(text, "%Y-%m")
            year, value, sd = d.year, decimal_year(d) + 0.04, 0.03
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = datetime.strptime(text, "%Y-%m-%d")
            year, value, sd = d.year, decimal_year(d.date()), 0.003
        else:
            raise ValueError
    except ValueError:
        raise PeopleError(f"not a birth date: {text!r} (give a year, YYYY-MM or YYYY-MM-DD)") from None
    if not 1800 <= year <= this_year:
        raise PeopleError(f"not a birth year: {year} (1800 to {this_year})")
    return text, value, sd


def _logit(p):
    p = np.clip(np.asarray(p, float), 0.02, 0.98)
    return np.log(p / (1 - p))


def _vectors(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, DIM), np.float32)
    return np.frombuffer(b"".join(blobs), dtype=BLOB_DTYPE).reshape(len(blobs), DIM).astype(np.float32)


# --- grouping ----------------------------------------------------------------------------------------

@dataclass
class Known:
    """An existing person taking part in a grouping as a whole: its faces' mean descriptor and count,
    its birth estimate (decimal year, SD; None if none), the photos of its faces that matter and its
    spread (the mean squared distance of its faces to the centroid; None: ``SPREAD * (1 - 1 / count)``)."""

    centroid: np.ndarray
    count: int
    born: float | None = None
    born_sd: float | None = None
    photos: set = field(default_factory=set)
    spread: float | None = None


def cluster(x: np.ndarray, photo: np.ndarray, birth: np.ndarray, birth_sd: np.ndarray, person: np.ndarray,
            known: dict[int, Known], excluded: dict[int, set[int]], i: np.ndarray, j: np.ndarray, d: np.ndarray,
            link: float = LINK, centroid: float = CENTROID, birth_z: float = BIRTH_Z,
            limits: np.ndarray | None = None, dated_limits: np.ndarray | None = None,
            birth_z_dated: float = BIRTH_Z_DATED, adult_link: float = ADULT_LINK, adult_mean: float = ADULT_MEAN,
            adult_centroid: float = ADULT_CENTROID) -> np.ndarray:
    """Group faces along the links (i, j, d), nearest first, each merge checked (deterministic).

    ``person``: the person a face is already part of (-1: none): such faces start together, with the
    person's whole statistics from ``known``, and two persons are never merged. A merge is refused when
    the link is longer than ``link``, the two groups' mean descriptors are further than ``centroid``,
    the two share a photo, a face was excluded from the other's person, or their birth estimates
    disagree by more than ``birth_z`` SDs. ``limits``: each face's longest link (its age's, see
    :func:`link_limits`); a group's is its youngest face's, and the centroid limit shrinks with it.
    ``dated_limits``: the same when both groups have a birth estimate (default ``limits``); a merge that
    needs more than ``limits`` allow must have birth estimates within ``birth_z_dated`` SDs. Two groups
    whose limit is ``link`` (adults) are judged as groups instead: a link of at most ``adult_link``, the
    root mean square distance between their faces at most ``adult_mean`` and their mean descriptors at
    most ``adult_centroid`` apart (the other checks the same). Returns each face's group: its person,
    else ``-(first face of its group) - 1``.
    """
    n = len(x)
    parent = list(range(n))
    size = [1] * n
    # A group's descriptor sum (float64), kept only for groups of more than one face and for existing
    # people: a single face's is its own descriptor, read from ``x`` (no copy of the whole array).
    sums: dict[int, np.ndarray] = {}
    # ... and its faces' squared norms' sum (a single face's: ``norm2``), for the spread
    norm2 = np.einsum("ij,ij->i", x, x, dtype=np.float64).tolist()
    sq: dict[int, float] = {}
    count = [1.0] * n
    pid = np.asarray(person, np.int64).tolist()
    face_lim = np.full(n, link) if limits is None else np.minimum(np.asarray(limits, float), link)
    face_limd = face_lim if dated_limits is None else np.maximum(np.minimum(np.asarray(dated_limits, float), link),
                                                                 face_lim)
    lim = face_lim.tolist()
    limd = lim if dated_limits is None else face_limd.tolist()
    ratio = centroid / link
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(np.isnan(birth), 0.0, 1.0 / np.square(birth_sd))
    bw = w.tolist()
    bs = (np.where(np.isnan(birth), 0.0, birth) * w).tolist()
    values, counts = np.unique(photo, return_counts=True)
    shared = set(values[counts > 1].tolist())
    for k in known.values():
        shared |= k.photos
    # a group's photos where they matter: a photo id while one, a set once several
    photos: dict[int, int | set] = {}
    if shared:
        in_shared = np.flatnonzero(np.isin(photo, np.fromiter(shared, np.int64, len(shared))))
        photos = dict(zip(in_shared.tolist(), np.asarray(photo)[in_shared].tolist()))
    excl = {f: set(s) for f, s in excluded.items() if s}

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    # a group's descriptor sum's squared norm, kept for groups of several faces until they merge (a
    # single face's: ``norm2``)
    sum2: dict[int, float] = {}

    def sum2_of(a: int) -> float:
        v = sum2.get(a)
        if v is None:
            s = sums.get(a)
            if s is None:
                return norm2[a]
            v = sum2[a] = float(s @ s)
        return v

    def centroid_gap(a: int, b: int) -> float:
        """The squared distance between two groups' mean descriptors, from their sums A and B and counts
        a and b: |A|^2 / a^2 + |B|^2 / b^2 - 2 A.B / ab."""
        sa, sb, ca, cb = sums.get(a), sums.get(b), count[a], count[b]
        dot = float(np.dot(x[a] if sa is None else sa, x[b] if sb is None else sb))
        return max(sum2_of(a) / (ca * ca) + sum2_of(b) / (cb * cb) - 2.0 * dot / (ca * cb), 0.0)

    def join_photos(a: int, b: int) -> None:
        pb = photos.pop(b, None)
        if pb is None:
            return
        pa = photos.get(a)
        if pa is None:
            photos[a] = pb
            return
        merged = pa if isinstance(pa, set) else {pa}
        if isinstance(pb, set):
            merged.update(pb)
        else:
            merged.add(pb)
        photos[a] = merged

    def share_photo(pa, pb) -> bool:
        if isinstance(pa, set):
            if isinstance(pb, set):
                small, big = (pa, pb) if len(pa) < len(pb) else (pb, pa)
                return any(p in big for p in small)
            return pb in pa
        return pa in pb if isinstance(pb, set) else pa == pb

    # the faces of one person start as one group with the person's statistics
    first_of: dict[int, int] = {}
    for f in np.flatnonzero(np.asarray(person) >= 0).tolist():
        p = pid[f]
        if p not in first_of:
            first_of[p] = f
            k = known.get(p)
            if k is not None:
                sums[f] = k.centroid * k.count
                count[f] = float(k.count)
                spread = SPREAD * (1 - 1 / k.count) if k.spread is None else k.spread
                sq[f] = (float(k.centroid @ k.centroid) + spread) * k.count
                if k.born is not None and k.born_sd:
                    bw[f] = 1.0 / (k.born_sd ** 2 + BORN_SD_FLOOR ** 2)
                    bs[f] = k.born * bw[f]
                else:
                    bw[f] = bs[f] = 0.0
                if k.photos:
                    own = photos.get(f)
                    group = set(k.photos)
                    if own is not None:
                        group.add(own)
                    photos[f] = group
            continue
        r = first_of[p]
        lim[r] = min(lim[r], lim[f])
        if limd is not lim:
            limd[r] = min(limd[r], limd[f])
        parent[f] = r
        size[r] += 1
        if known.get(p) is None:
            s = sums.get(r)
            if s is None:
                sums[r] = x[r].astype(np.float64) + x[f].astype(np.float64)
            else:
                s += x[f].astype(np.float64)
            sq[r] = sq.get(r, norm2[r]) + norm2[f]
            count[r] += 1
            bw[r] += bw[f]
            bs[r] += bs[f]
        if f in photos:
            join_photos(r, f)
        if f in excl:
            excl.setdefault(r, set()).update(excl.pop(f))

    # the links within ``link``, nearest first (ties by faces); float32 distances are compared with
    # limits rounded to float32, as numpy compares a float32 with a Python float
    d = np.asarray(d)
    f32 = _as_float32 if d.dtype == np.float32 else float
    # a group's limits are its faces' least, so a link longer than either face's own never merges
    face_most = np.where(face_lim >= link, max(link, adult_link), face_limd)
    within = np.flatnonzero(d <= np.minimum(face_most[i], face_most[j]).astype(d.dtype))
    if n and np.all(np.diff(i[within] * np.int64(n) + j[within]) > 0):  # by faces already (as links gives them)
        order = within[np.argsort(d[within], kind="stable")]  # the same order, a third of the time
    else:
        order = within[np.lexsort((j[within], i[within], d[within]))]
    c2 = centroid * centroid
    ac2, am2 = adult_centroid * adult_centroid, adult_mean * adult_mean
    for ie, je, de in _in_chunks_of(order, i, j, d):
        a, b = parent[ie], parent[je]
        if parent[a] != a:
            a = find(a)
        if parent[b] != b:
            b = find(b)
        if a == b:
            continue
        pa, pb = pid[a], pid[b]
        if pa >= 0 and pb >= 0:
            continue
        limit = min(lim[a], lim[b])
        dated = bw[a] > 0 and bw[b] > 0
        z = birth_z
        centres = None  # the groups' centroid gap, once computed
        if dated and limd is not lim:
            longer = min(limd[a], limd[b])
            if longer > limit:  # the undated limit first; beyond it, the dates must agree more closely
                if count[a] == 1 and count[b] == 1:
                    beyond = de > f32(limit * ratio)
                    if beyond:
                        limit = longer
                else:
                    beyond = de > f32(limit)
                    if not beyond:
                        centres = centroid_gap(a, b)
                        beyond = centres > c2 * (limit / link) ** 2
                    if beyond:
                        limit = longer
                if beyond:
                    z = min(birth_z, birth_z_dated)
        if lim[a] >= link and lim[b] >= link:  # adults: judged as groups
            if de > f32(adult_link):
                continue
            if count[a] == 1 and count[b] == 1:
                if de > f32(min(adult_centroid, adult_mean)):
                    continue
            else:
                dc = centroid_gap(a, b) if centres is None else centres
                if dc > ac2:
                    continue
                # mean squared distance between their faces: |ca - cb|^2 + spread a + spread b
                spread = (sq.get(a, norm2[a]) / count[a] - sum2_of(a) / (count[a] * count[a])
                          + sq.get(b, norm2[b]) / count[b] - sum2_of(b) / (count[b] * count[b]))
                if dc + max(spread, 0.0) > am2:
                    continue
        else:
            if de > f32(limit):
                continue
            if count[a] == 1 and count[b] == 1:
                if de > f32(limit * ratio):
                    continue
            elif (centroid_gap(a, b) if centres is None else centres) > c2 * (limit / link) ** 2:
                continue
        if a in photos and b in photos and share_photo(photos[a], photos[b]):
            continue
        if (pa >= 0 and pa in excl.get(b, ())) or (pb >= 0 and pb in excl.get(a, ())):
            continue
        if dated:
            gap = bs[a] / bw[a] - bs[b] / bw[b]
            if gap * gap > z * z * (1 / bw[a] + 1 / bw[b] + 2 * BORN_SD_FLOOR ** 2):
                continue
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        lim[a] = min(lim[a], lim[b])
        if limd is not lim:
            limd[a] = min(limd[a], limd[b])
        other = sums.pop(b, None)
        s = sums.get(a)
        if s is None:
            s = sums[a] = x[a].astype(np.float64)
        s += x[b] if other is None else other
        sum2.pop(a, None)
        sum2.pop(b, None)
        sq[a] = sq.get(a, norm2[a]) + sq.pop(b, norm2[b])
        count[a] += count[b]
        bw[a] += bw[b]
        bs[a] += bs[b]
        pid[a] = pa if pa >= 0 else pb
        if b in photos:
            join_photos(a, b)
        if b in excl:
            excl.setdefault(a, set()).update(excl.pop(b))

    roots = np.asarray(parent, np.int64)
    while True:  # every face to its root (the paths left uncompressed)
        up = roots[roots]
        if np.array_equal(up, roots):
            break
        roots = up
    first = np.full(n, n, np.int64)
    np.minimum.at(first, roots, np.arange(n))
    pids = np.asarray(pid, np.int64)
    return np.where(pids[roots] >= 0, pids[roots], -first[roots] - 1)


def _in_chunks_of(order: np.ndarray, *columns: np.ndarray, chunk: int = 65536):
    """The rows ``order`` of ``columns`` as Python values, a chunk at a time (a million faces' links as
    Python lists at once would take a gigabyte)."""
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        yield from zip(*(c[part].tolist() for c in columns))


_FLOAT32: dict[float, float] = {}


def _as_float32(value: float) -> float:
    """``value`` rounded to float32 (as a Python float)."""
    got = _FLOAT32.get(value)
    if got is None:
        if len(_FLOAT32) > 10_000:
            _FLOAT32.clear()
        got = _FLOAT32[value] = float(np.float32(value))
    return got


def link_limits(face_age: np.ndarray, by_age=None, pixels: np.ndarray | None = None) -> np.ndarray:
    """Each face's longest link, by its own estimated age (unknown: an adult's) and, with ``pixels``
    (the face's longer box side as the chain read it; NaN: not known), its size: a face smaller than
    :data:`SMALL_FACE` links within :data:`SMALL_FACE_LINK` at most. ``by_age``: the table (default
    ``LINK_BY_AGE``; ``LINK_BY_AGE_DATED`` for the links between dated groups)."""
    age = np.nan_to_num(np.asarray(face_age, float), nan=99.0)
    limits = np.full(len(age), LINK)
    for below, limit in reversed(LINK_BY_AGE if by_age is None else by_age):
        limits[age < below] = limit
    if pixels is not None:
        with np.errstate(invalid="ignore"):
            small = np.asarray(pixels, float) < SMALL_FACE
        limits[small] = np.minimum(limits[small], SMALL_FACE_LINK)
    return limits


def _face_births(face_age: np.ndarray, years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each face's birth estimate (photo year - its own age) and SD; NaN where undated."""
    ok = ~np.isnan(years) & ~np.isnan(face_age)
    birth = np.where(ok, years - np.nan_to_num(face_age), np.nan)
    return birth, age_sd(np.nan_to_num(face_age))


# --- update / regroup --------------------------------------------------------------------------------

@dataclass
class Summary:
    """What :func:`update` or :func:`regroup` did."""

    seen: int = 0  # faces seen for the first time
    kept: int = 0  # ... of them the new face of a face deleted since (same photo and place): its person kept
    grouped: int = 0  # faces given a person
    joined: int = 0  # ... of them joining an existing person
    new_people: int = 0
    corrected: int = 0  # people whose estimates were computed again
    changed_faces: int = 0  # faces whose corrected values changed
    changed_photos: int = 0  # photos marked for their tags to be written (not marked already)


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _same(a, b, tol: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return abs(a - b) <= tol


def _reattach(db: sqlite_utils.Database, summary: Summary) -> None:
    """A face seen for the first time that replaces a face of the same photo deleted since (its box
    overlapping by half or more) takes over its person, its exclusions and, when its values are the
    corrected values written back, the face-alone ones. The other faces seen for the first time get
    their face-alone values as the grouping writes them (``_FIRST_SEEN``), the rest after it."""
    with db.atomic():
        memory: dict[int, list] = defaultdict(list)
        for row in db.execute("select old_id, photo_id, x, y, w, h, person_id, face_age, face_gender, face_p_female,"
                              " age, gender, p_female from people_memory order by rowid"):
            memory[row[1]].append(list(row))
        persons = sorted({m[6] for rows in memory.values() for m in rows if m[6] is not None})
        existing = set()
        for k in range(0, len(persons), 500):  # a person merged away or regrouped meanwhile is no more
            part = persons[k:k + 500]
            existing.update(r[0] for r in db.execute(f"select id from people where id in ({','.join('?' * len(part))})",
                                                     part))
        for rows in memory.values():
            for m in rows:
                if m[6] not in existing:
                    m[6] = None
        summary.seen += db.execute("select count(*) from faces where face_age is null").fetchone()[0]
        # faces of photos with remembered faces are matched to them here; the others below, in one statement
        new = db.execute("select id, photo_id, x, y, w, h, age, gender, p_female from faces where face_age is null"
                         " and photo_id in (select photo_id from people_memory) order by id").fetchall()
        updates, moved, stale = [], [], set()
        by_photo: dict[int, list] = defaultdict(list)
        for row in new:
            by_photo[row[1]].append(row)
        for photo_id, faces in by_photo.items():
            old = memory.pop(photo_id, [])
            pairs = sorted(((_iou(f[2:6], m[2:6]), fi, mi) for fi, f in enumerate(faces) for mi, m in enumerate(old)),
                           key=lambda t: (-t[0], t[1], t[2]))
            matched: dict[int, list] = {}
            used = set()
            for iou, fi, mi in pairs:
                if iou < 0.5 or fi in matched or mi in used:
                    continue
                matched[fi] = old[mi]
                used.add(mi)
            for fi, f in enumerate(faces):
                m = matched.get(fi)
                own = (f[6], f[7], f[8])
                person_id = None
                if m is not None:
                    person_id = m[6]
                    if all(_same(a, b) for a, b in zip(own, m[10:13])):  # the corrected values written back
                        own = (m[7], m[8], m[9])
                    moved.append((f[0], m[0]))
                    summary.kept += person_id is not None
                    if person_id is not None:
                        stale.add(person_id)
                updates.append((own[0], own[1], own[2], person_id, f[0]))
            for mi, m in enumerate(old):
                if mi not in used and m[6] is not None:
                    stale.add(m[6])
        for rows in memory.values():  # photos whose faces went and did not come back
            stale.update(m[6] for m in rows if m[6] is not None)
        db.conn.executemany("update faces set face_age = ?, face_gender = ?, face_p_female = ?,"
                       " person_id = coalesce(?, person_id) where id = ?", updates)
        db.conn.executemany("update people_exclusions set face_id = ? where face_id = ?", moved)
        db.execute("delete from people_exclusions where face_id not in (select id from faces)")
        db.execute("delete from people_memory")
        _mark_stale(db, stale)


# A face seen for the first time (``face_age`` NULL) gets its face-alone values, the chain's: its values
# as they are. Set in the grouping's own write of each face (SQLite reads the row's old values on the
# right): at a million faces, a statement of its own rewrote every row once more (about 5 s).
_FIRST_SEEN = ("face_age = coalesce(face_age, age),"
               " face_gender = case when face_age is null then gender else face_gender end,"
               " face_p_female = case when face_age is null then p_female else face_p_female end")


def _first_seen(db) -> None:
    """The faces seen for the first time that no grouping wrote (no descriptor, a photo not live) get
    their face-alone values."""
    db.execute(f"update faces set {_FIRST_SEEN} where face_age is null")


# The indexes a grouping's writes (person, cells) keep up to date, and the share of the faces written
# from which they are dropped and built again instead: at a million faces SQLite built them anew in
# 4.7 s, where keeping them up to date through a million random updates took 21 s.
GROUPING_INDEXES = ("faces_person_id", "faces_cell1", "faces_cell2", "faces_ungrouped")
REBUILD_SHARE = 0.25


@contextlib.contextmanager
def _grouping_indexes_off(db, written: int):
    """The grouping's indexes dropped while ``written`` faces are rewritten, and built again from their
    own definitions afterwards, when that is at least ``REBUILD_SHARE`` of the faces. In the caller's
    transaction: a grouping that fails or is killed is rolled back with the indexes as they were (they
    are not built first, which would hold up a Ctrl-C for seconds)."""
    total = db.execute("select max(id) from faces").fetchone()[0] or 0  # about the faces' count, at no cost
    definitions = []
    if written >= REBUILD_SHARE * total:
        marks = ",".join("?" * len(GROUPING_INDEXES))
        definitions = db.execute(f"select name, sql from sqlite_master where type = 'index' and name in ({marks})",
                                 GROUPING_INDEXES).fetchall()
        for name, _ in definitions:
            db.execute(f"drop index {name}")
    yield
    for _, sql in definitions:
        db.execute(sql)


def _mark_stale(db, ids: Iterable[int]) -> None:
    db.conn.executemany("update people set stale = 1 where id = ?", [(int(i),) for i in set(ids)])


def _gender_rule(db) -> dict:
    """The gender thresholds of the models that tagged the faces (:func:`phototag.models.gender_rule`),
    as the last scan kept them, else the shipped models' (a person's corrected genders follow the
    same rule as its faces' own)."""
    kept = db.execute("select value from people_meta where key = 'gender_rule'").fetchone()
    if kept is not None:
        return json.loads(kept[0])
    return models.gender_rule(models.read_manifest(models.shipped_model_dir()))


def _meta(db) -> dict:
    return {k: v for k, v in db.execute("select key, value from people_meta")}


def _saved_cells(db) -> neighbours.Cells | None:
    """The search cells the last full grouping trained (None: none yet)."""
    meta = _meta(db)
    return neighbours.Cells.from_meta(meta, DIM) if "fine" in meta else None


def _still_fit(cells: neighbours.Cells, live_count: int) -> bool:
    """Whether ``cells`` still serve ``live_count`` faces: else (the faces grew ``REBUILD_GROWTH`` times
    since) they are trained again and every face filed again."""
    least = neighbours.MIN_CELLS
    return live_count <= max(REBUILD_GROWTH * cells.built_for, least if cells.built_for < least else 0)


@dataclass
class FaceSet:
    """Live faces with a descriptor, as columns (ids, photos, persons (-1: none), face-alone ages,
    photo years (NaN: undated), cells, sizes as the chain read them (NaN: not known)) and their
    descriptors."""

    ids: np.ndarray
    photo: np.ndarray
    person: np.ndarray
    face_age: np.ndarray
    years: np.ndarray
    cell1: np.ndarray
    cell2: np.ndarray
    pixels: np.ndarray
    x: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index) -> FaceSet:
        return FaceSet(*(getattr(self, f.name)[index] for f in fields(FaceSet)))

    @staticmethod
    def concat(parts: Sequence[FaceSet]) -> FaceSet:
        return FaceSet(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(FaceSet)))


def _empty() -> FaceSet:
    z = np.zeros(0, np.int64)
    return FaceSet(z, z, z, np.zeros(0), np.zeros(0), z, z, np.zeros(0), np.zeros((0, DIM), np.float32))


# the live faces with a descriptor (a condition may follow with "and")
_DESCRIBED = (" from faces f cross join photos p on p.id = f.photo_id"  # faces first
              f" where {LIVE} and length(f.embedding) = {4 * DIM}")
# (a face seen for the first time: its face-alone age is its age, as ``_FIRST_SEEN`` will write it)
_FACES = ("select f.id, f.photo_id, coalesce(f.person_id, -1), coalesce(f.face_age, f.age), p.taken_at,"
          f" coalesce(f.cell1, -1), coalesce(f.cell2, -1), max(f.w, f.h) * p.scale, f.embedding {_DESCRIBED}")


def _live_faces(db, where: str = "", params: Sequence = (), now=None, expected: int = 0) -> FaceSet:
    """Live faces with a descriptor (``where``: more conditions), by id. The descriptors go straight
    into one float32 array (``expected``: about how many rows, to allocate it once)."""
    cur = db.execute(f"{_FACES} {where}", list(params))
    years_of: dict = {}
    x = np.empty((max(int(expected), 1024), DIM), np.float32)
    n = 0
    columns: list[list[np.ndarray]] = [[] for _ in range(8)]
    while True:
        batch = cur.fetchmany(50_000)
        if not batch:
            break
        m = len(batch)
        cols = list(zip(*batch))
        del batch
        if n + m > len(x):
            grown = np.empty((max(2 * len(x), n + m), DIM), np.float32)
            grown[:n] = x[:n]
            x = grown
        x[n:n + m] = np.frombuffer(b"".join(cols[8]), dtype=BLOB_DTYPE).reshape(m, DIM)
        n += m
        for t in set(cols[4]):
            if t not in years_of:
                years_of[t] = photo_year(t, now)
        for k, values in enumerate((np.array(cols[0], np.int64), np.array(cols[1], np.int64),
                                    np.array(cols[2], np.int64), _floats(cols[3]),
                                    _floats([years_of[t] for t in cols[4]]), np.array(cols[5], np.int64),
                                    np.array(cols[6], np.int64), _floats(cols[7]))):
            columns[k].append(values)
        del cols
    if not n:
        return _empty()
    x = x[:n] if n >= 0.75 * len(x) else x[:n].copy()
    faces = FaceSet(*(np.concatenate(c) if len(c) > 1 else c[0] for c in columns), x)
    if n > 1 and not (np.diff(faces.ids) > 0).all():
        faces = faces.take(np.argsort(faces.ids, kind="stable"))
    return faces


def _listed(db, column: str, values: Sequence[int], now=None) -> FaceSet:
    """Live faces whose ``column`` (``id``, ``person_id``) is one of ``values``, in one query (the list
    passed as JSON)."""
    values = [int(v) for v in values]
    return _live_faces(db, f"and f.{column} in (select value from json_each(?))", [json.dumps(values)], now,
                       expected=len(values))


def _in_cells(db, first: Sequence[int], second: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Live grouped faces whose first cell is one of ``first`` or whose second is one of ``second``,
    as the links need them: (ids, cell1, cell2, descriptors), by id. Their ids come from the two cell
    indexes alone; the rows are then read in id order (at a million faces, 0.6 s for 140,000 faces
    against 1.0-1.3 s in the cells' order). The rest of a face is read only when it is linked."""
    ids = np.unique(np.fromiter((r[0] for r in db.execute(
        "select id from faces where cell1 in (select value from json_each(?))"
        " union all select id from faces where cell2 in (select value from json_each(?))",
        [json.dumps([int(c) for c in first]), json.dumps([int(c) for c in second])])), np.int64))
    rows = db.execute(f"select f.id, f.cell1, f.cell2, f.embedding {_DESCRIBED} and f.person_id is not null"
                      " and f.id in (select value from json_each(?))", [json.dumps(ids.tolist())]).fetchall()
    ids, cell1, cell2, blobs = zip(*rows) if rows else ((), (), (), ())
    del rows
    ids, cell1, cell2, x = (np.array(ids, np.int64), np.array(cell1, np.int64), np.array(cell2, np.int64),
                            _vectors(blobs))
    if len(ids) > 1 and not (np.diff(ids) > 0).all():  # by id (SQLite reads them so, unpromised)
        order = np.argsort(ids, kind="stable")
        ids, cell1, cell2, x = ids[order], cell1[order], cell2[order], x[order]
    return ids, cell1, cell2, x


def _person_limits(db, person_ids: Sequence[int]) -> dict[int, tuple[float, float]]:
    """Each person's link limits (undated, dated: see :func:`link_limits`): its faces' least, over all
    its live faces, whichever of them a grouping has read: those of its youngest and its smallest face
    (the limits grow with both)."""
    rows = db.execute(
        f"select f.person_id, min(f.face_age), min(max(f.w, f.h) * p.scale) {_DESCRIBED}"
        " and f.person_id in (select value from json_each(?)) group by f.person_id",
        [json.dumps(sorted({int(p) for p in person_ids}))]).fetchall()
    if not rows:
        return {}
    pid, age, pixels = zip(*rows)
    age, pixels = _floats(age), _floats(pixels)
    return dict(zip(pid, zip(link_limits(age, pixels=pixels).tolist(),
                             link_limits(age, LINK_BY_AGE_DATED, pixels).tolist())))


def _file_cells(db, ids: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
    db.conn.executemany("update faces set cell1 = ?, cell2 = ? where id = ?",
                   zip(first.tolist(), second.tolist(), np.asarray(ids).tolist()))


def _save_cells(db, cells: neighbours.Cells) -> None:
    db.conn.executemany("insert or replace into people_meta (key, value) values (?, ?)", cells.to_meta().items())


def _known(db, ids: Iterable[int], photos_of: dict[int, set]) -> dict[int, Known]:
    known = {}
    ids = sorted(set(ids))
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for pid, cen, n, born, sd, user_born, spread in db.execute(
                f"select id, centroid, faces, born, born_sd, born_set_by_user, spread from people where id in"
                f" ({','.join('?' * len(part))})", part):
            if user_born:
                _, born, sd = parse_born(user_born)
            centre = np.frombuffer(cen, BLOB_DTYPE).astype(np.float64) if cen else None
            if centre is None:
                continue
            known[pid] = Known(centre, max(int(n), 1), born, sd, photos_of.get(pid, set()), spread)
    return known


def _exclusions(db, ids, index: dict[int, int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for face_id, person_id in db.execute("select face_id, person_id from people_exclusions"):
        if face_id in index:
            out[index[face_id]].add(person_id)
    return out


def _new_people(db, count: int) -> list[int]:
    start = (db.execute("select coalesce(max(id), 0) from people").fetchone()[0]) + 1
    db.conn.executemany("insert into people (id, stale) values (?, 1)", [(i,) for i in range(start, start + count)])
    return list(range(start, start + count))


def update(db: sqlite_utils.Database, now: datetime | None = None, manifest: dict | None = None) -> Summary:
    """Bring the people up to date after a scan: new faces join people or form new ones (the people
    already there are not regrouped), people whose faces changed are corrected. Each step is a
    transaction; a killed update leaves a consistent index and the next one finishes the work.
    ``manifest``: that of the models the scan tagged with, whose gender thresholds the corrections
    then use (kept in the index for the people commands; see :func:`_gender_rule`)."""
    ensure_schema(db)
    summary = Summary()
    if manifest is not None:
        with db.atomic():
            db.execute("insert or replace into people_meta (key, value) values ('gender_rule', ?)",
                       [json.dumps(models.gender_rule(manifest))])
    with _page_cache(db):
        started = time.perf_counter()
        _reattach(db, summary)
        reattached = time.perf_counter()
        _group_new(db, summary, now)
        with db.atomic():
            _first_seen(db)
        grouped = time.perf_counter()
        _correct_stale(db, summary, now)
        _log.debug("update: reattach %.2f s, group %.2f s, correct %.2f s", reattached - started,
                   grouped - reattached, time.perf_counter() - grouped)
    return summary


@contextlib.contextmanager
def _pragma(db, name: str, value: int):
    """SQLite's ``pragma name`` set to ``value`` meanwhile, then back to what it was."""
    before = db.execute(f"pragma {name}").fetchone()[0]
    db.execute(f"pragma {name} = {int(value)}")
    try:
        yield
    finally:
        db.execute(f"pragma {name} = {int(before)}")


def _page_cache(db, kib: int = PAGE_CACHE_KIB):
    """SQLite's page cache raised for a grouping: a million faces' writes spill the default 2 MB cache
    into the WAL again and again (tens of GB read and written); restored afterwards."""
    return _pragma(db, "cache_size", -int(kib))


def _mapped(db, size: int = MMAP_BYTES):
    """The index read through memory meanwhile (SQLite's memory-mapped I/O), then as before: an
    addition's scattered reads of 140,000 candidates' rows at a million faces, without a copy of each
    page, take about a third less time. Not for a whole grouping: it reads every page, which would
    then count in the process's resident memory (2.8 GB against 1.8 GB) for no gain in time."""
    return _pragma(db, "mmap_size", size)


_UNGROUPED = f"{_DESCRIBED} and f.person_id is null and f.embedding is not null"  # the last: as faces_ungrouped


def _group_new(db, summary: Summary, now) -> None:
    with db.atomic():
        cells = _saved_cells(db)
        new_ids = []
        if cells is not None:
            new_ids = [r[0] for r in db.execute(f"select f.id {_UNGROUPED} order by f.id")]
            if not new_ids:
                return
            # the faces filed in cells (an index-only count) and the new ones: enough to tell growth
            live = db.execute("select count(*) from faces where cell1 is not null").fetchone()[0] + len(new_ids)
            if not _still_fit(cells, live):
                cells = None
        elif db.execute(f"select 1 {_UNGROUPED} limit 1").fetchone() is None:
            return
        first = False
        if cells is None:  # (again) trained on every face, every face filed again
            faces = _live_faces(db, now=now, expected=db.execute("select count(*) from faces").fetchone()[0])
            cells, faces.cell1, faces.cell2 = neighbours.Cells.fit(faces.x)
            _save_cells(db, cells)
            filed = np.ones(len(faces), bool)
            is_new = faces.person < 0
            first = bool(is_new.all()) and db.execute("select 1 from people limit 1").fetchone() is None
            labels = _group(db, faces, is_new)
        else:
            new = _listed(db, "id", new_ids, now)
            new.cell1, new.cell2 = cells.assign(new.x)
            with _mapped(db):
                faces, found = _linked_to(db, new, now)
            filed = is_new = faces.person < 0
            labels = _group(db, faces, is_new, found=found, now=now)
        person = _store_groups(db, faces, labels, is_new, summary, filed)
        if first:
            _correct_first(db, faces, person, summary)


def _linked_to(db, new: FaceSet, now) -> tuple[FaceSet, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The grouped faces linked to ``new`` faces (filed in their cells) and the new faces, by id, with
    their links (i, j, d in that set). The links are found among every face of the new faces' cells;
    only the faces at their other end are read in full, each given its person's link limits (see
    :func:`_group`)."""
    probe1 = sorted(set(new.cell1.tolist()) | set(new.cell2.tolist()) - {-1})
    probe2 = sorted(set(new.cell1.tolist()))
    ids, cell1, cell2, x = _in_cells(db, probe1, probe2)
    n_old = len(ids)
    i, j, d = neighbours.links(np.concatenate([x, new.x]), np.concatenate([cell1, new.cell1]),
                               np.concatenate([cell2, new.cell2]), queries=np.arange(n_old + len(new)) >= n_old,
                               limit=max(LINK, ADULT_LINK))
    ends = np.concatenate([i, j])
    linked = np.unique(ends[ends < n_old])
    old = _listed(db, "id", ids[linked].tolist(), now)  # by id, as ``linked``
    old.cell1, old.cell2 = cell1[linked], cell2[linked]
    faces = FaceSet.concat([old, new])
    # positions in the candidates -> positions in ``faces`` (the new faces follow the linked ones)
    where = np.full(n_old + len(new), -1, np.int64)
    where[linked] = np.arange(len(linked))
    where[n_old:] = len(linked) + np.arange(len(new))
    return faces, (where[i], where[j], d)


def _group(db, faces: FaceSet, is_new: np.ndarray, pinned_known: dict | None = None,
           found: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, now=None) -> np.ndarray:
    """Each face's group (:func:`cluster`): the existing people's faces start as their people.
    ``found``: the links, found already (:func:`_linked_to`), when ``faces`` holds only some of its
    people's faces: each such face is then given its person's link limits (its faces' least, as when
    every face is read)."""
    birth, sd = _face_births(faces.face_age, faces.years)
    if pinned_known is None:  # the existing people of the faces, as wholes
        new_photos = sorted(set(faces.photo[is_new].tolist()))
        photos_of: dict[int, set] = defaultdict(set)
        for k in range(0, len(new_photos), 500):
            part = new_photos[k:k + 500]
            for pid, ph in db.execute("select person_id, photo_id from faces where person_id is not null and photo_id"
                                      f" in ({','.join('?' * len(part))})", part):
                photos_of[pid].add(ph)
        known = _known(db, faces.person[faces.person >= 0].tolist(), photos_of)
    else:
        known = pinned_known
    index = {int(f): k for k, f in enumerate(faces.ids)}
    excluded = _exclusions(db, faces.ids, index)
    limits = link_limits(faces.face_age, pixels=faces.pixels)
    dated_limits = link_limits(faces.face_age, LINK_BY_AGE_DATED, faces.pixels)
    if found is None:
        i, j, d = neighbours.links(faces.x, faces.cell1, faces.cell2,
                                   queries=None if is_new.all() else is_new, limit=max(LINK, ADULT_LINK))
    else:
        i, j, d = found
        theirs = np.flatnonzero(faces.person >= 0)
        by_person = _person_limits(db, faces.person[theirs].tolist())
        for k, pid in zip(theirs.tolist(), faces.person[theirs].tolist()):
            limits[k], dated_limits[k] = by_person.get(pid, (limits[k], dated_limits[k]))
    return cluster(faces.x, faces.photo, birth, sd, faces.person, known, excluded, i, j, d,
                   limits=limits, dated_limits=dated_limits)


def _store_groups(db, faces: FaceSet, labels, is_new, summary: Summary, filed: np.ndarray) -> np.ndarray:
    """The new faces' people (new ones for new groups) and cells, and the cells of the other faces
    ``filed``: one write per face, which also gives a face seen for the first time its face-alone
    values. Returns each face's person."""
    fresh = np.unique(labels[is_new & (labels < 0)])  # ascending: the new people's ids in descending order
    ids = _new_people(db, len(fresh))
    final = labels.copy()
    wanted = is_new & (labels < 0)
    final[wanted] = ids[0] + len(fresh) - 1 - np.searchsorted(fresh, labels[wanted]) if len(fresh) else 0
    new, old = np.flatnonzero(is_new), filed & ~is_new
    with _grouping_indexes_off(db, int((filed | is_new).sum())):
        db.conn.executemany(f"update faces set person_id = ?, cell1 = ?, cell2 = ?, {_FIRST_SEEN} where id = ?",
                            zip(final[new].tolist(), faces.cell1[new].tolist(), faces.cell2[new].tolist(),
                                faces.ids[new].tolist()))
        _file_cells(db, faces.ids[old], faces.cell1[old], faces.cell2[old])
    joined = is_new & (labels >= 0)
    _mark_stale(db, final[joined].tolist())  # the new people are stale already
    summary.grouped += len(new)
    summary.joined += int(joined.sum())
    summary.new_people += len(ids)
    return final


def _correct_first(db, faces: FaceSet, person: np.ndarray, summary: Summary, batch: int = 20_000) -> None:
    """A first grouping's people (every face new, ``person`` each face's) corrected from the faces read
    for it, ``batch`` people at a time, in its transaction: what :func:`_correct_stale` does, without
    reading every face back by person (at a million faces: 40 s in 14 transactions)."""
    cur = db.execute(f"select f.id, f.face_index, f.face_gender, f.face_p_female, f.age, f.gender, f.p_female"
                     f" {_DESCRIBED} order by f.id")
    columns: list[list] = [[] for _ in range(7)]
    while rows := cur.fetchmany(50_000):
        cols = list(zip(*rows))
        for k, values in enumerate((np.array(cols[0], np.int64), [-1 if v is None else v for v in cols[1]], cols[2],
                                    _floats(cols[3]), _floats(cols[4]), cols[5], _floats(cols[6]))):
            columns[k].append(values)
    ids, face_index, face_gender, face_p, stored_age, stored_gender, stored_p = (
        np.concatenate(c) if c else np.zeros(0) for c in columns)
    if not np.array_equal(ids, faces.ids):
        return  # not the faces grouped: left stale, corrected as usual
    in_path_order = np.array([r[0] for r in db.execute("select id from photos order by path_key")], np.int64)
    rank = np.zeros(int(max(in_path_order.max(), faces.photo.max())) + 1, np.int64)
    rank[in_path_order] = np.arange(len(in_path_order))
    # each person's faces in its photos' path order, as _correct reads them (SQLite sorts NULL first)
    order = np.lexsort((face_index.astype(np.int64), rank[faces.photo], person))
    members = _Members(person[order], faces.ids[order], faces.photo[order], faces.face_age[order],
                       face_gender[order].tolist(), face_p[order], stored_age[order], stored_gender[order].tolist(),
                       stored_p[order], faces.years[order], order, faces.x)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rule = _gender_rule(db)
    starts = np.flatnonzero(np.diff(members.person, prepend=-1))  # each person's first face
    for k in range(0, len(starts), batch):
        a, b = starts[k], starts[k + batch] if k + batch < len(starts) else len(order)
        part = _Members(*(getattr(members, f.name)[a:b] for f in fields(_Members) if f.name != "x"), faces.x)
        people_ids = part.person[np.flatnonzero(np.diff(part.person, prepend=-1))].tolist()
        face_updates, dirty, rows, _ = _corrections(dict.fromkeys(people_ids, (None, None, 0)), people_ids, part, stamp,
                                                    rule)
        _write_corrections(db, face_updates, dirty, rows, [], summary, len(people_ids))


def regroup(db: sqlite_utils.Database, now: datetime | None = None) -> Summary:
    """Group every face again from scratch. The people the user touched (named, merged, set, a face
    removed) keep their faces and id; the others are dissolved, and each new group takes the id of the
    old person most of its faces were in (when still free). One transaction, then the corrections."""
    ensure_schema(db)
    with _page_cache(db):
        return _regroup(db, now)


def _regroup(db, now) -> Summary:
    summary = Summary()
    _reattach(db, summary)
    with db.atomic():
        faces = _live_faces(db, now=now, expected=db.execute("select count(*) from faces").fetchone()[0])
        cells, faces.cell1, faces.cell2 = neighbours.Cells.fit(faces.x)
        pinned = {r[0] for r in db.execute("select id from people where pinned = 1")}
        old = faces.person.copy()
        keep = np.isin(old, np.array(sorted(pinned), np.int64))
        faces.person = np.where(keep, old, -1)
        birth, sd = _face_births(faces.face_age, faces.years)
        known = {}
        users = dict(db.execute("select id, born_set_by_user from people where pinned = 1").fetchall())
        order = np.argsort(faces.person, kind="stable")
        bounds = np.searchsorted(faces.person[order], sorted(pinned), "left"), \
            np.searchsorted(faces.person[order], sorted(pinned), "right")
        for pid, a, b in zip(sorted(pinned), *bounds):
            members = order[a:b]
            if not len(members):
                continue
            born = sd_b = None
            if users.get(pid):
                _, born, sd_b = parse_born(users[pid])
            else:
                ok = members[~np.isnan(birth[members])]
                if len(ok):
                    w = 1 / np.square(sd[ok])
                    born, sd_b = float((birth[ok] * w).sum() / w.sum()), float(math.sqrt(1 / w.sum()))
            xm = faces.x[members].astype(np.float64)
            centre = xm.mean(0)
            known[pid] = Known(centre, len(members), born, sd_b, set(faces.photo[members].tolist()),
                               float(((xm - centre) ** 2).sum(1).mean()))
        labels = _group(db, faces, np.ones(len(faces), bool), known)
        # new groups reuse the old ids of their faces, most faces first, each id once
        fresh = np.flatnonzero((labels < 0) & (old >= 0))
        votes = Counter(zip(labels[fresh].tolist(), old[fresh].tolist()))
        taken, mapping = set(pinned), {}
        for (group, pid), _ in sorted(votes.items(), key=lambda t: (-t[1], -t[0][0], t[0][1])):
            if group not in mapping and pid not in taken:
                mapping[group] = pid
                taken.add(pid)
        db.execute("delete from people where pinned = 0")
        db.conn.executemany("insert into people (id, stale) values (?, 1)", [(p,) for p in sorted(mapping.values())])
        groups = sorted(set(labels[labels < 0].tolist()) - set(mapping), reverse=True)
        mapping.update(zip(groups, _new_people(db, len(groups))))
        final = [mapping.get(v, v) for v in labels.tolist()]
        with _grouping_indexes_off(db, len(faces)):
            db.execute("update faces set person_id = null where person_id is not null")
            db.conn.executemany(f"update faces set person_id = ?, cell1 = ?, cell2 = ?, {_FIRST_SEEN} where id = ?",
                                zip(final, faces.cell1.tolist(), faces.cell2.tolist(), faces.ids.tolist()))
        _first_seen(db)
        _save_cells(db, cells)
        db.execute("update people set stale = 1")
        summary.grouped = len(faces)
        summary.new_people = len(groups) + len(mapping) - len(groups)
    _correct_stale(db, summary, now)
    return summary


# --- correction --------------------------------------------------------------------------------------

@dataclass
class Estimate:
    """A person's estimates and what they make of each face (``ages``, ``p_female``, ``genders``:
    the corrected values, aligned with the faces given)."""

    gender: str | None
    p_female: float | None
    born: float | None
    born_sd: float | None
    dated: int
    flagged: bool
    reason: str | None
    ages: list
    p_females: list
    genders: list


def estimate(face_age: list, face_p: list, face_gender: list, years: list, sd: list, logit: list, rule: dict,
             gender_by_user: str | None = None, born_by_user: str | None = None) -> Estimate:
    """A person's gender and birth date from its faces, and each face's corrected values. Per face
    (floats, NaN: none): its own age and P(female), its own gender, the photo's year, its age's SD
    (:func:`age_sd`) and its P(female) logit (:func:`_logit`); ``rule``: the models' gender
    thresholds (:func:`_gender_rule`). Sums are exact (``math.fsum``), so the result does not depend
    on the order the faces come in."""
    isnan, fsum = math.isnan, math.fsum
    n = len(face_age)
    if n == 1 and not gender_by_user and not born_by_user:  # a person of one face keeps its own answer
        dated = int(not isnan(years[0]) and not isnan(face_age[0]))
        return Estimate(face_gender[0] or None, None if isnan(face_p[0]) else face_p[0],
                        years[0] - face_age[0] if dated else None, sd[0] if dated else None, dated, False, None,
                        list(face_age), list(face_p), list(face_gender))
    ages, ps, genders = list(face_age), list(face_p), list(face_gender)
    flagged, reasons = False, []
    # birth date from the dated faces, each weighted by how well its age is known
    weight = [1 / (v * v) for v in sd]
    dated = [k for k in range(n) if not isnan(years[k]) and not isnan(face_age[k])]
    birth = [y - a for y, a in zip(years, face_age)]
    born = born_sd = None
    inliers = dated
    if dated:
        w_sum = fsum(weight[k] for k in dated)
        b = fsum(birth[k] * weight[k] for k in dated) / w_sum
        for _ in range(3):
            inliers = [k for k in dated
                       if abs(birth[k] - b) <= BIRTH_Z * math.sqrt(sd[k] * sd[k] + 1 / w_sum + BORN_SD_FLOOR ** 2)]
            if not inliers:
                inliers = dated
                break
            b = fsum(birth[k] * weight[k] for k in inliers) / fsum(weight[k] for k in inliers)
        born, born_sd = b, math.sqrt(1 / fsum(weight[k] for k in inliers) + BORN_SD_FLOOR ** 2)
        if len(dated) >= MIN_DATED and len(inliers) < INLIER_SHARE * len(dated):
            flagged = True
            reasons.append("its faces' ages disagree on a birth date")
    # gender: the faces' votes pooled (children's weigh less); adults confidently both: flagged
    adult = [(30.0 if isnan(a) else a) >= CHILD for a in face_age]
    known_p = [k for k in range(n) if not isnan(face_p[k])]
    p_person = None
    if known_p:
        weights = [1.0 if adult[k] else CHILD_WEIGHT for k in known_p]
        p_person = 1 / (1 + math.exp(-fsum(logit[k] * w for k, w in zip(known_p, weights)) / fsum(weights)))
        sure_f = sum(1 for k in range(n) if face_p[k] >= 0.9 and adult[k])
        sure_m = sum(1 for k in range(n) if face_p[k] <= 0.1 and adult[k])
        if min(sure_f, sure_m) >= 2 and min(sure_f, sure_m) >= 0.25 * (sure_f + sure_m):
            flagged = True
            reasons.append("its faces disagree on the gender")
    # ages: the user's birth date; or each dated face's own estimate and its person's (date - birth
    # date from the other faces), by their variances
    if born_by_user:
        born, born_sd = parse_born(born_by_user)[1:]
        for f in dated:
            if years[f] - born >= 0:
                ages[f] = years[f] - born
    elif not flagged and len(inliers) >= MIN_DATED:
        inlier_weight = [0.0] * n
        for k in inliers:
            inlier_weight[k] = weight[k]
        total_w = fsum(inlier_weight)
        total_s = fsum(inlier_weight[k] * birth[k] for k in inliers)
        for f in dated:
            w_rest = total_w - inlier_weight[f]
            if w_rest <= 0 or (len(inliers) - (inlier_weight[f] > 0)) < MIN_DATED - 1:
                continue
            b_rest = (total_s - inlier_weight[f] * birth[f]) / w_rest
            var_rest = 1 / w_rest + BORN_SD_FLOOR ** 2
            implied = years[f] - b_rest
            if abs(face_age[f] - implied) > DISAGREE_Z * math.sqrt(sd[f] ** 2 + var_rest):
                continue  # clearly not its person's age: keeps its own
            ages[f] = max(0.0, (face_age[f] * weight[f] + implied / var_rest) / (weight[f] + 1 / var_rest))
    # gender of each face: the user's word, else the person's where it is one person
    if gender_by_user in ("f", "m"):
        p_person = 1.0 if gender_by_user == "f" else 0.0
        ps, genders = [p_person] * n, [gender_by_user] * n
    elif p_person is not None and n > 1 and not flagged:
        ps = [p_person] * n
        genders = ["f" if p_person >= models.gender_threshold_at(rule, 30.0 if isnan(a) else a) else "m"
                   for a in ages]
    person_gender = (gender_by_user if gender_by_user in ("f", "m") else
                     None if p_person is None else "f" if p_person >= models.gender_threshold_at(rule) else "m")
    return Estimate(person_gender, p_person, born, born_sd, len(dated), flagged, "; ".join(reasons) or None,
                    ages, ps, genders)


def _correct_stale(db, summary: Summary, now=None, batch: int = 20_000) -> None:
    """Correct the stale people, ``batch`` at a time, each batch a transaction (at a million faces,
    25,000 a batch took 10 % less time than 5,000, whose commits wrote the same pages again and again,
    and 1.4 GB against 0.6 GB of memory at most; 20,000 is between)."""
    while True:
        with db.atomic():
            ids = [r[0] for r in db.execute("select id from people where stale = 1 order by id limit ?", [batch])]
            if not ids:
                return
            _correct(db, ids, summary, now)


def _correct(db, ids: Sequence[int], summary: Summary, now=None) -> None:
    """Compute the people ``ids`` again and write their faces' corrected values (in the caller's
    transaction); photos whose values changed enough are marked for their tags to be written."""
    marks = ",".join("?" * len(ids))
    flags = {r[0]: r[1:] for r in db.execute(
        f"select id, gender_set_by_user, born_set_by_user, pinned from people where id in ({marks})", list(ids))}
    # in the photos' order, not the faces' ids: the sums come out the same whatever order a scan recorded them in
    cols = list(zip(*db.execute(
        "select f.person_id, f.id, f.photo_id, f.face_age, f.face_gender, f.face_p_female, f.age, f.gender,"
        " f.p_female, p.taken_at, f.embedding from faces f indexed by faces_person_id cross join photos p"
        " on p.id = f.photo_id"  # by the person index: else a million-face index is scanned for each batch
        f" where f.person_id in ({marks}) and {LIVE} order by f.person_id, p.path_key, f.face_index",
        list(ids)).fetchall())) or [()] * 11
    years_of = {t: photo_year(t, now) for t in set(cols[9])}
    has_x = np.array([b is not None and len(b) == 4 * DIM for b in cols[10]], bool)
    members = _Members(np.array(cols[0], np.int64), np.array(cols[1], np.int64), np.array(cols[2], np.int64),
                       _floats(cols[3]), list(cols[4]), _floats(cols[5]), _floats(cols[6]), list(cols[7]),
                       _floats(cols[8]), _floats([years_of[t] for t in cols[9]]),
                       np.where(has_x, np.cumsum(has_x) - 1, -1),
                       _vectors([b for b, ok in zip(cols[10], has_x.tolist()) if ok]))
    del cols
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    face_updates, dirty, rows, empty = _corrections(flags, ids, members, stamp, _gender_rule(db))
    gone = []
    for pid in empty:  # no live face left: kept (with nothing) while it has faces elsewhere or is pinned
        anywhere = db.execute("select 1 from faces where person_id = ? limit 1", [pid]).fetchone()
        if not flags[pid][2] and not anywhere:
            gone.append(pid)
        else:
            rows.append((0, 0, None, None, None, None, 0, None, None, None, stamp, pid))
    _write_corrections(db, face_updates, dirty, rows, gone, summary, len(ids))


@dataclass
class _Members:
    """The live faces of people being corrected, as columns, each person's faces consecutive in its
    photos' path order (face by face within a photo): its own age, P(female) and gender, the values
    stored now, the photo's year and the row of its descriptor in ``x`` (NaN, None, -1: none)."""

    person: np.ndarray
    ids: np.ndarray
    photo: np.ndarray
    face_age: np.ndarray
    face_gender: list
    face_p: np.ndarray
    stored_age: np.ndarray
    stored_gender: list
    stored_p: np.ndarray
    years: np.ndarray
    xrow: np.ndarray
    x: np.ndarray


def _floats(values) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], float)


def _corrections(flags: dict, ids: Sequence[int], m: _Members, stamp: str, rule: dict
                 ) -> tuple[list, set, list, list]:
    """What correcting the people ``ids`` (``flags``: each one's gender and birth date set by the user,
    and whether it is pinned; a person not in it is gone) from their faces ``m`` changes, by the gender
    ``rule``: the faces' new values (age, gender, P(female), id), the photos whose tags change, the
    people's rows (as :func:`_write_corrections` writes them) and the people without a face."""
    persons = m.person.tolist()
    bounds = [0, *(np.flatnonzero(np.diff(m.person)) + 1).tolist(), len(persons)]
    span = {persons[s]: (s, e) for s, e in zip(bounds[:-1], bounds[1:]) if e > s}
    face_age, face_p, years = m.face_age.tolist(), m.face_p.tolist(), m.years.tolist()
    sd, logit = age_sd(m.face_age).tolist(), _logit(m.face_p).tolist()
    described = np.concatenate([[0], np.cumsum(m.xrow >= 0)]).tolist()  # faces with a descriptor before each
    rows, empty, singles = [], [], []
    with_x = []  # (row in ``rows``, first face, end) of the people with descriptors
    estimated, ages, ps, genders = [], [], [], []  # the faces of people of several faces, their corrected values
    for pid in ids:
        flag = flags.get(pid)
        if flag is None:  # gone meanwhile
            continue
        s, e = span.get(pid, (0, 0))
        if e - s == 1 and not flag[0] and not flag[1]:
            singles.append(s)  # keeps its own values: all of them at once below
            continue
        if e == s:
            empty.append(pid)
            continue
        est = estimate(face_age[s:e], face_p[s:e], m.face_gender[s:e], years[s:e], sd[s:e], logit[s:e], rule,
                       flag[0], flag[1])
        estimated.extend(range(s, e))
        ages.extend(est.ages)
        ps.extend(est.p_females)
        genders.extend(est.genders)
        if described[e] > described[s]:  # its centroid and spread: all the people's at once below
            with_x.append((len(rows), s, e))
        rows.append((e - s, est.dated, est.gender, est.p_female, est.born, est.born_sd, int(est.flagged),
                     est.reason, None, None, stamp, pid))
    for part in range(0, len(with_x), 20_000):  # some people at a time: not a second copy of every descriptor
        chunk = np.array(with_x[part:part + 20_000], np.int64)
        length = chunk[:, 2] - chunk[:, 1]
        first = np.cumsum(length) - length
        at = np.arange(length.sum()) + np.repeat(chunk[:, 1] - first, length)
        xrow = m.xrow[at]
        has = xrow >= 0
        centres, spreads = _centroids(m.x[xrow[has]], np.add.reduceat(has, first))
        for k, centre, spread in zip(chunk[:, 0].tolist(), centres.astype(BLOB_DTYPE), spreads.tolist()):
            rows[k] = (*rows[k][:8], centre.tobytes(), spread, *rows[k][10:])
    alone = np.array(singles, np.int64)  # each keeps its face's own values (as estimate says)
    face_updates, dirty = _changed_faces(m, np.concatenate([np.array(estimated, np.int64), alone]),
                                         np.concatenate([np.array(ages, float), m.face_age[alone]]),
                                         np.concatenate([np.array(ps, float), m.face_p[alone]]),
                                         np.array(genders + [m.face_gender[k] for k in singles], object))
    if singles:
        _singles_rows(m, alone, rows, stamp)
    return face_updates, dirty, rows, empty


def _changed_faces(m: _Members, at: np.ndarray, age: np.ndarray, p: np.ndarray, g: np.ndarray
                   ) -> tuple[list, set]:
    """The faces ``at`` of ``m`` whose corrected values (``age``, ``p``, ``g``) are written, as (age,
    gender, P(female), id), and their photos: a face with an age of its own whose values differ from
    the stored ones (or none is stored) and moved by at least ``AGE_STEP`` or ``P_STEP``, changed
    gender, or went back to the face's own."""
    own_age, own_p, stored_age, stored_p = m.face_age[at], m.face_p[at], m.stored_age[at], m.stored_p[at]
    own_g = np.array([m.face_gender[k] for k in at.tolist()], object)
    stored_g = np.array([m.stored_gender[k] for k in at.tolist()], object)
    with np.errstate(invalid="ignore"):
        back = ((np.abs(age - own_age) < 1e-9) & (np.abs(p - np.nan_to_num(own_p)) < 1e-9) & (g == own_g)
                & ((stored_age != own_age) | np.where(np.isnan(own_p), ~np.isnan(stored_p), stored_p != own_p)))
        moved = (np.isnan(stored_age) | (np.abs(age - stored_age) >= AGE_STEP) | (g != stored_g)
                 | np.isnan(stored_p) | (np.abs(p - stored_p) >= P_STEP) | back)
        write = ~np.isnan(own_age) & moved & ((stored_age != age) | (stored_g != g) | (stored_p != p))
    picked = np.flatnonzero(write)
    faces = at[picked]
    return (list(zip(age[picked].tolist(), g[picked].tolist(), p[picked].tolist(), m.ids[faces].tolist())),
            set(m.photo[faces].tolist()))


def _write_corrections(db, face_updates: list, dirty: set, rows: list, gone: list, summary: Summary,
                       corrected: int) -> None:
    """Write the corrections :func:`_corrections` found: the faces' values, the photos to write and
    the people (``gone``: deleted)."""
    face_updates.sort(key=lambda row: row[3])  # by id, the table's order (231,000 updates alone: 5.6 s, not 8.5)
    db.conn.executemany("update faces set age = ?, gender = ?, p_female = ? where id = ?", face_updates)
    marked = db.conn.executemany("insert or ignore into people_dirty (photo_id) values (?)",
                                 [(p,) for p in sorted(dirty)]).rowcount  # not those marked already
    db.conn.executemany("update people set faces = ?, dated = ?, gender = ?, p_female = ?, born = ?, born_sd = ?,"
                        " flagged = ?, flag_reason = ?, centroid = ?, spread = ?, updated_at = ?, stale = 0"
                        " where id = ?", rows)
    db.conn.executemany("delete from people where id = ?", [(p,) for p in gone])
    summary.corrected += corrected
    summary.changed_faces += len(face_updates)
    summary.changed_photos += marked


def _centroids(x: np.ndarray, counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Groups of ``counts`` consecutive descriptors: each group's mean descriptor and the mean squared
    distance of its descriptors to it (summed in float64: mean |x|^2 - |mean|^2)."""
    n = np.asarray(counts, np.int64)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    centres = np.add.reduceat(x, starts, axis=0, dtype=np.float64) / n[:, None]
    norms = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    spreads = np.add.reduceat(norms, starts) / n - np.einsum("ij,ij->i", centres, centres)
    return centres, np.maximum(spreads, 0.0)


def _singles_rows(m: _Members, at: np.ndarray, rows: list, stamp: str) -> None:
    """The rows of the people of one face (the faces ``at`` of ``m``) and no word of the user's, in one
    vectorised pass: the person's gender and P(female) are the face's, its birth estimate the face's
    (dated), its centroid the descriptor."""
    picked = at.tolist()
    own_age, own_p, years = m.face_age[at], m.face_p[at], m.years[at]
    dated = ~np.isnan(years) & ~np.isnan(own_age)
    born = np.where(dated, years - np.nan_to_num(own_age), np.nan).tolist()
    born_sd = age_sd(np.nan_to_num(own_age)).tolist()
    xrow = m.xrow[at].tolist()
    for k, (face, is_dated) in enumerate(zip(picked, dated.tolist())):
        p = own_p[k]
        centre = to_blob(m.x[xrow[k]]) if xrow[k] >= 0 else None
        rows.append((1, int(is_dated), m.face_gender[face] or None, None if np.isnan(p) else float(p),
                     born[k] if is_dated else None, born_sd[k] if is_dated else None, 0, None, centre, 0.0, stamp,
                     int(m.person[face])))


# --- reading -----------------------------------------------------------------------------------------

def born_text(born: float | None) -> str | None:
    """A decimal-year birth estimate as a date (``YYYY-MM-DD``)."""
    if born is None:
        return None
    year = int(math.floor(born))
    start = datetime(year, 1, 1)
    return (start + timedelta(days=(born - year) * (datetime(year + 1, 1, 1) - start).days)).date().isoformat()


def list_people(db: sqlite_utils.Database, include_empty: bool = False) -> list[dict]:
    """The people, most faces first: id, name, faces (present ones), the user's word, the estimates
    (gender, p_female, born as decimal year and as a date, born_sd in years), flagged and why; the
    photos they are in, the first and last date taken, and one of the photos (``sample``)."""
    ensure_schema(db)
    rows = db.execute(
        "select id, name, faces, gender_set_by_user, born_set_by_user, gender, p_female, born, born_sd, dated,"
        " flagged, flag_reason, pinned from people" + ("" if include_empty else " where faces > 0")
        + " order by faces desc, id").fetchall()
    keys = ("id", "name", "faces", "gender_set_by_user", "born_set_by_user", "gender", "p_female", "born", "born_sd",
            "dated", "flagged", "flag_reason", "pinned")
    photos = {r[0]: r[1:] for r in db.execute(
        "select f.person_id, count(distinct f.photo_id), min(p.taken_at), max(p.taken_at), min(p.path)"
        f" from faces f join photos p on p.id = f.photo_id where f.person_id is not null and {LIVE}"
        " group by f.person_id")}
    out = []
    for r in rows:
        item = dict(zip(keys, r))
        item["flagged"] = bool(item["flagged"])
        item["pinned"] = bool(item["pinned"])
        item["born_date"] = born_text(item["born"])
        item["photos"], item["first_taken"], item["last_taken"], item["sample"] = photos.get(item["id"], (0, None, None, None))
        out.append(item)
    return out


def person(db: sqlite_utils.Database, person_id: int) -> dict:
    """One person (as in :func:`list_people`) with its faces: id, photo_id, path, taken_at, the
    face-alone and corrected values."""
    ensure_schema(db)
    _check_ids(db, [person_id])
    item = next(p for p in list_people(db, include_empty=True) if p["id"] == person_id)
    item["face_rows"] = [dict(zip(("id", "photo_id", "path", "taken_at", "face_age", "face_gender", "face_p_female",
                                   "age", "gender", "p_female"), r)) for r in db.execute(
        "select f.id, f.photo_id, p.path, p.taken_at, f.face_age, f.face_gender, f.face_p_female, f.age, f.gender,"
        f" f.p_female from faces f join photos p on p.id = f.photo_id where f.person_id = ? and {LIVE}"
        " order by p.taken_at, f.id", [person_id])]
    return item


def changed_photos(db: sqlite_utils.Database) -> list[int]:
    """The photos (ids) whose faces' corrected values changed since their tags were last written:
    the scan writes their tags again (from the index) and then calls :func:`mark_written`."""
    ensure_schema(db)
    return [r[0] for r in db.execute("select d.photo_id from people_dirty d join photos p on p.id = d.photo_id"
                                     " where p.status = 'done' order by d.photo_id")]


def mark_written(db: sqlite_utils.Database, photo_ids: Iterable[int] | None = None) -> None:
    """The tags of these photos (None: all) now hold their corrected values."""
    with db.atomic():
        if photo_ids is None:
            db.execute("delete from people_dirty")
        else:
            db.conn.executemany("delete from people_dirty where photo_id = ?", [(int(p),) for p in photo_ids])


# --- the user's word ---------------------------------------------------------------------------------

def _check_ids(db, ids: Sequence[int]) -> None:
    for pid in ids:
        if not isinstance(pid, (int, np.integer)) or isinstance(pid, bool):
            raise PeopleError(f"not a person id: {pid!r}")
        if db.execute("select 1 from people where id = ?", [int(pid)]).fetchone() is None:
            raise PeopleError(f"no person {pid}")


def check_name(name: str) -> str:
    """A person's name as stored (spaces around it removed), or PeopleError."""
    if not isinstance(name, str):
        raise PeopleError("a name must be text")
    text = name.strip()
    if not text:
        raise PeopleError("a name cannot be empty")
    if len(text) > MAX_NAME:
        raise PeopleError(f"a name has at most {MAX_NAME} characters")
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise PeopleError(f"a name cannot hold control characters ({bad!r})")
    if _NAME_FORBIDDEN.search(text):
        raise PeopleError("a name cannot hold '/', '\\' or '|' (they separate keyword paths and folders)")
    return text


def name(db: sqlite_utils.Database, person_id: int, new_name: str | None) -> None:
    """Name a person (None: take its name away). The person is kept through regrouping."""
    ensure_schema(db)
    text = None if new_name is None else check_name(new_name)
    with db.atomic():
        _check_ids(db, [person_id])
        db.execute("update people set name = ?, pinned = 1 where id = ?", [text, int(person_id)])
        _name_changed(db, [int(person_id)])


def _name_changed(db, person_ids: Sequence[int]) -> None:
    """The photos of these people are to be written again: their faces' names changed."""
    marks = ",".join("?" * len(person_ids))
    db.execute(f"insert or ignore into people_dirty (photo_id) select distinct photo_id from faces"
               f" where person_id in ({marks})", list(person_ids))


def merge(db: sqlite_utils.Database, ids: Sequence[int]) -> int:
    """Merge people into the first one given; return its id. Its name and the user's gender and birth
    date are the first given among them, in order. The user's exclusions between them are dropped."""
    ensure_schema(db)
    ids = [int(i) if isinstance(i, (int, np.integer)) and not isinstance(i, bool) else i for i in ids]
    if len(ids) < 2:
        raise PeopleError("merging needs two people or more")
    if len(set(ids)) < len(ids):
        raise PeopleError(f"cannot merge a person with itself ({', '.join(str(i) for i, c in Counter(ids).items() if c > 1)})")
    summary = Summary()
    with db.atomic():
        _check_ids(db, ids)
        target, others = ids[0], ids[1:]
        rows = {r[0]: r for r in db.execute(
            f"select id, name, gender_set_by_user, born_set_by_user from people where id in ({','.join('?' * len(ids))})",
            ids)}
        picked = [next((rows[i][k] for i in ids if rows[i][k] is not None), None) for k in (1, 2, 3)]
        marks = ",".join("?" * len(others))
        db.execute(f"update faces set person_id = ? where person_id in ({marks})", [target, *others])
        db.execute(f"update people_exclusions set person_id = ? where person_id in ({marks})", [target, *others])
        db.execute(f"update people_memory set person_id = ? where person_id in ({marks})", [target, *others])
        db.execute("delete from people_exclusions where person_id = ? and face_id in"
                   " (select id from faces where person_id = ?)", [target, target])
        db.execute(f"delete from people where id in ({marks})", others)
        db.execute("update people set name = ?, gender_set_by_user = ?, born_set_by_user = ?, pinned = 1, stale = 1"
                   " where id = ?", [*picked, target])
        _correct(db, [target], summary)
        _name_changed(db, [target])
    return target


def remove_faces(db: sqlite_utils.Database, face_ids: Sequence[int]) -> list[int]:
    """"These faces are not their person": each leaves its person (which is kept through regrouping)
    for a person of its own, and never joins it again. Returns the faces' new person ids."""
    ensure_schema(db)
    summary = Summary()
    with db.atomic():
        found = {}
        for fid in face_ids:
            row = db.execute("select id, person_id from faces where id = ?", [int(fid)]).fetchone()
            if row is None:
                raise PeopleError(f"no face {fid}")
            if row[1] is None:
                raise PeopleError(f"face {fid} is not in a person")
            found[row[0]] = row[1]
        new_ids = _new_people(db, len(found))
        for (fid, pid), new in zip(sorted(found.items()), new_ids):
            db.execute("insert or ignore into people_exclusions (face_id, person_id) values (?, ?)", [fid, pid])
            db.execute("update faces set person_id = ? where id = ?", [new, fid])
        db.conn.executemany("update people set pinned = 1, stale = 1 where id = ?", [(p,) for p in set(found.values())])
        _correct(db, sorted(set(found.values()) | set(new_ids)), summary)
    return [dict(zip(sorted(found), new_ids))[int(f)] for f in face_ids]


def set_person(db: sqlite_utils.Database, person_id: int, gender: str | None = None,
               born: int | str | None = None) -> None:
    """The user's gender (``f``/``m``/``female``/``male``) or birth date (a year, ``YYYY-MM``,
    ``YYYY-MM-DD``) of a person; None leaves it as it is, ``""`` takes the user's word back. Beats
    every estimate: the person's faces get that gender; its dated faces the age the date makes."""
    ensure_schema(db)
    genders = {"f": "f", "female": "f", "m": "m", "male": "m", "": ""}
    if gender is not None and str(gender).strip().lower() not in genders:
        raise PeopleError(f"not a gender: {gender!r} (f, m, female, male)")
    born_value = None if born is None or born == "" else parse_born(born)[0]
    summary = Summary()
    with db.atomic():
        _check_ids(db, [person_id])
        if gender is not None:
            g = genders[str(gender).strip().lower()] or None
            db.execute("update people set gender_set_by_user = ? where id = ?", [g, int(person_id)])
        if born is not None:
            db.execute("update people set born_set_by_user = ? where id = ?", [born_value, int(person_id)])
        db.execute("update people set pinned = 1, stale = 1 where id = ?", [int(person_id)])
        _correct(db, [int(person_id)], summary)


def __getattr__(attribute: str):
    """``people.set`` is :func:`set_person` (a module function named ``set`` would hide the builtin here)."""
    if attribute == "set":
        return set_person
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
