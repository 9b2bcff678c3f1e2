"""Embedded sync (couchpy_sync, replicator/embedded.py): a database opened in-process with
`couchpy.open` replicates to and from a real couchpy server and the real CouchDB 3.4.3, both
directions, once and continuously (later writes on either side arrive), stops cleanly with its
checkpoint, and resumes from it; the engine itself never imports the replicator."""

from __future__ import annotations

import asyncio
import pathlib
import subprocess
import sys
import time
import uuid

import aiohttp
import pytest

import couchpy
import couchpy_sync
from replicator.errors import ReplicationError
from tests.serverproc import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent


async def _until(check, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.fixture(params=["couchpy", "couchdb"])
async def remote(request, server):
    """(url of a fresh remote database, an admin client of its server)"""
    peer = server if request.param == "couchpy" else request.getfixturevalue("couchdb")
    name = f"embedded-{uuid.uuid4().hex[:10]}"
    async with aiohttp.ClientSession(base_url=peer.base, auth=peer.auth) as client:
        assert (await client.put(f"/{name}")).status == 201
        yield f"{peer.url}/{name}", client, f"/{name}"
        await client.delete(f"/{name}")


async def _remote_doc(client, path, docid):
    async with client.get(f"{path}/{docid}") as resp:
        return await resp.json() if resp.status == 200 else None


async def test_push_pull_and_sync_once(tmp_path, remote):
    url, client, path = remote
    node = couchpy.open(tmp_path)  # couchpy_sync imported: every node can sync
    db = node.create_db("local")
    await db.put({"_id": "mine", "v": 1})
    res = await db.replicate_to(url)
    assert res["ok"] is True and res["history"][0]["docs_written"] == 1
    assert (await _remote_doc(client, path, "mine"))["v"] == 1
    assert (await client.put(f"{path}/theirs", json={"v": 2})).status == 201
    res = await db.replicate_from(url)
    assert res["ok"] is True and db.get("theirs")["v"] == 2
    # both ways at once; deletions travel too
    await db.put({"_id": "mine", "_rev": db.get("mine")["_rev"], "_deleted": True})
    assert (await client.put(f"{path}/more", json={"v": 3})).status == 201
    both = await db.sync(url)
    assert set(both) == {"push", "pull"} and both["push"]["ok"] and both["pull"]["ok"]
    assert await _remote_doc(client, path, "mine") is None
    assert db.get("more")["v"] == 3
    # the same revisions on both sides
    remote_rev = (await _remote_doc(client, path, "theirs"))["_rev"]
    assert db.get("theirs")["_rev"] == remote_rev
    # a later run resumes from its checkpoint
    await db.put({"_id": "later"})
    res = await db.replicate_to(url)
    assert res["history"][0]["docs_written"] == 1 and res["history"][0]["start_last_seq"] not in (0, "0")
    await node.aclose()


async def test_continuous_both_ways_then_clean_stop(tmp_path, remote):
    url, client, path = remote
    node = couchpy_sync.open(tmp_path)
    db = node.create_db("live")
    push = db.replicate_to(url, continuous=True)
    pull = db.replicate_from(url, continuous=True)
    await db.put({"_id": "a", "n": 1})
    assert await _until(lambda: _remote_doc(client, path, "a"))
    assert (await client.put(f"{path}/b", json={"n": 2})).status == 201

    async def pulled():
        try:
            return db.get("b")
        except Exception:
            return None
    assert (await _until(pulled))["n"] == 2
    assert push.state == "running" and pull.state == "running"
    assert push.info()["docs_written"] >= 1
    await push.stop()
    await pull.stop()
    with pytest.raises(ReplicationError):
        await push
    # stopped means stopped: a later local write stays local
    await db.put({"_id": "after-stop"})
    await asyncio.sleep(1.0)
    assert await _remote_doc(client, path, "after-stop") is None
    await node.aclose()


async def test_closing_the_node_stops_running_replications(tmp_path, remote):
    url, client, path = remote
    node = couchpy.open(tmp_path)
    db = node.create_db("closing")
    live = db.sync(url, continuous=True)
    await db.put({"_id": "x"})
    assert await _until(lambda: _remote_doc(client, path, "x"))
    await asyncio.wait_for(node.aclose(), 15)  # the scheduler stops before the databases close
    assert all(s != "running" for s in live.state.values()), live.state
    with pytest.raises(ReplicationError):  # an awaiter is not left hanging
        await asyncio.wait_for(live.wait(), 5)
    # reopened, a new sync resumes from the checkpoint the stop wrote
    node = couchpy.open(tmp_path)
    db = node.get_db("closing")
    res = await db.replicate_to(url)
    # resumed, not rescanned from 0 (which would also write nothing): the reopened node is the
    # same node (its uuid is kept in the data directory), so the replication keeps its id
    assert res.get("no_changes") is True, res  # a rescan would have checked the document again
    await node.aclose()


async def test_a_conflict_policy_resolves_what_replication_brings(tmp_path, remote):
    """An embedded database with a conflict policy resolves the conflicts a pull makes, as a
    server's does (its resolver starts with the node's replication), and pushes the result."""
    url, client, path = remote
    node = couchpy.open(tmp_path)
    db = node.create_db("policy")
    await db.set_meta_field("conflict_policy", {"type": "max", "field": "n"})
    await db.put({"_id": "c", "n": 1})
    await db.replicate_to(url)
    base = (await _remote_doc(client, path, "c"))["_rev"]
    assert (await client.put(f"{path}/c", json={"_rev": base, "n": 5})).status == 201
    await db.put({"_id": "c", "_rev": base, "n": 3})
    await db.replicate_from(url)  # two live leaves here now: n=5 and n=3

    async def resolved():
        doc = db.get("c", conflicts=True)
        return doc if "_conflicts" not in doc else None
    doc = await _until(resolved)
    assert doc and doc["n"] == 5, db.get("c", conflicts=True)
    await db.replicate_to(url)
    async with client.get(f"{path}/c", params={"conflicts": "true"}) as r:
        remote_doc = await r.json()
    assert remote_doc["_rev"] == doc["_rev"] and "_conflicts" not in remote_doc, remote_doc
    await node.aclose()


async def test_unreachable_peer_fails_a_one_shot_replication(tmp_path):
    node = couchpy.open(tmp_path)
    db = node.create_db("offline")
    await db.put({"_id": "x"})
    with pytest.raises(ReplicationError):
        await asyncio.wait_for(db.replicate_to(f"http://127.0.0.1:{free_port()}/nowhere",
                                               retries_per_request=0), 30)
    await node.aclose()


def test_the_engine_never_imports_the_replicator():
    for path in (ROOT / "couchpy").rglob("*.py"):
        text = path.read_text()
        assert "import replicator" not in text and "from replicator" not in text, path
    # without couchpy_sync, the methods say what is missing
    code = ("import asyncio, couchpy, tempfile\n"
            "async def main():\n"
            "    node = couchpy.open(tempfile.mkdtemp())\n"
            "    db = node.create_db('x')\n"
            "    try:\n"
            "        db.replicate_to('http://127.0.0.1:1/x')\n"
            "    except RuntimeError as exc:\n"
            "        print('refused:', exc)\n"
            "    await node.aclose()\n"
            "asyncio.run(main())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "refused: embedded sync needs the replicator" in out.stdout, out.stderr
