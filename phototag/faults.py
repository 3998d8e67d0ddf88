"""Fault-injection points for the crash harness (``benchmarks/bench_faults.py``) and its test.

With ``PHOTOTAG_KILL_AT=NAME`` (or ``NAME:N``) the process kills itself with SIGKILL the first
(N-th) time it reaches the point ``NAME``. Only the harness sets the variable; without it a point
does nothing. The points: ``index-between`` (between a photo's index statements).
"""

from __future__ import annotations

import os
import signal

ENV = "PHOTOTAG_KILL_AT"
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
    if _passed[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
