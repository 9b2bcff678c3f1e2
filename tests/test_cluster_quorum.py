"""Write and read quorum (`?w=`, `?r=`) on three couchpy nodes holding every database (n = 3).

The third node runs no replication of its own (`[replicator] max_jobs = 0`): whatever its copy
holds came from a quorum write's push or a read's repair, never from its pulls, so a test can tell
that a 201 really means the copies hold the write, and a replica can be kept behind at will.
The other two pull from each other (and from the third) as every cluster node does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import pytest

from .cluster_harness import Cluster

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("quorum"), nodes=3, n=3, settings={"request_timeout": "3000"},
                 node_config={2: {"replicator": {"max_jobs": "0"}}}, proxy=False) as cl:
        yield cl


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 240))


def session(cl: Cluster) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", cl.password),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def call(s, method: str, url: str, **kw):
    async with s.request(method, url, **kw) as r:
        return r.status, await r.json()


async def tree(s, srv, db: str, docid: str) -> list:
    """The document's leaves with their histories on one node: equal lists, equal revision trees."""
    status, rows = await call(s, "GET", f"{srv.base}/{db}/{docid}", params={"open_revs": "all", "revs": "true"},
                              headers={"Accept": "application/json"})
    assert status == 200, rows
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


async def create(s, cl: Cluster, name: str) -> None:
    assert await call(s, "PUT", f"{cl.servers[0].base}/{name}") == (201, {"ok": True})


def test_cluster_setup_membership_and_the_quorum_in_db_info(cluster):
    async def go():
        async with session(cluster) as s:
            await create(s, cluster, "q-info")
            for srv in cluster.servers:
                assert await call(s, "GET", f"{srv.base}/_cluster_setup") == (200, {"state": "cluster_finished"})
                status, info = await call(s, "GET", f"{srv.base}/q-info")
                # w defaults to CouchDB's majority of the copies, r to one copy
                assert status == 200 and info["cluster"] == {"q": 1, "n": 3, "w": 2, "r": 1}
                assert await call(s, "GET", f"{srv.base}/_membership") == (
                    200, {"all_nodes": cluster.names, "cluster_nodes": cluster.names})
            async with aiohttp.ClientSession() as anon:
                async with anon.get(f"{cluster.servers[0].base}/_cluster_setup") as r:
                    assert r.status == 401
    run(go())


def test_w3_with_every_copy_up_is_201_and_every_copy_holds_the_write(cluster):
    third = cluster.servers[2]  # holds only what pushes bring

    async def go():
        async with session(cluster) as s:
            await create(s, cluster, "q-all")
            db = f"{cluster.servers[0].base}/q-all"
            status, body = await call(s, "PUT", f"{db}/a?w=3", json={"v": 1})
            assert (status, body["ok"]) == (201, True)
            assert await call(s, "GET", f"{third.base}/q-all/a") == (200, {"_id": "a", "_rev": body["rev"], "v": 1})
            # the same through POST /{db}, _bulk_docs (query and body), an attachment, a deletion
            status, posted = await call(s, "POST", f"{db}?w=3", json={"_id": "b"})
            assert status == 201
            status, rows = await call(s, "POST", f"{db}/_bulk_docs?w=3", json={"docs": [{"_id": "c"}, {"_id": "a"}]})
            assert status == 201 and rows[0]["ok"] and rows[1]["error"] == "conflict"
            assert "accepted" not in rows[0]
            status, rows2 = await call(s, "POST", f"{db}/_bulk_docs", json={"docs": [{"_id": "d"}], "w": 3})
            assert status == 201 and "accepted" not in rows2[0]
            status, att = await call(s, "PUT", f"{db}/a/note.txt?w=3&rev={body['rev']}", data=b"hello",
                                     headers={"Content-Type": "text/plain"})
            assert status == 201
            status, gone = await call(s, "DELETE", f"{db}/b?w=3&rev={posted['rev']}")
            assert status == 200  # a deletion that reached w copies: 200, as CouchDB
            status, doc = await call(s, "GET", f"{third.base}/q-all/a?attachments=true")
            assert status == 200 and doc["_rev"] == att["rev"]
            assert base64.b64decode(doc["_attachments"]["note.txt"]["data"]) == b"hello"
            for docid, rev in (("c", rows[0]["rev"]), ("d", rows2[0]["rev"]), ("b", gone["rev"])):
                status, doc = await call(s, "GET", f"{third.base}/q-all/{docid}?rev={rev}")
                assert status == 200 and doc["_rev"] == rev
            for bad in ("abc", "-1", "1.5"):
                status, err = await call(s, "PUT", f"{db}/x?w={bad}", json={})
                assert (status, err["error"]) == (400, "bad_request")
                status, err = await call(s, "GET", f"{db}/a?r={bad}")
                assert (status, err["error"]) == (400, "bad_request")
            # a body's `w` that is not an integer is passed over, as CouchDB 3.4.3 does
            status, rows = await call(s, "POST", f"{db}/_bulk_docs", json={"docs": [{"_id": "y"}], "w": "x"})
            assert status == 201 and rows[0]["ok"] is True
            assert (await call(s, "GET", f"{db}/x"))[0] == 404  # refused before it was written
    run(go())


def test_r_reads_the_newest_revision_when_a_copy_is_behind_and_repairs_it(cluster):
    first, second, third = cluster.servers

    async def go():
        async with session(cluster) as s:
            await create(s, cluster, "q-read")
            status, one = await call(s, "PUT", f"{first.base}/q-read/d?w=3", json={"v": 1})
            assert status == 201
            # w=1: acknowledged by the first node alone; the second pulls it, the third never does
            status, two = await call(s, "PUT", f"{first.base}/q-read/d?w=1", json={"_rev": one["rev"], "v": 2})
            assert status == 201
            deadline = time.monotonic() + 30
            while (await call(s, "GET", f"{second.base}/q-read/d"))[1].get("_rev") != two["rev"]:
                assert time.monotonic() < deadline, "the second node did not pull the update"
                await asyncio.sleep(0.1)
            assert (await call(s, "GET", f"{third.base}/q-read/d"))[1]["_rev"] == one["rev"]  # behind
            assert (await call(s, "GET", f"{third.base}/q-read/d?r=1"))[1]["_rev"] == one["rev"]
            assert await call(s, "GET", f"{third.base}/q-read/d?r=2") == (
                200, {"_id": "d", "_rev": two["rev"], "v": 2})
            # the newest is now in the third copy itself, with the same history
            assert (await call(s, "GET", f"{third.base}/q-read/d"))[1]["_rev"] == two["rev"]
            assert await tree(s, third, "q-read", "d") == await tree(s, first, "q-read", "d")
            # a document only other copies hold is found, and the copy asked keeps it
            status, new = await call(s, "PUT", f"{first.base}/q-read/e?w=1", json={"only": "first"})
            assert (await call(s, "GET", f"{third.base}/q-read/e"))[0] == 404
            assert await call(s, "GET", f"{third.base}/q-read/e?r=3") == (
                200, {"_id": "e", "_rev": new["rev"], "only": "first"})
            # a conflict only the first copy holds is found too, and shown with conflicts=true
            other = {"_id": "d", "_rev": "2-" + "f" * 32, "v": "other",
                     "_revisions": {"start": 2, "ids": ["f" * 32, one["rev"].split("-")[1]]}}
            status, _ = await call(s, "POST", f"{first.base}/q-read/_bulk_docs", json={"docs": [other], "new_edits": False})
            assert status == 201
            status, doc = await call(s, "GET", f"{third.base}/q-read/d?r=3&conflicts=true")
            winner, loser = sorted([two["rev"], other["_rev"]], key=lambda rev: rev.split("-")[1], reverse=True)
            assert status == 200 and doc["_rev"] == winner and doc["_conflicts"] == [loser]
            assert await tree(s, third, "q-read", "d") == await tree(s, first, "q-read", "d")
            # read repair the other way: reading at a node that is ahead brings the third copy up
            status, three = await call(s, "PUT", f"{first.base}/q-read/d?w=1", json={"_rev": winner, "v": 3})
            assert await call(s, "GET", f"{first.base}/q-read/d?r=3") == (200, {"_id": "d", "_rev": three["rev"], "v": 3})
            deadline = time.monotonic() + 10
            while (await call(s, "GET", f"{third.base}/q-read/d"))[1]["_rev"] != three["rev"]:
                assert time.monotonic() < deadline, "the third copy was not repaired"
                await asyncio.sleep(0.1)
    run(go())


def test_a_killed_copy_makes_w3_accepted_w2_created_and_no_acknowledged_write_is_lost(cluster):
    first, second, third = cluster.servers
    acknowledged: dict[str, str] = {}

    async def wait_live(s, srv, count: int) -> None:
        deadline = time.monotonic() + 30
        while len((await call(s, "GET", f"{srv.base}/_membership"))[1]["all_nodes"]) != count:
            assert time.monotonic() < deadline, "membership did not change"
            await asyncio.sleep(0.1)

    async def go():
        async with session(cluster) as s:
            await create(s, cluster, "q-kill")
            db = f"{second.base}/q-kill"
            cluster.kill(0)
            await wait_live(s, second, 2)
            status, body = await call(s, "PUT", f"{db}/w3?w=3", json={"w": 3})
            assert (status, body["ok"]) == (202, True)  # kept, but only two copies hold it
            acknowledged["w3"] = body["rev"]
            status, body = await call(s, "PUT", f"{db}/w2?w=2", json={"w": 2})
            assert status == 201
            acknowledged["w2"] = body["rev"]
            status, body = await call(s, "PUT", f"{db}/default", json={})
            assert status == 201  # the default w is 2 of 3
            acknowledged["default"] = body["rev"]
            status, rows = await call(s, "POST", f"{db}/_bulk_docs?w=3", json={"docs": [{"_id": f"b{i}"} for i in range(5)]})
            assert status == 202 and all(row["ok"] and row["accepted"] is True for row in rows)
            acknowledged.update((row["id"], row["rev"]) for row in rows)
            status, rows = await call(s, "POST", f"{db}/_bulk_docs?w=2", json={"docs": [{"_id": f"c{i}"} for i in range(5)]})
            assert status == 201 and not any("accepted" in row for row in rows)
            acknowledged.update((row["id"], row["rev"]) for row in rows)
            # the body's integer `w` before the query string's, as CouchDB 3.4.3 reads _bulk_docs
            status, rows = await call(s, "POST", f"{db}/_bulk_docs?w=2", json={"docs": [{"_id": "e"}], "w": 3})
            assert status == 202 and rows[0]["accepted"] is True
            acknowledged.update((row["id"], row["rev"]) for row in rows)
            for docid, rev in acknowledged.items():  # the third node holds them without pulling
                assert (await call(s, "GET", f"{third.base}/q-kill/{docid}?rev={rev}"))[0] == 200
            started = time.monotonic()
            cluster.restart(0)
            await wait_live(s, second, 3)
            # the returning node pulls what it missed: every copy ends with the same trees
            deadline = time.monotonic() + 120
            while True:
                missing = [d for d, rev in acknowledged.items()
                           if (await call(s, "GET", f"{first.base}/q-kill/{d}?rev={rev}"))[0] != 200]
                if not missing:
                    break
                assert time.monotonic() < deadline, f"not on the returning node: {missing}"
                await asyncio.sleep(0.2)
            print(f"\nreturning node caught up {time.monotonic() - started:.1f}s after its restart")
            for docid in acknowledged:
                trees = [await tree(s, srv, "q-kill", docid) for srv in cluster.servers]
                assert trees[0] == trees[1] == trees[2], docid
    run(go())
