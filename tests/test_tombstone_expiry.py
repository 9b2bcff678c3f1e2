"""Tombstone expiry (couchpy.tombstones): deletions older than `[couchdb] tombstone_ttl` or the
database's `_tombstone_ttl` are purged by a background task; a replication whose checkpoint is
below the expiry horizon is told (the changes feed's marker, the job's `_scheduler` info and its
checkpoint history) instead of silently keeping documents deleted on the source."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import couchpy
from couchpy import tombstones
from couchpy.config import Config

BASE = 1_700_000_000.0


@given(st.one_of(st.none(), st.text(max_size=4), st.integers(-5, 10).map(str)),
       st.one_of(st.none(), st.booleans(), st.integers(-5, 10), st.text(max_size=2)))
def test_effective_ttl(config_value, override):
    got = tombstones.effective_ttl(config_value, override)
    if isinstance(override, int) and not isinstance(override, bool):
        assert got == (override if override > 0 else None)  # the database's own value wins
    else:
        try:
            node = int(config_value.strip()) if config_value not in (None, "") else 0
        except (ValueError, AttributeError):
            node = 0
        assert got == (node if node > 0 else None)


@given(st.integers(0, 50), st.integers(0, 50))
def test_marker_only_between_a_fresh_start_and_the_horizon(horizon, since):
    assert tombstones.expired_marker(horizon, since) == (0 < since < horizon)


def _node(tmp_path, **couchdb):
    config = Config(tmp_path / "couchpy.ini")
    config.set("couchdb", "time_seq_bucket_seconds", "10")
    for k, v in couchdb.items():
        config.set("couchdb", k, str(v))
    return couchpy.open(tmp_path, config=config)


async def test_engine_expires_only_old_tombstones(tmp_path):
    node = _node(tmp_path, tombstone_ttl=100)
    db = node.create_db("t")
    now = [BASE]
    db.clock = lambda: now[0]
    for i in range(6):
        await db.put({"_id": f"d{i}", "n": i})
    for i in range(3):  # deleted at BASE
        await db.put({"_id": f"d{i}", "_rev": db.get(f"d{i}")["_rev"], "_deleted": True})
    old_horizon = db.update_seq
    now[0] = BASE + 60
    await db.put({"_id": "d3", "_rev": db.get("d3")["_rev"], "_deleted": True})  # deleted later
    # a conflicted document whose winner is live keeps its deleted branch
    await db.bulk_docs([{"_id": "d4", "_rev": "1-aaaa", "_revisions": {"start": 1, "ids": ["aaaa"]}, "_deleted": True}],
                       new_edits=False)
    assert (await tombstones.expire(db, int((BASE + 50) * 1000)))[0] == 0  # nothing old enough yet
    purged, reached = await tombstones.expire(db, int((BASE + 130) * 1000))
    assert purged == 3
    for i in range(3):
        assert db.get_docinfo(f"d{i}") is None
    assert db.get_docinfo("d3").deleted and not db.get_docinfo("d4").deleted and db.get_docinfo("d5")
    assert tombstones.horizon_of(db) == old_horizon
    assert [i["id"] for i in db.purged_infos()] == ["d0", "d1", "d2"]
    assert db.info()["doc_del_count"] == 1 and db.info()["doc_count"] == 2
    # the next scan starts where this one ended and finds d3 once it is old enough
    assert (await tombstones.expire(db, int((BASE + 130) * 1000), start=reached))[0] == 0
    purged, _ = await tombstones.expire(db, int((BASE + 200) * 1000), start=reached)
    assert purged == 1 and db.get_docinfo("d3") is None
    assert tombstones.horizon_of(db) > old_horizon
    await node.aclose()


async def test_database_override_and_default_off(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("t")
    now = [BASE]
    db.clock = lambda: now[0]
    await db.put({"_id": "x"})
    await db.put({"_id": "x", "_rev": db.get("x")["_rev"], "_deleted": True})
    late = int((BASE + 10 ** 6) * 1000)
    assert tombstones.ttl_of(db) is None and (await tombstones.expire(db, late))[0] == 0  # off by default
    await db.set_meta_field(tombstones.META_TTL, 5)
    assert tombstones.ttl_of(db) == 5
    assert (await tombstones.expire(db, late))[0] == 1
    node.config.set("couchdb", "tombstone_ttl", "5")
    await db.set_meta_field(tombstones.META_TTL, 0)  # this database opts out
    await db.put({"_id": "y"})
    await db.put({"_id": "y", "_rev": db.get("y")["_rev"], "_deleted": True})
    assert (await tombstones.expire(db, late))[0] == 0
    await node.aclose()


# ------------------------------------------------------------------ over HTTP, with replication


FAST = {"couchdb": {"tombstone_ttl": "1", "time_seq_bucket_seconds": "1", "tombstone_check_interval": "0.2"}}


async def _wait_gone(client, path, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with client.get(path) as resp:
            if resp.status == 404:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} was not expired")


async def test_ttl_endpoint(client, anon, db):
    assert await (await client.get(f"/{db}/_tombstone_ttl")).json() == 0
    assert (await client.put(f"/{db}/_tombstone_ttl", json=3600)).status == 200
    assert await (await client.get(f"/{db}/_tombstone_ttl")).json() == 3600
    for bad in (-1, "10", True, 1.5, {}):
        resp = await client.put(f"/{db}/_tombstone_ttl", json=bad)
        assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
    resp = await client.put(f"/{db}/_tombstone_ttl", data=b"null", headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    assert await (await client.get(f"/{db}/_tombstone_ttl")).json() == 0
    assert (await anon.put(f"/{db}/_tombstone_ttl", json=5)).status == 401
    assert (await client.post(f"/{db}/_tombstone_ttl", json=5)).status == 405


async def test_lagging_replication_is_told(new_server, couchdb):
    a = new_server(config=FAST)
    b = new_server()
    async with aiohttp.ClientSession(base_url=a.base, auth=a.auth) as ca, \
            aiohttp.ClientSession(base_url=b.base, auth=b.auth) as cb, \
            aiohttp.ClientSession(base_url=couchdb.base, auth=couchdb.auth) as cc:
        assert (await ca.put("/src")).status == 201
        for i in range(4):
            assert (await ca.put(f"/src/d{i}", json={"i": i})).status == 201
        targets = {"pull": (cb, "/_replicate", {"source": f"{a.url}/src", "target": "dst", "create_target": True}),
                   "push": (ca, "/_replicate", {"source": "src", "target": f"{b.url}/pushed", "create_target": True}),
                   "couchdb": (ca, "/_replicate", {"source": "src", "target": f"{couchdb.url}/tomb-expiry",
                                                   "create_target": True})}
        await cc.delete("/tomb-expiry")
        for driver, path, body in targets.values():
            resp = await driver.post(path, json=body)
            assert resp.status == 200, await resp.text()
        # the source deletes a document, and its tombstone expires before the peers hear of it
        rev = (await (await ca.get("/src/d0")).json())["_rev"]
        assert (await ca.delete(f"/src/d0?rev={rev}")).status == 200
        await _wait_gone(ca, "/src/d0?open_revs=all&latest=true")
        changes = await (await ca.get("/src/_changes", params={"since": "4"})).json()
        marker = changes["couchpy_tombstones_expired"]
        assert marker["since"].startswith("4-") and int(marker["horizon"].split("-")[0]) > 4
        resp = await ca.get("/src/_changes", params={"since": "0"})
        assert "couchpy_tombstones_expired" not in await resp.json()
        assert "X-Couchpy-Tombstones-Expired" not in resp.headers
        resp = await ca.get("/src/_changes", params={"since": "4", "feed": "continuous", "timeout": "100"})
        assert resp.headers["X-Couchpy-Tombstones-Expired"] == marker["horizon"]
        assert (await ca.put("/src/d9", json={})).status == 201  # something new to replicate
        for kind, (driver, path, body) in targets.items():
            resp = await driver.post(path, json=body)
            res = await resp.json()
            assert resp.status == 200, res
            told = res["history"][0].get("tombstones_expired")
            assert told is not None, (kind, res)
            assert told["horizon"] in (marker["horizon"], int(marker["horizon"].split("-")[0])), told
            assert "deleted on the source" in told["warning"]
        # the peers still hold d0 (the source can no longer tell them): they were told, and the
        # checkpoint on the target says so too
        assert (await cb.get("/dst/d0")).status == 200
        local = [r for r in (await (await cb.get("/dst/_local_docs", params={"include_docs": "true"})).json())["rows"]]
        assert any("tombstones_expired" in h for r in local for h in r["doc"].get("history", []))
        # a replication that caught up past the horizon is not told again (nothing new: no new
        # history entry; the warned session stays recorded)
        resp = await cb.post("/_replicate", json=targets["pull"][2])
        again = await resp.json()
        assert again.get("no_changes") is True and "tombstones_expired" in again["history"][0], again
        last = int(again["history"][0]["recorded_seq"].split("-")[0])
        assert "couchpy_tombstones_expired" not in await (await ca.get("/src/_changes", params={"since": str(last)})).json()
        await cc.delete("/tomb-expiry")


async def test_continuous_job_reports_in_scheduler(new_server):
    a = new_server(config=FAST)
    async with aiohttp.ClientSession(base_url=a.base, auth=a.auth) as ca:
        assert (await ca.put("/src")).status == 201
        assert (await ca.put("/dst")).status == 201
        for i in range(3):
            assert (await ca.put(f"/src/d{i}", json={})).status == 201
        # the job starts from a checkpoint written before the expiry: a first one-shot run
        spec = {"source": "src", "target": "dst"}
        assert (await ca.post("/_replicate", json=spec)).status == 200
        rev = (await (await ca.get("/src/d1")).json())["_rev"]
        assert (await ca.delete(f"/src/d1?rev={rev}")).status == 200
        await _wait_gone(ca, "/src/d1?open_revs=all&latest=true")
        assert (await ca.put("/_replicator/job", json={**spec, "continuous": True})).status == 201
        deadline = time.monotonic() + 15
        info = {}
        while time.monotonic() < deadline:
            jobs = (await (await ca.get("/_scheduler/jobs")).json())["jobs"]
            info = next((j.get("info") or {} for j in jobs if j.get("doc_id") == "job"), {})
            if "tombstones_expired" in info:
                break
            await asyncio.sleep(0.2)
        assert "tombstones_expired" in info, info
        assert "deleted on the source" in info["tombstones_expired"]["warning"]


async def test_daemon_pass_opens_databases_only_for_a_node_wide_window(tmp_path):
    node = _node(tmp_path)
    for name in ("a", "b"):
        db = node.create_db(name)
        await db.put({"_id": "x"})
        await db.put({"_id": "x", "_rev": db.get("x")["_rev"], "_deleted": True})
    daemon = tombstones.Daemon(node)
    assert await daemon.check() == 0  # no window anywhere
    # a database's own window: expired while it is open
    db_a = node.get_db("a")
    await db_a.set_meta_field(tombstones.META_TTL, 1)
    db_a.clock = lambda: time.time() + 3600
    assert await daemon.check() == 1 and db_a.get_docinfo("x") is None
    # a node-wide window: every database, reopened if need be
    await node.aclose()
    node = _node(tmp_path, tombstone_ttl=1)
    daemon = tombstones.Daemon(node)
    real = couchpy.database.Database.clock
    couchpy.database.Database.clock = staticmethod(lambda: time.time() + 3600)
    try:
        assert await daemon.check() == 1
        assert node.get_db("b").get_docinfo("x") is None
    finally:
        couchpy.database.Database.clock = real
    await node.aclose()


async def test_couchdb_replicator_pulling_past_the_horizon_still_works(new_server, couchdb):
    """CouchDB 3.4.3's replicator reads a marked feed from couchpy without trouble (it is not
    told: the marker is couchpy's), and gets the changes after the expiry."""
    a = new_server(config=FAST)
    async with aiohttp.ClientSession(base_url=a.base, auth=a.auth) as ca, \
            aiohttp.ClientSession(base_url=couchdb.base, auth=couchdb.auth) as cc:
        assert (await ca.put("/src")).status == 201
        await cc.delete("/tomb-pull")
        for i in range(3):
            assert (await ca.put(f"/src/d{i}", json={})).status == 201
        body = {"source": f"{a.url}/src", "target": f"{couchdb.url}/tomb-pull", "create_target": True}
        resp = await cc.post("/_replicate", json=body)
        assert resp.status == 200, await resp.text()
        rev = (await (await ca.get("/src/d0")).json())["_rev"]
        assert (await ca.delete(f"/src/d0?rev={rev}")).status == 200
        await _wait_gone(ca, "/src/d0?open_revs=all&latest=true")
        assert (await ca.put("/src/after", json={})).status == 201
        # the feed CouchDB reads from its checkpoint (3) is marked
        marked = await (await ca.get("/src/_changes", params={"since": "3", "style": "all_docs"})).json()
        assert "couchpy_tombstones_expired" in marked
        resp = await cc.post("/_replicate", json=body)
        res = await resp.json()
        assert resp.status == 200 and res["ok"] is True, res
        assert (await cc.get("/tomb-pull/after")).status == 200
        assert (await cc.get("/tomb-pull/d0")).status == 200  # the deletion never reached it
        await cc.delete("/tomb-pull")
