"""Feeds waiting for a database's next commit, woken a batch at a time.

Thousands of idle feeds may wait on one database. Woken all at once, every one of their tasks
runs (and writes to its socket) before the event loop looks at its sockets again, so any other
request waits for the whole fan-out. They are woken a batch per turn of the event loop
(couchpy/perturn.py); each waits on a future of its own (no shared future to shield from one
waiter's cancellation).

A waiter may leave a `direct` callback that takes its wake-up in the waker's stead: run in the
waiter's place in the batch, it returns True when it did what the waiter would have done (a
continuous feed writing the commit's rows to its socket), and the waiter stays parked for the
next commit on the same future and timer. Resuming a feed's task through its frames, and a new
future and timer for its next wait, cost more than the write itself; a waiter the callback
cannot serve (False) is woken as any other.

A listener has no task at all: an object whose `on_commit()` is called, a batch per turn as the
waiters are, for every commit until it returns False or leaves (`unlisten`). A continuous feed
whose HTTP handler has returned lives on as one (http_api/parkedfeed.py): its task, frames,
future and timer are then memory it no longer holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from .perturn import PerTurn

BATCH = 128

Direct = Callable[[], bool]


class Listener(Protocol):
    def on_commit(self) -> bool:
        """A commit (or the database closing) happened; False: listen no more."""


class Waiters:
    def __init__(self) -> None:
        # each waiting future, with its direct callback or None
        self._futures: dict[asyncio.Future[None], Direct | None] = {}
        self._listeners: dict[Listener, None] = {}

    def __len__(self) -> int:
        return len(self._futures) + len(self._listeners)

    def listen(self, listener: Listener) -> None:
        """Call `listener.on_commit()` at every `wake()` from now on, until it returns False."""
        self._listeners[listener] = None

    def unlisten(self, listener: Listener) -> None:
        self._listeners.pop(listener, None)

    async def wait(self, timeout: float | None, direct: Direct | None = None) -> None:
        """Until the next `wake()` that `direct` (if any) does not take, or `timeout` seconds
        (None: no limit), whichever comes first."""
        # a bare timer on the future, not `asyncio.timeout`: an idle feed waits here for as long as
        # it is open, and the timeout's context manager, handle and frame cost it ~0.7 KB more
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _wake, fut)
        self._futures[fut] = direct
        try:
            await fut
        finally:
            self._futures.pop(fut, None)
            if timer is not None:
                timer.cancel()

    def wake(self) -> None:
        """Wake everyone waiting now; whoever starts waiting from here on waits for the next."""
        if self._futures:
            woken, self._futures = self._futures, {}
            _WAKING.extend((self, fut, direct) for fut, direct in woken.items())
        if self._listeners:
            told, self._listeners = self._listeners, {}
            _TELLING.extend((self, listener) for listener in told)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # a waiter that timed out or was cancelled meanwhile
        fut.set_result(None)


def _wake_one(item: tuple[Waiters, asyncio.Future[None], Direct | None]) -> None:
    waiters, fut, direct = item
    if fut.done():  # timed out or cancelled while in the queue
        return
    if direct is not None:
        try:
            served = direct()
        except Exception:  # noqa: BLE001 - the woken task meets the error on its own path
            served = False
        if served:
            waiters._futures[fut] = direct  # parked again, for the next commit
            return
    fut.set_result(None)


_WAKING: PerTurn[tuple[Waiters, asyncio.Future[None], Direct | None]] = PerTurn(_wake_one, batch=BATCH)


def _tell_one(item: tuple[Waiters, Listener]) -> None:
    waiters, listener = item
    try:
        again = listener.on_commit()
    except Exception:  # noqa: BLE001 - one listener's failure must not stop the others' wake-ups
        again = False
    if again:
        waiters._listeners[listener] = None


_TELLING: PerTurn[tuple[Waiters, Listener]] = PerTurn(_tell_one, batch=BATCH)
