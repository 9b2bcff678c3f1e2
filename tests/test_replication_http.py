"""Replication between real couchpy servers (subprocesses on loopback) through POST /_replicate,
the _replicator database and the scheduler endpoints."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from urllib.parse import quote

import aiohttp
import pytest

from tests.serverproc import CouchpyServer


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("repl")
    a = CouchpyServer(root, name="a").start()
    b = CouchpyServer(root, name="b").start()
    yield a, b
    a.stop()
    b.stop()


def name() -> str:
    return "r-" + uuid.uuid4().hex[:10]


async def req(srv, method, path, body=None, **params):
    async with aiohttp.ClientSession(auth=srv.auth) as s:
        # JSON answers throughout (open_revs would otherwise come as multipart/mixed)
        async with s.request(method, srv.base + path, json=body, params=params or None,
                             headers={"Accept": "application/json"}) as r:
            return r.status, await r.json(content_type=None)


async def fill(srv, db, n, prefix="d", start=0):
    st, _ = await req(srv, "PUT", f"/{db}")
    assert st in (201, 412)
    docs = [{"_id": f"{prefix}{i:05}", "n": i} for i in range(start, start + n)]
    st, out = await req(srv, "POST", f"/{db}/_bulk_docs", {"docs": docs})
    assert st == 201, out


async def all_revs(srv, db):
    """{id: sorted leaves with bodies and _revisions} of every doc (tombstones included)."""
    st, ch = await req(srv, "GET", f"/{db}/_changes", style="all_docs")
    assert st == 200, ch
    out = {}
    for row in ch["results"]:
        st, leaves = await req(srv, "GET", f"/{db}/{row['id']}", open_revs="all", revs="true")
        assert st == 200, leaves
        out[row["id"]] = sorted((x["ok"] for x in leaves if "ok" in x), key=lambda d: d["_rev"])
    return out


async def wait_for(pred, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        got = await pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def test_push_one_shot_then_idempotent(pair):
    a, b = pair
    src, tgt = name(), name()
    await fill(a, src, 300)
    st, doc = await req(a, "GET", f"/{src}/d00001")
    await req(a, "PUT", f"/{src}/d00001", {**doc, "n": "edited"})
    st, doc = await req(a, "GET", f"/{src}/d00002")
    await req(a, "DELETE", f"/{src}/d00002", rev=doc["_rev"])
    body = {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True, "worker_batch_size": 64}
    st, res = await req(a, "POST", "/_replicate", body)
    assert st == 200, res
    assert res["ok"] is True and res["replication_id_version"] == 4
    h = res["history"][0]
    assert h["session_id"] == res["session_id"]
    assert h["docs_written"] == 300 and h["missing_checked"] == 300 and h["doc_write_failures"] == 0
    for key in ("start_time", "end_time", "start_last_seq", "end_last_seq", "recorded_seq", "docs_read", "missing_found"):
        assert key in h
    assert await all_revs(a, src) == await all_revs(b, tgt)
    st, info_before = await req(b, "GET", f"/{tgt}")
    # second run: nothing moves
    st, res2 = await req(a, "POST", "/_replicate", body)
    assert st == 200 and res2.get("no_changes") is True, res2
    st, info_after = await req(b, "GET", f"/{tgt}")
    assert info_after["update_seq"] == info_before["update_seq"]
    # checkpoint documents on both sides share the session
    rid = res["history"][0]["session_id"]
    st, locs = await req(b, "GET", f"/{tgt}/_local_docs")
    assert st == 200, locs
    ids = [r["id"] for r in locs["rows"]]
    assert len(ids) == 1 and ids[0].startswith("_local/"), ids
    lid = ids[0]
    st, cp_b = await req(b, "GET", f"/{tgt}/{lid}")
    assert st == 200, cp_b
    st, cp_a = await req(a, "GET", f"/{src}/{lid}")
    assert st == 200, cp_a
    assert cp_a["session_id"] == cp_b["session_id"] == rid
    assert cp_a["source_last_seq"] == cp_b["source_last_seq"] == res["source_last_seq"]
    assert cp_a["history"][0]["session_id"] == rid


async def test_pull_and_local_names(pair):
    a, b = pair
    src, tgt, copy = name(), name(), name()
    await fill(a, src, 50)
    # pull: the request goes to the target's server
    st, res = await req(b, "POST", "/_replicate", {"source": {"url": f"{a.base}/{src}", "headers": {"Authorization": "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()}}, "target": tgt, "create_target": True})
    assert st == 200, res
    assert res["history"][0]["docs_written"] == 50
    # local names on one server
    st, res = await req(b, "POST", "/_replicate", {"source": tgt, "target": copy, "create_target": True})
    assert st == 200, res
    assert await all_revs(b, copy) == await all_revs(a, src)


async def test_errors(pair):
    a, b = pair
    st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{name()}", "target": f"{b.url}/{name()}"})
    assert st == 404 and res["error"] == "db_not_found", res
    src = name()
    await fill(a, src, 1)
    st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": f"{b.url}/{name()}"})
    assert st == 404 and res["error"] == "db_not_found", res
    st, res = await req(a, "POST", "/_replicate", {"source": f"http://admin:wrong@127.0.0.1:{b.port}/{src}", "target": f"{a.url}/{src}"})
    assert st == 401, res
    st, res = await req(a, "POST", "/_replicate", {"source": 12, "target": "x"})
    assert st == 400, res
    st, res = await req(a, "POST", "/_replicate", {"source": "x", "target": "y", "cancel": True})
    assert st == 404, res


async def test_filtered_doc_ids_and_selector(pair):
    a, b = pair
    src, t1, t2 = name(), name(), name()
    await fill(a, src, 40)
    st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": f"{b.url}/{t1}", "create_target": True, "doc_ids": ["d00003", "d00010", "nope"]})
    assert st == 200, res
    st, info = await req(b, "GET", f"/{t1}/_all_docs")
    assert [r["id"] for r in info["rows"]] == ["d00003", "d00010"]
    st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": f"{b.url}/{t2}", "create_target": True, "selector": {"n": {"$lt": 5}}})
    assert st == 200, res
    st, info = await req(b, "GET", f"/{t2}/_all_docs")
    assert [r["id"] for r in info["rows"]] == [f"d{i:05}" for i in range(5)]


async def test_attachments_replicate_with_digests(pair):
    a, b = pair
    src, tgt = name(), name()
    await fill(a, src, 1)
    data = bytes(range(256)) * 40
    st, doc = await req(a, "GET", f"/{src}/d00000")
    doc["_attachments"] = {"blob.bin": {"content_type": "application/octet-stream", "data": base64.b64encode(data).decode()}}
    st, out = await req(a, "PUT", f"/{src}/d00000", doc)
    assert st == 201, out
    st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True})
    assert st == 200, res
    st, da = await req(a, "GET", f"/{src}/d00000")
    st, db_ = await req(b, "GET", f"/{tgt}/d00000")
    assert da["_attachments"]["blob.bin"]["digest"] == db_["_attachments"]["blob.bin"]["digest"]
    assert db_["_attachments"]["blob.bin"]["digest"] == "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()
    async with aiohttp.ClientSession(auth=b.auth) as s:
        async with s.get(f"{b.base}/{tgt}/d00000/blob.bin") as r:
            assert await r.read() == data
    # an edit that keeps the attachment: the second run sends a stub, the target keeps the data
    st, da = await req(a, "GET", f"/{src}/d00000")
    da["n"] = "edited"
    st, out = await req(a, "PUT", f"/{src}/d00000", da)
    assert st == 201, out
    st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}"})
    assert st == 200 and res["history"][0]["docs_written"] == 1, res
    async with aiohttp.ClientSession(auth=b.auth) as s:
        async with s.get(f"{b.base}/{tgt}/d00000/blob.bin") as r:
            assert await r.read() == data
        async with s.get(f"{b.base}/{tgt}/d00000") as r:
            assert (await r.json())["n"] == "edited"


async def test_continuous_write_arrives_within_one_second_and_cancel(pair):
    a, b = pair
    src, tgt = name(), name()
    await fill(a, src, 5)
    body = {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True, "continuous": True}
    st, res = await req(a, "POST", "/_replicate", body)
    assert st == 202 and res["ok"] is True and res["_local_id"].endswith("+continuous+create_target"), res
    rid = res["_local_id"]

    async def count():
        st, info = await req(b, "GET", f"/{tgt}")
        return st == 200 and info["doc_count"] == 5

    await wait_for(count)
    st, jobs = await req(a, "GET", "/_scheduler/jobs")
    job = next(j for j in jobs["jobs"] if j["id"] == rid)
    assert job["source"].endswith(f"/{src}/") and "*****" in job["source"]
    assert job["database"] is None and job["history"][0]["type"] == "started"
    st, tasks = await req(a, "GET", "/_active_tasks")
    task = next(t for t in tasks if t.get("replication_id") == rid)
    assert task["type"] == "replication" and task["continuous"] is True and task["docs_written"] == 5
    for i in range(3):
        t0 = time.monotonic()
        await req(a, "PUT", f"/{src}/live{i}", {"i": i})

        async def arrived(i=i):
            st, _ = await req(b, "GET", f"/{tgt}/live{i}")
            return st == 200

        await wait_for(arrived, timeout=1.0, interval=0.02)
        assert time.monotonic() - t0 < 1.0
    st, res = await req(a, "POST", "/_replicate", {**body, "cancel": True})
    assert st == 200 and res["_local_id"] == rid, res
    st, jobs = await req(a, "GET", "/_scheduler/jobs")
    assert all(j["id"] != rid for j in jobs["jobs"])
    await req(a, "PUT", f"/{src}/after-cancel", {})
    await asyncio.sleep(0.5)
    st, _ = await req(b, "GET", f"/{tgt}/after-cancel")
    assert st == 404


async def scheduler_doc(srv, docid, state):
    async def check():
        st, sd = await req(srv, "GET", f"/_scheduler/docs/_replicator/{docid}")
        return sd if st == 200 and sd["state"] == state else None

    return check


async def test_replicator_db_document(pair):
    a, b = pair
    src, tgt = name(), name()
    await fill(a, src, 20)
    docid = "job-" + uuid.uuid4().hex[:6]
    st, out = await req(a, "PUT", f"/_replicator/{docid}", {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True})
    assert st == 201, out
    sd = await wait_for(await scheduler_doc(a, docid, "completed"), timeout=15)
    assert sd["doc_id"] == docid and sd["database"] == "_replicator" and sd["info"]["docs_written"] == 20
    assert "*****" in sd["source"]
    st, info = await req(b, "GET", f"/{tgt}")
    assert info["doc_count"] == 20
    st, sds = await req(a, "GET", "/_scheduler/docs")
    assert any(x["doc_id"] == docid for x in sds["docs"])
    # a continuous one: deleting the document stops it
    doc2 = "live-" + uuid.uuid4().hex[:6]
    st, out = await req(a, "PUT", f"/_replicator/{doc2}", {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "continuous": True})
    rev2 = out["rev"]
    await wait_for(await scheduler_doc(a, doc2, "running"))
    st, jobs = await req(a, "GET", "/_scheduler/jobs")
    assert any(j["doc_id"] == doc2 and j["database"] == "_replicator" for j in jobs["jobs"])
    await req(a, "PUT", f"/{src}/via-doc", {})

    async def arrived():
        st, _ = await req(b, "GET", f"/{tgt}/via-doc")
        return st == 200

    await wait_for(arrived, timeout=3)
    st, _ = await req(a, "DELETE", f"/_replicator/{doc2}", rev=rev2)

    async def gone():
        st, sd = await req(a, "GET", f"/_scheduler/docs/_replicator/{doc2}")
        st2, jobs = await req(a, "GET", "/_scheduler/jobs")
        return st == 404 and not any(j["doc_id"] == doc2 for j in jobs["jobs"])

    await wait_for(gone)
    # an invalid document fails with a reason
    doc3 = "bad-" + uuid.uuid4().hex[:6]
    await req(a, "PUT", f"/_replicator/{doc3}", {"source": f"{a.url}/{src}"})
    sd = await wait_for(await scheduler_doc(a, doc3, "failed"))
    assert "target" in sd["info"]["error"]


async def test_replicator_doc_records_final_state_on_the_document(pair):
    a, b = pair
    src, tgt = name(), name()
    await fill(a, src, 3)
    docid = "rec-" + uuid.uuid4().hex[:6]
    await req(a, "PUT", f"/_replicator/{docid}", {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True})

    async def completed():
        st, d = await req(a, "GET", f"/_replicator/{docid}")
        return d if d.get("_replication_state") == "completed" else None

    d = await wait_for(completed, timeout=4)
    assert d["_replication_stats"]["docs_written"] == 3 and "_replication_state_time" in d
    bad = "bad-" + uuid.uuid4().hex[:6]
    await req(a, "PUT", f"/_replicator/{bad}", {"source": f"{a.url}/{src}"})

    async def failed():
        st, d = await req(a, "GET", f"/_replicator/{bad}")
        return d if d.get("_replication_state") == "failed" else None

    d = await wait_for(failed, timeout=4)
    assert "target" in d["_replication_state_reason"]


async def test_rejected_writes_are_counted_as_failures(pair, tmp_path):
    a, _ = pair
    small = CouchpyServer(tmp_path, name="small", config={"couchdb": {"max_document_size": "2000"}}).start()
    try:
        src, tgt = name(), name()
        await fill(a, src, 10)
        await req(a, "PUT", f"/{src}/big", {"blob": "x" * 5000})
        st, res = await req(a, "POST", "/_replicate", {"source": f"{a.url}/{src}", "target": f"{small.url}/{tgt}", "create_target": True})
        assert st == 200, res
        h = res["history"][0]
        assert h["doc_write_failures"] == 1 and h["docs_written"] == 10 and h["docs_read"] == 11
        st, _ = await req(small, "GET", f"/{tgt}/big")
        assert st == 404
    finally:
        small.stop()


async def test_cancel_midway_then_resume_from_checkpoint(pair):
    a, b = pair
    src, tgt = name(), name()
    await fill(a, src, 3000)
    body = {"source": f"{a.url}/{src}", "target": f"{b.url}/{tgt}", "create_target": True,
            "worker_batch_size": 100, "worker_processes": 1, "checkpoint_interval": 50}
    first = asyncio.ensure_future(req(a, "POST", "/_replicate", body))

    async def midway():
        st, info = await req(b, "GET", f"/{tgt}")
        return st == 200 and info["doc_count"] >= 800

    await wait_for(midway, timeout=30, interval=0.01)
    st, res = await req(a, "POST", "/_replicate", {**body, "cancel": True})
    assert st == 200, res
    st, res = await first
    assert st == 500 and res["error"] == "cancelled", res
    await asyncio.sleep(0.3)
    st, info = await req(b, "GET", f"/{tgt}")
    present = info["doc_count"]
    assert present < 3000
    st, res = await req(a, "POST", "/_replicate", body)
    assert st == 200, res
    h = res["history"][0]
    assert h["start_last_seq"] != 0 and h["missing_checked"] < 3000
    assert h["docs_written"] == 3000 - present
    assert len(res["history"]) >= 2  # the cancelled session's checkpoint is carried on
    assert await all_revs(a, src) == await all_revs(b, tgt)


async def test_auth_basic_credentials_are_taken_as_written(pair):
    """`auth.basic`'s username and password are the credentials themselves; only a URL's
    userinfo is percent-encoded (a password holding "%41" is not the one holding "A")."""
    a, b = pair
    src, tgt = name(), name()
    password = "p%41s:s@1"
    st, out = await req(a, "PUT", "/_users/org.couchdb.user:reader",
                        {"name": "reader", "password": password, "roles": [], "type": "user"})
    assert st == 201, out
    await fill(a, src, 5)
    st, out = await req(a, "PUT", f"/{src}/_security", {"members": {"names": ["reader"]}})
    assert st == 200, out
    basic = {"basic": {"username": "reader", "password": password}}
    st, res = await req(b, "POST", "/_replicate", {"source": {"url": f"{a.base}/{src}", "auth": basic},
                                                   "target": tgt, "create_target": True})
    assert st == 200, res
    assert res["history"][0]["docs_written"] == 5
    # the same credentials in the URL, percent-encoded
    encoded = f"http://reader:{quote(password, safe='')}@127.0.0.1:{a.port}/{src}"
    st, res = await req(b, "POST", "/_replicate", {"source": encoded, "target": tgt})
    assert st == 200, res
    assert res["no_changes"] is True
