"""npm PouchDB in Node, logged in as a plain user with a cookie session, live-syncs its own
database both ways and is refused another user's (reads, pull and push replication)."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from tests.nodeenv import arun_node, node_modules

pytestmark = [pytest.mark.node]


async def test_pouchdb_cookie_session_syncs_own_db_and_is_refused_others(server, client, tmp_path):
    node_modules()
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice{tag}", f"bob{tag}"
    own, other = f"userdb-{alice}", f"userdb-{bob}"
    for name in (alice, bob):
        async with client.put(f"/_users/org.couchdb.user:{name}",
                              json={"name": name, "password": "pw-" + name, "roles": [], "type": "user"}) as r:
            assert r.status == 201
    for db, owner in ((own, alice), (other, bob)):
        assert (await client.put(f"/{db}")).status == 201
        async with client.put(f"/{db}/_security", json={"members": {"names": [owner]}}) as r:
            assert r.status == 200
    async with client.put(f"/{other}/secret", json={"bob's": "data"}) as r:
        assert r.status == 201
    try:
        out = await arun_node("pouchdb_cookie_sync.js", server.base, alice, "pw-" + alice, own, other,
                              str(tmp_path), timeout=180)
        assert out["loginStatus"] == 200 and out["usedCookie"]
        assert (out["sessionUser"], out["authenticated"]) == (alice, "cookie")
        assert out["errors"] == []
        assert out["remoteIds"] == out["localIds"] == ["from-local", "from-remote"]
        forbidden = {"status": 403, "name": "forbidden", "error": "forbidden",
                     "reason": "You are not allowed to access this db.",
                     "message": "You are not allowed to access this db."}
        assert out["otherInfo"] == {"error": "forbidden", "reason": "You are not allowed to access this db."}
        assert out["otherGet"] == forbidden
        assert out["otherReplicate"]["status"] == 403
        assert out["otherPush"]["status"] == 403
        assert out["stolenIds"] == []
        # the server side: alice's writes are there, bob's database untouched
        async with client.get(f"/{own}/from-local") as r:
            assert (await r.json())["v"] == 3
        async with client.get(f"/{other}/_all_docs") as r:
            assert [row["id"] for row in (await r.json())["rows"]] == ["secret"]
    finally:
        for db in (own, other):
            await client.delete(f"/{db}")
