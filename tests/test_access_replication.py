"""Replication as a plain user of an access database: npm PouchDB (cookie session) and couchpy's
own replicator (basic auth in the source URL) receive exactly the user's documents, and a push
carrying someone else's document is refused per document."""

from __future__ import annotations

import base64
import uuid

import aiohttp
import pytest

from tests.nodeenv import arun_node, node_modules


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def call(session, method, path, **kw):
    async with session.request(method, path, **kw) as r:
        return r.status, await r.json()


@pytest.fixture
async def shared(client):
    """An access database shared by alice and bob: alice's, bob's, shared, admin-only and deleted
    documents, and a design document for everyone."""
    tag = uuid.uuid4().hex[:6]
    alice, bob = f"alice{tag}", f"bob{tag}"
    for name in (alice, bob):
        st, body = await call(client, "PUT", f"/_users/org.couchdb.user:{name}",
                              json={"name": name, "password": "pw-" + name, "roles": [], "type": "user"})
        assert st == 201, body
    name = "acc-rep-" + tag
    assert (await call(client, "PUT", f"/{name}?access=true"))[0] == 201
    assert (await call(client, "PUT", f"/{name}/_security", json={"members": {"names": [alice, bob]}}))[0] == 200
    docs = [{"_id": "a1", "_access": [alice], "v": "alice's"}, {"_id": "b1", "_access": [bob], "v": "bob's"},
            {"_id": "ab", "_access": [alice, bob]}, {"_id": "n1", "v": "admins'"},
            {"_id": "a-gone", "_access": [alice]}, {"_id": "b-gone", "_access": [bob]},
            {"_id": "_design/app", "views": {"v": {"map": "function(d){ emit(d._id, null); }"}}}]
    st, res = await call(client, "POST", f"/{name}/_bulk_docs", json={"docs": docs})
    assert st == 201 and all("ok" in r for r in res)
    revs = {r["id"]: r["rev"] for r in res}
    for d in ("a-gone", "b-gone"):
        assert (await call(client, "DELETE", f"/{name}/{d}?rev={revs[d]}"))[0] == 200
    yield name, alice, bob
    await call(client, "DELETE", f"/{name}")


@pytest.mark.node
async def test_pouchdb_as_a_plain_user_gets_exactly_their_documents(server, client, shared, tmp_path):
    node_modules()
    name, alice, bob = shared
    out = await arun_node("pouchdb_access_sync.js", server.base, alice, "pw-" + alice, name, bob, str(tmp_path),
                          timeout=180)
    assert out["loginStatus"] == 200
    assert out["pull"]["ok"] and out["pull"]["doc_write_failures"] == 0
    assert out["localIds"] == ["_design/app", "a1", "ab"]
    assert out["localChanges"] == [["_design/app", False], ["a-gone", True], ["a1", False], ["ab", False]]
    assert all("bob's" not in str(d) and "admins'" not in str(d) for d in out["localBodies"])
    # PouchDB 9 keeps `_access` as a document member
    assert {d["_id"]: d.get("_access") for d in out["localBodies"]} == {
        "_design/app": None, "a1": [alice], "ab": [alice, bob]}
    # the push writes alice's document and refuses (per document) the one naming bob only
    assert out["push"]["docs_written"] == 1 and out["push"]["doc_write_failures"] == 1, out["push"]
    st, doc = await call(client, "GET", f"/{name}/from-{alice}")
    assert st == 200 and doc["_access"] == [alice]
    assert (await call(client, "GET", f"/{name}/forged-{alice}"))[0] == 404
    bob_sees = {"Authorization": basic(bob, "pw-" + bob)}
    async with aiohttp.ClientSession(base_url=server.base) as anon:
        assert (await call(anon, "GET", f"/{name}/from-{alice}", headers=bob_sees))[0] == 404
    assert sorted(out["finalIds"]) == sorted(["_design/app", "a1", "ab", f"from-{alice}", f"forged-{alice}"])


async def test_couchpy_replicator_as_a_plain_user_gets_exactly_their_documents(server, client, shared):
    name, alice, bob = shared
    copy = name + "-copy-" + alice
    src = {"url": f"{server.base}/{name}", "headers": {"Authorization": basic(alice, "pw-" + alice)}}
    admin = {"Authorization": basic(server.user, server.password)}
    # the copy is an access database too (elsewhere `_access` is no document member)
    assert (await call(client, "PUT", f"/{copy}?access=true"))[0] == 201
    st, res = await call(client, "POST", "/_replicate",
                         json={"source": src, "target": {"url": f"{server.base}/{copy}", "headers": admin}})
    assert st == 200 and res["ok"], res
    st, body = await call(client, "GET", f"/{copy}/_all_docs?include_docs=true")
    assert [r["id"] for r in body["rows"]] == ["_design/app", "a1", "ab"]
    st, body = await call(client, "GET", f"/{copy}/_changes")
    assert sorted(r["id"] for r in body["results"]) == ["_design/app", "a-gone", "a1", "ab"]
    # pushing as alice: her new document goes, bob's is refused (counted, not written)
    assert (await call(client, "PUT", f"/{copy}/from-copy", json={"_access": [alice]}))[0] == 201
    assert (await call(client, "PUT", f"/{copy}/forged", json={"_access": [bob]}))[0] == 201
    tgt = {"url": f"{server.base}/{name}", "headers": {"Authorization": basic(alice, "pw-" + alice)}}
    st, res = await call(client, "POST", "/_replicate", json={"source": copy, "target": tgt})
    assert st == 200 and res["ok"], res
    hist = res["history"][0]
    assert (hist["docs_written"], hist["doc_write_failures"]) == (1, 1), hist
    assert (await call(client, "GET", f"/{name}/from-copy"))[0] == 200
    assert (await call(client, "GET", f"/{name}/forged"))[0] == 404
    await call(client, "DELETE", f"/{copy}")
