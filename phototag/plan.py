"""The scan's planner (runs where the index is): walk the paths and compare each file with the
index, giving the photos to scan as picklable :class:`~phototag.pipeline.PhotoJob` s and the
bookkeeping the end of the scan needs (:class:`Plan`)."""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass

from . import atomic
from .images import supported_extensions
from .index import IndexedState, IndexWriter, path_key, stored_ns
from .options import ScanOptions
from .pipeline import PhotoJob
from .sidecar import sidecar_path
from .summary import ScanSummary
from .walk import RAW_SIBLING, Skipped, named_folders, walk

HASH_CHUNK = 1 << 20


@dataclass
class Plan:
    """What the walk found: the photos to scan and what the end of the scan needs."""

    jobs: list[PhotoJob]
    seen: set[bytes]  # path keys of every image file found
    sidecars_missing: list[bytes]  # unchanged photos whose sidecar is to be written (from the index)


def plan(options: ScanOptions, writer: IndexWriter, summary: ScanSummary) -> Plan:
    """Walk ``options.paths``; count what is skipped, unchanged or failed in ``summary`` (failures
    also recorded in the index) and return the photos to scan. Temporary files left by killed
    writes in the folders walked are removed."""
    known = writer.states()
    jobs: list[PhotoJob] = []
    seen: set[bytes] = set()
    sidecars_missing: list[bytes] = []
    revived: list[bytes] = []  # RAWs whose JPEG could not be scanned: scanned in its place

    def skipped(k: Skipped) -> None:
        partner = known.get(path_key(k.partner)) if k.reason == RAW_SIBLING else None
        if partner is not None and partner.status == "failed":
            revived.append(k.path)
        else:
            summary.count_skipped(k)

    folders = set(named_folders(options.paths))
    found = walk(options.paths, supported_extensions(), options.include_hidden, on_error=summary.count_unreadable,
                 on_skip=skipped, pair_raw=options.raw_pairs == "jpeg")
    for path in itertools.chain(found, revived):  # ``revived`` fills up during the walk
        key = path_key(path)
        seen.add(key)
        folders.add(os.path.dirname(path))
        job = stat_job(path, writer, summary)
        if job is None:
            continue
        state = known.get(key)
        outdated = state is not None and state.status == "done" and state.model_version != writer.version
        if (options.rescan or (options.rescan_outdated and outdated)
                or not is_unchanged(writer, path, job.stat, state)):
            jobs.append(job)
        elif state.status == "cleaned":  # ``phototag clean`` took its tags out: left so (until --rescan)
            summary.count_cleaned()
        else:
            summary.count_unchanged(outdated, state.unconfirmed, failed=state.status == "failed")
            if (state.status == "done" and options.wants_sidecar(state.exif_status or "")
                    and not sidecar_path(os.fsdecode(os.path.realpath(path)), options.sidecar_name).exists()):
                sidecars_missing.append(path)
    summary.found = len(seen)
    summary.temp_files_removed = sum(atomic.remove_stale_temps(folder) for folder in sorted(folders))
    return Plan(jobs, seen, sidecars_missing)


def stat_job(path: bytes, writer: IndexWriter, summary: ScanSummary) -> PhotoJob | None:
    """The job of scanning ``path``; None (recorded as failed) when it cannot be stat'ed."""
    try:
        return PhotoJob(path, os.stat(path))
    except OSError as e:
        error = f"cannot stat: {e.strerror or e}"
        writer.record_failure(path, None, error)
        summary.count_failure(path, error)
        return None


def file_sha256(path: bytes) -> str:
    """The SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_unchanged(writer: IndexWriter, path: bytes, st: os.stat_result, known: IndexedState | None) -> bool:
    """Whether ``path`` is the file the index describes. Stat only when its size, mtime, inode and
    ctime are the ones stored (the ctime moves with every change of the file, even one that puts the
    mtime back, and a rewrite by rename gives a new inode, as ``exiftool -P`` and phototag do);
    when only the mtime, inode or ctime moved, the content hash decides (the same: the new state is
    stored, so that the next check is cheap). A row from an index that kept no ctime is judged by
    size and mtime as before (and the hash when its inode is known and moved), and gets the inode and
    ctime from now on. A file the index marks missing counts as changed, so that it is scanned again.
    A row whose rewrite was not confirmed is decided by the hash alone: the expected one means the
    rewrite took place (it is confirmed now), any other that it did not, or that the file was changed
    since."""
    if known is None or known.missing or known.size != st.st_size and not known.unconfirmed:
        return False
    if known.mtime_ns == stored_ns(st.st_mtime_ns) and not known.unconfirmed:
        if known.ctime_ns is not None:
            if known.inode == st.st_ino and known.ctime_ns == stored_ns(st.st_ctime_ns):
                return True
        elif known.inode is None or known.inode == st.st_ino:  # no ctime kept: size and mtime, as before
            writer.record_same_file(path, st, known)
            return True
    if known.sha256 is None or file_sha256(path) != known.sha256:
        return False
    writer.record_same_file(path, st, known)
    return True
