"""``phototag scan --ray``: the scan on a local Ray cluster started by the tests gives the local
scan's rows and tags, and survives a worker killed with SIGKILL mid-photo."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phototag import faults, tags
from phototag.cli import app
from phototag.atomic import is_temp_name
from phototag.scan import ScanOptions, SilentProgress, scan
from phototag.testing.photos import build_test_folder, face_crops, jpeg_bytes, paste_face, scene

needs_ray = pytest.mark.skipif(__import__("importlib").util.find_spec("ray") is None,
                               reason='needs Ray: pip install "phototag[ray]"')

CLUSTER = {"num_cpus": 2, "object_store_memory": 200 * 1024**2, "include_dashboard": False}


@pytest.fixture
def ray_cluster():
    """A new Ray cluster of 2 CPUs started by this process, shut down after the test."""
    yield from _cluster()


def _cluster(**options):
    import ray

    from phototag.ray_scan import quiet

    ray.init("local", **CLUSTER, logging_level="ERROR", log_to_driver=False, **options)
    quiet()
    try:
        yield ray
    finally:
        ray.shutdown()


def _rows(db_path: Path, root: Path) -> dict:
    """Every photos row and its faces by path below ``root``, without what differs between two
    scans of two copies of a folder (ids, the folder, the time of the scan, the files' inodes and
    ctimes, the people's search cells); a face's person is named by its first face (path, index),
    since two indexes number their people in the order they recorded the faces."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    first_face = {pid: (os.path.relpath(key, os.fsencode(root)), index) for pid, key, index in conn.execute(
        "select f.person_id, min(p.path_key), f.face_index from faces f join photos p on p.id = f.photo_id"
        " where f.person_id is not null group by f.person_id")}
    rows = {}
    for photo in conn.execute("select * from photos order by path"):
        photo = dict(photo)
        faces = [{k: v for k, v in dict(f).items() if k not in ("id", "photo_id", "cell1", "cell2")}
                 | {"person_id": first_face.get(f["person_id"])}
                 for f in conn.execute("select * from faces where photo_id = ? order by face_index", [photo["id"]])]
        key = os.path.relpath(photo.pop("path_key"), os.fsencode(root))
        rows[key] = ({k: v for k, v in photo.items() if k not in ("id", "path", "scanned_at", "inode", "ctime_ns")},
                     faces)
    return rows


def _tags(root: Path) -> dict:
    """phototag's record and keywords in every photo below ``root``, and its sidecars' bytes."""
    found = {}
    for folder, _, names in os.walk(os.fsencode(root)):
        for name in names:
            path = os.path.join(folder, name)
            key = os.path.relpath(path, os.fsencode(root))
            if name.endswith(b".xmp"):
                found[key] = Path(os.fsdecode(path)).read_bytes()
            elif not os.path.islink(path):
                found[key] = (tags.read_record(path), tags.read_keywords(path))
    return found


def _options(root: Path, db: Path, **kwargs) -> ScanOptions:
    """The scan of ``root`` with the shipped models (LiteRT: no TensorFlow in the workers)."""
    return ScanOptions(paths=[os.fsencode(root)], db_path=db, **kwargs)


@needs_ray
def test_ray_scan_gives_the_local_scans_rows_and_tags(tmp_path, ray_cluster):
    """The test library (JPEGs, a PNG that gets a sidecar, a WebP, a non-UTF-8 name, broken files)
    scanned locally and, as a byte-identical copy, on the cluster through the CLI: same rows, faces
    and tags; ``--json`` prints the summary alone (no Ray messages), with the cluster's counts."""
    library = build_test_folder(tmp_path / "local")
    shutil.copytree(library.root, tmp_path / "ray", symlinks=True)
    local = scan(_options(tmp_path / "local", tmp_path / "local.db")).to_dict()
    result = CliRunner().invoke(app, ["scan", str(tmp_path / "ray"), "--db", str(tmp_path / "ray.db"),
                                      "--ray", "auto", "--json"])
    assert result.exit_code == 0, result.output
    on_ray = json.loads(result.stdout)

    assert _rows(tmp_path / "ray.db", tmp_path / "ray") == _rows(tmp_path / "local.db", tmp_path / "local")
    assert _tags(tmp_path / "ray") == _tags(tmp_path / "local")
    same = ("found", "scanned", "faces", "exif", "sidecars", "skipped_counts", "model_version")
    assert {k: on_ray[k] for k in same} == {k: local[k] for k in same}
    assert sorted(f["reason"] for f in on_ray["failed"]) == sorted(f["reason"] for f in local["failed"])
    assert on_ray["scanned"] == len(library.faces) and len(on_ray["failed"]) == len(library.bad)
    assert (on_ray["nodes"], on_ray["engine"]) == (1, "litert") and on_ray["workers"] >= 1
    assert all(on_ray["timings"][stage] > 0 for stage in ("decode", "detect", "chain", "write"))
    again = scan(_options(tmp_path / "ray", tmp_path / "ray.db", ray="auto"))
    again_local = scan(_options(tmp_path / "local", tmp_path / "local.db"))
    assert (again.scanned, again.unchanged) == (again_local.scanned, again_local.unchanged)


def _big_photos(root: Path, count: int) -> list[Path]:
    """``count`` 2400 x 1600 photos of two faces each: long enough to read that a worker can be
    caught at it."""
    import random

    rng = random.Random(3)
    pool = face_crops()
    paths = []
    for i in range(count):
        canvas = scene(2400, 1600, rng)
        for center in ((600, 800), (1700, 700)):
            paste_face(canvas, rng.choice(pool), center, 400, 0.0)
        paths.append(root / f"big_{i:02d}.jpg")
        paths[-1].write_bytes(jpeg_bytes(canvas))
    return paths


def _worker_pids(title: str) -> list[int]:
    """The processes whose title (Ray's ``ray::TASK``) starts with ``title``."""
    pids = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                name = f.read().split(b"\0")[0]
        except OSError:
            continue
        if name.startswith(title.encode()):
            pids.append(int(cmdline.split("/")[2]))
    return pids


def _assert_each_photo_once(root: Path, db: Path, photos: list[Path], summary) -> None:
    rows = _rows(db, root)
    assert sorted(rows) == sorted(os.fsencode(p.name) for p in photos)
    assert all((row["status"], row["exif_status"], row["unconfirmed"], row["face_count"]) == ("done", "written", 0, 2)
               for row, _ in rows.values())
    assert (summary.scanned, summary.exif, summary.failed, summary.changed) == (len(photos), {"written": len(photos)}, [], [])
    for path in photos:  # the tags once in each photo, the file in the index as it is now
        record = tags.read_record(path)
        assert record is not None and len(record["faces"]) == 2
        assert rows[os.fsencode(path.name)][0]["size"] == path.stat().st_size
    assert not [n for n in os.listdir(root) if is_temp_name(n)]


@pytest.mark.slow
@needs_ray
def test_worker_killed_mid_photo_is_retried_and_the_photo_written_once(tmp_path, ray_cluster):
    """kill -9 of the worker reading a photo during the scan: the task runs again elsewhere and
    every photo is scanned, written and recorded exactly once."""
    root = tmp_path / "photos"
    root.mkdir()
    photos = _big_photos(root, 8)
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set() and not killed:
            for pid in _worker_pids("ray::_read_and_detect_task"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.002)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        summary = scan(_options(root, tmp_path / "index.db", ray="auto"))
    finally:
        stop.set()
        thread.join()
    assert killed, "no worker was caught reading a photo"
    _assert_each_photo_once(root, tmp_path / "index.db", photos, summary)


@pytest.mark.slow
@needs_ray
def test_worker_killed_right_after_the_rename_leaves_the_photo_written_once(tmp_path):
    """The writer actor killed just after it renamed a photo in, before it could report: the
    retried task finds the file already rewritten, and the driver confirms the unconfirmed row."""
    root = tmp_path / "photos"
    root.mkdir()
    photos = _big_photos(root, 3)
    flag = tmp_path / "killed"
    env = {faults.ENV: "renamed", faults.ENV_ONCE: str(flag)}
    for _ in _cluster(runtime_env={"env_vars": env}):
        summary = scan(_options(root, tmp_path / "index.db", ray="auto"))
    assert flag.exists(), "no worker was killed"
    _assert_each_photo_once(root, tmp_path / "index.db", photos, summary)


def test_ray_option_without_ray_is_a_one_line_usage_error(tmp_path):
    """``--ray`` when Ray cannot be imported: exit 2, one line naming the pip install."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "from phototag.cli import main\n"
            f"sys.argv = ['phototag', 'scan', {str(tmp_path)!r}, '--db', {str(tmp_path / 'i.db')!r}, '--ray', 'auto']\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).parents[1])
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ['error: phototag scan --ray needs ray: pip install "phototag[ray]"']
    assert not (tmp_path / "i.db").exists()


@needs_ray
def test_a_photo_the_workers_cannot_read_is_failed_and_listed(tmp_path, ray_cluster):
    """A photo gone between the plan and its read task: failed with the reason, recorded, and the
    other photos scanned."""
    library = build_test_folder(tmp_path / "photos")
    gone = tmp_path / "photos" / "2023" / "group.jpg"

    class RemoveOnStart(SilentProgress):
        def start(self, total: int) -> None:
            gone.unlink()

    summary = scan(_options(tmp_path / "photos", tmp_path / "index.db", ray="auto"), RemoveOnStart())
    assert (str(gone), "cannot read: No such file or directory") in summary.failed
    assert (summary.scanned, len(summary.failed)) == (len(library.faces) - 1, len(library.bad) + 1)
    row = _rows(tmp_path / "index.db", tmp_path / "photos")[b"2023/group.jpg"][0]
    assert (row["status"], row["error"]) == ("failed", "cannot read: No such file or directory")


@needs_ray
def test_a_photo_another_phototag_process_holds_is_left_out_and_listed(tmp_path, ray_cluster):
    """A photo whose lock another process holds all along (see phototag.photolock): the workers
    neither read nor write it, it is listed as busy and not recorded; the others are scanned."""
    from phototag.photolock import lock_photo
    from phototag.walk import BUSY

    library = build_test_folder(tmp_path / "photos")
    held = tmp_path / "photos" / "2023" / "tilted.jpg"
    before = held.read_bytes()
    with lock_photo(held):
        summary = scan(_options(tmp_path / "photos", tmp_path / "index.db", ray="auto", lock_wait=0.5))
    assert [(os.fsdecode(k.path), k.reason) for k in summary.skipped if k.reason == BUSY] == [(str(held), BUSY)]
    assert summary.scanned == len(library.faces) - 1 and held.read_bytes() == before
    assert b"2023/tilted.jpg" not in _rows(tmp_path / "index.db", tmp_path / "photos")


@needs_ray
def test_an_address_where_no_cluster_listens_is_a_one_line_error(tmp_path):
    """``--ray HOST:PORT`` with nothing listening there: exit 1 at once, one line, not Ray's minutes
    of retries."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "photo.jpg").write_bytes(b"not a photo")
    result = CliRunner().invoke(app, ["scan", str(tmp_path / "p"), "--db", str(tmp_path / "i.db"),
                                      "--ray", f"127.0.0.1:{port}", "--quiet"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"]


def _turned_library(root: Path) -> Path:
    """Photos whose faces lie on their side or upside down (stored turned, no orientation tag): the
    faces whose landmarks go astray, which the chain finds again on their surroundings turned upright."""
    import random

    root.mkdir()
    rng = random.Random(21)
    pool = face_crops()
    rng.shuffle(pool)
    for turns in (1, 2, 3):
        canvas = scene(900, 500, rng)
        for i in range(2):
            paste_face(canvas, pool[2 * turns + i], (220 + 460 * i, 250), 220)
        (root / f"turned{turns}.jpg").write_bytes(jpeg_bytes(canvas.rotate(90 * turns, expand=True)))
    return root


@needs_ray
def test_a_face_gets_one_answer_alone_in_a_folder_and_on_ray(tmp_path, ray_cluster):
    """Turned photos (faces whose landmarks go astray) scanned in one folder locally, one by one
    locally, and on the cluster: the same faces, rotations, genders, ages and identity embeddings
    of each face alone (the folder's scans also give the same people's corrections: the rows test)."""
    folder = _turned_library(tmp_path / "local")
    shutil.copytree(folder, tmp_path / "ray")
    shutil.copytree(folder, tmp_path / "alone")
    scan(_options(tmp_path / "local", tmp_path / "local.db", exif=False))
    for photo in sorted((tmp_path / "alone").iterdir()):
        scan(ScanOptions(paths=[os.fsencode(photo)], db_path=tmp_path / "alone.db", exif=False))
    scan(_options(tmp_path / "ray", tmp_path / "ray.db", exif=False, ray="auto"))

    def faces(db: Path, root: Path) -> dict:  # each face alone (one by one, its person has fewer photos)
        return {path: [(f["rotation"], f["face_gender"], f["face_p_female"], f["face_age"], f["x"], f["embedding"])
                       for f in found] for path, (_, found) in _rows(db, root).items()}

    local = faces(tmp_path / "local.db", tmp_path / "local")
    assert sum(len(f) for f in local.values()) >= 4
    assert faces(tmp_path / "alone.db", tmp_path / "alone") == local
    assert faces(tmp_path / "ray.db", tmp_path / "ray") == local
