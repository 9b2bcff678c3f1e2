"""couchpy.coarsetimer: items due in the same slot share one loop timer, fire never early and at
most one grain late, and a removed item does not fire."""

from __future__ import annotations

import asyncio
import time

from couchpy.coarsetimer import CoarseTimer


async def test_items_fire_in_their_slot_and_removed_ones_do_not():
    fired: dict[str, float] = {}
    clock: CoarseTimer[str] = CoarseTimer(lambda name: fired.setdefault(name, time.monotonic()), grain=0.05)
    loop = asyncio.get_running_loop()
    timers_before = len(getattr(loop, "_scheduled", ()))
    t0 = time.monotonic()
    keys = {name: clock.add(name, 0.2) for name in ("a", "b", "c")}
    assert len(set(keys.values())) == 1  # one slot
    if hasattr(loop, "_scheduled"):  # asyncio's own loop shows its timers: one for the three
        assert len(loop._scheduled) == timers_before + 1
    clock.remove("b", keys["b"])
    later = clock.add("d", 0.4)
    assert later != keys["a"]
    await asyncio.sleep(0.6)
    assert set(fired) == {"a", "c", "d"}
    for name, delay in (("a", 0.2), ("c", 0.2), ("d", 0.4)):
        assert delay - 0.005 <= fired[name] - t0 <= delay + 0.05 + 0.1, (name, fired[name] - t0)
