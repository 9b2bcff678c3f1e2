"""couchpy.perturn: a burst of work is done `batch` items a turn of the event loop, in order,
with the loop's other callbacks run between batches."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from couchpy.perturn import PerTurn


@given(bursts=st.lists(st.integers(0, 40), min_size=1, max_size=4), batch=st.integers(1, 9))
@settings(max_examples=60, deadline=None)
def test_work_is_done_in_order_a_batch_a_turn(bursts, batch):
    async def run() -> None:
        done: list[tuple[int, int]] = []  # (turn, item)
        turn = 0
        per_turn = PerTurn(lambda item: done.append((turn, item)), batch)
        items = iter(range(sum(bursts)))
        for n in bursts:
            per_turn.extend([next(items) for _ in range(n)])
        total = sum(bursts)
        while len(done) < total and turn < total + 2:
            await asyncio.sleep(0)  # one turn of the loop: other callbacks run here
            turn += 1
        assert [item for _, item in done] == list(range(total))
        counts = [sum(1 for t, _ in done if t == k) for k in range(turn + 1)]
        assert max(counts, default=0) <= batch
        assert turn <= -(-total // batch) + 1  # no turn idles while work is queued

    asyncio.run(run())


def test_each_event_loop_has_its_own_queue():
    done: list[int] = []
    per_turn = PerTurn(done.append, 2)

    async def run(items: list[int]) -> None:
        per_turn.extend(items)
        for _ in range(5):
            await asyncio.sleep(0)

    asyncio.run(run([1, 2, 3]))
    asyncio.run(run([4, 5]))
    assert done == [1, 2, 3, 4, 5]
