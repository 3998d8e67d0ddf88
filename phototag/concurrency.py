"""The scan's concurrency helpers: Ctrl-C held while a photo is written, and a prefetching map."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor


class Interrupts:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt as usual, except inside ``hold()``, which it ends first.
    Only installed in the main thread over Python's default handler."""

    def __init__(self):
        self.holding = self.pending = False
        self.previous = None

    def __enter__(self) -> Interrupts:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handler(self, signum, frame) -> None:
        if not self.holding:
            raise KeyboardInterrupt
        self.pending = True

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.pending:
                raise KeyboardInterrupt


def prefetch(func: Callable, items: Iterable, depth: int, *, weight: Callable[[object], int] = lambda result: 0,
             budget: float = math.inf) -> Iterator:
    """``map(func, items)`` computed in a thread up to ``depth`` items ahead, and no further while the
    results computed and not yet taken weigh ``budget`` or more (``weight``: e.g. their bytes), so
    that a few huge results are not held at once."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        queue: deque[Future] = deque()
        for item in items:
            while queue and _ready_weight(queue, weight) >= budget:
                yield queue.popleft().result()
            queue.append(pool.submit(func, item))
            if len(queue) > depth:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def _ready_weight(queue: Iterable[Future], weight: Callable[[object], int]) -> int:
    """What the results computed so far weigh (a result not computed yet counts nothing)."""
    return sum(weight(f.result()) for f in queue if f.done() and f.exception() is None)
