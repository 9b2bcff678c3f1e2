"""Hostile input, hand-written: every case gets a 4xx or is stored faithfully, never a 500, and the
server keeps serving. Answers are CouchDB 3.4.3's where it gives a sane one (asked of a real
CouchDB); the two places couchpy differs on purpose are marked."""

from __future__ import annotations

import asyncio
import time

import pytest

HALF_OPEN = 500  # stays under a default limit of 1024 open files in the test process
BAD_JSON = {"error": "bad_request", "reason": "invalid UTF-8 JSON"}


async def _put_raw(client, path: str, body: bytes):
    async with client.put(path, data=body, headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("body", [
    b'{"n": 1e400}',                 # a float out of range
    b'{"s": "\xff\xfe"}',            # invalid UTF-8
    b'{"s": "\\ud800"}',             # a lone surrogate
    b'{not json',
    # nested 100000 deep: CouchDB 3.4.3 stores it; couchpy refuses JSON nested deeper than its
    # parser's limit rather than recursing without bound
    b'{"a":' * 100000 + b'1' + b'}' * 100000,
], ids=["huge-exponent", "invalid-utf8", "lone-surrogate", "not-json", "deep-nesting"])
async def test_bodies_that_are_not_json_couchdb_accepts(client, db, body):
    assert await _put_raw(client, f"/{db}/x", body) == (400, BAD_JSON)
    async with client.get(f"/{db}/x") as r:
        assert r.status == 404
    async with client.get("/_up") as r:
        assert r.status == 200


async def test_odd_but_valid_documents_are_stored_faithfully(client, db):
    nested = b'{"a":' * 500 + b'1' + b'}' * 500
    status, out = await _put_raw(client, f"/{db}/deep", nested)
    assert status == 201, out
    async with client.get(f"/{db}/deep") as r:
        doc = await r.json()
    depth, node = 0, doc
    while isinstance(node, dict) and "a" in node:
        node, depth = node["a"], depth + 1
    assert (depth, node) == (500, 1)
    # an integer of 401 digits: kept digit for digit (CouchDB 3.4.3 answers this one with a 500)
    status, out = await _put_raw(client, f"/{db}/num", b'{"n": 1' + b'0' * 400 + b'}')
    assert status == 201, out
    async with client.get(f"/{db}/num") as r:
        text = await r.text()
    assert '"n":1' + "0" * 400 + "}" in text.replace(" ", "")
    # duplicate keys: the last one wins, as in CouchDB
    status, out = await _put_raw(client, f"/{db}/dup", b'{"a": 1, "a": 2}')
    assert status == 201, out
    async with client.get(f"/{db}/dup") as r:
        assert (await r.json())["a"] == 2


async def test_nul_and_invalid_utf8_in_document_ids(client, db):
    async with client.put(f"/{db}/a%00b", json={}) as r:
        assert r.status == 201
        assert (await r.json())["id"] == "a\u0000b"
    async with client.get(f"/{db}/a%00b") as r:
        assert (await r.json())["_id"] == "a\u0000b"
    async with client.put(f"/{db}/%FF%FE", json={}) as r:
        assert (r.status, await r.json()) == (400, {"error": "illegal_docid",
                                                    "reason": "Document id must be valid UTF-8"})
    async with client.get(f"/{db}/_all_docs") as r:
        assert [row["id"] for row in (await r.json())["rows"]] == ["a\u0000b"]


async def test_oversized_header_is_refused_and_the_server_keeps_serving(client):
    async with client.get("/", headers={"X-Big": "a" * 100_000}) as r:
        assert r.status == 400
    async with client.get("/_up") as r:
        assert r.status == 200


async def test_half_open_connections_do_not_stop_other_clients(server, client):
    """Hundreds of connections that send half a request head and stop (slowloris-style): the
    server keeps answering everyone else promptly."""
    writers = []
    try:
        for _ in range(HALF_OPEN):
            _, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            writers.append(w)
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        async with client.get("/_up") as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 5.0
    finally:
        for w in writers:
            w.close()
