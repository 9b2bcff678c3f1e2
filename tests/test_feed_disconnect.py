"""A waiting feed ends as soon as its client goes away, not at its next heartbeat or timeout.

The feeds here have a heartbeat (or timeout) of ten minutes; their clients close after they are
open, and the server must let go of every one within seconds: `_changes` feeds counted by
CouchDB's `clients_requesting_changes` statistic (a server process of its own), `_db_updates`
feeds by the handler tasks of a server in this process. A feed that ends by itself (even a
parked one, http_api/parkedfeed.py) gives its kept-alive connection back for the next request.
"""

from __future__ import annotations

import asyncio
import base64
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from . import inprocess

CONTINUOUS, EVENTSOURCE, LONGPOLL = 30, 10, 10
LONG = 600000  # ms: far beyond the test
FREED_WITHIN = 5.0  # s


async def _open(port: int, auth: aiohttp.BasicAuth | None, path: str, streaming: bool):
    """A feed on a raw connection of its own (closing it is the client leaving)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if auth is not None:
        head += "Authorization: Basic " + base64.b64encode(f"{auth.login}:{auth.password}".encode()).decode() + "\r\n"
    writer.write((head + "\r\n").encode())
    await writer.drain()
    if streaming:  # a continuous or eventsource feed answers its headers at once
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert status.startswith(b"HTTP/1.1 200"), status
    return writer


async def _until(predicate, seconds: float) -> float:
    """Seconds until `predicate()` held (polled every 50 ms); fails after `seconds`."""
    t0 = time.monotonic()
    while not await predicate():
        assert time.monotonic() - t0 < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def _clients(s: aiohttp.ClientSession) -> int:
    async with s.get("/_node/_local/_stats/couchdb/httpd/clients_requesting_changes") as r:
        assert r.status == 200
        return (await r.json())["value"]


async def test_closed_changes_feeds_end_at_once(new_server):
    srv = new_server()
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as s:
        assert (await s.put("/f")).status == 201
        assert await _clients(s) == 0
        writers = await asyncio.gather(
            *(_open(srv.port, srv.auth, f"/f/_changes?feed=continuous&since=now&heartbeat={LONG}", True)
              for _ in range(CONTINUOUS)),
            *(_open(srv.port, srv.auth, f"/f/_changes?feed=eventsource&since=now&heartbeat={LONG}", True)
              for _ in range(EVENTSOURCE)),
            *(_open(srv.port, srv.auth, f"/f/_changes?feed=longpoll&since=now&timeout={LONG}", False)
              for _ in range(LONGPOLL)))
        total = CONTINUOUS + EVENTSOURCE + LONGPOLL

        async def all_open() -> bool:
            return await _clients(s) == total
        await _until(all_open, 20)
        # a gauge in Prometheus's terms, as couch_prometheus renders it
        async with s.get("/_node/_local/_prometheus") as r:
            families = {f.name: f for f in text_string_to_metric_families(await r.text())}
        gauge = families["couchdb_httpd_clients_requesting_changes"]
        assert gauge.type == "gauge" and [x.value for x in gauge.samples] == [total]

        for w in writers:
            w.close()

        async def all_gone() -> bool:
            return await _clients(s) == 0
        await _until(all_gone, FREED_WITHIN)

        # the server goes on: a write, and a feed that ends by itself (its timeout) hands its
        # kept-alive connection back for the next request on it
        assert (await s.put("/f/after", json={})).status == 201
    one = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth, connector=one) as s:
        async with s.get("/f/_changes?feed=continuous&timeout=100") as r:
            assert r.status == 200
            assert b'"last_seq"' in await r.read()
        async with s.get("/f/after") as r:
            assert r.status == 200
        assert await _clients(s) == 0


async def test_closed_db_updates_feeds_end_at_once(tmp_path):
    async with inprocess.serve(tmp_path) as srv:
        port, auth = srv.port, srv.auth
        before = len(asyncio.all_tasks())
        n = 20
        writers = await asyncio.gather(
            *(_open(port, auth, f"/_db_updates?feed={feed}&since=now&heartbeat={LONG}", True)
              for feed in ("continuous", "eventsource") for _ in range(n // 2)),
            *(_open(port, auth, f"/_db_updates?feed=longpoll&since=now&timeout={LONG}", True) for _ in range(n)))

        async def all_waiting() -> bool:  # each connection: aiohttp's task and its handler's
            return len(asyncio.all_tasks()) >= before + 2 * 2 * n
        await _until(all_waiting, 20)

        for w in writers:
            w.close()

        async def all_gone() -> bool:
            return len(asyncio.all_tasks()) <= before
        await _until(all_gone, FREED_WITHIN)
        # and the feed still works for a client that stays
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", auth=auth) as s:
            poll = asyncio.create_task(s.get("/_db_updates?feed=longpoll&since=now&timeout=10000"))
            await asyncio.sleep(0.2)
            async with s.put("/made") as r:
                assert r.status == 201
            async with await asyncio.wait_for(poll, 10) as r:
                assert "made" in await r.text()
