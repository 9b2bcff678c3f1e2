"""_changes `limit` and `pending`, each case against couchpy and the real CouchDB (same answers).

CouchDB's `pending` counts the by-sequence entries its enumeration did not reach: after a limited
listing, those past its last row (in the listing's direction); after `limit=0`, all of them; and
with `_doc_ids`/`_design`, which look their documents up instead of scanning, every entry but the
documents listed.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)

def num(seq: str) -> int:
    return int(str(seq).split("-", 1)[0])


async def _setup(peer, pdb) -> None:
    """Four writes, three documents: b@2, c@3, a@4 in the by-sequence index."""
    rev = await put_doc(peer, pdb, "a", {"v": 1})
    await put_doc(peer, pdb, "b", {"v": 1})
    await put_doc(peer, pdb, "c", {"v": 1})
    await put_doc(peer, pdb, "a", {"v": 2, "_rev": rev})


async def _changes(peer, pdb, **params) -> dict:
    query = {k: (json.dumps(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v))
             for k, v in params.items()}
    async with peer.get(f"/{pdb}/_changes", params=query) as r:
        assert r.status == 200, await r.text()
        if params.get("feed") == "continuous":
            lines = [json.loads(line) for line in (await r.text()).splitlines() if line.strip()]
            return {"results": lines[:-1], **lines[-1]}
        return await r.json()


def _shape(body: dict) -> tuple:
    return [(num(row["seq"]), row["id"]) for row in body["results"]], num(body["last_seq"]), body["pending"]


@pytest.mark.parametrize("feed", ["normal", "longpoll", "continuous"])
async def test_limit_zero_lists_nothing_and_everything_is_pending(peer, pdb, feed):
    await _setup(peer, pdb)
    body = await _changes(peer, pdb, feed=feed, limit=0, timeout=100)
    assert _shape(body) == ([], 0, 3)


@pytest.mark.parametrize("feed", ["normal", "continuous"])
@pytest.mark.parametrize("limit", ["99999999999999999999", "-1"])
async def test_limit_beyond_any_feed_or_negative_means_no_limit(peer, pdb, feed, limit):
    await _setup(peer, pdb)
    body = await _changes(peer, pdb, feed=feed, limit=limit, timeout=100)
    assert _shape(body) == ([(2, "b"), (3, "c"), (4, "a")], 4, 0)


@pytest.mark.parametrize("feed", ["normal", "longpoll", "continuous"])
async def test_pending_after_a_limited_listing(peer, pdb, feed):
    await _setup(peer, pdb)
    assert _shape(await _changes(peer, pdb, feed=feed, limit=1, timeout=100)) == ([(2, "b")], 2, 2)
    assert _shape(await _changes(peer, pdb, feed=feed, limit=2, timeout=100)) == ([(2, "b"), (3, "c")], 3, 1)


async def test_pending_after_a_limited_descending_listing(peer, pdb):
    await _setup(peer, pdb)
    assert _shape(await _changes(peer, pdb, descending=True, limit=1)) == ([(4, "a")], 4, 2)
    assert _shape(await _changes(peer, pdb, descending=True, limit=2)) == ([(4, "a"), (3, "c")], 3, 1)
    assert _shape(await _changes(peer, pdb, descending=True)) == ([(4, "a"), (3, "c"), (2, "b")], 2, 0)
    # with no row, a descending listing (which starts at the newest change) covers everything
    assert _shape(await _changes(peer, pdb, descending=True, limit=0)) == ([], 4, 3)
    # one that scanned to the end covers down to the oldest change, whatever its filter kept
    async with peer.post(f"/{pdb}/_changes", params={"descending": "true", "filter": "_selector"},
                         json={"selector": {"v": 2}}) as r:
        assert _shape(await r.json()) == ([(4, "a")], 2, 0)
    assert _shape(await _changes(peer, pdb, descending=True, filter="_doc_ids", doc_ids=["zz"])) == ([], 4, 3)


@pytest.mark.parametrize("feed", ["normal", "continuous"])
async def test_pending_of_lookup_filters_counts_the_documents_not_listed(peer, pdb, feed):
    await _setup(peer, pdb)
    body = await _changes(peer, pdb, feed=feed, filter="_doc_ids", doc_ids=["c", "a"], timeout=100)
    assert _shape(body) == ([(3, "c"), (4, "a")], 4, 1)
    body = await _changes(peer, pdb, feed=feed, filter="_doc_ids", doc_ids=["c", "a"], limit=1, timeout=100)
    assert _shape(body) == ([(3, "c")], 3, 2)
    body = await _changes(peer, pdb, feed=feed, filter="_design", timeout=100)
    assert _shape(body) == ([], 4, 3)


async def test_pending_of_a_scanning_filter(peer, pdb):
    await _setup(peer, pdb)
    async with peer.post(f"/{pdb}/_changes", params={"filter": "_selector"}, json={"selector": {"v": 2}}) as r:
        assert _shape(await r.json()) == ([(4, "a")], 4, 0)
    async with peer.post(f"/{pdb}/_changes", params={"filter": "_selector", "limit": "1"},
                         json={"selector": {"v": 1}}) as r:
        rows, _, left = _shape(await r.json())
        assert (rows, left) == ([(2, "b")], 2)


async def test_malformed_limit_is_a_400(client, db):
    # CouchDB answers these with a 500 (badarg): a malformed parameter is the client's error
    for bad in ("abc", "1.5"):
        async with client.get(f"/{db}/_changes", params={"limit": bad}) as r:
            assert r.status == 400
            assert await r.json() == {"error": "query_parse_error", "reason": 'Invalid value for integer: "limit"'}


@pytest.mark.parametrize("limit,rows,tail", [(None, 3, b"\n\n"), ("1", 1, b"\n\n\n")])
async def test_an_event_stream_ends_without_a_closing_event(peer, pdb, limit, rows, tail):
    await _setup(peer, pdb)
    params = {"feed": "eventsource", "timeout": "100", **({"limit": limit} if limit else {})}
    # not on a kept-alive connection: CouchDB may send a stray chunk after an event stream ends,
    # which would break the next request on the same connection (the fixture's cleanup)
    async with peer.get(f"/{pdb}/_changes", params=params, headers={"Connection": "close"}) as r:
        body = await r.read()
    assert body.count(b"data: {") == rows
    assert b"event:" not in body
    assert body.endswith(b"\nid: " + body.rsplit(b"\nid: ", 1)[1].split(b"\n")[0] + tail)


async def test_an_event_stream_with_limit_zero_is_empty(client, db):
    # CouchDB's answer here is not valid HTTP (a stray chunk after the response): an empty stream
    async with client.put(f"/{db}/a", json={}) as r:
        assert r.status == 201
    async with client.get(f"/{db}/_changes", params={"feed": "eventsource", "limit": "0", "timeout": "100"}) as r:
        assert (r.status, await r.read()) == (200, b"")


async def test_a_continuous_feed_ended_by_its_timeout_keeps_its_connection_alive(peer, pdb):
    """The client's next request on the same connection is answered, whether sent after the
    feed's end or behind the feed while it runs (couchpy: http_api/parkedfeed.py)."""
    host, port = peer.base.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    token = base64.b64encode(f"{peer.session.auth.login}:{peer.session.auth.password}".encode()).decode()

    def send(path: str) -> None:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode())

    async def head() -> bytes:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        return head.lower()

    async def feed_to_end() -> list[dict]:
        assert b"transfer-encoding: chunked" in await head()
        body = b""
        while (size := int(await asyncio.wait_for(reader.readuntil(b"\r\n"), 10), 16)) != 0:
            body += (await asyncio.wait_for(reader.readexactly(size + 2), 10))[:-2]
        assert await asyncio.wait_for(reader.readexactly(2), 10) == b"\r\n"
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    async def root() -> None:
        length = next(int(line.split(b":")[1]) for line in (await head()).split(b"\r\n")
                      if line.startswith(b"content-length:"))
        assert b'"couchdb":"Welcome"' in await asyncio.wait_for(reader.readexactly(length), 10)

    try:
        for _ in range(2):
            send(f"/{pdb}/_changes?feed=continuous&since=now&timeout=300")
            assert list((await feed_to_end())[-1]) == ["last_seq", "pending"]
            send("/")
            await root()
        send(f"/{pdb}/_changes?feed=continuous&since=now&timeout=500")
        await asyncio.sleep(0.2)  # the feed is running (on couchpy: parked)
        send("/")
        assert list((await feed_to_end())[-1]) == ["last_seq", "pending"]
        await root()
    finally:
        writer.close()
