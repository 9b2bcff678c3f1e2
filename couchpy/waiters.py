"""Feeds waiting for a database's next commit, woken a batch at a time.

Thousands of idle feeds may wait on one database. Woken all at once, every one of their tasks
runs (and writes to its socket) before the event loop looks at its sockets again, so any other
request waits for the whole fan-out. They are woken a batch per turn of the event loop
(couchpy/perturn.py); each waits on a future of its own (no shared future to shield from one
waiter's cancellation).
"""

from __future__ import annotations

import asyncio

from .perturn import PerTurn

BATCH = 128


class Waiters:
    def __init__(self) -> None:
        self._futures: set[asyncio.Future[None]] = set()

    def __len__(self) -> int:
        return len(self._futures)

    async def wait(self, timeout: float | None) -> None:
        """Until the next `wake()` or `timeout` seconds (None: no limit), whichever comes first."""
        # a bare timer on the future, not `asyncio.timeout`: an idle feed waits here for as long as
        # it is open, and the timeout's context manager, handle and frame cost it ~0.7 KB more
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _wake, fut)
        self._futures.add(fut)
        try:
            await fut
        finally:
            self._futures.discard(fut)
            if timer is not None:
                timer.cancel()

    def wake(self) -> None:
        """Wake everyone waiting now; whoever starts waiting from here on waits for the next."""
        if not self._futures:
            return
        woken, self._futures = self._futures, set()
        _WAKING.extend(woken)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # a waiter that timed out or was cancelled meanwhile
        fut.set_result(None)


_WAKING: PerTurn[asyncio.Future[None]] = PerTurn(_wake, batch=BATCH)
