"""Feeds waiting on a database are woken a batch per turn of the event loop: all of them, each
once, and other work (another request) runs between batches instead of after the whole fan-out."""

from __future__ import annotations

import asyncio

from couchpy.waiters import BATCH, Waiters

N = 10 * BATCH + 7


async def test_every_waiter_wakes_and_other_work_runs_between_batches():
    waiters = Waiters()
    woken: list[int] = []

    async def feed(i: int) -> None:
        await waiters.wait(30)
        woken.append(i)

    tasks = [asyncio.create_task(feed(i)) for i in range(N)]
    await asyncio.sleep(0)
    assert len(waiters) == N
    seen_by_probe: list[int] = []
    loop = asyncio.get_running_loop()
    waiters.wake()
    # another request's callback, arriving just after the write: it must not wait for every feed
    loop.call_soon(lambda: loop.call_soon(lambda: seen_by_probe.append(len(woken))))
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert sorted(woken) == list(range(N))
    assert seen_by_probe and seen_by_probe[0] <= 2 * BATCH, seen_by_probe
    assert len(waiters) == 0


async def test_late_waiter_waits_for_the_next_wake_and_timeouts_end_waits():
    waiters = Waiters()
    early = [asyncio.create_task(waiters.wait(30)) for _ in range(3 * BATCH)]
    await asyncio.sleep(0)
    waiters.wake()
    late = asyncio.create_task(waiters.wait(30))  # starts waiting after the wake
    await asyncio.wait_for(asyncio.gather(*early), 10)
    await asyncio.sleep(0.05)
    assert not late.done()
    waiters.wake()
    await asyncio.wait_for(late, 10)
    # a timeout ends a wait without a wake, and leaves nothing behind
    await asyncio.wait_for(waiters.wait(0.05), 5)
    assert len(waiters) == 0


async def test_cancelled_waiter_does_not_break_a_wake():
    waiters = Waiters()
    tasks = [asyncio.create_task(waiters.wait(30)) for _ in range(2 * BATCH)]
    await asyncio.sleep(0)
    waiters.wake()
    tasks[-1].cancel()  # cancelled between its wake being scheduled and its batch
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert all(r is None for r in results[:-1])
    assert isinstance(results[-1], asyncio.CancelledError)
