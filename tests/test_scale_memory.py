"""Memory of a server holding many databases stays bounded by what is open, not by what was ever
opened (the glibc heap kept every open LMDB environment's ~2 MB of transaction lists resident)."""

from __future__ import annotations

import asyncio
import os

import aiohttp


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def test_rss_and_fds_bounded_with_many_databases(new_server):
    srv = new_server(config={"couchdb": {"max_dbs_open": "300"}})
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:

        async def touch(i: int) -> None:
            async with sem:
                async with c.put(f"/scale-{i}") as r:
                    assert r.status == 201, await r.text()
                async with c.put(f"/scale-{i}/doc", json={"i": i}) as r:
                    assert r.status == 201
                async with c.get(f"/scale-{i}/doc") as r:
                    assert (await r.json())["i"] == i

        await asyncio.gather(*(touch(i) for i in range(100)))
        early = _rss_mb(srv.pid)
        await asyncio.gather(*(touch(i) for i in range(100, 800)))
        late = _rss_mb(srv.pid)
        fds = len(os.listdir(f"/proc/{srv.pid}/fd"))
    # 700 more databases, 300 of them open at the end: a few hundred KB each at most
    assert late - early < 150, (early, late)
    assert fds < 3 * 300 + 100, fds
