"""More continuous replications than `max_jobs`, from `_replicator` documents: the scheduler's
rotation gives every one its turn, twice over, and deleting the documents leaves no connection
open. CI-sized; `python -m benchmarks.scale replications` is the full run."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.serverproc import open_fds

N, MAX_JOBS = 12, 3


async def _all_have(c: aiohttp.ClientSession, docid: str, timeout: float) -> set[int]:
    """The replications whose target has not got `docid` when the time is up (empty: all have)."""
    left, deadline = set(range(N)), time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        for i in sorted(left):
            async with c.get(f"/tgt-{i}/{docid}") as r:
                await r.read()
                if r.status == 200:
                    left.discard(i)
        await asyncio.sleep(0.5)
    return left


async def test_every_replication_progresses_under_rotation(new_server):
    srv = new_server(config={"replicator": {"max_jobs": str(MAX_JOBS), "interval": "1000", "max_churn": "3"}})
    src = srv.url  # with credentials: the replications are HTTP clients of this server
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:
        await (await c.put("/_replicator")).read()
        for i in range(N):
            assert (await c.put(f"/src-{i}")).status == 201
            assert (await c.put(f"/src-{i}/a", json={})).status == 201
        sockets_before = open_fds(srv.pid)[1]
        for i in range(N):
            async with c.put(f"/_replicator/rep-{i}", json={
                    "source": f"{src}/src-{i}", "target": f"{src}/tgt-{i}",
                    "continuous": True, "create_target": True}) as r:
                assert r.status == 201
        # four times as many replications as may run: only rotation brings each its turn
        assert await _all_have(c, "a", 90) == set()
        async with c.get("/_scheduler/docs/_replicator?limit=100") as r:
            states = [d["state"] for d in (await r.json())["docs"]]
        assert len(states) == N and states.count("running") <= MAX_JOBS, states
        # a write made after every replication has run once is carried by every one again
        for i in range(N):
            assert (await c.put(f"/src-{i}/b", json={})).status == 201
        assert await _all_have(c, "b", 90) == set()

        for i in range(N):
            async with c.get(f"/_replicator/rep-{i}") as r:
                rev = (await r.json())["_rev"]
            assert (await c.delete(f"/_replicator/rep-{i}?rev={rev}")).status == 200
        for _ in range(100):
            async with c.get("/_scheduler/jobs") as r:
                if (await r.json())["total_rows"] == 0:
                    break
            await asyncio.sleep(0.2)
        # every connection the jobs opened (both ends are this server) is closed again
        for _ in range(100):
            if open_fds(srv.pid)[1] <= sockets_before:
                break
            await asyncio.sleep(0.2)
        assert open_fds(srv.pid)[1] <= sockets_before
