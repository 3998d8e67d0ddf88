"""Fault-injection points for the crash harness (``benchmarks/bench_faults.py``) and its test.

With ``PHOTOTAG_KILL_AT=NAME`` (or ``NAME:N``) the process kills itself with SIGKILL the first
(N-th) time it reaches the point ``NAME``. With ``PHOTOTAG_KILL_ONCE=FILE`` as well, only the first
of many processes (a Ray cluster's workers) to get there is killed: the one that creates ``FILE``.
Only the harness sets the variables; without them a point does nothing. The points:
``index-between`` (between a photo's index statements), ``temp-written`` and ``renamed`` (before and
after a file's rename, see :mod:`phototag.atomic`).
"""

from __future__ import annotations

import os
import signal

ENV = "PHOTOTAG_KILL_AT"
ENV_ONCE = "PHOTOTAG_KILL_ONCE"
_passed: dict[str, int] = {}


def point(name: str) -> None:
    """Kill the process here if the harness asked for it."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] == int(nth or 1) and _first(os.environ.get(ENV_ONCE)):
        os.kill(os.getpid(), signal.SIGKILL)


def _first(flag: str | None) -> bool:
    """Whether this process is the first to claim ``flag`` (a file it creates); True without one."""
    if not flag:
        return True
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
