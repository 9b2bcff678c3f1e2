"""Longpoll and EventSource feeds are parked too (http_api/parkedfeed.py), and answer as before.

A waiting longpoll feed (as PouchDB's live replication asks it: `style=all_docs&limit=100`, a
heartbeat) or a caught-up EventSource feed holds no task once parked. What it answers is checked
against a normal feed read after the fact, the oracle for the rows, `last_seq` and `pending`:
the first commit with rows for it, its `limit` and `seq_interval` applied; a built-in filter's
rows only; an empty answer at its timeout, after blank-line heartbeats; its database deleted.
After its answer the connection is kept alive for the client's next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import aiohttp

from . import inprocess
from .test_feed_parked import LONG, _chunk, _clients, _open, _root, _to_end, _until

FEEDS = 10


@contextlib.asynccontextmanager
async def _served(tmp_path, keepalive_timeout: float = 75) -> AsyncIterator[tuple[inprocess.InProcess, aiohttp.ClientSession]]:
    """A server with a database `p`, and an admin's session on it."""
    async with inprocess.serve(tmp_path, keepalive_timeout) as srv, \
            aiohttp.ClientSession(srv.base, auth=srv.auth) as s:
        assert (await s.put("/p")).status == 201
        yield srv, s


async def _parked(tasks: int) -> None:
    """Every feed opened since the server ran `tasks` tasks is parked: its handler returned."""
    await _until(lambda: len(asyncio.all_tasks()) <= tasks, 5)


async def _body(reader: asyncio.StreamReader, seconds: float = 10) -> tuple[bytes, dict]:
    """A longpoll body: the blank lines (heartbeats) before it, and its object."""
    chunks = await _to_end(reader, seconds, closes=False)
    data = b"".join(chunks)
    body = data.lstrip(b"\n")
    return data[:len(data) - len(body)], json.loads(body)


async def _normal(s: aiohttp.ClientSession, query: str) -> dict:
    async with s.get(f"/p/_changes?{query}") as r:
        assert r.status == 200
        return await r.json()


async def _since(s: aiohttp.ClientSession) -> str:
    return (await _normal(s, "since=now"))["last_seq"]


async def test_parked_longpoll_feeds_answer_the_first_commit_and_keep_their_connections(tmp_path):
    async with _served(tmp_path) as (srv, s):
        assert (await s.put("/p/before", json={})).status == 201
        since = await _since(s)
        tasks = len(asyncio.all_tasks())
        query = f"feed=longpoll&since={since}&heartbeat={LONG}&style=all_docs&limit=100"
        feeds = [await _open(srv, f"/p/_changes?{query}") for _ in range(FEEDS)]
        await _parked(tasks)  # every handler returned
        assert await _clients(s) == FEEDS
        assert (await s.post("/p/_bulk_docs", json={"docs": [{"_id": "a"}, {"_id": "b", "n": -0.0}]})).status == 201
        expected = await _normal(s, f"since={since}&style=all_docs&limit=100")
        assert [row["id"] for row in expected["results"]] == ["a", "b"]
        for reader, writer in feeds:
            blank, body = await _body(reader)
            assert blank == b"" and body == expected
            await _root(reader, writer)  # the connection goes on
            writer.close()
        assert await _clients(s) == 0


async def test_a_parked_longpoll_feed_applies_its_limit_and_seq_interval(tmp_path):
    async with _served(tmp_path) as (srv, s):
        since = await _since(s)
        tasks = len(asyncio.all_tasks())
        queries = ["limit=2", "limit=10&seq_interval=2", "seq_interval=3", "include_docs=true&conflicts=true"]
        feeds = [await _open(srv, f"/p/_changes?feed=longpoll&since={since}&{q}&heartbeat={LONG}") for q in queries]
        await _parked(tasks)
        docs = [{"_id": f"d{i}"} for i in range(5)]
        assert (await s.post("/p/_bulk_docs", json={"docs": docs})).status == 201
        for (reader, writer), q in zip(feeds, queries):
            _, body = await _body(reader)
            assert body == await _normal(s, f"since={since}&{q}"), q
            writer.close()
        # the oracle holds what matters: a limit cut the first short, with what is left pending
        first = await _normal(s, f"since={since}&limit=2")
        assert len(first["results"]) == 2 and first["pending"] == 3


async def test_a_parked_longpoll_feed_with_a_built_in_filter_answers_only_its_rows(tmp_path):
    async with _served(tmp_path) as (srv, s):
        since = await _since(s)
        tasks = len(asyncio.all_tasks())
        reader, writer = await _open(srv, f"/p/_changes?feed=longpoll&since={since}&filter=_design&heartbeat={LONG}")
        await _parked(tasks)
        assert (await s.put("/p/plain", json={})).status == 201
        await asyncio.sleep(0.2)
        assert not reader.at_eof() and len(reader._buffer) == 0  # nothing for it yet
        covered = await _since(s)  # the feed looked at `plain` and waits on after it
        assert (await s.put("/p/_design/d", json={})).status == 201
        _, body = await _body(reader)
        assert [row["id"] for row in body["results"]] == ["_design/d"]
        assert body == await _normal(s, f"since={covered}&filter=_design")
        writer.close()


async def test_a_parked_longpoll_feed_answers_nothing_at_its_timeout_after_heartbeats(tmp_path):
    async with _served(tmp_path) as (srv, s):
        assert (await s.put("/p/d", json={})).status == 201
        since = await _since(s)
        tasks = len(asyncio.all_tasks())
        reader, writer = await _open(srv, "/p/_changes?feed=longpoll&since=now&heartbeat=100&timeout=700")
        await _parked(tasks)
        t0 = time.monotonic()
        blank, body = await _body(reader)
        assert 0.5 < time.monotonic() - t0 < 3
        assert len(blank) >= 3 and set(blank) == {ord("\n")}
        assert body == {"results": [], "last_seq": since, "pending": 0}
        await _root(reader, writer)
        writer.close()
        assert await _clients(s) == 0


async def test_deleting_the_database_answers_its_parked_longpoll_feeds(tmp_path):
    async with _served(tmp_path) as (srv, s):
        since = await _since(s)
        tasks = len(asyncio.all_tasks())
        reader, writer = await _open(srv, f"/p/_changes?feed=longpoll&since=now&heartbeat={LONG}")
        await _parked(tasks)
        assert (await s.delete("/p")).status == 200
        chunks = await _to_end(reader, 5, closes=True)
        assert json.loads(b"".join(chunks)) == {"results": [], "last_seq": since, "pending": 0}
        writer.close()
        assert await _clients(s) == 0


async def test_a_parked_eventsource_feed_sends_events_and_heartbeat_events(tmp_path):
    async with _served(tmp_path) as (srv, s):
        since = await _since(s)
        tasks = len(asyncio.all_tasks())
        reader, writer = await _open(srv, "/p/_changes?feed=eventsource&since=now&heartbeat=150&timeout=1200")
        await _parked(tasks)
        assert await _chunk(reader) == b"event: heartbeat\ndata: \n\n"
        assert (await s.put("/p/one", json={})).status == 201
        chunks = await _to_end(reader, closes=False)
        row = (await _normal(s, f"since={since}"))["results"][0]
        events = [c for c in chunks if not c.startswith(b"event: heartbeat")]
        assert events == [b"data: " + json.dumps(row, separators=(",", ":")).encode()
                          + b"\nid: " + json.dumps(row["seq"]).encode() + b"\n\n"]
        assert len(chunks) > len(events)  # heartbeats went on after it; nothing after them at the end
        await _root(reader, writer)
        writer.close()
        assert await _clients(s) == 0


async def test_an_answered_feeds_connection_waits_without_a_handler_for_its_next_request(tmp_path):
    """After its answer a longpoll feed's connection is kept alive holding no aiohttp handler (no
    task): aiohttp takes it with the client's next request, or closes it after its keep-alive
    timeout, or when the server stops."""
    reader = None
    async with _served(tmp_path, keepalive_timeout=1) as (srv, s):
        tasks = len(asyncio.all_tasks())
        feeds = [await _open(srv, f"/p/_changes?feed=longpoll&since=now&heartbeat={LONG}") for _ in range(FEEDS)]
        await _parked(tasks)
        assert (await s.put("/p/one", json={})).status == 201
        for reader, _ in feeds:
            _, body = await _body(reader)
            assert [row["id"] for row in body["results"]] == ["one"]
        await asyncio.sleep(0.2)
        assert len(asyncio.all_tasks()) <= tasks  # answered, kept alive, and still no handler
        asked, left = feeds[: FEEDS // 2], feeds[FEEDS // 2:]
        for reader, writer in asked:  # a request on the connection: aiohttp answers it
            await _root(reader, writer)
        t0 = time.monotonic()
        for reader, _ in left:  # no request: closed after the keep-alive timeout (1 s)
            assert await asyncio.wait_for(reader.read(), 5) == b""
        assert 0.5 < time.monotonic() - t0 < 4
        for _, writer in feeds:
            writer.close()


async def test_the_server_stopping_closes_the_connections_answered_feeds_keep_alive(tmp_path):
    async with _served(tmp_path) as (srv, s):
        reader, writer = await _open(srv, "/p/_changes?feed=longpoll&since=now&timeout=100")
        _, body = await _body(reader)  # answered at its timeout, kept alive (75 s)
        assert body["results"] == []
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
