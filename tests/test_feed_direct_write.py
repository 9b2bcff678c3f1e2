"""A commit's rows written to idle continuous feeds by the waker itself (a parked feed's
`on_commit`, http_api/parkedfeed.py, or `_DirectWrite` for a feed still in its handler,
http_api/changes.py; couchpy/waiters.py): every feed gets every change once, in order, and its
final `last_seq`, whoever wrote them; a reader that stops reading gets them all when it reads
again, and does not hold up the other feeds meanwhile.

The server runs in this process so that the test can count the wake-ups the waker took and
those it held back for a connection still full (counting wrappers around the real
`_DirectWrite.__call__` and `ParkedFeed.on_commit`): a test that passed with the direct path
never taken would say nothing about it."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import aiohttp
import pytest

from http_api import changes as changes_api
from http_api.parkedfeed import ParkedFeed

from . import inprocess

FEEDS = 300
LONG = 600000  # ms: far beyond the test


@pytest.fixture
async def served(tmp_path, monkeypatch):
    """(port, auth, counts): a server in this process; counts["taken"] are the wake-ups whose
    rows the waker wrote, counts["declined"] those it left to the feed's task or, for a parked
    feed whose connection is full, to its drain."""
    counts = {"taken": 0, "declined": 0}
    real = changes_api._DirectWrite.__call__
    real_commit = ParkedFeed.on_commit

    def counting(self) -> bool:
        taken = real(self)
        counts["taken" if taken else "declined"] += 1
        return taken

    def counting_commit(self) -> bool:
        held_back = self.paused
        again = real_commit(self)
        counts["declined" if held_back else "taken"] += 1
        return again

    monkeypatch.setattr(changes_api._DirectWrite, "__call__", counting)
    monkeypatch.setattr(ParkedFeed, "on_commit", counting_commit)
    async with inprocess.serve(tmp_path) as srv:
        yield srv.port, srv.auth, counts


async def _seq(s: aiohttp.ClientSession) -> str:
    async with s.get("/d/_changes?since=now") as r:
        return (await r.json())["last_seq"]


async def _read_feed(s: aiohttp.ClientSession, path: str, started: asyncio.Event, opened: list[int],
                     total: int) -> list[dict]:
    async with s.get(path) as r:
        assert r.status == 200
        opened[0] += 1
        if opened[0] == total:
            started.set()
        lines = []
        while True:
            line = await asyncio.wait_for(r.content.readline(), 30)
            if not line:
                return lines
            if line.strip():
                lines.append(json.loads(line))


async def test_many_feeds_get_every_change_once_in_order_and_their_last_seq(served):
    port, auth, counts = served
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", auth=auth, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as s:
        assert (await s.put("/d")).status == 201
        assert (await s.put("/d/before", json={})).status == 201
        since = await _seq(s)
        started, opened = asyncio.Event(), [0]
        # the feeds end by their timeout, with their last_seq line, after the writes below
        path = f"/d/_changes?feed=continuous&since={since}&timeout=6000"
        readers = [asyncio.create_task(_read_feed(s, path, started, opened, FEEDS)) for _ in range(FEEDS)]
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.sleep(0.3)  # every feed parked in its wait
        t0 = time.monotonic()
        for i in range(6):  # one commit at a time, then several rows in one commit
            assert (await s.put(f"/d/doc{i}", json={"i": i})).status == 201
            await asyncio.sleep(0.2)
        async with s.post("/d/_bulk_docs", json={"docs": [{"_id": f"bulk{i}"} for i in range(5)]}) as r:
            assert r.status == 201
        async with s.get(f"/d/_changes?since={since}") as r:
            expected = await r.json()
        assert time.monotonic() - t0 < 4, "the writes must end before the feeds' timeout"
        results = await asyncio.wait_for(asyncio.gather(*readers), 30)
    assert len(expected["results"]) == 11
    for lines in results:
        assert lines[:-1] == expected["results"]
        assert lines[-1] == {"last_seq": expected["last_seq"], "pending": 0}
    # the waker wrote the rows of most commits itself (a feed whose task ran for a commit, e.g.
    # one the waker met after a later commit, is the task's)
    assert counts["taken"] >= FEEDS * 5, counts


def _raw_feed(port: int, auth: aiohttp.BasicAuth, path: str) -> socket.socket:
    """A feed on a blocking socket with a tiny receive buffer, so that the server's side of the
    connection fills up as soon as its client stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    token = base64.b64encode(f"{auth.login}:{auth.password}".encode()).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode())
    return sock


def _rows(raw: bytes) -> list[dict]:
    """The rows in the complete chunks of a chunked response read so far."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower(), head[:200]
    out = bytearray()
    while b"\r\n" in body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0 or len(rest) < n + 2:
            break
        out += rest[:n]
        assert rest[n:n + 2] == b"\r\n"
        body = rest[n + 2:]
    return [json.loads(line) for line in bytes(out).splitlines() if line.strip()]


async def test_a_reader_that_stops_reading_gets_everything_and_holds_up_nobody(served):
    port, auth, counts = served
    # the server's socket may buffer up to 4 MiB (tcp_wmem) before its transport holds any:
    # the documents the feeds carry are far more than that
    big = "x" * 200_000
    writes = 40
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", auth=auth) as s:
        assert (await s.put("/d")).status == 201
        since = await _seq(s)
        path = f"/d/_changes?feed=continuous&since={since}&heartbeat={LONG}&include_docs=true"
        slow = await asyncio.to_thread(_raw_feed, port, auth, path)
        try:
            async with s.get(path) as brisk:
                await asyncio.sleep(0.3)  # both parked
                seen_by_brisk = []
                for i in range(writes):
                    assert (await s.put(f"/d/doc{i:03}", json={"big": big})).status == 201
                    line = await asyncio.wait_for(brisk.content.readuntil(b"\n"), 10)
                    seen_by_brisk.append(json.loads(line)["id"])
                # the brisk feed had each change before the next write, the slow reader's
                # connection being full meanwhile
                assert seen_by_brisk == [f"doc{i:03}" for i in range(writes)]
                assert counts["declined"] > 0, counts  # the slow reader's wake-ups, held back
                assert counts["taken"] > 0, counts

            def read_all() -> list[dict]:
                raw = b""
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    chunk = slow.recv(1 << 20)
                    if not chunk:
                        break
                    raw += chunk
                    if raw.endswith(b"\r\n") and len(_rows(raw)) >= writes:
                        break
                return _rows(raw)

            await asyncio.sleep(1)  # a reader that does not read for a while
            rows = await asyncio.to_thread(read_all)
        finally:
            slow.close()
    assert [row["id"] for row in rows] == [f"doc{i:03}" for i in range(writes)]
    assert all(row["doc"]["big"] == big for row in rows)
