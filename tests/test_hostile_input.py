"""Hostile input, hand-written: every case gets a 4xx or is stored faithfully, never a 500, and the
server keeps serving. Answers are CouchDB 3.4.3's where it gives a sane one (asked of a real
CouchDB); the two places couchpy differs on purpose are marked."""

from __future__ import annotations

import asyncio
import base64
import resource
import time

import aiohttp
import pytest
import schemathesis

from tests import fuzzapi

HALF_OPEN = 500  # stays under a default limit of 1024 open files in the test process
MANY_HALF_OPEN = 3000  # the test raises its open-file limit (and so its server's) for these
MANY_ATTACHMENTS = 10_000
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


async def _many_attachments(client, db_url: str) -> tuple[int, dict]:
    atts = {f"a{i:05d}.txt": {"content_type": "text/plain", "data": base64.b64encode(b"%d" % i).decode()}
            for i in range(MANY_ATTACHMENTS)}
    async with client.put(f"{db_url}/many", json={"_attachments": atts}) as r:
        return r.status, await r.json()


async def test_ten_thousand_attachments_on_one_document(client, db, couch_client, dbname):
    """CouchDB 3.4.3 stores a document with 10000 inline attachments; so does couchpy, and every
    one of them reads back, as stubs, inline and one by one."""
    async with couch_client.put(f"/{dbname}") as r:
        assert r.status == 201
    try:
        status, out = await asyncio.wait_for(_many_attachments(couch_client, f"/{dbname}"), 120)
        assert status == 201, out
    finally:
        async with couch_client.delete(f"/{dbname}"):
            pass
    status, out = await asyncio.wait_for(_many_attachments(client, f"/{db}"), 120)
    assert status == 201, out
    rev = out["rev"]
    async with client.get(f"/{db}/many") as r:
        stubs = (await r.json())["_attachments"]
    assert len(stubs) == MANY_ATTACHMENTS
    assert all(s["stub"] and s["revpos"] == 1 for s in stubs.values())
    async with client.get(f"/{db}/many/a04321.txt") as r:
        assert (r.status, await r.read()) == (200, b"4321")
    async with client.get(f"/{db}/many", params={"attachments": "true"}) as r:
        inline = (await r.json())["_attachments"]
    assert {name: base64.b64decode(a["data"]) for name, a in inline.items()} == {
        f"a{i:05d}.txt": b"%d" % i for i in range(MANY_ATTACHMENTS)}
    # an update that keeps every stub and adds one more
    async with client.put(f"/{db}/many", json={"_rev": rev, "_attachments": {
            **stubs, "new.txt": {"content_type": "text/plain", "data": "bmV3"}}}) as r:
        assert r.status == 201, await r.text()
    async with client.get(f"/{db}/many/a00000.txt") as r:
        assert (r.status, await r.read()) == (200, b"0")
    async with client.get("/_up") as r:
        assert r.status == 200


async def _timed_up(client) -> float:
    t0 = time.monotonic()
    async with client.get("/_up") as r:
        assert r.status == 200
    return time.monotonic() - t0


async def test_slow_clients_do_not_stop_other_clients(server, client, db):
    """Slowloris-style clients trickle a request head, or a document body, one byte at a time for
    a few seconds: meanwhile everyone else is answered promptly, and a slow body that does arrive
    in the end is stored."""
    slow_heads, slow_bodies = 50, 20
    body = b'{"slow": "' + b"x" * 40 + b'"}'
    credentials = client.auth.encode() if client.auth else ""

    async def trickle_head() -> None:
        _, w = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            for byte in b"GET /_up HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30:
                w.write(bytes([byte]))
                await w.drain()
                await asyncio.sleep(0.1)
        finally:
            w.close()

    async def trickle_body(i: int) -> int:
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            w.write(f"PUT /{db}/slow{i} HTTP/1.1\r\nHost: x\r\nAuthorization: {credentials}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            for byte in body:
                w.write(bytes([byte]))
                await w.drain()
                await asyncio.sleep(0.06)
            status_line = await asyncio.wait_for(r.readline(), 30)
            return int(status_line.split()[1])
        finally:
            w.close()

    slow = [asyncio.create_task(trickle_head()) for _ in range(slow_heads)]
    slow += [asyncio.create_task(trickle_body(i)) for i in range(slow_bodies)]
    await asyncio.sleep(0.5)
    waits = []
    for _ in range(10):
        waits.append(await _timed_up(client))
        await asyncio.sleep(0.2)
    results = await asyncio.wait_for(asyncio.gather(*slow), 60)
    assert max(waits) < 5.0, waits
    assert results[slow_heads:] == [201] * slow_bodies
    async with client.get(f"/{db}/slow7") as r:
        assert (await r.json())["slow"] == "x" * 40


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def test_thousands_of_half_open_connections(new_server):
    """Thousands of connections, each with half a request head sent, held open: the server keeps
    answering others within bounded time and its memory stays bounded; once they go, it still
    serves."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = MANY_HALF_OPEN + 500
    assert hard >= need, f"the open-file limit ({hard}) is below what this test needs ({need})"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    srv = new_server(name="halfopen")  # started now: it inherits the raised limit
    writers = []
    try:
        async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as client:
            await _timed_up(client)
            rss_before = _rss_kib(srv.pid)
            for i in range(MANY_HALF_OPEN):
                _, w = await asyncio.open_connection("127.0.0.1", srv.port)
                w.write(b"PUT /db/doc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":" if i % 2
                        else b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
                writers.append(w)
            await asyncio.sleep(1.0)
            waits = [await _timed_up(client) for _ in range(5)]
            rss_during = _rss_kib(srv.pid)
            assert max(waits) < 10.0, waits
            # a few KiB per connection at most (the server holds thousands of them)
            assert rss_during - rss_before < MANY_HALF_OPEN * 32, (rss_before, rss_during)
            for w in writers:
                w.close()
            writers = []
            await asyncio.sleep(0.5)
            async with client.put("/after") as r:
                assert r.status == 201
    finally:
        for w in writers:
            w.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_dbs_info_of_names_no_database_can_have(client):
    """Found by Schemathesis: an empty name or one longer than an LMDB key was a 500. CouchDB
    3.4.3 answers not_found for each."""
    keys = ["", "a" * 600, "a\u0000", "\U0002ff1b"]
    async with client.post("/_dbs_info", json={"keys": keys}) as r:
        assert r.status == 200
        assert await r.json() == [{"key": k, "error": "not_found"} for k in keys]


async def test_security_object_keeps_a_huge_integer_across_writes_and_restarts(new_server):
    """Found by Schemathesis: a `_security` object holding an integer beyond 64 bits was a 500.
    CouchDB 3.4.3 stores it digit for digit; so does couchpy, through later writes, a purge, a
    compaction and a restart."""
    big = "1" + "0" * 40
    body = b'{"admins":{},"members":{},"x":' + big.encode() + b"}"
    srv = new_server(name="bigsec")
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as client:
        async with client.put("/bigsec") as r:
            assert r.status == 201
        async with client.put("/bigsec/_security", data=body, headers={"Content-Type": "application/json"}) as r:
            assert (r.status, await r.json()) == (200, {"ok": True})
        async with client.put("/bigsec/doc", json={"a": 1}) as r:
            assert r.status == 201
            rev = (await r.json())["rev"]
        async with client.post("/bigsec/_purge", json={"doc": [rev]}) as r:
            assert r.status == 201, await r.text()
        async with client.post("/bigsec/_compact", json={}) as r:
            assert r.status == 202
        for _ in range(100):
            async with client.get("/bigsec") as r:
                if not (await r.json())["compact_running"]:
                    break
            await asyncio.sleep(0.1)
    srv.stop()
    srv.start()
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as client:
        async with client.get("/bigsec/_security") as r:
            assert r.status == 200
            assert f'"x":{big}' in (await r.text()).replace(" ", "")


async def test_purged_infos_limit_beyond_64_bits(client, db):
    """Found by Schemathesis: a `_purged_infos_limit` beyond 64 bits was a 500; CouchDB 3.4.3
    accepts it."""
    big = b"84460887166158259617792"
    async with client.put(f"/{db}/_purged_infos_limit", data=big, headers={"Content-Type": "application/json"}) as r:
        assert (r.status, await r.json()) == (200, {"ok": True})
    async with client.get(f"/{db}/_purged_infos_limit") as r:
        assert (r.status, await r.read()) == (200, big + b"\n")


async def test_a_purge_naming_the_empty_id_leaves_indexes_working(client, db):
    """Found by the long Schemathesis run: `POST /{db}/_purge` naming the empty id is accepted and
    recorded (no document has that id, so nothing is purged; CouchDB 3.4.3 answers the same),
    and every view of the database was a 500 from then on: catching up with the purges, the
    index looked the id up, and LMDB refuses an empty key. Mango's JSON indexes are views too."""
    ddoc = {"views": {"v": {"map": "function(d){emit(d._id, 1)}"}}}
    async with client.put(f"/{db}/_design/x", json=ddoc) as r:
        assert r.status == 201
    async with client.post(f"/{db}/_index", json={"index": {"fields": ["n"]}, "name": "n"}) as r:
        assert r.status == 200
    async with client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": "a", "n": 1}, {"_id": "b", "n": 2}]}) as r:
        assert r.status == 201
    find = {"selector": {"n": {"$gt": 0}}, "use_index": "n"}
    # both indexes built before the purge, so that they catch up with it afterwards
    async with client.get(f"/{db}/_design/x/_view/v") as r:
        assert r.status == 200 and (await r.json())["total_rows"] == 2
    async with client.post(f"/{db}/_find", json=find) as r:
        assert r.status == 200 and len((await r.json())["docs"]) == 2
    async with client.get(f"/{db}/b") as r:
        rev_b = (await r.json())["_rev"]
    async with client.post(f"/{db}/_purge", json={"": ["1-abc"], "b": [rev_b]}) as r:
        assert (r.status, await r.json()) == (201, {"purge_seq": None, "purged": {"": [], "b": [rev_b]}})
    async with client.get(f"/{db}/_design/x/_view/v") as r:
        assert r.status == 200
        assert [row["id"] for row in (await r.json())["rows"]] == ["a"]  # the purge of "b" applied
    async with client.post(f"/{db}/_find", json=find) as r:
        assert r.status == 200
        assert [d["_id"] for d in (await r.json())["docs"]] == ["a"]


@pytest.mark.parametrize("query, ids", [
    ("start_key=8", ["_local/a", "_local/b"]),
    ("end_key=8", []),
    ("descending=true&start_key=8", []),
    ("descending=true&end_key=8", ["_local/b", "_local/a"]),
    ("key=8", []),
    ("start_key=null&end_key=%22_local%2Fa%22", ["_local/a"]),
    ("start_key=%5B1%5D", ["_local/a", "_local/b"]),
    ("start_key=%7B%7D", ["_local/a", "_local/b"]),
])
async def test_local_docs_with_a_bound_that_is_no_string(client, db, query, ids):
    """Found by the long Schemathesis run: `_local_docs?start_key=8` was a 500 (a number compared
    with the ids). As in `_all_docs`, every JSON value but a string sorts before every id; the
    answers are CouchDB 3.4.3's, asked."""
    for docid in ("_local/a", "_local/b"):
        async with client.put(f"/{db}/{docid}", json={}) as r:
            assert r.status == 201
    async with client.get(f"/{db}/_local_docs?{query}") as r:
        assert r.status == 200
        assert [row["id"] for row in (await r.json())["rows"]] == ids


@pytest.mark.parametrize("path, name", [("/{db}/{docid}", "new"), ("/{db}/_design/{ddoc}", "new"),
                                        ("/{db}/{docid}", "old"), ("/{db}/_local/{ldoc}", "new")])
async def test_a_put_of_a_deleted_document_is_a_documented_200(server, client, db, path, name):
    """Found by the long Schemathesis run: a PUT of `{"_deleted": true}` is a 200, as in CouchDB
    3.4.3 (asked: for a new id, a new design document id, and with the `rev` of an existing
    document), but the OpenAPI document listed 200 for `_local` documents only. The request is
    Schemathesis's, built from the served document, and its answer gets the fuzzer's checks."""
    query = {}
    if name == "old":
        async with client.put(f"/{db}/old", json={}) as r:
            query = {"rev": (await r.json())["rev"]}
    async with client.get("/_openapi.json") as r:
        doc = await r.json()
    schema = schemathesis.openapi.from_dict(doc)
    [op] = [o for o in fuzzapi.operations(schema) if (o.method, o.path) == ("put", path)]
    names = {"db": db, "docid": name, "ddoc": name, "ldoc": name}
    case = op.Case(path_parameters={n: v for n, v in names.items() if "{" + n + "}" in path},
                   query=query, body={"_deleted": True}, media_type="application/json")
    response = case.call(base_url=server.base, auth=(server.user, server.password), timeout=30)
    assert response.status_code == 200
    assert set(response.json()) == {"ok", "id", "rev"}
    case.validate_response(response, checks=fuzzapi.CHECKS)


@pytest.mark.parametrize("feed", ["normal", "longpoll", "continuous", "eventsource"])
@pytest.mark.parametrize("path", ["/{db}/_changes", "/_db_updates"])
async def test_head_of_a_feed_has_no_body(server, db, path, feed):
    """Found by Schemathesis: HEAD of a continuous `_changes` feed (and of every `_db_updates`
    feed) sent the feed's lines after its head, which a client reads as the status line of its
    next answer on the connection."""
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        w.write(f"HEAD {path.format(db=db)}?feed={feed}&timeout=50 HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {server.auth.encode()}\r\n\r\n"
                f"GET /_up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(r.read(), 10)
    finally:
        w.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    assert rest.startswith(b"HTTP/1.1 200"), data  # the next answer follows the head at once
