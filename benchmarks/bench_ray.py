"""Benchmark ``phototag scan --ray``: a local Ray cluster of 1 and 2 CPUs against the local scan,
the driver's index writer alone, and a written model of an N-node cluster.

- Photos: ``camera`` photos of ``bench_scan.py`` (3000 x 2000 JPEGs, 0-5 faces; CPU-bound), copied
  afresh for every run so that each run writes the tags into the same files.
- Local scan: in this process, pinned to 1 core and then to 2 cores.
- Ray: ``ray start --head --num-cpus N --block`` pinned (``taskset``) to N cores, N = 1, 2; the scan
  connects to it (``--ray 127.0.0.1:PORT``) from this process, the driver. The cluster is stopped
  by signalling the process group it was started in (never ``ray stop``, which would stop every
  Ray on the machine).
- For each: photos/s and CPU seconds per photo of every process involved (this one and the
  cluster's), as the difference between a scan of the full set and one of its first 4 photos, so
  that start-up costs (the cluster's workers, the models) are left out; the CPU seconds hold when
  the machine is shared, the photos/s do not. The idle cluster's own CPU use (raylet, GCS...,
  watched for 10 s after the warm-up scan) is also given per photo; the model leaves it out.
- Index writer: ``IndexWriter`` alone recording photos of 3 faces the way the Ray driver does
  (unconfirmed, then confirmed), in transactions of ``--batch`` photos and one per photo.
- Model: photos/s of N nodes = min(N x cores / CPU-seconds per photo, storage rate / bytes moved per
  photo, index writer rate), with the numbers measured here and the assumptions printed.

Not a test; run it as

    nice python benchmarks/bench_ray.py                 # 40 photos, clusters of 1 and 2 CPUs
    python benchmarks/bench_ray.py --photos 12 --cpus 1 --index-photos 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parent)]

from bench_scan import generate  # noqa: E402

from phototag import index  # noqa: E402
from phototag.atomic import Written  # noqa: E402
from phototag.records import Face, PhotoInfo  # noqa: E402
from phototag.scan import ScanOptions, scan  # noqa: E402

RAY = Path(sys.executable).with_name("ray")
WARM_UP = 4  # photos of the small set (see marginal)
IDLE_S = 10  # seconds the idle cluster is watched for its own CPU use
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


class TreeCPU:
    """User + system CPU seconds of a process and all its descendants, the ones that have exited
    included: a thread samples /proc every ``period`` seconds and keeps each process's last figure
    (a process's last ``period`` before it exits is lost)."""

    def __init__(self, root: int, period: float = 0.2):
        self.root, self.period = root, period
        self.last: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def seconds(self) -> float:
        self._sample()
        return sum(self.last.values())

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(self.period):
            self._sample()

    def _sample(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        procs = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError):
                    with open(f"/proc/{entry}/stat") as f:
                        text = f.read()
                    fields = text[text.rindex(")") + 2:].split()
                    procs[int(entry)] = (int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / tick)
        for pid, (_, started, seconds) in procs.items():
            p = pid
            while p in procs and p != self.root:
                p = procs[p][0]
            if p == self.root:
                self.last[(pid, started)] = seconds


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def cluster(cpus: int):
    """A head node of ``cpus`` CPUs pinned to as many cores; yields (address, its process id)."""
    port = free_port()
    cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cpus])
    head = subprocess.Popen(["taskset", "-c", cores, str(RAY), "start", "--head", "--num-cpus", str(cpus),
                             "--port", str(port), "--block", "--disable-usage-stats", "--include-dashboard=false"],
                            env=os.environ | ENV | {"PYTHONPATH": str(Path(__file__).parents[1])},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 180
        while subprocess.run([str(RAY), "status", "--address", address], env=os.environ | ENV,
                             capture_output=True).returncode != 0:
            if time.time() > deadline or head.poll() is not None:
                raise RuntimeError("the Ray head did not start")
            time.sleep(2)
        yield address, head.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=300)
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # what `ray stop` would remove
        with contextlib.suppress(OSError):
            if current.read_text().strip().endswith(f":{port}"):
                current.unlink()


def scan_copy(source: Path, work: Path, ray: str | None = None) -> dict:
    """Scan a fresh copy of ``source``: the summary's numbers and the photo stage's seconds."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    summary = scan(ScanOptions(paths=[os.fsencode(work)], db_path=work / "index.db", ray=ray))
    t = summary.timings
    return {"photos": summary.scanned, "failed": len(summary.failed), "stage_s": t.total - t.startup - t.walk,
            "startup_s": t.startup, "workers": summary.workers, "timings": {k: round(v, 2) for k, v in vars(t).items()}}


def marginal(sources: tuple[Path, Path], work: Path, cpu, ray: str | None = None, warm_up: bool = True) -> dict:
    """Scan the small set (once to warm up), then again, then the full one; photos/s and CPU seconds
    per photo of the photos the full set has more (the costs of a scan's start taken out)."""
    if warm_up:  # the cluster's workers start, the files are in the page cache
        scan_copy(sources[0], work, ray)
    runs = []
    for source in sources:
        before = cpu()
        runs.append(scan_copy(source, work, ray) | {"cpu_s": -before})
        runs[-1]["cpu_s"] += cpu()
    small, full = runs
    photos = full["photos"] - small["photos"]
    return full | {"photos_per_s": photos / (full["stage_s"] - small["stage_s"]),
                   "photos_per_s_whole": full["photos"] / full["stage_s"],
                   "cpu_s_per_photo": (full["cpu_s"] - small["cpu_s"]) / photos}


def run_local(sources: tuple[Path, Path], work: Path, cores: int) -> dict:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(before)[:cores])
    try:
        return marginal(sources, work, self_cpu) | {"run": f"local scan, {cores} core(s)"}
    finally:
        os.sched_setaffinity(0, before)


def run_ray(sources: tuple[Path, Path], work: Path, cpus: int) -> dict:
    os.environ.update(ENV)
    with cluster(cpus) as (address, head):
        tree = TreeCPU(head)
        try:
            scan_copy(sources[0], work, address)  # warm-up, then the cluster at rest
            idle = tree.seconds()
            time.sleep(IDLE_S)
            idle = (tree.seconds() - idle) / IDLE_S  # cores the idle cluster's own processes use
            result = marginal(sources, work, lambda: self_cpu() + tree.seconds(), ray=address, warm_up=False)
        finally:
            tree.close()
    return result | {"idle_cores": idle, "cpu_s_per_photo_net": result["cpu_s_per_photo"] - idle / result["photos_per_s"]} | {"run": f"ray, {cpus} CPU(s)"}


def index_writer(photos: int, batch: int) -> dict:
    """Photos/s (wall and per CPU second) of the driver's index writes alone, 3 faces per photo."""
    info = PhotoInfo(3000, 2000, 3000, 2000, 1, "2024-06-01T12:00:00", "JPEG")
    marks = {k: (100.0, 100.0) for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")}
    faces = [Face(box=(10.0 * i, 20.0, 300.0, 300.0), landmarks=marks, confidence=0.9, rotation=0.0,
                  gender="female", p_female=0.8, age=31.0) for i in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        writer = index.IndexWriter(index.open_index(Path(tmp) / "index.db"), "bench")
        t, cpu = time.perf_counter(), time.process_time()
        for start in range(0, photos, batch):
            paths = [f"/photos/{i:08d}.jpg".encode() for i in range(start, min(photos, start + batch))]
            with writer.transaction():
                for path in paths:
                    writer.record_unconfirmed(path, Written(1_300_000, 1, 1, "ab" * 32), info, faces)
            with writer.transaction():
                for path in paths:
                    writer.confirm(path)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"batch": batch, "photos_per_s": photos / wall, "photos_per_cpu_s": photos / cpu}


def model(cpu_s_per_photo: float, photo_bytes: float, index_rate: float, cores: int, storage_mb_s: float) -> list:
    """photos/s of N nodes of ``cores`` cores: CPU-bound until the storage or the index writer binds."""
    moved = 3 * photo_bytes  # read by the read task, read again and written by the write task
    rows = []
    for nodes in (1, 2, 4, 8, 16, 32, 64, 128):
        compute = nodes * cores / cpu_s_per_photo
        storage = storage_mb_s * 1e6 / moved
        rate = min(compute, storage, index_rate)
        bound = "CPU" if rate == compute else "storage" if rate == storage else "index writer"
        rows.append({"nodes": nodes, "photos_per_s": rate, "bound": bound,
                     "days_for_10M": 10_000_000 / rate / 86400})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--cpus", default="1,2", help="cluster sizes to run (CPUs of the head node)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "phototag-bench")
    parser.add_argument("--index-photos", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=64, help="photos per index transaction")
    parser.add_argument("--node-cores", type=int, default=16, help="model: cores per node")
    parser.add_argument("--storage-mb-s", type=float, default=1000.0, help="model: the storage's read+write rate")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    source = args.folder / f"camera-{args.photos}"
    generate(source, "camera", args.photos)
    photo_bytes = sum(p.stat().st_size for p in source.glob("*.jpg")) / args.photos
    results = {"machine": f"{os.cpu_count()} cores, {load()} at the start", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small"
        small.mkdir()
        for photo in sorted(source.glob("*.jpg"))[:WARM_UP]:
            shutil.copy2(photo, small)
        sources, work = (small, source), Path(tmp) / "photos"
        runs = [lambda: run_local(sources, work, 1), lambda: run_local(sources, work, 2)]
        runs += [lambda n=int(n): run_ray(sources, work, n) for n in args.cpus.split(",")]
        for run in runs:
            before = load()
            r = run() | {"load": f"{before} -> {load()}"}
            results["runs"].append(r)
            idle = (f", of which the idle cluster {(r['cpu_s_per_photo'] - r['cpu_s_per_photo_net']) * 1000:.0f}"
                    if "idle_cores" in r else "")
            print(f"{r['run']:22s} {r['photos_per_s']:5.2f} photos/s  {r['cpu_s_per_photo'] * 1000:4.0f} ms CPU/photo{idle}"
                  f"  (start-up {r['startup_s']:4.1f} s, workers {r['workers']}; {r['load']})\n"
                  f"{'':23s}the whole scan of {r['photos']} photos: {r['photos_per_s_whole']:.2f} photos/s, "
                  f"{r['timings']}", flush=True)
    for batch in (1, args.batch):
        r = index_writer(args.index_photos, batch)
        results.setdefault("index_writer", []).append(r)
        print(f"index writer, {batch:3d} photo(s)/transaction: {r['photos_per_s']:6.0f} photos/s, "
              f"{r['photos_per_cpu_s']:6.0f} per CPU second ({load()})", flush=True)
    ray_runs = [r for r in results["runs"] if r["run"].startswith("ray")]
    if ray_runs:
        cpu = min(r["cpu_s_per_photo_net"] for r in ray_runs)
        index_rate = results["index_writer"][-1]["photos_per_cpu_s"]
        results["model"] = model(cpu, photo_bytes, index_rate, args.node_cores, args.storage_mb_s)
        print(f"model: {cpu * 1000:.0f} ms CPU per photo, {photo_bytes / 1e6:.2f} MB per photo moved 3 times, "
              f"storage {args.storage_mb_s:g} MB/s, index writer {index_rate:.0f} photos/s, "
              f"{args.node_cores} cores per node")
        for row in results["model"]:
            print(f"  {row['nodes']:4d} nodes: {row['photos_per_s']:7.0f} photos/s ({row['bound']}), "
                  f"10 M photos in {row['days_for_10M']:.2f} days")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
