"""``phototag scan --ray ADDRESS``: the scan's stages arranged over a Ray cluster.

The same stages as the local scan (:mod:`phototag.scan`), placed differently:

- the planner, the progress and every index write run in this process, the driver;
- reading, hashing, decoding and detection run as CPU tasks (``_read_and_detect``), one photo each,
  in any worker of any node; the decoded pixels stay in that node's object store;
- the chain runs in a pool of actors that load the models and the detector once (``_ChainActor``): one per GPU where the
  cluster has GPUs (Keras), else one per four CPUs of each node (LiteRT), fed batches of faces from
  the photos read on their node;
- the tags are written on the node that read the photo (the photos are on storage every node
  mounts at the same path) by that node's writer actor (``_WriterActor``, in threads) with the local
  :class:`~phototag.writer.PhotoWriter`. Its index side reaches the driver through ``_IndexRelay``:
  the row of a rewritten file is recorded unconfirmed by the driver (batched with the other photos'
  in one transaction) before the worker renames the file in; the confirmation (or the row of a file
  not rewritten) comes back with the task's result and is recorded in the next batch.

Faults: Ray retries a task whose worker died (``max_retries``) and restarts a dead actor, retrying
its calls (``max_task_retries``); a retried write starts again from the file as read, so a photo is renamed in
once (a retry that finds the rename done is confirmed, as the next scan would do). A photo whose
task fails for good is recorded as failed and the run goes on. When the driver dies, the cluster
drops its tasks; the next scan (local or Ray) resumes from the index as after a killed local scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field

from . import atomic
from .photolock import PhotoBusy, lock_photo
from .pipeline import MAX_BATCH_PIXELS, Photo, PhotoJob, batch_holds, chain_faces, detect_faces, read_photo
from .plan import file_sha256
from .records import Face
from .local_scan import LocalScan
from .options import ScanOptions
from .writer import PhotoWriter, WriteReport

CPUS_PER_CHAIN = 4  # CPU nodes: one chain actor per this many CPUs (the chain is about a quarter of the work)
IN_FLIGHT_PER_CPU = 2  # read tasks submitted at a time, per CPU of the cluster
CHAIN_CALLS_PER_ACTOR = 2  # batches queued on a chain actor (one running, one waiting)
TASK_RETRIES = 3  # tries of a photo's task after its worker died
CONNECT_TIMEOUT = 10  # seconds to wait for the head's port to answer
WRITE_THREADS = 8  # photos written at a time by a node's writer actor


class ClusterUnreachable(RuntimeError):
    """Nothing answers at the Ray cluster's address."""


def connect(address: str, verbose: bool = False) -> bool:
    """Connect to the Ray cluster at ``address`` (as ``ray.init`` takes it: ``host:port``, ``ray://...``,
    ``auto`` or ``local``) unless this process is connected already; True when this call connected.
    Ray's own log lines (start-up, a worker's death) are kept off the terminal unless ``verbose``.
    A ``host:port`` where nothing listens raises ClusterUnreachable at once (Ray would retry for minutes)."""
    import ray

    if ray.is_initialized():
        return False
    host, colon, port = address.rpartition(":")
    if colon and "://" not in address and port.isdigit():
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
        except OSError as e:
            raise ClusterUnreachable(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=address, logging_level=logging.INFO if verbose else logging.ERROR, log_to_driver=verbose)
    quiet(verbose)
    return True


def quiet(verbose: bool = False) -> None:
    """Keep the cluster's messages to the driver (such as "A worker died...", coloured, on stdout)
    out of phototag's output unless ``verbose``; Ray has no public switch for them."""
    import ray._private.worker

    ray._private.worker._worker_logs_enabled = verbose


@dataclass
class _Read:
    """A photo read and detected by a task (its pixels travel separately, by reference)."""

    photo: Photo
    nbytes: int
    node: str
    worker: tuple[str, int]
    seconds: dict[str, float]


@dataclass
class _Written:
    """What a write did: the writer's report and the index write that follows the rename."""

    report: WriteReport | None  # None: another phototag process held the photo (busy)
    after: tuple  # ("confirm",), ("read", exif_status), or () (nothing: busy, changed or replaced)
    worker: tuple[str, int]
    seconds: float


@dataclass
class _Batch:
    """Photos of one node waiting for the chain."""

    photos: list[_Read] = field(default_factory=list)
    pixels: list = field(default_factory=list)  # object refs, one per photo
    faces: int = 0
    nbytes: int = 0


_detectors: dict = {}  # per worker process: the detector of each option set, built once


def _read_and_detect_task(job: PhotoJob, options: ScanOptions, lock_wait: float) -> tuple[_Read, object]:
    """Read, hash, decode and detect one photo (a CPU task), holding its photo lock while reading
    (``busy`` when another phototag process holds it longer than ``lock_wait`` seconds); (the photo
    without pixels, the pixels)."""
    import ray

    from . import detectors
    from .runtime import native_output_hidden

    context = ray.get_runtime_context()
    t = time.perf_counter()
    try:
        with lock_photo(job.path, wait=lock_wait):
            photo = read_photo(job, options.decode_size, options.max_pixels)
    except PhotoBusy:
        photo = Photo(job, job.stat, busy=True)
    except OSError:  # gone or unreadable: reading it says why
        photo = read_photo(job, options.decode_size, options.max_pixels)
    seconds = {"decode": time.perf_counter() - t}
    if not (photo.error or photo.busy):
        key = (options.detector, options.min_face, options.min_confidence, options.detect_size, options.any_angle)
        if key not in _detectors:
            with native_output_hidden(not options.verbose):
                _detectors[key] = detectors.create(*key)
        t = time.perf_counter()
        detect_faces(_detectors[key], photo)
        seconds["detect"] = time.perf_counter() - t
    pixels, photo.pixels = photo.pixels, None
    nbytes = pixels.nbytes if pixels is not None else 0
    return _Read(photo, nbytes, context.get_node_id(), (context.get_node_id(), os.getpid()), seconds), pixels


class _ChainActor:
    """The face chain, loaded once per actor (LiteRT on a CPU, Keras on its GPU), with the detector of
    the options: the chain finds a face whose landmarks went astray again on its surroundings
    turned upright, as the local scan's does (without it, such faces were framed by their box)."""

    def __init__(self, options: ScanOptions):
        self.analyzer = options.analyzer()

    def describe(self) -> tuple[str, str, str, str]:
        """(engine, device, words for people, this actor's node)."""
        import ray

        models = self.analyzer.chain.models
        return models.engine, models.device, models.describe(), ray.get_runtime_context().get_node_id()

    def predict(self, photos: list[Photo], *pixels) -> tuple[list[list[Face]], float]:
        """The faces of a batch of photos (with their pixels) and the seconds it took."""
        t = time.perf_counter()
        for photo, rgb in zip(photos, pixels):
            photo.pixels = rgb
        return chain_faces(self.analyzer, photos), time.perf_counter() - t


class _IndexRelay:
    """Carries the one index write a worker must wait for, ``record_unconfirmed``, to the driver:
    the worker's call returns once the driver has the row in the index (``take``, then ``done``)."""

    def __init__(self):
        self.waiting: dict[str, asyncio.Event] = {}
        self.requests: dict[str, tuple] = {}
        self.arrived = asyncio.Event()

    async def record_unconfirmed(self, request_id: str, request: tuple) -> None:
        done = self.waiting[request_id] = asyncio.Event()
        self.requests[request_id] = request
        self.arrived.set()
        await done.wait()
        del self.waiting[request_id]

    async def take(self) -> list[tuple[str, tuple]]:
        """The requests not taken yet (waits for one, or for ``close``)."""
        await self.arrived.wait()
        self.arrived.clear()
        taken, self.requests = list(self.requests.items()), {}
        return taken

    def close(self) -> None:
        """End the standing ``take``."""
        self.arrived.set()

    def done(self, request_ids: list[str]) -> None:
        for request_id in request_ids:
            if request_id in self.waiting:
                self.waiting[request_id].set()


class _RelayedRecorder:
    """The index side of the write protocol on a worker (see :class:`phototag.writer.PhotoRecorder`):
    the unconfirmed row is recorded by the driver before the rename; what follows the rename is kept
    for the task's result."""

    def __init__(self, relay):
        self.relay = relay
        self.after: tuple = ()

    def record_unconfirmed(self, path, file, info, faces) -> None:
        import ray

        request_id = uuid.uuid4().hex  # this try's own: a retried task waits for its own row
        ray.get(self.relay.record_unconfirmed.remote(request_id, (path, file, info, faces)))

    def confirm(self, path) -> None:
        self.after = ("confirm",)

    def record_read(self, path, file, info, faces, exif_status: str) -> None:
        self.after = ("read", exif_status)


class _WriterActor:
    """Writes photos' tags on its node, in threads (a write mostly waits for the file system and for
    the driver's unconfirmed row; a blocked task would make Ray start more worker processes)."""

    def __init__(self, writer: PhotoWriter, relay: str):
        import ray

        self.writer = writer
        self.relay = ray.get_actor(relay)  # by name: an actor handle argument would not survive a restart

    def write(self, photo: Photo, faces: list[Face], lock_wait: float) -> _Written:
        """Write with the photo's lock held (``busy`` when another phototag process holds it longer
        than ``lock_wait`` seconds); the lock taken by the read is gone, so the writer's check that
        the file is still the one read covers the time between."""
        import ray

        t = time.perf_counter()
        recorder = _RelayedRecorder(self.relay)
        node = ray.get_runtime_context().get_node_id()
        try:
            with lock_photo(photo.path, wait=lock_wait):
                report = self.writer.write(photo.path, photo.read, photo.info, faces, recorder)
        except PhotoBusy:
            return _Written(None, (), (node, os.getpid()), time.perf_counter() - t)
        except OSError:  # gone meanwhile: the writer says so
            report = self.writer.write(photo.path, photo.read, photo.info, faces, recorder)
        return _Written(report, recorder.after, (node, os.getpid()), time.perf_counter() - t)


class RayScan(LocalScan):
    """The stages arranged over a Ray cluster (see the module's description); the plan, the order of
    the passes and the end of the scan are the local scan's. An analyzer given to ``scan()`` is not
    used: each chain actor loads the models of the options, each worker their detector."""

    def run(self) -> None:
        self.connected = False
        self.actors: list = []
        self.writers: dict[str, object] = {}  # node -> its writer actor
        try:
            super().run()
        finally:
            self._disconnect()

    def _start_analyzer(self) -> None:
        """Connect, and start the chain actors and the relay (instead of loading the models here)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        t = time.perf_counter()
        opts = self.options
        self.connected = connect(opts.ray, opts.verbose)
        self.read_task = ray.remote(num_cpus=1, num_returns=2, max_retries=TASK_RETRIES)(_read_and_detect_task)
        here = ray.get_runtime_context().get_node_id()
        relay = f"phototag-relay-{uuid.uuid4().hex}"
        self.relay = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(_IndexRelay).options(
            name=relay, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote()
        nodes = [n for n in ray.nodes() if n["Alive"]]
        self.cpus = sum(n["Resources"].get("CPU", 0) for n in nodes)
        chain = ray.remote(max_restarts=-1, max_task_retries=TASK_RETRIES)(_ChainActor)
        writer = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=TASK_RETRIES)(_WriterActor)
        for node in nodes:
            gpus, cpus = int(node["Resources"].get("GPU", 0)), node["Resources"].get("CPU", 0)
            count, resources = (gpus, {"num_gpus": 1, "num_cpus": 0}) if gpus else (
                max(1, round(cpus / CPUS_PER_CHAIN)) if cpus else 0, {"num_cpus": 0})
            place = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            self.actors += [chain.options(scheduling_strategy=place, **resources).remote(opts)
                            for _ in range(count)]
            if cpus:
                self.writers[node["NodeID"]] = writer.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=True),
                    max_concurrency=WRITE_THREADS).remote(self.writer, relay)
        if not self.actors:
            raise RuntimeError(f"the Ray cluster at {opts.ray} has no CPU nor GPU to run the models on")
        described = ray.get([actor.describe.remote() for actor in self.actors])
        self.actor_nodes = [node for *_, node in described]
        engine, device, words, _ = described[0]
        self.summary.detector, self.summary.engine = opts.detector, engine
        self.summary.device = device if len({d[1] for d in described}) == 1 else "mixed"
        self.summary.nodes = len(nodes)
        self.workers: set[tuple[str, int]] = set()  # (node, process) of the tasks' workers
        self.options_ref = ray.put(opts)
        self.take = self.relay.take.remote()  # the driver's standing request for unconfirmed rows
        self.progress.note(f"Ray: {len(nodes)} node(s), {self.cpus:g} CPU(s), {len(self.actors)} chain actor(s); "
                           f"detector {opts.detector}; models {words}")
        self.timings.startup += time.perf_counter() - t

    def saw(self, worker: tuple[str, int]) -> None:
        """A worker process (node, process id) that ran a photo's read or write."""
        self.workers.add(worker)
        self.summary.workers = len(self.workers)

    def _disconnect(self) -> None:
        """Stop the actors this scan started, and leave the cluster if the scan joined it."""
        if self.actors:
            import ray

            with contextlib.suppress(ray.exceptions.RayError):  # the driver's standing take ends first
                ray.get(self.relay.close.remote())
                ray.get(self.take)
            for actor in self.actors + list(self.writers.values()) + [self.relay]:
                ray.kill(actor)
        if self.connected:
            import ray

            ray.shutdown()

    def _scan_photos(self, jobs: list[PhotoJob], _chain_thread=None) -> None:
        if jobs:
            _Run(self, jobs).run()


class _Run:
    """One pass over photos on the cluster: the driver's event loop over the tasks' results."""

    def __init__(self, scan: RayScan, jobs: list[PhotoJob]):
        self.scan = scan
        self.jobs = deque(jobs)
        self.kind: dict = {}  # in-flight object ref -> (stage, what it is about)
        self.batches: dict[str | None, _Batch] = defaultdict(_Batch)  # by node (None: any actor)
        self.chain_calls = [0] * len(scan.actors)
        self.writes: deque[tuple[_Read, list[Face]]] = deque()  # chained, waiting for their writer
        self.reading = self.writing = 0  # read tasks and writes in flight
        self.unconfirmed: dict[bytes, tuple] = {}  # recorded unconfirmed, not yet confirmed: path -> request
        self.index_ops: list = []  # index writes to make in the next transaction
        self.folders: set[bytes] = set()
        self.kind[scan.take] = ("take", None)
        self.read_limit = max(2, int(scan.cpus * IN_FLIGHT_PER_CPU))
        self.write_limit = WRITE_THREADS * len(scan.writers)

    def run(self) -> None:
        import ray

        scan = self.scan
        try:
            while self.jobs or len(self.kind) > 1 or self.writes or any(b.photos for b in self.batches.values()):
                self._submit()
                t = time.perf_counter()
                ready, _ = ray.wait(list(self.kind), num_returns=1, timeout=1.0)
                if ready:  # and whatever else is done, so that their index writes share a transaction
                    ready, _ = ray.wait(list(self.kind), num_returns=len(self.kind), timeout=0)
                scan.timings.waiting += time.perf_counter() - t
                for ref in ready:
                    stage, about = self.kind.pop(ref)
                    getattr(self, f"_on_{stage}")(ref, about)
                self._apply_index_ops()
        except BaseException:  # Ctrl-C or an error: stop the read tasks (the actors go with the scan)
            for ref, (stage, _) in self.kind.items():
                if stage == "read":
                    ray.cancel(ref, force=True)
            raise
        for folder in sorted(self.folders):  # temporary files of writes whose worker was killed
            scan.summary.temp_files_removed += atomic.remove_stale_temps(folder)

    def _submit(self) -> None:
        """Start writes, chain batches and read tasks, as far as the limits allow."""
        scan = self.scan
        while self.writes and self.writing < self.write_limit:
            read, faces = self.writes.popleft()
            writer = scan.writers.get(read.node) or next(iter(scan.writers.values()))
            ref = writer.write.remote(read.photo, faces, self._lock_wait())
            self.kind[ref] = ("write", (read, faces))
            self.writing += 1
        for node, batch in list(self.batches.items()):
            if batch.photos and (batch_holds(batch.faces, batch.nbytes, scan.options.batch_size) or not self.reading):
                if self._send_batch(node, batch):
                    del self.batches[node]
        waiting = sum(b.nbytes for b in self.batches.values())
        while self.jobs and self.reading < self.read_limit and waiting < MAX_BATCH_PIXELS * len(scan.actors):
            job = self.jobs.popleft()
            meta, pixels = scan.read_task.remote(job, scan.options_ref, self._lock_wait())
            self.kind[meta] = ("read", (job, pixels))
            self.reading += 1

    def _lock_wait(self) -> float:
        """Seconds a task may wait for a photo another phototag process holds (the local scan's rule)."""
        return max(0.0, self.scan.lock_deadline - time.monotonic())

    def _send_batch(self, node: str | None, batch: _Batch) -> bool:
        """Give a batch to the least busy chain actor of its node; False when all are busy."""
        scan = self.scan
        candidates = [i for i, n in enumerate(scan.actor_nodes) if node is None or n == node]
        i = min(candidates, key=lambda i: self.chain_calls[i])
        if self.chain_calls[i] >= CHAIN_CALLS_PER_ACTOR:
            return False
        ref = scan.actors[i].predict.remote([r.photo for r in batch.photos], *batch.pixels)
        self.kind[ref] = ("chain", (i, batch))
        self.chain_calls[i] += 1
        return True

    def _on_take(self, ref, _about) -> None:
        import ray

        for request_id, (path, file, info, faces) in ray.get(ref):
            self.index_ops.append(("unconfirmed", request_id, path, file, info, faces))
        self.scan.take = self.scan.relay.take.remote()
        self.kind[self.scan.take] = ("take", None)

    def _on_read(self, ref, about) -> None:
        job, pixels = about
        self.reading -= 1
        scan = self.scan
        try:
            read = _result(ref)
        except _Lost as e:
            scan.index.record_failure(job.path, job.stat, f"cannot scan: {e}")
            scan.summary.count_failure(job.path, f"cannot scan: {e}")
            scan.progress.advance(0)
            return
        photo = read.photo
        scan.saw(read.worker)
        scan.timings.decode += read.seconds["decode"]
        scan.timings.detect += read.seconds.get("detect", 0.0)
        if photo.busy:
            scan.busy.append(photo.job)
            scan.progress.more(-1)  # for now: the pass for busy photos adds it back
        elif photo.too_large:
            scan.summary.count_too_large(photo.path, photo.error)
            scan.progress.more(-1)
        elif photo.error:
            scan._record_failure(photo)
        if photo.error or photo.busy:
            return
        if not photo.detections:
            self.writes.append((read, []))
            return
        batch = self.batches[read.node if read.node in scan.actor_nodes else None]
        batch.photos.append(read)
        batch.pixels.append(pixels)
        batch.faces += len(photo.detections)
        batch.nbytes += read.nbytes

    def _on_chain(self, ref, about) -> None:
        i, batch = about
        self.chain_calls[i] -= 1
        scan = self.scan
        try:
            faces_per_photo, seconds = _result(ref)
        except _Lost as e:
            for read in batch.photos:
                scan.index.record_failure(read.photo.path, read.photo.stat, f"cannot scan: {e}")
                scan.summary.count_failure(read.photo.path, f"cannot scan: {e}")
                scan.progress.advance(0)
            return
        scan.timings.chain += seconds
        self.writes.extend(zip(batch.photos, faces_per_photo))

    def _on_write(self, ref, about) -> None:
        read, faces = about
        self.writing -= 1
        scan = self.scan
        photo = read.photo
        self.folders.add(os.path.dirname(os.path.realpath(photo.path)))
        try:
            written = _result(ref)
        except _Lost as e:
            self.unconfirmed.pop(photo.path, None)
            self.index_ops.append(("failed", photo, f"cannot write: {e}"))
            return
        scan.saw(written.worker)
        scan.timings.write += written.seconds
        report = written.report
        if report is None:
            scan.busy.append(photo.job)
            scan.progress.more(-1)
            return
        if report.changed and photo.path in self.unconfirmed and self._renamed_by_earlier_try(photo.path):
            report.exif, written.after = "written", ("confirm",)  # the task's first try renamed it, then died
            if scan.options.wants_sidecar(report.exif):
                report.sidecar, report.sidecar_reason = scan.writer.write_sidecar(
                    photo.path, faces, photo.info, scan.writer.version)
        if report.changed:
            scan.progress.more(-1)  # not recorded; read once more in the last pass
            if photo.job.retried:
                scan.summary.count_changed(photo.path)
            else:
                scan.retry.append(photo.job)
            return
        self.index_ops.append(("written", photo, faces, report, written.after))

    def _renamed_by_earlier_try(self, path: bytes) -> bool:
        """Whether ``path`` is the file recorded unconfirmed for it (rename done, confirmation lost)."""
        file = self.unconfirmed[path][1]
        try:
            return os.stat(path).st_size == file.size and file_sha256(path) == file.sha256
        except OSError:
            return False

    def _apply_index_ops(self) -> None:
        """Make the index writes gathered since the last call, in one transaction; then let the
        workers waiting for their unconfirmed rows rename."""
        if not self.index_ops:
            return
        scan = self.scan
        ops, self.index_ops = self.index_ops, []
        acknowledged, recorded = [], []  # recorded: faces of each photo whose row this transaction commits
        with scan.interrupts.hold(), scan.index.transaction():
            for op in ops:
                if op[0] == "unconfirmed":
                    _, request_id, path, file, info, faces = op
                    scan.index.record_unconfirmed(path, file, info, faces)
                    self.unconfirmed[path] = (request_id, file)
                    acknowledged.append(request_id)
                elif op[0] == "failed":
                    _, photo, error = op
                    scan.index.record_failure(photo.path, photo.stat, error)
                    scan.summary.count_failure(photo.path, error)
                    recorded.append(0)
                else:
                    _, photo, faces, report, after = op
                    if after == ("confirm",):
                        scan.index.confirm(photo.path)
                    elif after:
                        scan.index.record_read(photo.path, photo.read, photo.info, faces, after[1])
                    self.unconfirmed.pop(photo.path, None)  # after == (): replaced, the row left unconfirmed
                    scan.summary.count_written(report)
                    recorded.append(len(faces))
        for faces in recorded:
            scan.progress.advance(faces)
        if acknowledged:
            scan.relay.done.remote(acknowledged)


class _Lost(Exception):
    """A photo's task failed for good for a reason of the cluster (its worker or node died)."""


def _result(ref):
    """The task's result; a failure of the cluster raises _Lost, the task's own exception itself."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        raise e.as_instanceof_cause() from None
    except ray.exceptions.RayError as e:
        raise _Lost(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
