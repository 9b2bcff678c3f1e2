"""`_changes?since=<RFC 3339 time>` and `until=<time|seq>` (couchpy.timeseq): the engine's time
index under a clock the test moves, kept through compaction, purge and reopening, for databases
written before the index existed; and the HTTP feed on a real server."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

import couchpy
from couchpy import timeseq
from couchpy.config import Config

BASE = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _node(tmp_path):
    config = Config(tmp_path / "couchpy.ini")
    config.set("couchdb", "time_seq_bucket_seconds", "10")
    return couchpy.open(tmp_path, config=config)


def iso(t: float) -> str:
    return timeseq.format_time(int(t * 1000))


async def test_engine_time_to_sequence(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("t")
    now = [BASE]
    db.clock = lambda: now[0]
    written = []  # (time, seq)
    for i in range(30):
        now[0] = BASE + i * 7  # across buckets of 10 s
        await db.put({"_id": f"d{i}"})
        written.append((now[0], db.update_seq))
    for t in [BASE - 100, BASE, BASE + 3, BASE + 50, BASE + 70, BASE + 203, BASE + 1000]:
        ms = int(t * 1000)
        since, until = db.seq_since_time(ms), db.seq_until_time(ms)
        assert all(seq > since for when, seq in written if when >= t)
        assert all(seq <= until for when, seq in written if when <= t)
        # coarse, but never coarser than a bucket
        assert all(seq <= since for when, seq in written if when < t - 10)
        assert all(seq > until for when, seq in written if when > t + 10)
    assert db.seq_since_time(int((BASE - 1) * 1000)) == 0
    assert db.seq_since_time(int((BASE + 1000) * 1000)) == db.update_seq
    # a clock stepped back: later writes still come after earlier ones in time order
    now[0] = BASE + 100
    await db.put({"_id": "late"})
    late = db.update_seq
    assert db.seq_since_time(int((BASE + 203) * 1000)) < late  # recorded at the last time seen
    # purges move the sequence and are indexed too
    now[0] = BASE + 500
    await db.purge({"d0": [db.get("d0")["_rev"]]})
    assert db.seq_since_time(int((BASE + 450) * 1000)) < db.update_seq
    # compaction keeps the index
    before = [db.seq_since_time(int(t * 1000)) for t in (BASE + 35, BASE + 120)]
    await db.compact()
    assert [db.seq_since_time(int(t * 1000)) for t in (BASE + 35, BASE + 120)] == before
    await node.aclose()
    node = _node(tmp_path)
    db = node.get_db("t")
    assert [db.seq_since_time(int(t * 1000)) for t in (BASE + 35, BASE + 120)] == before
    await node.aclose()


async def test_compaction_coarsens_old_buckets(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("c")
    now = [BASE]
    db.clock = lambda: now[0]
    written = []
    for i in range(40):
        now[0] = BASE + i * 3600  # one write an hour for 40 hours
        await db.put({"_id": f"d{i}"})
        written.append((now[0], db.update_seq))

    def entries() -> int:
        with db.store.read() as txn:
            return txn.stat(db.store.db(timeseq.SUBDB))["entries"]
    assert entries() == 40
    now[0] = BASE + 400 * 86400  # more than a year later
    await db.compact()
    assert 1 <= entries() <= 2  # merged into 30-day buckets
    for t in [BASE - 1, BASE + 1800, BASE + 20 * 3600, BASE + 39 * 3600, BASE + 50 * 3600]:
        since, until = db.seq_since_time(int(t * 1000)), db.seq_until_time(int(t * 1000))
        assert all(seq > since for when, seq in written if when >= t)
        assert all(seq <= until for when, seq in written if when <= t)
    # recent writes are indexed at full precision again
    await db.put({"_id": "new"})
    assert db.seq_since_time(int((now[0] - 1) * 1000)) == db.update_seq - 1
    await node.aclose()


async def test_database_written_before_the_index_existed(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("old")
    now = [BASE]
    db.clock = lambda: now[0]
    for i in range(5):
        await db.put({"_id": f"old{i}"})
    # as a database written by a couchpy without the index: no entries at all
    handle = db.store.db(timeseq.SUBDB)
    db.store.write(lambda txn: txn.drop(handle, delete=False))
    assert db.seq_since_time(int(BASE * 1000)) == 0  # times unknown: everything is after
    assert db.seq_until_time(int((BASE - 10_000) * 1000)) == 5  # ... and before
    now[0] = BASE + 100
    await db.put({"_id": "new"})
    # a time before the first indexed write: the old changes may be after it
    assert db.seq_since_time(int((BASE + 50) * 1000)) == 0
    assert db.seq_until_time(int((BASE + 50) * 1000)) == 5
    # a time after it: the old changes came before the first indexed write
    assert db.seq_since_time(int((BASE + 200) * 1000)) == 6
    assert db.seq_until_time(int((BASE + 200) * 1000)) == 6
    await node.aclose()


# ------------------------------------------------------------------ over HTTP


@pytest.fixture
async def timed(new_server):
    srv = new_server(config={"couchdb": {"time_seq_bucket_seconds": "1"}})
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as client:
        assert (await client.put("/tdb")).status == 201
        yield client


async def _changes(client, status=200, **params):
    resp = await client.get("/tdb/_changes", params=params)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_since_and_until_times_over_http(timed):
    client = timed
    t0 = time.time()
    for i in range(3):
        assert (await client.put(f"/tdb/a{i}", json={})).status == 201
    await asyncio.sleep(2.2)  # past the bucket of the first writes, and into another second
    t1 = time.time()
    await asyncio.sleep(1.1)
    for i in range(2):
        assert (await client.put(f"/tdb/b{i}", json={})).status == 201
    ids = lambda body: [r["id"] for r in body["results"]]  # noqa: E731
    assert ids(await _changes(client, since=iso(t0 - 5))) == ["a0", "a1", "a2", "b0", "b1"]
    later = await _changes(client, since=iso(t1))
    assert ids(later) == ["b0", "b1"]
    assert later["last_seq"].startswith("5-")
    assert ids(await _changes(client, since=iso(t1 + 3600))) == []
    assert ids(await _changes(client, until=iso(t1))) == ["a0", "a1", "a2"]
    body = await _changes(client, since="1", until="4")
    assert ids(body) == ["a1", "a2", "b0"] and body["last_seq"].startswith("4-")
    assert ids(await _changes(client, since=iso(t0 - 5), until=iso(t1), limit="2")) == ["a0", "a1"]
    # fractional seconds and offsets are RFC 3339 too
    assert ids(await _changes(client, since=iso(t1).replace("Z", ".000+00:00"))) == ["b0", "b1"]
    # POST bodies take them as well
    resp = await client.post("/tdb/_changes", json={"since": iso(t1)})
    assert ids(await resp.json()) == ["b0", "b1"]


async def test_until_ends_continuous_and_longpoll_feeds(timed):
    client = timed
    for i in range(3):
        assert (await client.put(f"/tdb/c{i}", json={})).status == 201
    start = time.monotonic()
    resp = await client.get("/tdb/_changes", params={"feed": "continuous", "until": "2", "timeout": "20000"})
    lines = [line for line in (await resp.text()).splitlines() if line.strip()]
    assert time.monotonic() - start < 10  # it ended at `until`, not at the timeout
    assert [line for line in lines if '"id"' in line].__len__() == 2
    assert '"last_seq":"2-' in lines[-1]
    # a longpoll already past `until` answers at once, empty
    start = time.monotonic()
    body = await _changes(client, feed="longpoll", since="3", until="2", timeout="20000")
    assert body["results"] == [] and time.monotonic() - start < 10
    # a continuous feed with a future `until` waits for it and ends when it is reached
    task = asyncio.ensure_future(client.get("/tdb/_changes", params={"feed": "continuous", "since": "3",
                                                                    "until": "4", "timeout": "20000"}))
    await asyncio.sleep(0.5)
    assert (await client.put("/tdb/c3", json={})).status == 201
    resp = await asyncio.wait_for(task, 10)
    text = await asyncio.wait_for(resp.text(), 10)
    assert '"id":"c3"' in text and '"last_seq":"4-' in text


@pytest.mark.parametrize("param,value", [
    ("since", "2025-13-01T00:00:00Z"), ("since", "2025-07-21"), ("since", "2025-07-21T12:00:00"),
    ("until", "2025-02-30T00:00:00Z"), ("until", "junk"), ("until", "-3"),
])
async def test_malformed_times_are_bad_requests(client, db, param, value):
    resp = await client.get(f"/{db}/_changes", params={param: value})
    assert resp.status == 400
    assert await resp.json() == {"error": "bad_request",
                                 "reason": f"Malformed sequence supplied in '{param}' parameter."}


async def test_malformed_since_answer_matches_couchdb(couch_client, client, db):
    """The bad-time answer is CouchDB 3.4.3's answer to any malformed `since`."""
    name = "timeseq-parity"
    await couch_client.put(f"/{name}")
    try:
        theirs = await couch_client.get(f"/{name}/_changes", params={"since": "2025-13-01T00:00:00Z"})
        ours = await client.get(f"/{db}/_changes", params={"since": "2025-13-01T00:00:00Z"})
        assert (ours.status, await ours.json()) == (theirs.status, await theirs.json())
    finally:
        await couch_client.delete(f"/{name}")


@pytest.mark.parametrize("method,param,value", [
    ("GET", "until", "["), ("GET", "until", "{}"), ("GET", "until", "true"), ("GET", "since", "0000-01-01T00:00:00Z"),
    ("POST", "until", {"a": 1}), ("POST", "until", True), ("POST", "until", [1.5]), ("POST", "since", "2025-99-01"),
])
async def test_odd_values_are_client_errors(client, db, method, param, value):
    if method == "GET":
        resp = await client.get(f"/{db}/_changes", params={param: value})
    else:
        resp = await client.post(f"/{db}/_changes", json={param: value})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"] == "bad_request"


async def test_huge_until_and_far_future_times_are_fine(client, db):
    assert (await client.put(f"/{db}/x", json={})).status == 201
    for params in ({"until": "99999999999999999999999"}, {"since": "9999-12-31T23:59:59Z"},
                   {"until": "9999-12-31T23:59:59Z"}, {"since": "1970-01-01T00:00:00Z", "descending": "true",
                                                       "until": "1"}):
        resp = await client.get(f"/{db}/_changes", params=params)
        assert resp.status == 200, (params, await resp.text())
    body = await (await client.get(f"/{db}/_changes", params={"until": "9999-12-31T23:59:59Z"})).json()
    assert [r["id"] for r in body["results"]] == ["x"]
    body = await (await client.get(f"/{db}/_changes", params={"since": "9999-12-31T23:59:59Z"})).json()
    assert body["results"] == []
