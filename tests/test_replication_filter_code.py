"""A filtered replication is named by its filter's code, as CouchDB names it: editing the function
starts a new replication (a new checkpoint), so documents the old function left behind are copied
by the new one instead of being skipped as already seen."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from tests.serverproc import CouchpyServer

KEEP_A = "function(doc, req) { return doc.kind === 'a'; }"
KEEP_B = "function(doc, req) { return doc.kind === 'b'; }"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = CouchpyServer(tmp_path_factory.mktemp("filtercode")).start()
    yield s
    s.stop()


async def req(srv, method, path, body=None):
    async with aiohttp.ClientSession(auth=srv.auth) as s:
        async with s.request(method, srv.base + path, json=body) as r:
            return r.status, await r.json(content_type=None)


async def set_filter(srv, db, code):
    st, doc = await req(srv, "GET", f"/{db}/_design/f")
    body = {"filters": {"kind": code}, **({"_rev": doc["_rev"]} if st == 200 else {})}
    st, out = await req(srv, "PUT", f"/{db}/_design/f", body)
    assert st == 201, out


async def test_editing_the_filter_starts_a_new_replication(srv):
    src, tgt = "fc-" + uuid.uuid4().hex[:8], "fc-" + uuid.uuid4().hex[:8]
    for db in (src, tgt):
        assert (await req(srv, "PUT", f"/{db}"))[0] == 201
    docs = [{"_id": f"{k}{i}", "kind": k} for k in "ab" for i in range(5)]
    assert (await req(srv, "POST", f"/{src}/_bulk_docs", {"docs": docs}))[0] == 201
    await set_filter(srv, src, KEEP_A)
    rep = {"source": src, "target": tgt, "filter": "f/kind"}

    st, first = await req(srv, "POST", "/_replicate", rep)
    assert st == 200 and first["history"][0]["docs_written"] == 5, first
    st, again = await req(srv, "POST", "/_replicate", rep)
    assert st == 200 and again.get("no_changes") is True, again  # same code: the checkpoint holds

    await set_filter(srv, src, KEEP_B)  # the design document is itself a change the new code drops
    st, second = await req(srv, "POST", "/_replicate", rep)
    assert st == 200, second
    assert second["history"][0]["docs_written"] == 5, second  # the b documents, written before the edit
    st, rows = await req(srv, "GET", f"/{tgt}/_all_docs")
    assert sorted(r["id"] for r in rows["rows"]) == sorted(d["_id"] for d in docs)


async def test_the_replication_id_follows_the_code(srv):
    src, tgt = "fc-" + uuid.uuid4().hex[:8], "fc-" + uuid.uuid4().hex[:8]
    for db in (src, tgt):
        assert (await req(srv, "PUT", f"/{db}"))[0] == 201
    rep = {"source": src, "target": tgt, "filter": "f/kind", "continuous": True}
    ids = []
    for code in (KEEP_A, KEEP_B, KEEP_A):
        await set_filter(srv, src, code)
        st, out = await req(srv, "POST", "/_replicate", rep)
        assert st == 202, out
        ids.append(out["_local_id"])
        st, out = await req(srv, "POST", "/_replicate", {**rep, "cancel": True})
        assert st == 200 and out["_local_id"] == ids[-1], out
    assert ids[0] != ids[1] and ids[0] == ids[2]
    assert all(i.endswith("+continuous") for i in ids)
