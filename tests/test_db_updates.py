"""GET /_db_updates: the node's feed of database created/updated/deleted events.

The parity tests send the same requests to couchpy and to Apache CouchDB 3.4.3 (with its
`_global_changes` database created, which CouchDB needs to record the feed). CouchDB's feed is
written asynchronously and its global order is per shard, so those tests poll until the events
arrive and compare the set of (db_name, type) pairs for the databases they made; the order, the
exact layout and the durability are tested on couchpy.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import couchpy
from tests.parity import peer  # noqa: F401  (pytest fixture)


async def _prepare(peer) -> None:
    if peer.kind == "couchdb":
        async with peer.put("/_global_changes") as r:
            assert r.status in (201, 412), await r.text()


async def _feed(peer, **query) -> tuple[int, dict]:
    async with peer.get("/_db_updates", params={k: str(v) for k, v in query.items()}) as r:
        return r.status, await r.json(content_type=None)


def _name(tag: str) -> str:
    return f"dbu-{tag}-{uuid.uuid4().hex[:10]}"


async def _pairs_for(peer, since: str, names: set[str], expected: set, deadline_s: float = 20.0) -> list:
    """The feed's (db_name, type) rows of `names` after `since`, once `expected` are all there."""
    end = time.monotonic() + deadline_s
    while True:
        status, body = await _feed(peer, since=since)
        assert status == 200, body
        rows = [(r["db_name"], r["type"]) for r in body["results"] if r["db_name"] in names]
        if expected <= set(rows) or time.monotonic() > end:
            return rows
        await asyncio.sleep(0.2)


async def test_created_updated_deleted_listed_once_each(peer):
    await _prepare(peer)
    _, start = await _feed(peer, since="now")
    kept, dropped = _name("kept"), _name("dropped")
    async with peer.put(f"/{kept}") as r:
        assert r.status == 201
    for i in range(5):
        async with peer.put(f"/{kept}/doc{i}", json={"i": i}) as r:
            assert r.status == 201
    async with peer.put(f"/{dropped}") as r:
        assert r.status == 201
    async with peer.delete(f"/{dropped}") as r:
        assert r.status == 200
    expected = {(kept, "created"), (kept, "updated"), (dropped, "created"), (dropped, "deleted")}
    rows = await _pairs_for(peer, start["last_seq"], {kept, dropped}, expected)
    # five writes to `kept` are one `updated` row: each (database, type) pair appears once
    assert sorted(rows) == sorted(expected)
    async with peer.delete(f"/{kept}"):
        pass


async def test_server_admins_only(peer):
    async with aiohttp.ClientSession(base_url=peer.base) as anon:
        async with anon.get("/_db_updates") as r:
            assert r.status == 401
            assert await r.json() == {"error": "unauthorized", "reason": "You are not a server admin."}


@pytest.mark.parametrize("query,reason", [
    ({"feed": "bogus"}, "Supported `feed` types: normal, continuous, longpoll, eventsource"),
    ({"since": "junk"}, "Malformed sequence supplied in 'since' parameter."),
    ({"limit": "junk"}, "invalid_integer"),
    ({"limit": "-1"}, "invalid_integer"),
    ({"timeout": "junk"}, "invalid_integer"),
    ({"heartbeat": "junk"}, "invalid_integer"),
])
async def test_bad_parameters(peer, query, reason):
    await _prepare(peer)
    status, body = await _feed(peer, **query)
    assert (status, body) == (400, {"error": "bad_request", "reason": reason})


async def test_other_methods(peer):
    async with peer.post("/_db_updates", json={}) as r:
        assert r.status == 405
        assert await r.json() == {"error": "method_not_allowed", "reason": "Only GET allowed"}


async def test_limit_zero_and_limit_one(peer):
    await _prepare(peer)
    async with peer.put(f"/{_name('lim')}") as r:
        assert r.status == 201
    status, body = await _feed(peer, limit=0)
    assert status == 200 and body["results"] == []
    end = time.monotonic() + 20
    while True:
        status, body = await _feed(peer, limit=1)
        if body["results"] or time.monotonic() > end:
            break
        await asyncio.sleep(0.2)
    assert status == 200 and len(body["results"]) == 1
    # the last_seq of a limited answer is that of its last row
    assert body["last_seq"] == body["results"][0]["seq"]


async def test_continuous_feed_streams_a_creation(peer):
    await _prepare(peer)
    name = _name("cont")

    async def create():
        await asyncio.sleep(0.5)
        async with peer.put(f"/{name}") as r:
            assert r.status == 201

    task = asyncio.create_task(create())
    async with peer.get("/_db_updates", params={"feed": "continuous", "since": "now", "timeout": "3000"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        lines = [line for line in (await r.text()).split("\n") if line]
    await task
    rows = [json.loads(line) for line in lines]
    assert {"db_name": name, "type": "created"} in [{k: v for k, v in row.items() if k != "seq"} for row in rows[:-1]]
    assert set(rows[-1]) == {"last_seq"}
    assert rows[-1]["last_seq"] == rows[-2]["seq"]


# couchpy alone from here: exact order, layout, waiting and durability


async def _rows(client, **query) -> tuple[list[dict], str]:
    async with client.get("/_db_updates", params={k: str(v) for k, v in query.items()}) as r:
        assert r.status == 200
        body = await r.json()
        return body["results"], body["last_seq"]


async def test_order_and_latest_occurrence(client):
    _, start = await _rows(client, since="now")
    a, b = _name("a"), _name("b")
    for name in (a, b):
        async with client.put(f"/{name}") as r:
            assert r.status == 201
    async with client.put(f"/{a}/x", json={}) as r:
        assert r.status == 201
    await asyncio.sleep(0.2)  # past the 25 ms coalescing delay
    async with client.put(f"/{b}/x", json={}) as r:
        assert r.status == 201
    await asyncio.sleep(0.2)
    async with client.put(f"/{a}/y", json={}) as r:
        assert r.status == 201
    await asyncio.sleep(0.2)
    rows, last = await _rows(client, since=start)
    assert [(r["db_name"], r["type"]) for r in rows] == [(a, "created"), (b, "created"), (b, "updated"), (a, "updated")]
    seqs = [int(r["seq"].split("-")[0]) for r in rows]
    assert seqs == sorted(seqs) and last == rows[-1]["seq"]
    desc, desc_last = await _rows(client, descending="true", limit=2)
    assert [(r["db_name"], r["type"]) for r in desc] == [(a, "updated"), (b, "updated")]
    assert desc_last == desc[-1]["seq"]
    # since a row's seq: only what came after it
    after, _ = await _rows(client, since=rows[1]["seq"])
    assert [(r["db_name"], r["type"]) for r in after] == [(b, "updated"), (a, "updated")]


async def test_longpoll_waits_for_the_next_event_and_times_out_empty(client):
    _, now = await _rows(client, since="now")
    t0 = time.monotonic()
    rows, last = await _rows(client, feed="longpoll", since=now, timeout=400)
    assert rows == [] and last == now and time.monotonic() - t0 >= 0.35
    name = _name("lp")

    async def create():
        await asyncio.sleep(0.3)
        async with client.put(f"/{name}") as r:
            assert r.status == 201

    task = asyncio.create_task(create())
    rows, last = await _rows(client, feed="longpoll", since=now, timeout=5000)
    await task
    assert [(r["db_name"], r["type"]) for r in rows] == [(name, "created")] and last == rows[0]["seq"]


async def test_heartbeat_keeps_the_feed_open_past_timeout(client):
    # as CouchDB's: with a heartbeat, `timeout` does not end the feed; the client leaves
    with pytest.raises(asyncio.TimeoutError):
        async with client.get("/_db_updates", params={"feed": "continuous", "since": "now", "heartbeat": "100",
                                                     "timeout": "200"}) as r:
            got = b""
            async with asyncio.timeout(1.0):
                async for chunk in r.content.iter_any():
                    got += chunk
    assert got and set(got) == {ord("\n")}


async def test_eventsource(client):
    name = _name("es")
    _, now = await _rows(client, since="now")
    async with client.put(f"/{name}") as r:
        assert r.status == 201
    async with client.get("/_db_updates", params={"feed": "eventsource", "since": now, "timeout": "300"}) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        text = await r.text()
    rows, _ = await _rows(client, since=now)
    seq = rows[0]["seq"]
    assert text == f'data: {{"db_name":"{name}","type":"created","seq":"{seq}"}}\nid: "{seq}"\n\n'


async def test_events_survive_a_restart(new_server):
    srv = new_server()
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:
        async with c.put("/kept") as r:
            assert r.status == 201
        async with c.put("/kept/d", json={}) as r:
            assert r.status == 201
        await asyncio.sleep(0.3)
        before, last = await _rows(c)
    srv.stop()
    srv.start()
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:
        after, last_after = await _rows(c)
        assert (after, last_after) == (before, last)
        async with c.put("/more") as r:
            assert r.status == 201
        rows, _ = await _rows(c, since=last)
        # the sequence carries on from where it was
        assert [(r["db_name"], r["type"]) for r in rows] == [("more", "created")]
        assert int(rows[0]["seq"].split("-")[0]) == int(last.split("-")[0]) + 1


# the engine: the feed is the latest occurrence of each (name, type) pair, in order

_OPS = st.lists(st.tuples(st.sampled_from(["create", "write", "delete"]), st.sampled_from(["p", "q", "r"])),
                max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_OPS)
def test_feed_is_latest_occurrence_of_each_pair(ops):
    async def run() -> tuple[list, list]:
        model: list[tuple[str, str]] = []  # every event in order; the feed keeps each pair's last
        with tempfile.TemporaryDirectory() as path:
            node = couchpy.open(path)
            try:
                for op, name in ops:
                    if op == "create" and not node.exists(name):
                        node.create_db(name)
                        model.append((name, "created"))
                    elif op == "write" and node.exists(name):
                        await node.get_db(name).put({"_id": uuid.uuid4().hex})
                        node.db_updates.flush_now()  # one write, one event, for the model's order
                        model.append((name, "updated"))
                    elif op == "delete" and node.exists(name):
                        await node.delete_db(name)
                        model.append((name, "deleted"))
                events = node.db_updates.events(0, None)
                seqs = [e.seq for e in events]
                assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
                assert node.db_updates.seq == (seqs[-1] if seqs else 0)
                return [(e.db_name, e.type) for e in events], model
            finally:
                await node.aclose()

    got, model = asyncio.run(run())
    expected = [pair for i, pair in enumerate(model) if pair not in model[i + 1:]]
    assert got == expected


def test_update_pending_at_deletion_is_not_listed_after_it(tmp_path):
    async def run() -> list:
        node = couchpy.open(tmp_path)
        try:
            db = node.create_db("gone")
            await db.put({"_id": "x"})  # marks it updated, to be flushed after the delay
            await node.delete_db("gone")
            await asyncio.sleep(0.2)
            return [(e.db_name, e.type) for e in node.db_updates.events(0, None)]
        finally:
            await node.aclose()

    assert asyncio.run(run()) == [("gone", "created"), ("gone", "deleted")]
