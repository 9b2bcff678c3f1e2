"""A plain continuous feed lives on after its HTTP handler returned (http_api/parkedfeed.py).

Once caught up, such a feed holds no task of its own (aiohttp's connection and request tasks
end: counted here with `asyncio.all_tasks()` on a server in this process), and everything a feed
does still holds: changes, heartbeats, its timeout's `last_seq` line and the body's end, its
client leaving (counted by `clients_requesting_changes`, and its database unpinned), its
database deleted, the server stopping. A feed that ends at its timeout keeps its connection alive
for the client's next request, sent behind it or after it, as CouchDB does; one whose database or
server goes closes it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp

from . import inprocess

LONG = 600000  # ms: far beyond the test
FEEDS = 20


async def _open(srv: inprocess.InProcess, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A feed on a raw connection of its own; its headers read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    token = base64.b64encode(f"{srv.auth.login}:{srv.auth.password}".encode()).decode()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower(), head
    return reader, writer


async def _chunk(reader: asyncio.StreamReader, seconds: float = 10) -> bytes:
    """The next HTTP chunk's data (b"" for the body's end)."""
    size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), seconds), 16)
    data = await asyncio.wait_for(reader.readexactly(size + 2), seconds)
    assert data.endswith(b"\r\n")
    return data[:-2]


async def _to_end(reader: asyncio.StreamReader, seconds: float = 10, closes: bool = True) -> list[bytes]:
    """Every chunk up to the body's end; then the server closes the connection (if `closes`)."""
    chunks = []
    while (data := await _chunk(reader, seconds)) != b"":
        chunks.append(data)
    if closes:
        assert await asyncio.wait_for(reader.read(), seconds) == b""
    return chunks


async def _root(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
    """`GET /` on the connection (sent now, or before when `writer` is None) answered."""
    if writer is not None:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    assert b'"couchdb":"Welcome"' in await asyncio.wait_for(reader.readexactly(length), 10)


async def _until(predicate, seconds: float) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.02)


async def _clients(s: aiohttp.ClientSession) -> int:
    async with s.get("/_node/_local/_stats/couchdb/httpd/clients_requesting_changes") as r:
        return (await r.json())["value"]


def _lines(chunks: list[bytes]) -> list[dict]:
    return [json.loads(line) for line in b"".join(chunks).splitlines() if line.strip()]


async def test_parked_feeds_hold_no_task_get_changes_and_let_go_when_their_clients_leave(tmp_path):
    async with inprocess.serve(tmp_path) as srv, \
            aiohttp.ClientSession(srv.base, auth=srv.auth) as s:
        assert (await s.put("/p")).status == 201
        db = srv.node.get_db("p")
        tasks, pins = len(asyncio.all_tasks()), db.pins
        feeds = [await _open(srv, f"/p/_changes?feed=continuous&since=now&heartbeat={LONG}") for _ in range(FEEDS)]
        # every handler returned, and aiohttp's connection tasks ended with them
        await _until(lambda: len(asyncio.all_tasks()) <= tasks, 5)
        assert await _clients(s) == FEEDS
        assert db.pins == pins + FEEDS  # the LRU will not close the database under them
        assert (await s.put("/p/one", json={})).status == 201
        for reader, _ in feeds:
            row = json.loads(await _chunk(reader))
            assert row["id"] == "one"
        for _, writer in feeds:
            writer.close()
        t0 = time.monotonic()
        while await _clients(s) != 0:
            assert time.monotonic() - t0 < 2, "the parked feeds did not end with their connections"
            await asyncio.sleep(0.02)
        assert db.pins == pins


async def test_a_parked_feed_sends_heartbeats_and_ends_at_its_timeout(tmp_path):
    async with inprocess.serve(tmp_path) as srv, \
            aiohttp.ClientSession(srv.base, auth=srv.auth) as s:
        assert (await s.put("/p")).status == 201
        tasks = len(asyncio.all_tasks())
        reader, writer = await _open(srv, "/p/_changes?feed=continuous&since=now&heartbeat=100&timeout=1000")
        await _until(lambda: len(asyncio.all_tasks()) <= tasks, 5)  # parked
        t0 = time.monotonic()
        assert await _chunk(reader) == b"\n"
        assert await _chunk(reader) == b"\n"
        assert (await s.put("/p/mid", json={})).status == 201
        chunks = await _to_end(reader, closes=False)
        assert 0.6 < time.monotonic() - t0 < 3
        await _root(reader, writer)  # kept alive for the next request
        async with s.get("/p/_changes") as r:
            last_seq = (await r.json())["last_seq"]
        rows = _lines(chunks)
        assert [row.get("id") for row in rows[:-1]] == ["mid"]
        assert rows[-1] == {"last_seq": last_seq, "pending": 0}
        assert chunks.count(b"\n") >= 3  # heartbeats went on after the change
        writer.close()
        # a timeout alone (no heartbeat): nothing but the end
        reader, writer = await _open(srv, "/p/_changes?feed=continuous&since=now&timeout=300")
        t0 = time.monotonic()
        await _until(lambda: len(asyncio.all_tasks()) <= tasks, 5)  # parked
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # sent behind the feed
        assert _lines(await _to_end(reader, closes=False)) == [{"last_seq": last_seq, "pending": 0}]
        assert 0.25 < time.monotonic() - t0 < 2
        await _root(reader, None)  # answered once the feed ended
        await _root(reader, writer)
        writer.close()
        assert await _clients(s) == 0


async def test_deleting_the_database_ends_its_parked_feeds(tmp_path):
    async with inprocess.serve(tmp_path) as srv, \
            aiohttp.ClientSession(srv.base, auth=srv.auth) as s:
        assert (await s.put("/p")).status == 201
        assert (await s.put("/p/d", json={})).status == 201
        async with s.get("/p/_changes") as r:
            last_seq = (await r.json())["last_seq"]
        tasks = len(asyncio.all_tasks())
        feeds = [await _open(srv, f"/p/_changes?feed=continuous&since=now&heartbeat={LONG}") for _ in range(3)]
        await _until(lambda: len(asyncio.all_tasks()) <= tasks, 5)
        assert (await s.delete("/p")).status == 200
        for reader, writer in feeds:
            assert _lines(await _to_end(reader, 5)) == [{"last_seq": last_seq, "pending": 0}]
            writer.close()
        assert await _clients(s) == 0


async def test_stopping_the_server_ends_its_parked_feeds(tmp_path):
    async with inprocess.serve(tmp_path) as srv:
        async with aiohttp.ClientSession(srv.base, auth=srv.auth) as s:
            assert (await s.put("/p")).status == 201
        tasks = len(asyncio.all_tasks())
        feeds = [await _open(srv, f"/p/_changes?feed=continuous&since=now&heartbeat={LONG}") for _ in range(3)]
        await _until(lambda: len(asyncio.all_tasks()) <= tasks, 5)
    for reader, writer in feeds:
        rows = _lines(await _to_end(reader, 5))
        assert list(rows[-1]) == ["last_seq", "pending"]
        writer.close()


async def test_a_parked_feed_closes_a_connection_its_client_asked_to_close(tmp_path):
    async with inprocess.serve(tmp_path) as srv, \
            aiohttp.ClientSession(srv.base, auth=srv.auth) as s:
        assert (await s.put("/p")).status == 201
        tasks = len(asyncio.all_tasks())
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        token = base64.b64encode(f"{srv.auth.login}:{srv.auth.password}".encode()).decode()
        writer.write(f"GET /p/_changes?feed=continuous&since=now&timeout=300 HTTP/1.1\r\nHost: x\r\n"
                     f"Connection: close\r\nAuthorization: Basic {token}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        await _until(lambda: len(asyncio.all_tasks()) <= tasks, 5)  # parked
        assert list(_lines(await _to_end(reader, closes=True))[-1]) == ["last_seq", "pending"]
        writer.close()
