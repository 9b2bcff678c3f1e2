"""Work done a batch per turn of the event loop, so that a burst of it does not stall the server.

Ten thousand idle feeds woken by one commit, or ended because a proxy dropped all their
connections at once, each cost a little CPU. Done in one go, every other request waits for the
whole burst (about a second for 10,000 feeds); done `batch` items per turn of the loop, the loop
polls its sockets between batches, so other requests are read and answered in between, and no
item waits longer than it would have in total.

    ending = PerTurn(lambda watch: watch.end(), batch=32)
    ending.extend([watch])          # from inside the loop; the items run in order, 32 a turn

One queue per event loop (a test may run several loops in turn), created on first use and
dropped with its loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerTurn(Generic[T]):
    def __init__(self, work: Callable[[T], object], batch: int) -> None:
        self._work = work
        self.batch = batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, deque[T]] = weakref.WeakKeyDictionary()

    def extend(self, items: Iterable[T]) -> None:
        """Queue items for the running loop; the first batch runs in the loop's next turn."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = deque()
        idle = not queue
        queue.extend(items)
        if idle and queue:
            loop.call_soon(self._run, loop, queue)

    def _run(self, loop: asyncio.AbstractEventLoop, queue: deque[T]) -> None:
        for _ in range(min(self.batch, len(queue))):
            self._work(queue.popleft())
        if queue:
            # the next batch in the loop's next turn, after the sockets were polled again
            loop.call_soon(self._run, loop, queue)
