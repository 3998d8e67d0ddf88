"""Fault injection: kill -9 ``phototag scan`` at random and at aimed points, edit photos while it
runs, and check after every next scan that no photo was harmed and that file and index agree.

Each round rescans the library with the other of two tiny untrained model sets (so every photo's
tags are rewritten), in a child process that is killed with SIGKILL:

* aimed: the child kills itself at a fault point (``PHOTOTAG_KILL_AT``, see phototag/faults.py)
  the N-th time it passes it: ``temp-written`` (a full temp copy of the photo is on disk, its
  index row not yet recorded), ``index-between`` (between a photo's index statements, temp file
  present), ``renamed`` (the new file is in place, its index row not confirmed);
* random: the parent kills it after a random delay within one scan's duration.

An aimed round whose scan finishes before its N-th pass (say a user's edit meant fewer writes)
is repeated at the same point's first pass, so each point gets its kills.

Every third round, two photos are edited by "the user" (new pixels and tags, written like an
editor does) while the scan runs. After each kill the scan is run again to completion with the
same models, then every photo is checked: it decodes; its image data (JPEG entropy-coded data) is
the user's; the user's tags (ImageDescription, their XPKeywords) are there; the file is the one the
index describes (size, mtime, SHA-256, confirmed) and its EXIF record holds the index's faces; no
phototag temp file is left; the index passes ``PRAGMA integrity_check``. Finally the bad inputs of
issues 11 and 16 are run and their exit codes and tracebacks counted. ``benchmarks/bench_faults.py``
runs it; the suite runs a short version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import piexif
from PIL import Image

from phototag import index, tags
from phototag.atomic import is_temp_name
from phototag.faults import ENV
from phototag.testing.formats import jpeg_scan_bomb
from phototag.testing.hostile import write_hostile_files
from phototag.testing.photos import FaceCrop, face_crops, jpeg_bytes, paste_face, scene

POINTS = ("temp-written", "index-between", "renamed")
USER_KEYWORDS = ["family", "holiday"]
CLI = "from phototag.cli import main; main()"


@dataclass
class Figures:
    rounds: int = 0
    kills: dict = field(default_factory=dict)  # kind -> kills that happened
    missed: int = 0  # children that finished before the kill came
    writes_killed_runs: int = 0  # photos rewritten by the runs that were killed
    writes_next_scans: int = 0  # photos rewritten by the scans after them
    edits: int = 0  # photos changed by "the user" while a scan ran
    temp_after_kill: int = 0  # phototag temp files on disk right after a kill
    confirmed: int = 0  # rewrites of a killed run confirmed by the next scan
    damaged: int = 0
    image_changed: int = 0
    tags_lost: int = 0
    disagree: int = 0
    temp_left: int = 0
    integrity_errors: int = 0
    tracebacks: int = 0
    problems: list = field(default_factory=list)

    def zero(self) -> bool:
        return not (self.damaged or self.image_changed or self.tags_lost or self.disagree or self.temp_left
                    or self.integrity_errors or self.tracebacks)


def make_models(folder: Path, seed: int) -> Path:
    """A tiny untrained rotation/age model set (32 px), exported for LiteRT like the shipped ones."""
    import keras

    from phototag.export import export_models
    from phototag.models import write_manifest
    from phototag.training import backbones, recipe

    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recipe.build_rotation_model(backbones.build("mobilenet_v2", 32)).save(folder / "rotation.keras")
        recipe.build_age_model(recipe.build_gender_model(backbones.build("mobilenet_v2", 32))).save(folder / "age.keras")
    write_manifest(folder, f"tiny-{seed}")
    export_models(folder)
    return folder


def user_exif(description: str) -> bytes:
    return piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: description.encode(),
                                piexif.ImageIFD.XPKeywords: ";".join(USER_KEYWORDS).encode("utf-16-le") + b"\0\0"},
                        "Exif": {}})


def user_photo(rng: random.Random, face: FaceCrop, description: str) -> bytes:
    canvas = scene(320, 240, rng)
    paste_face(canvas, face, (rng.uniform(110, 210), rng.uniform(90, 150)), rng.randint(110, 140))
    return jpeg_bytes(canvas, quality=rng.randint(80, 95), exif=user_exif(description))


def image_data(data: bytes) -> str:
    """SHA-256 of a JPEG's image data: everything from the first start-of-scan marker on."""
    pos = 2
    while data[pos + 1] != 0xDA:
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return hashlib.sha256(data[pos:]).hexdigest()


def write_like_an_editor(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".editor-tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


class Library:
    """The photo folder and what the user put in each photo."""

    def __init__(self, root: Path, count: int, rng: random.Random):
        self.root, self.rng = root, rng
        root.mkdir(parents=True)
        self.faces = face_crops()
        self.expected: dict[Path, tuple[str, str]] = {}  # photo -> (image data, description)
        for i in range(count):
            self.put(root / f"photo{i:04d}.jpg", f"user description {i}")
        (root / "broken.jpg").symlink_to(root / "gone.jpg")  # bad inputs the scan must name
        Image.new("RGB", (8, 8)).save(root / "animation.gif")

    def put(self, path: Path, description: str) -> None:
        data = user_photo(self.rng, self.rng.choice(self.faces), description)
        write_like_an_editor(path, data)
        self.expected[path] = (image_data(data), description)

    def edit(self, count: int, tag: str) -> None:
        for path in self.rng.sample(sorted(self.expected), count):
            self.put(path, f"edited {tag}")

    def hashes(self) -> dict[Path, str]:
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in self.expected}

    def temp_files(self) -> list[str]:
        return [n for n in os.listdir(self.root) if is_temp_name(n)]


def scan_command(library: Library, db: Path, models: Path) -> list[str]:
    return [sys.executable, "-c", CLI, "scan", str(library.root), "--db", str(db), "--models", str(models),
            "--rescan-outdated", "--json"]


def run_killed(command: list[str], kind: str, hits: int, delay: float, edit=None) -> tuple[bool, float]:
    """Run a scan and kill it (aimed: at the ``hits``-th pass of the point ``kind``; random: after
    ``delay`` s); return whether it was killed and how long it ran."""
    started = time.perf_counter()
    env = dict(os.environ)
    if kind != "random":
        env[ENV] = f"{kind}:{hits}"
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timer = threading.Timer(delay, child.send_signal, [signal.SIGKILL]) if kind == "random" else None
    if timer:
        timer.start()
    editor = threading.Timer(delay / 2 if kind == "random" else 0.5, edit) if edit else None
    if editor:
        editor.start()
    child.communicate()
    if timer:
        timer.cancel()
    if editor:
        editor.join()  # the edit is complete before the next scan
    return child.returncode == -signal.SIGKILL, time.perf_counter() - started


def check(library: Library, db_path: Path, figures: Figures) -> None:
    """Every photo intact, the user's, and as the index describes it; no temp file; a sound index."""
    db = sqlite3.connect(db_path)
    if db.execute("pragma integrity_check").fetchone()[0] != "ok":
        figures.integrity_errors += 1
    rows = {bytes(r[0]): r[1:] for r in db.execute(
        "select path_key, id, size, mtime_ns, sha256, unconfirmed, model_version, status from photos")}
    for path, (data_hash, description) in library.expected.items():
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                exif = im.getexif()
        except Exception as e:  # noqa: BLE001 - any failure to decode is damage
            figures.damaged += 1
            figures.problems.append(f"{path.name}: does not decode ({e})")
            continue
        if image_data(data) != data_hash:
            figures.image_changed += 1
            figures.problems.append(f"{path.name}: image data changed")
        keywords = tags.read_keywords(path)
        if exif.get(0x010E) != description or not all(k in keywords for k in USER_KEYWORDS):
            figures.tags_lost += 1
            figures.problems.append(f"{path.name}: user tags lost")
        row = rows.get(index.path_key(path))
        st = path.stat()
        record = tags.read_record(path)
        agree = (row is not None and row[6] == "done" and row[4] == 0 and record is not None
                 and (row[1], row[2], row[3]) == (st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest())
                 and record["model"] == row[5])
        if agree:
            ages = [round(a, 1) for (a,) in db.execute(
                "select age from faces where photo_id = ? order by face_index", [row[0]])]
            agree = ages == [f["age"] for f in record["faces"]]
        if not agree:
            figures.disagree += 1
            figures.problems.append(f"{path.name}: file and index disagree")
    db.close()
    left = library.temp_files()
    figures.temp_left += len(left)
    figures.problems += [f"temp file left: {n}" for n in left]


def bad_inputs(work: Path, library: Library, models: Path) -> list[tuple[str, int, int]]:
    """(command, exit code, tracebacks) for the bad inputs of issues 11 and 16."""
    not_sqlite = work / "notes.db"
    not_sqlite.write_text("Shopping list: milk, eggs.\n")
    good = work / "index.db"
    runs = {
        "scan --db (not SQLite)": ["scan", str(library.root), "--db", str(not_sqlite)],
        "query --db (not SQLite)": ["query", "--db", str(not_sqlite)],
        "query --limit 999999999999999999999": ["query", "--limit", "999999999999999999999", "--db", str(good)],
        "query --faces 9223372036854775808": ["query", "--faces", "9223372036854775808", "--db", str(good)],
        "query --age 99999999999999999999-": ["query", "--age", "99999999999999999999-", "--db", str(good)],
        "stats --json > /dev/full": ["stats", "--json", "--db", str(good)],
    } | hostile_reads(work / "hostile", good) | hostile_writes(work / "hostile-writes", models)
    results = []
    for name, args in runs.items():
        with open("/dev/full" if "/dev/full" in name else os.devnull, "w") as out:
            done = subprocess.run([sys.executable, "-c", CLI, *args], stdout=out, stderr=subprocess.PIPE, text=True)
        results.append((name, done.returncode, done.stderr.count("Traceback")))
    return results


def hostile_reads(work: Path, good: Path) -> dict[str, list[str]]:
    """The read-side bad inputs of issue 16, built in ``work``: the commands to run on them."""
    for folder in ("names", "huge", "bomb", "links", "elsewhere", "[2020] trip", "future"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    photo = jpeg_bytes(Image.new("RGB", (320, 240), (90, 120, 150)))
    for name in (b"caf\xe9.jpg", b"x\x1b[2Jy.jpg", b"tab\there.jpg"):
        (work / "names" / os.fsdecode(name)).write_bytes(photo)
    with open(work / "huge" / "not_an_image.jpg", "wb") as f:
        f.truncate(3 << 30)  # sparse
    (work / "bomb" / "scans.jpg").write_bytes(jpeg_scan_bomb(5000))
    (work / "elsewhere" / "far.jpg").write_bytes(photo)
    (work / "links" / "far.jpg").unlink(missing_ok=True)
    (work / "links" / "far.jpg").symlink_to(work / "elsewhere" / "far.jpg")
    (work / "future" / "2300.jpg").write_bytes(photo)
    year_2300 = 10_413_792_000 * 10**9  # ns: past SQLite's 64-bit integers (ext4 keeps times to 2446)
    os.utime(work / "future" / "2300.jpg", ns=(year_2300, year_2300))
    if not (work / "pipe.jpg").exists():
        os.mkfifo(work / "pipe.jpg")  # reading it would wait for a writer forever
    (work / "victim.txt").write_text("not a lock file\n")
    (work / "locked.db.lock").unlink(missing_ok=True)
    (work / "locked.db.lock").symlink_to(work / "victim.txt")
    scan = ["scan", "--db", str(work / "hostile.db")]
    return {
        "scan: INDEX.lock a symbolic link to a user's file": ["scan", str(work / "names"), "--db", str(work / "locked.db")],
        "scan: names not UTF-8, with escapes and tabs": [*scan, str(work / "names")],
        "scan: 3 GB non-image named .jpg (sparse)": [*scan, str(work / "huge")],
        "scan: progressive JPEG of 5000 scans": [*scan, str(work / "bomb")],
        "scan: link to a photo outside the library": [*scan, str(work / "links")],
        "scan: a photo dated 2300": [*scan, str(work / "future")],
        "scan: a FIFO named as a photo": [*scan, str(work / "pipe.jpg")],
        "query --path a folder not UTF-8": ["query", "--path", os.fsdecode(bytes(work / "names") + b"/caf\xe9.jpg"),
                                           "--db", str(work / "hostile.db")],
        "query --path '[2020] trip'": ["query", "--path", str(work / "[2020] trip"), "--db", str(good)],
    }


def hostile_writes(work: Path, models: Path) -> dict[str, list[str]]:
    """The write-side bad inputs of issue 16 (files awkward to write into), built in ``work``: each
    scanned on its own, then all cleaned."""
    runs = {f"scan: {what}": ["scan", str(path), "--db", str(work / "index.db"), "--models", str(models)]
            for what, path in write_hostile_files(work / "photos").items()}
    return runs | {"clean: the files awkward to write into": ["clean", str(work / "photos")]}


def run(photos: int, kills: int, aimed: int, seed: int, work: Path, models: tuple[Path, Path], log=print,
        bad: bool = True) -> Figures:
    """The whole experiment in ``work`` with two model folders; ``bad``: also run the bad inputs."""
    rng = random.Random(seed)
    started = time.perf_counter()
    library = Library(work / "photos", photos, rng)
    db = work / "index.db"
    figures = Figures()
    first = subprocess.run(scan_command(library, db, models[1]), capture_output=True, text=True)
    duration = time.perf_counter() - started
    figures.tracebacks += first.stderr.count("Traceback")
    summary = json.loads(first.stdout)
    figures.writes_next_scans += summary["exif"].get("written", 0)
    skipped = {Path(s["path"]).name for s in summary["skipped"]}
    log(f"first scan: {summary['scanned']} photos, {summary['faces']} faces; "
        f"named as not scanned: {', '.join(sorted(skipped))}")
    check(library, db, figures)
    r = 0
    retry = False  # the last aimed round finished first: aim at the same point's first pass
    while sum(figures.kills.values()) < kills and r < 3 * kills:  # rounds until that many kills happened
        aimed_done = sum(figures.kills.get(p, 0) for p in POINTS)
        kind = POINTS[aimed_done % len(POINTS)] if aimed_done < aimed else "random"
        command = scan_command(library, db, models[r % 2])
        before = library.hashes()
        edit = (lambda r=r: library.edit(2, str(r))) if r % 3 == 2 else None
        hits = 1 if retry else rng.randint(1, photos)
        killed, elapsed = run_killed(command, kind, hits, rng.uniform(0.1, 1.0) * duration, edit)
        retry = not killed and kind != "random"
        figures.edits += 2 if edit else 0
        if killed:
            figures.kills[kind] = figures.kills.get(kind, 0) + 1
        else:
            figures.missed += 1
            duration = elapsed  # a whole rescan: the span random kills are drawn from
        after = library.hashes()
        figures.writes_killed_runs += sum(before[p] != after[p] for p in before)
        figures.temp_after_kill += len(library.temp_files())
        done = subprocess.run(command, capture_output=True, text=True)
        figures.tracebacks += done.stderr.count("Traceback")
        summary = json.loads(done.stdout)
        figures.writes_next_scans += summary["exif"].get("written", 0)
        figures.confirmed += summary["confirmed"]
        check(library, db, figures)
        figures.rounds += 1
        r += 1
        log(f"round {r:2d}: {kind:13s} {'killed' if killed else 'finished first'}; next scan: "
            f"{summary['scanned']} scanned, {summary['exif'].get('written', 0)} written, "
            f"{summary['confirmed']} confirmed, {summary['temp_files_removed']} temp files removed")
    for name, code, tracebacks in bad_inputs(work, library, models[0]) if bad else []:
        figures.tracebacks += tracebacks
        log(f"bad input: {name}: exit code {code}, {tracebacks} tracebacks")
    log(f"time: {time.perf_counter() - started:.0f} s")
    return figures


def report(figures: Figures, photos: int) -> str:
    kills = sum(figures.kills.values())
    aimed = sum(n for k, n in figures.kills.items() if k != "random")
    lines = [
        f"photos: {photos}; rounds: {figures.rounds}; kill -9: {kills} "
        f"({aimed} aimed: " + ", ".join(f"{k} {figures.kills.get(k, 0)}" for k in POINTS)
        + f"; {figures.kills.get('random', 0)} random); finished before the kill: {figures.missed}",
        f"photo writes: {figures.writes_killed_runs + figures.writes_next_scans} "
        f"({figures.writes_killed_runs} in killed runs, {figures.writes_next_scans} in the scans after them); "
        f"photos edited during a scan: {figures.edits}",
        f"temp files on disk right after the kills: {figures.temp_after_kill}; "
        f"rewrites confirmed by the next scan: {figures.confirmed}",
        f"after every next scan: damaged photos {figures.damaged}, image data changed {figures.image_changed}, "
        f"user tags lost {figures.tags_lost}, file and index disagree {figures.disagree}, "
        f"temp files left {figures.temp_left}, index integrity errors {figures.integrity_errors}; "
        f"tracebacks {figures.tracebacks}",
    ]
    lines += [f"  {p}" for p in figures.problems[:20]]
    return "\n".join(lines)
