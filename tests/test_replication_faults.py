"""Replication through failures: a fault-injecting proxy (responses cut mid-way, requests cut
mid-upload, 500s, delays), a target killed with SIGKILL and restarted during a continuous
replication, and the node running the replicator (the source's too) killed and restarted. The
documents that go through include conflicts, deletions, attachments and long histories."""

from __future__ import annotations

import base64
import random
import uuid

import aiohttp
import pytest

from tests.faultproxy import FaultProxy
from tests.serverproc import CouchpyServer
from tests.test_replication_http import all_revs, fill, req, wait_for


def name() -> str:
    return "f-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    a = CouchpyServer(root, name="a").start()
    b = CouchpyServer(root, name="b").start()
    yield a, b
    a.stop()
    b.stop()


def via(proxy: FaultProxy, srv: CouchpyServer, db: str) -> str:
    return f"http://{srv.user}:{srv.password}@127.0.0.1:{proxy.port}/{db}"


async def fill_rich(srv: CouchpyServer, db: str, seed: int = 3, tag: str = "") -> None:
    """Documents of every shape replication must carry: plain, long histories, deleted,
    conflicted (a replicated sibling branch, and a deleted one), attachments small and large."""
    rng = random.Random(seed)
    st, _ = await req(srv, "PUT", f"/{db}")
    assert st in (201, 412)
    docs = [{"_id": f"{tag}plain{i:03}", "n": i} for i in range(40)]
    for i in range(6):
        data = rng.randbytes(rng.choice((50, 3000, 200_000)))
        docs.append({"_id": f"{tag}att{i}", "_attachments": {
            "a.bin": {"content_type": "application/octet-stream", "data": base64.b64encode(data).decode()},
            "t.txt": {"content_type": "text/plain", "data": base64.b64encode(b"text " * (i + 1)).decode()}}})
    st, out = await req(srv, "POST", f"/{db}/_bulk_docs", {"docs": docs})
    assert st == 201 and all(r.get("ok") for r in out), out
    for i in range(5):  # long histories
        docid, rev = f"{tag}long{i}", None
        for n in range(25):
            st, out = await req(srv, "PUT", f"/{db}/{docid}", {"n": n, **({"_rev": rev} if rev else {})})
            assert st == 201, out
            rev = out["rev"]
    for i in range(5):  # deleted
        st, out = await req(srv, "PUT", f"/{db}/{tag}gone{i}", {"n": i})
        st, out = await req(srv, "DELETE", f"/{db}/{tag}gone{i}", rev=out["rev"])
        assert st == 200, out
    for i in range(5):  # conflicts: a live sibling and a deleted sibling of the winner
        st, out = await req(srv, "PUT", f"/{db}/{tag}cf{i}", {"v": "base"})
        base_hash = out["rev"].split("-")[1]
        branches = [{"_id": f"{tag}cf{i}", "_rev": f"2-{c * 32}", "v": c,
                     "_revisions": {"start": 2, "ids": [c * 32, base_hash]}} for c in "ab"]
        branches.append({"_id": f"{tag}cf{i}", "_rev": f"2-{'c' * 32}", "_deleted": True,
                         "_revisions": {"start": 2, "ids": ["c" * 32, base_hash]}})
        st, out = await req(srv, "POST", f"/{db}/_bulk_docs", {"docs": branches, "new_edits": False})
        assert st == 201, out


async def same_attachments(a: CouchpyServer, src: str, b: CouchpyServer, tgt: str) -> None:
    """Attachment bodies byte-identical on both sides (all_revs compares their stubs and digests)."""
    for i in range(6):
        bodies = []
        for srv, db in ((a, src), (b, tgt)):
            async with aiohttp.ClientSession(auth=srv.auth) as s:
                async with s.get(f"{srv.base}/{db}/att{i}/a.bin") as r:
                    assert r.status == 200, await r.text()
                    bodies.append(await r.read())
        assert bodies[0] == bodies[1], f"att{i}"


@pytest.mark.parametrize("where", ["target", "source"])
async def test_one_shot_through_cuts_500s_and_delays(pair, where):
    a, b = pair
    src, tgt = name(), name()
    await fill(a, src, 400)
    await req(b, "PUT", f"/{tgt}")
    with FaultProxy(b.port if where == "target" else a.port, seed=7) as proxy:
        proxy.set(cut_prob=0.3, cut_range=(50, 4000), error_prob=0.15, delay=0.002)
        source = via(proxy, a, src) if where == "source" else f"{a.url}/{src}"
        target = via(proxy, b, tgt) if where == "target" else f"{b.url}/{tgt}"
        body = {"source": source, "target": target, "worker_batch_size": 40, "retries_per_request": 20}
        st, res = await req(a, "POST", "/_replicate", body)
        assert st == 200, res
        assert proxy.cuts + proxy.errors > 5, (proxy.cuts, proxy.errors)
        h = res["history"][0]
        assert h["doc_write_failures"] == 0
        assert await all_revs(a, src) == await all_revs(b, tgt)
        # a second run through the same faults writes nothing
        st, before = await req(b, "GET", f"/{tgt}")
        st, res2 = await req(a, "POST", "/_replicate", body)
        assert st == 200, res2
        st, after = await req(b, "GET", f"/{tgt}")
        assert after["update_seq"] == before["update_seq"]


async def test_transient_failures_exhausting_retries_are_reported(pair):
    a, b = pair
    src = name()
    await fill(a, src, 5)
    with FaultProxy(b.port) as proxy:
        proxy.set(error_prob=1.0)
        st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": via(proxy, b, name()), "retries_per_request": 1})
        assert st == 500, res
        assert "500" in res["reason"]


async def test_target_killed_during_continuous_replication(tmp_path):
    a = CouchpyServer(tmp_path, name="a").start()
    b = CouchpyServer(tmp_path, name="b").start()
    try:
        src, tgt = name(), name()
        await fill(a, src, 50, prefix="before")
        body = {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True, "continuous": True,
                "retries_per_request": 1, "checkpoint_interval": 200, "connection_timeout": 3000}
        st, res = await req(a, "POST", "/_replicate", body)
        assert st == 202, res
        rid = res["_local_id"]

        async def count(n):
            async def check():
                st, info = await req(b, "GET", f"/{tgt}")
                return st == 200 and info["doc_count"] == n
            return check

        await wait_for(await count(50), timeout=10)
        b.kill()
        await fill(a, src, 50, prefix="during")

        async def crashed():
            st, jobs = await req(a, "GET", "/_scheduler/jobs")
            job = next((j for j in jobs["jobs"] if j["id"] == rid), None)
            return job is not None and any(h["type"] == "crashed" for h in job["history"])

        await wait_for(crashed, timeout=20)
        b.start()
        await fill(a, src, 50, prefix="after")
        await wait_for(await count(150), timeout=30, interval=0.2)
        assert await all_revs(a, src) == await all_revs(b, tgt)
        st, _ = await req(a, "POST", "/_replicate", {**body, "cancel": True})
        assert st == 200
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("where", ["target", "source"])
async def test_conflicts_deletions_attachments_and_histories_through_faults(pair, where):
    a, b = pair
    src, tgt = name(), name()
    await fill_rich(a, src)
    await req(b, "PUT", f"/{tgt}")
    with FaultProxy(b.port if where == "target" else a.port, seed=11) as proxy:
        proxy.set(cut_prob=0.25, cut_range=(50, 60000), error_prob=0.1, upload_cut_prob=0.15, delay=0.001)
        source = via(proxy, a, src) if where == "source" else f"{a.url}/{src}"
        target = via(proxy, b, tgt) if where == "target" else f"{b.url}/{tgt}"
        body = {"source": source, "target": target, "worker_batch_size": 5, "retries_per_request": 30}
        st, res = await req(a, "POST", "/_replicate", body)
        assert st == 200, res
        assert proxy.cuts + proxy.errors + proxy.upload_cuts > 3, (proxy.cuts, proxy.errors, proxy.upload_cuts)
        if where == "target":
            assert proxy.upload_cuts > 0  # writes to the target were cut mid-request
        assert res["history"][0]["doc_write_failures"] == 0
    assert await all_revs(a, src) == await all_revs(b, tgt)
    await same_attachments(a, src, b, tgt)
    # replicated again without the proxy (another replication id, so from the start): nothing to write
    st, before = await req(b, "GET", f"/{tgt}")
    st, res2 = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}"})
    assert st == 200 and res2["history"][0]["docs_written"] == 0, res2
    st, after = await req(b, "GET", f"/{tgt}")
    assert after["update_seq"] == before["update_seq"]


async def _converged(a, src, b, tgt) -> bool:
    st, ia = await req(a, "GET", f"/{src}")
    st2, ib = await req(b, "GET", f"/{tgt}")
    return st == st2 == 200 and ia["doc_count"] == ib["doc_count"] and ia["doc_del_count"] == ib["doc_del_count"]


@pytest.mark.parametrize("driver", ["source", "target"])
async def test_node_running_the_replicator_killed_with_the_source(tmp_path, driver):
    """A persistent replication (a _replicator document) from a to b. driver=source: a runs it and
    is killed (the replicator and the source at once); driver=target: b runs it (a pull) and a,
    the source, is killed. After the restart the job resumes and the databases converge."""
    a = CouchpyServer(tmp_path, name="a").start()
    b = CouchpyServer(tmp_path, name="b").start()
    try:
        src, tgt = name(), name()
        await fill_rich(a, src)
        runner = a if driver == "source" else b
        rep = {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True,
               "continuous": True, "worker_batch_size": 5, "checkpoint_interval": 100,
               "retries_per_request": 2, "connection_timeout": 3000}
        st, out = await req(runner, "PUT", f"/_replicator/r-{src}", rep)
        assert st == 201, out

        async def started():
            st, info = await req(b, "GET", f"/{tgt}")
            return st == 200 and info["doc_count"] > 0
        await wait_for(started, timeout=30, interval=0.02)
        a.kill()  # mid-replication
        a.start()
        await fill_rich(a, src, seed=5, tag="later-")
        await wait_for(lambda: _converged(a, src, b, tgt), timeout=90, interval=0.3)
        assert await all_revs(a, src) == await all_revs(b, tgt)
        await same_attachments(a, src, b, tgt)
        st, doc = await req(runner, "GET", f"/_replicator/r-{src}")
        st, out = await req(runner, "DELETE", f"/_replicator/r-{src}", rev=doc["_rev"])
        assert st == 200, out
    finally:
        a.stop()
        b.stop()
