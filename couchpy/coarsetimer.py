"""Many timers that need not be exact, sharing one event-loop timer per slot of `grain` seconds.

An idle feed needs a timer for its next heartbeat or its timeout for as long as it is open. A
timer of the event loop of its own costs ~0.45 KB (uvloop's handle and its libuv timer), a third
of what a parked feed holds otherwise. Here the items due in the same slot share one loop timer
and each costs an entry in the slot's dict; an item fires up to `grain` seconds late (never
early: its slot ends after its time).

    clock = CoarseTimer(lambda feed: feed.tick(), grain=0.05)
    key = clock.add(feed, 30.0)     # feed.tick() in 30 to 30.05 s
    clock.remove(feed, key)         # not any more

One set of slots per event loop (a test may run several loops in turn), dropped with its loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# the slots' timers run in an empty context: a copy of whoever armed a slot first (a request's,
# with its user and pinned databases) would live on with it
_NO_CONTEXT = contextvars.Context()


class CoarseTimer(Generic[T]):
    def __init__(self, fire: Callable[[T], object], grain: float) -> None:
        """`fire(item)` for each item due; it must not raise (the slot's other items would not fire)."""
        self._fire = fire
        self.grain = grain
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, dict[T, None]]] = \
            weakref.WeakKeyDictionary()

    def add(self, item: T, delay: float) -> int:
        """`fire(item)` in `delay` seconds (up to `grain` later); the key `remove` takes."""
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = {}
        key = math.ceil((loop.time() + max(delay, 0)) / self.grain)
        due = slots.get(key)
        if due is None:
            due = slots[key] = {}
            loop.call_at(key * self.grain, self._run, slots, key, context=_NO_CONTEXT)
        due[item] = None
        return key

    def remove(self, item: T, key: int) -> None:
        try:
            slots = self._slots.get(asyncio.get_running_loop())
        except RuntimeError:  # no loop running: its timers are gone with it
            return
        due = slots.get(key) if slots is not None else None
        if due is not None:
            due.pop(item, None)  # the slot's timer stays: it finds fewer items, maybe none

    def _run(self, slots: dict[int, dict[T, None]], key: int) -> None:
        for item in slots.pop(key, ()):
            self._fire(item)
