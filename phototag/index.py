"""The SQLite index: schema, location, reads and transactional writes (through sqlite-utils); all of
phototag's SQL but the read-only queries of :mod:`phototag.query` (find, stats). :class:`IndexWriter` is a scan's
side of it: the one object that writes, so that it can live where the index is.

Every write is one transaction (``db.atomic()``: sqlite-utils commits each statement on its own
otherwise), so a photo's row and its faces change together or not at all.

Tables
------
``photos``: one row per file seen. ``path`` is the absolute path for display and filtering (bytes
that are not valid UTF-8 are shown as ``\\xNN``); ``path_key`` is the exact file-system name
(``os.fsencode``) and is the real key. ``status`` is ``done``, ``failed`` (``error`` says why) or
``cleaned`` (``phototag clean`` took phototag's tags out of the file: its faces are gone, and scans
leave it alone until ``--rescan`` or the file changes); ``missing`` is 1 when the file was gone at
the last scan. ``size``, ``mtime_ns``, ``inode``, ``ctime_ns`` and ``sha256`` describe the file the
row's faces belong to (the inode and the ctime, as git keeps them, tell a file rewritten or replaced
even when its size and mtime were kept; both are unknown, NULL, in rows from an index before them,
and the ctime of a rewrite until it is confirmed: a rename changes it). ``unconfirmed`` is 1 while
phototag's own rewrite of the file is under way: the row (faces and the new file's size, mtime,
inode, hash) is recorded before the new file is renamed in, and confirmed after (with the file's
ctime); the next scan confirms it when the file's hash is the expected one, else the rename never
happened (or the user changed the file) and the photo is scanned again.

``turn`` is the quarter turns (counter-clockwise as displayed, 0-3) the photo's faces agree it is
turned by (:func:`phototag.turns.suggested_turn`; 0: upright, or the faces do not agree); an index
from before the column gets it from the rotations it holds.

``faces``: one row per face. Box and landmarks are in pixels of the *displayed* frame (EXIF
orientation applied, full resolution), named by ``frame``. ``embedding`` is the face's identity
embedding (:mod:`phototag.identity`): 128 little-endian float32 (512 bytes), read with
``np.frombuffer(blob, "<f4")``; NULL where the models had no identity model, and in rows from an
index before the column (a ``--rescan`` computes them; the model version does not include the
identity model, so ``--rescan-outdated`` does not).

``siblings``: the RAW file of a RAW+JPEG pair whose JPEG was scanned in its place (one photo, one
``photos`` row), by ``path_key``, with the ``photo_id`` of that JPEG.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from stat import S_ISREG

import sqlite_utils

from . import faults, people
from .atomic import Written
from .names import display_path
from .records import FRAME, Face, PhotoInfo
from .turns import suggested_turn

ENV_DB = "PHOTOTAG_DB"
SCHEMA_VERSION = 1

PHOTO_COLUMNS = {
    "id": int,
    "path": str,
    "path_key": bytes,
    "size": int,
    "mtime_ns": int,
    "inode": int,
    "ctime_ns": int,
    "sha256": str,
    "width": int,
    "height": int,
    "stored_width": int,
    "stored_height": int,
    "orientation": int,
    "turn": int,
    "taken_at": str,
    "format": str,
    "scale": float,  # decoded pixels per displayed pixel when scanned (faces' size as the chain read them)
    "status": str,
    "error": str,
    "face_count": int,
    "model_version": str,
    "exif_status": str,
    "missing": int,
    "unconfirmed": int,
    "scanned_at": str,
}

FACE_COLUMNS = {
    "id": int,
    "photo_id": int,
    "face_index": int,
    "frame": str,
    "x": float,
    "y": float,
    "w": float,
    "h": float,
    "landmarks": str,
    "confidence": float,
    "rotation": float,
    "gender": str,
    "p_female": float,
    "age": float,
    "embedding": bytes,  # 128 little-endian float32, or NULL (see phototag.identity)
}


def default_db_path() -> Path:
    """``$PHOTOTAG_DB``, else ``$XDG_DATA_HOME/phototag/index.db`` (``~/.local/share`` by default)."""
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "phototag" / "index.db"


def path_key(path: str | os.PathLike | bytes) -> bytes:
    """The exact file-system name, used as the photos table key."""
    return os.fsencode(os.path.abspath(os.fsencode(path)))


class IndexUnusable(RuntimeError):
    """The index cannot be used (not SQLite, a read-only folder, a full disk, another scan using it)."""


class IndexBusy(IndexUnusable):
    """Another scan holds the index's lock."""


def open_index(db_path: str | os.PathLike | None = None, create: bool = True) -> sqlite_utils.Database:
    """Open (and create or migrate) the index. With ``create=False`` a missing file raises FileNotFoundError;
    a file that is not an index, or a folder it cannot be written in, raises IndexUnusable."""
    path = Path(db_path) if db_path is not None else default_db_path()
    if not create and not path.exists():
        raise FileNotFoundError(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        db = sqlite_utils.Database(conn)
        ensure_schema(db)
    except (sqlite3.Error, OSError) as e:
        raise IndexUnusable(f"cannot use the index {path}: {reason(e)}") from e
    return db


def reason(error: Exception) -> str:
    """A short, human reason for an SQLite or OS error."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


LOCK_HOLDER_WIDTH = 20  # the lock file holds the holder's process id, padded to this many bytes


@contextlib.contextmanager
def scan_lock(db_path: str | os.PathLike | None = None, wait: bool = False) -> Iterator[None]:
    """Hold the index's scan lock (``INDEX.lock`` beside it, ``flock``): one scan per index at a time.

    Another scan holding it raises IndexBusy, or with ``wait`` is waited for. The lock file stays
    (removing it would race with a scan opening it); the lock goes with the process, also when killed.
    The lock file is never followed as a link and must be a regular file of one link no larger than a
    process id (else IndexUnusable): a link or file planted at its name is neither truncated nor written.
    """
    path = Path(db_path) if db_path is not None else default_db_path()
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_lock_file(lock_path)
    except OSError as e:
        raise IndexUnusable(f"cannot use the index {path}: cannot open {lock_path}: {reason(e)}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, LOCK_HOLDER_WIDTH, 0).decode(errors="replace").strip()
            raise IndexBusy(f"another phototag scan is using the index {path}"
                            + (f" (process {holder})" if holder.isdigit() else "")
                            + "; try again when it has finished, or use --wait") from None
        with contextlib.suppress(OSError):  # who holds it, for the message; a full disk may refuse it
            os.pwrite(fd, str(os.getpid()).ljust(LOCK_HOLDER_WIDTH).encode(), 0)
        yield
    finally:
        os.close(fd)


def _open_lock_file(lock_path: Path) -> int:
    """Open (or create) the lock file without following a link; refuse anything that is not one."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(lock_path, flags | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    try:
        fd = os.open(lock_path, flags | os.O_NONBLOCK)  # a FIFO planted there must not block the open
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(e.errno, "it is a symbolic link (phototag does not follow it)") from None
        raise
    st = os.fstat(fd)
    problem = ("it is not a regular file" if not S_ISREG(st.st_mode)
               else f"it has {st.st_nlink} hard links" if st.st_nlink != 1
               else "it is not a phototag lock file (too large)" if st.st_size > LOCK_HOLDER_WIDTH else "")
    if problem:
        os.close(fd)
        raise OSError(errno.EINVAL, problem)
    return fd


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create the tables and indexes if they do not exist (in one transaction)."""
    with db.atomic():
        _create_tables(db)


def _create_tables(db: sqlite_utils.Database) -> None:
    if "photos" not in db.table_names():
        db["photos"].create(PHOTO_COLUMNS, pk="id", not_null={"path", "path_key", "status"},
                            defaults={"missing": 0, "face_count": 0, "unconfirmed": 0, "turn": 0})
        db["photos"].create_index(["path_key"], unique=True)
        db["photos"].create_index(["path"])
        db["photos"].create_index(["taken_at"])
        db["photos"].create_index(["face_count"])
        db["photos"].create_index(["status", "missing", "face_count"])  # covers the stats counts
    else:
        _add_columns(db)
    if "faces" not in db.table_names():
        db["faces"].create(FACE_COLUMNS, pk="id", foreign_keys=[("photo_id", "photos", "id")])
        db["faces"].create_index(["photo_id"])
        # Covering indexes for the query filters (gender, age, gender confidence) and stats.
        db["faces"].create_index(["gender", "age", "p_female", "photo_id"])
        db["faces"].create_index(["gender", "p_female", "age", "photo_id"])
        db["faces"].create_index(["age", "p_female", "photo_id"])
    db.execute("create table if not exists siblings (path_key blob primary key, path text not null, "
               "photo_id integer not null references photos(id) on delete cascade)")
    db.execute("create index if not exists siblings_photo_id on siblings(photo_id)")
    if "meta" not in db.table_names():
        db["meta"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
    people.ensure_schema(db)  # the people, and each face's person and own estimates


def _add_columns(db: sqlite_utils.Database) -> None:
    """Bring an older index's tables up to date: the columns added since, filled in."""
    columns = db["photos"].columns_dict
    if "unconfirmed" not in columns:  # an index from before the write protocol
        db["photos"].add_column("unconfirmed", int, not_null_default=0)
    if "turn" not in columns:  # an index from before photos were found turned: from the rotations it holds
        db["photos"].add_column("turn", int, not_null_default=0)
        rotations: dict[int, list[float]] = {}
        for photo_id, rotation in db.execute("select photo_id, rotation from faces order by photo_id"):
            rotations.setdefault(photo_id, []).append(rotation)
        turned = [(turn, i) for i, r in rotations.items() if (turn := suggested_turn(r))]
        db.executemany("update photos set turn = ? where id = ?", turned)
    for column in ("inode", "ctime_ns"):  # an index from before rewrites were told by them: NULL, unknown
        if column not in columns:
            db["photos"].add_column(column, int)
    if "scale" not in columns:  # an index from before: NULL, not known
        db["photos"].add_column("scale", float)
    if "faces" in db.table_names() and "embedding" not in db["faces"].columns_dict:
        db["faces"].add_column("embedding", bytes)  # an index from before identity embeddings: NULL


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def get_photo(db: sqlite_utils.Database, path) -> dict | None:
    """The photos row of ``path``, or None."""
    rows = list(db.query("select * from photos where path_key = ?", [path_key(path)]))
    return rows[0] if rows else None


def get_photo_of_sibling(db: sqlite_utils.Database, path) -> dict | None:
    """The photos row of the photo scanned in place of the RAW sibling ``path``, or None."""
    rows = list(db.query("select photos.* from siblings join photos on photos.id = siblings.photo_id"
                         " where siblings.path_key = ?", [path_key(path)]))
    return rows[0] if rows else None


@dataclass
class IndexedState:
    """What the index remembers about a file from its last scan."""

    size: int | None
    mtime_ns: int | None
    sha256: str | None
    status: str
    model_version: str | None
    exif_status: str | None
    missing: bool
    unconfirmed: bool  # phototag's rewrite of the file was recorded but not confirmed
    inode: int | None = None  # None: unknown (a row from an older index)
    ctime_ns: int | None = None  # as stored (``stored_ns``); None: unknown (an older index, or unconfirmed)


def indexed_states(db: sqlite_utils.Database) -> dict[bytes, IndexedState]:
    """The remembered state of every file in the index, by path key."""
    rows = db.execute(
        "select path_key, size, mtime_ns, sha256, status, model_version, exif_status, missing, unconfirmed,"
        " inode, ctime_ns from photos"
    ).fetchall()
    return {bytes(r[0]): IndexedState(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), bool(r[8]), r[9], r[10])
            for r in rows}


def stored_ns(ns: int) -> int:
    """A file time in nanoseconds as the index stores it: SQLite's integers are 64-bit, so times past
    2262 (ext4 keeps up to 2446) wrap around; compare a file's time with ``stored_ns`` of it."""
    return (ns + 2**63) % 2**64 - 2**63


def _photo_row(path, stat: os.stat_result | Written | None, sha256: str | None) -> dict:
    """The columns every write of a photo's row sets; the file's state only when ``stat`` is known
    (a file that could not be stat'ed keeps the state recorded before)."""
    row = {"path": display_path(os.path.abspath(os.fsencode(path))), "path_key": path_key(path),
           "missing": 0, "scanned_at": now_iso()}
    if stat is not None:
        row |= file_state(stat) | {"sha256": sha256, "unconfirmed": 0}
    return row


def file_state(stat: os.stat_result | Written) -> dict:
    """The columns that describe a file (size, mtime, inode, ctime), as stored. A ``Written`` file's
    ctime is its ``ctime_ns`` where it carries one (a file as read, see :class:`phototag.pipeline.FileRead`),
    else unknown: a file about to be renamed in gets another ctime from the rename."""
    if isinstance(stat, Written):
        ctime_ns = getattr(stat, "ctime_ns", None)
        return {"size": stat.size, "mtime_ns": stored_ns(stat.mtime_ns), "inode": stat.inode,
                "ctime_ns": None if ctime_ns is None else stored_ns(ctime_ns)}
    return {"size": stat.st_size, "mtime_ns": stored_ns(stat.st_mtime_ns), "inode": stat.st_ino,
            "ctime_ns": stored_ns(stat.st_ctime_ns)}


def describes(state: dict | IndexedState, st: os.stat_result) -> bool:
    """Whether the stored file state ``state`` (a row or an IndexedState) is that of the file ``st``:
    same size, mtime, inode and ctime (an unknown inode or ctime does not count as the same)."""
    get = state.get if isinstance(state, dict) else lambda name: getattr(state, name)
    return (get("size"), get("mtime_ns"), get("inode"), get("ctime_ns")) == (
        st.st_size, stored_ns(st.st_mtime_ns), st.st_ino, stored_ns(st.st_ctime_ns))


def record_photo(
    db: sqlite_utils.Database,
    path,
    stat: os.stat_result | Written,
    sha256: str | None,
    info: PhotoInfo,
    faces: Iterable[Face],
    model_version: str,
    exif_status: str = "",
    unconfirmed: bool = False,
) -> int:
    """Store a successfully scanned photo and its faces in one transaction; return its id.

    ``stat`` and ``sha256`` describe the file; ``unconfirmed``: it is the file phototag is about to
    rename in (see ``confirm``).
    """
    faces = list(faces)
    row = _photo_row(path, stat, sha256) | {
        "width": info.width,
        "height": info.height,
        "stored_width": info.stored_width,
        "stored_height": info.stored_height,
        "orientation": info.orientation,
        "turn": suggested_turn(f.rotation for f in faces),
        "taken_at": info.taken_at,
        "format": info.format,
        "scale": info.scale,
        "status": "done",
        "error": None,
        "face_count": len(faces),
        "model_version": model_version,
        "exif_status": exif_status,
        "unconfirmed": int(unconfirmed),
    }
    with db.atomic():
        photo_id = _upsert(db, row)
        db.execute("delete from faces where photo_id = ?", [photo_id])
        faults.point("index-between")
        db["faces"].insert_all(
            {
                "photo_id": photo_id,
                "face_index": i,
                "frame": FRAME,
                "x": f.box[0],
                "y": f.box[1],
                "w": f.box[2],
                "h": f.box[3],
                "landmarks": json.dumps({k: list(v) for k, v in f.landmarks.items()}),
                "confidence": f.confidence,
                "rotation": f.rotation,
                "gender": f.gender,
                "p_female": f.p_female,
                "age": f.age,
                "embedding": f.embedding,
            }
            for i, f in enumerate(faces)
        )
    return photo_id


def record_failure(db: sqlite_utils.Database, path, stat: os.stat_result | None, error: str) -> int:
    """Store a file that could not be scanned, with the reason; its old faces are removed."""
    row = _photo_row(path, stat, None) | {"status": "failed", "error": error, "face_count": 0, "model_version": None,
                                          "turn": 0}
    with db.atomic():
        photo_id = _upsert(db, row)
        db.execute("delete from faces where photo_id = ?", [photo_id])
    return photo_id


def record_cleaned(db: sqlite_utils.Database, path, stat: os.stat_result, sha256: str) -> None:
    """Store that ``phototag clean`` took phototag's tags out of ``path``, now the file ``stat`` and
    ``sha256`` describe (status ``cleaned``, its faces removed), in one transaction. A RAW recorded as
    the sibling of a scanned JPEG gets no row of its own."""
    key = path_key(path)
    row = _photo_row(path, stat, sha256) | {"status": "cleaned", "error": None, "face_count": 0, "turn": 0,
                                             "model_version": None, "exif_status": "cleaned"}
    with db.atomic():
        if db.execute("select 1 from siblings where path_key = ?", [key]).fetchone():
            return
        photo_id = _upsert(db, row)
        db.execute("delete from faces where photo_id = ?", [photo_id])


def update_file_state(db: sqlite_utils.Database, path, stat: os.stat_result, sha256: str | None,
                      exif_status: str) -> None:
    """Record that ``path`` (with this size/mtime/inode/ctime/hash) is the file its row describes, confirmed."""
    state = file_state(stat)
    with db.atomic():
        db.execute(
            "update photos set size = ?, mtime_ns = ?, inode = ?, ctime_ns = ?, sha256 = ?, exif_status = ?,"
            " unconfirmed = 0 where path_key = ?",
            [state["size"], state["mtime_ns"], state["inode"], state["ctime_ns"], sha256, exif_status,
             path_key(path)],
        )


def confirm(db: sqlite_utils.Database, path) -> None:
    """The file recorded as ``unconfirmed`` is in place: the row is confirmed, with the file's ctime
    as it is now (the rename gave it a new one). When the file at ``path`` is not the one recorded (same
    size, mtime and inode), another program replaced it meanwhile: the row stays unconfirmed (the next
    scan decides by the hash)."""
    key = path_key(path)
    with db.atomic():
        row = db.execute("select size, mtime_ns, inode from photos where path_key = ?", [key]).fetchone()
        try:
            st = os.stat(path)
        except OSError:
            return
        if row is None or tuple(row) != (st.st_size, stored_ns(st.st_mtime_ns), st.st_ino):
            return
        db.execute("update photos set unconfirmed = 0, ctime_ns = ? where path_key = ?",
                   [stored_ns(st.st_ctime_ns), key])


def _upsert(db: sqlite_utils.Database, row: dict) -> int:
    existing = db.execute("select id from photos where path_key = ?", [row["path_key"]]).fetchone()
    if existing:
        db["photos"].update(existing[0], row)
        return existing[0]
    return db["photos"].insert(row).last_pk


def mark_missing(db: sqlite_utils.Database, seen_keys: set[bytes], under: Iterable[bytes],
                 prune: bool = False) -> int:
    """Flag (or with ``prune`` delete) photos below the folders ``under`` that were not seen; return the count."""
    stale: list[int] = []
    for root in under:
        prefix = root.rstrip(b"/") + b"/"
        for pid, key in db.execute(
            "select id, path_key from photos where substr(path_key, 1, ?) = ? or path_key = ?",
            [len(prefix), prefix, root],
        ).fetchall():
            if key not in seen_keys:
                stale.append(pid)
    with db.atomic():
        for pid in stale:
            if prune:
                db.execute("delete from faces where photo_id = ?", [pid])
                db.execute("delete from photos where id = ?", [pid])
            else:
                db.execute("update photos set missing = 1 where id = ?", [pid])
    return len(stale)


def faces_of(db: sqlite_utils.Database, photo_id: int) -> list[dict]:
    """The face rows of a photo, in detection order, with landmarks decoded."""
    rows = list(db.query("select * from faces where photo_id = ? order by face_index", [photo_id]))
    for r in rows:
        r["landmarks"] = json.loads(r["landmarks"]) if r["landmarks"] else {}
    return rows


def record_siblings(db: sqlite_utils.Database, pairs: dict[bytes, bytes], under: Iterable[bytes]) -> None:
    """Record RAW+JPEG pairs (``pairs``: RAW path -> the photo scanned in its place), in one transaction.

    The siblings recorded before below the folders ``under`` are replaced; a RAW that had a
    ``photos`` row of its own (scanned alone before) loses it, so the pair counts as one photo.
    """
    with db.atomic():
        for root in under:
            prefix = root.rstrip(b"/") + b"/"
            db.execute("delete from siblings where substr(path_key, 1, ?) = ?", [len(prefix), prefix])
        for raw, photo in pairs.items():
            row = db.execute("select id from photos where path_key = ?", [path_key(photo)]).fetchone()
            if row is None:
                continue
            key = path_key(raw)
            db.execute("delete from faces where photo_id in (select id from photos where path_key = ?)", [key])
            db.execute("delete from photos where path_key = ?", [key])
            db.execute("insert or replace into siblings (path_key, path, photo_id) values (?, ?, ?)",
                       [key, display_path(key), row[0]])


def siblings_of(db: sqlite_utils.Database, photo_id: int) -> list[str]:
    """The display paths of a photo's RAW siblings."""
    return [r[0] for r in db.execute("select path from siblings where photo_id = ? order by path", [photo_id])]


def scanned_photo(db: sqlite_utils.Database, path) -> tuple[PhotoInfo, list[Face], str] | None:
    """A scanned photo as the index holds it: (what decoding told, its faces, the model version);
    None unless its last scan succeeded. Lets tags be written again without decoding the photo."""
    row = get_photo(db, path)
    if row is None or row["status"] != "done":
        return None
    info = PhotoInfo(row["width"], row["height"], row["stored_width"], row["stored_height"],
                     row["orientation"] or 1, row["taken_at"], row["format"] or "", scale=row.get("scale"))
    names = dict(db.execute("select id, name from people where id in (select person_id from faces"
                            " where photo_id = ?)", [row["id"]]).fetchall())
    faces = [Face(box=(f["x"], f["y"], f["w"], f["h"]),
                  landmarks={k: tuple(v) for k, v in f["landmarks"].items()}, confidence=f["confidence"],
                  rotation=f["rotation"], gender=f["gender"], p_female=f["p_female"], age=f["age"],
                  embedding=f.get("embedding"), person=names.get(f.get("person_id")))
             for f in faces_of(db, row["id"])]
    return info, faces, row["model_version"]


class IndexWriter:
    """A scan's writes to the index, each photo in its own transaction; owns the database handle.

    With :class:`phototag.writer.PhotoWriter` it makes the write protocol: a rewritten file's row is
    recorded unconfirmed just before the rename (``record_unconfirmed``) and confirmed after it
    (``confirm``); a file not rewritten is recorded as it was read (``record_read``). Photos are
    recorded with ``version``, the models' version.
    """

    def __init__(self, db: sqlite_utils.Database, version: str):
        self.db = db
        self.version = version

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes made inside in one transaction (each photo's own becomes a savepoint)."""
        with self.db.atomic():
            yield

    def states(self) -> dict[bytes, IndexedState]:
        """What the index remembers about every file, by path key."""
        return indexed_states(self.db)

    def scanned_photo(self, path) -> tuple[PhotoInfo, list[Face], str] | None:
        """See :func:`scanned_photo`."""
        return scanned_photo(self.db, path)

    def record_unconfirmed(self, path, file: Written, info: PhotoInfo, faces: list[Face]) -> None:
        """The file about to be renamed in over ``path``, with the faces written into it."""
        record_photo(self.db, path, file, file.sha256, info, faces, self.version, "written", unconfirmed=True)

    def confirm(self, path) -> None:
        """The file recorded unconfirmed is in place."""
        confirm(self.db, path)

    def record_read(self, path, file: Written, info: PhotoInfo, faces: list[Face], exif_status: str) -> None:
        """The photo's faces, with the file as it was read (not rewritten: ``exif_status`` says why)."""
        record_photo(self.db, path, file, file.sha256, info, faces, self.version, exif_status)

    def record_failure(self, path, stat: os.stat_result | None, error: str) -> None:
        record_failure(self.db, path, stat, error)

    def record_same_file(self, path, stat: os.stat_result, known: IndexedState) -> None:
        """``path`` has the content ``known`` describes, with the file state ``stat`` (confirmed)."""
        update_file_state(self.db, path, stat, known.sha256, known.exif_status or "")

    def record_siblings(self, pairs: dict[bytes, bytes], under: Iterable[bytes]) -> None:
        """See :func:`record_siblings`."""
        record_siblings(self.db, pairs, under)

    def mark_missing(self, seen_keys: set[bytes], under: Iterable[bytes], prune: bool = False) -> int:
        """See :func:`mark_missing`."""
        return mark_missing(self.db, seen_keys, under, prune=prune)
