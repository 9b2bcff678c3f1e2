"""Durability: a server under concurrent writers is killed with SIGKILL at a random moment; after a
restart every acknowledged write is there with (at least) the acknowledged revision.

"At least": a write in flight when the server died may or may not have been committed, so the
document's current revision must be the acknowledged one or a descendant of it.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from tests.serverproc import CouchpyServer

WRITERS = 24
ROUNDS = 3


async def _writer(session: aiohttp.ClientSession, base: str, wid: int, acked: dict, stop: asyncio.Event):
    n = 0
    while not stop.is_set():
        docid = f"w{wid}-{n % 5}"
        body = {"writer": wid, "n": n, "pad": "x" * random.randint(0, 300)}
        if docid in acked:
            body["_rev"] = acked[docid]
        try:
            if n % 7 == 3:  # a bulk write now and then: acknowledged rows must survive too
                async with session.post(f"{base}/_bulk_docs", json={"docs": [dict(body, _id=docid)]}) as r:
                    if r.status != 201:
                        return
                    (row,) = await r.json()
                    if row.get("ok"):
                        acked[docid] = row["rev"]
            else:
                async with session.put(f"{base}/{docid}", json=body) as r:
                    if r.status == 201:
                        acked[docid] = (await r.json())["rev"]
                    elif r.status != 409:
                        return
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            return
        n += 1


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_write(tmp_path):
    srv = CouchpyServer(tmp_path)
    srv.start()
    acked: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession(auth=srv.auth, timeout=aiohttp.ClientTimeout(total=10)) as s:
            async with s.put(f"{srv.base}/crash") as r:
                assert r.status == 201
        rng = random.Random()
        for _ in range(ROUNDS):
            stop = asyncio.Event()
            connector = aiohttp.TCPConnector(limit=WRITERS)
            async with aiohttp.ClientSession(auth=srv.auth, connector=connector,
                                             timeout=aiohttp.ClientTimeout(total=10)) as s:
                tasks = [asyncio.create_task(_writer(s, f"{srv.base}/crash", w, acked, stop)) for w in range(WRITERS)]
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                srv.kill()  # SIGKILL mid-flight
                stop.set()
                await asyncio.gather(*tasks)
            snapshot = dict(acked)
            assert snapshot, "the writers got no write acknowledged before the kill"
            srv.start()
            async with aiohttp.ClientSession(auth=srv.auth) as s:
                for docid, rev in snapshot.items():
                    async with s.get(f"{srv.base}/crash/{docid}", params={"revs": "true"}) as r:
                        assert r.status == 200, (docid, await r.text())
                        doc = await r.json()
                    start, ids = doc["_revisions"]["start"], doc["_revisions"]["ids"]
                    history = [f"{start - i}-{h}" for i, h in enumerate(ids)]
                    assert rev in history, (docid, rev, doc["_rev"])
                    acked[docid] = doc["_rev"]  # continue from what is there
                async with s.get(f"{srv.base}/crash") as r:
                    info = await r.json()
                    assert info["doc_count"] == len(acked)
    finally:
        srv.stop()
