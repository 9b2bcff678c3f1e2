"""The fan-out ceiling (benchmarks/feeds_ceiling.py) answers what the scale benchmark asks, and a
write through either of two worker processes reaches the feeds held by both; the benchmark's
feed client (benchmarks/scale_feeds.py) sees every write on every feed it holds."""

from __future__ import annotations

import asyncio

import aiohttp

from benchmarks import feeds_ceiling
from benchmarks.scale_feeds import FeedClient
from tests.serverproc import free_port

FEEDS = 60
PATH = "/feeds/_changes?feed=continuous&since=now&heartbeat=3600000"


async def test_ceiling_fans_out_across_workers():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with feeds_ceiling.running(port, workers=2):
        client = FeedClient("127.0.0.1", port, "127.0.0.1", ("admin", "x"))
        opened, errors = await client.open(PATH, FEEDS, 30)
        assert (opened, errors) == (FEEDS, [])
        async with aiohttp.ClientSession(base_url=base) as s:
            async with s.get("/") as r:
                assert (await r.json())["couchdb"] == "Welcome"
            async with s.put("/feeds") as r:
                assert r.status == 201
            async with s.get("/feeds/_changes?feed=longpoll") as r:
                assert r.status == 400
            for w in range(4):
                needle = f"w-{w}"
                client.arm(needle.encode())
                # new connections each time: the kernel sends them to either worker
                async with aiohttp.ClientSession(base_url=base) as one, one.put(f"/feeds/{needle}", json={"w": w}) as r:
                    assert r.status == 201
                    rev = (await r.json())["rev"]
                times, still_open = await client.collect(10)
                assert (len(times), still_open) == (FEEDS, FEEDS)
                for _ in range(4):  # any worker has the document
                    async with aiohttp.ClientSession(base_url=base) as one, one.get(f"/feeds/{needle}") as r:
                        assert await r.json() == {"_id": needle, "_rev": rev, "w": w}
            async with s.get("/feeds/missing") as r:
                assert r.status == 404
        await client.close()
        assert not any(f.open for f in client.feeds)


async def test_client_counts_a_lost_feed_as_done():
    """A feed that closes before the needle arrives does not hold `collect` until its timeout."""
    port = free_port()
    with feeds_ceiling.running(port, workers=1):
        client = FeedClient("127.0.0.1", port, "127.0.0.1", ("admin", "x"))
        assert (await client.open(PATH, 3, 30))[0] == 3
        client.arm(b"never")
        client.feeds[0].transport.close()
        times, still_open = await asyncio.wait_for(client.collect(0.5), 5)
        assert times == [] and still_open == 2
        client.feeds[1].transport.close()
        client.feeds[2].transport.close()
        await asyncio.wait_for(client.all_seen.wait(), 5)
        await client.close()
