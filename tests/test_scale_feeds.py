"""Many feeds on one node: every open feed (continuous, eventsource, longpoll) sees every write of
its database, feeds closing leave no descriptor behind, and the server raises its own open-file
limit so that it can hold them. CI-sized; `python -m benchmarks.scale feeds` is the full run."""

from __future__ import annotations

import asyncio
import resource
import sys

import aiohttp

from tests.serverproc import CouchpyServer, open_fds

CONTINUOUS, EVENTSOURCE, LONGPOLL = 300, 100, 100
WRITES = 5


async def _open(s: aiohttp.ClientSession, query: str) -> aiohttp.ClientResponse:
    r = await s.get(f"/fan/_changes?since=now&{query}")
    assert r.status == 200, await r.text()
    return r


async def _read_until(r: aiohttp.ClientResponse, ids: list[str]) -> bytes:
    """Read a streaming feed until every id showed up (or it ended)."""
    buf = b""
    while not all(i.encode() in buf for i in ids):
        chunk = await r.content.readany()
        if not chunk:
            break
        buf += chunk
    return buf


async def test_every_feed_sees_every_write(server, client):
    await (await client.put("/fan")).read()
    await (await client.put("/fan/warm", json={})).read()
    ids = [f"w{k}" for k in range(WRITES)]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth, connector=connector,
                                     timeout=timeout) as s:
        sockets_before = open_fds(server.pid)[1]
        feeds = await asyncio.gather(
            *(_open(s, "feed=continuous&heartbeat=600000") for _ in range(CONTINUOUS)),
            *(_open(s, "feed=eventsource&heartbeat=600000") for _ in range(EVENTSOURCE)))
        # a waiting longpoll has sent its head (as CouchDB's does at once) but not its body
        polls = await asyncio.gather(*(_open(s, "feed=longpoll&timeout=600000") for _ in range(LONGPOLL)))
        await asyncio.sleep(1)  # the longpolls are waiting in the server
        assert not any(r.content.is_eof() or r.content.total_bytes for r in polls)
        readers = [asyncio.create_task(_read_until(r, ids)) for r in feeds]
        for i in ids:
            async with client.put(f"/fan/{i}", json={}) as r:
                assert r.status == 201
        streams = await asyncio.wait_for(asyncio.gather(*readers), 60)
        answers = await asyncio.wait_for(asyncio.gather(*(r.json() for r in polls)), 60)
        for stream in streams:
            assert all(i.encode() in stream for i in ids), stream[-300:]
        for stream in streams[CONTINUOUS:]:
            assert stream.startswith(b"data: "), stream[:100]  # the event-stream framing
        for body in answers:
            # a longpoll answers with the first write (and any made before it answered)
            assert [row["id"] for row in body["results"]][:1] == ["w0"], body
        for r in feeds:
            r.close()
    # the server notices every closed feed and lets go of its socket
    for _ in range(100):
        if open_fds(server.pid)[1] <= sockets_before:
            break
        await asyncio.sleep(0.1)
    assert open_fds(server.pid)[1] <= sockets_before


class LowLimitServer(CouchpyServer):
    """A server started with a soft open-file limit far below the hard one."""

    def command(self) -> list[str]:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wrapper = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, %d)); "
                   "os.execv(sys.executable, [sys.executable] + sys.argv[1:])" % hard)
        return [sys.executable, "-c", wrapper, *super().command()[1:]]


def _nofile(pid: int) -> tuple[str, str]:
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return soft, hard


def test_server_raises_its_open_file_limit(tmp_path):
    with LowLimitServer(tmp_path) as srv:
        soft, hard = _nofile(srv.pid)
    assert hard == str(resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    assert soft == hard
