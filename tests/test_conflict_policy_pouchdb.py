"""npm PouchDB syncing with a couchpy database that has a conflict policy: PouchDB knows nothing of
the policy, yet ends with couchpy's resolution as its only live leaf."""

from __future__ import annotations

import pytest

from tests.interop import name, ok, req
from tests.nodeenv import arun_node, node_modules

pytestmark = [pytest.mark.node]


async def test_pouchdb_converges_to_couchpys_resolution(server, tmp_path):
    node_modules()
    db = name("cpp")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy",
                       {"type": "fields", "fields": {"tags": "union", "n": "max"}}))
    out = await arun_node("pouchdb_conflict_policy.js", f"{server.url}/{db}", str(tmp_path), timeout=120)
    resolved, local, remote = out["resolved"], out["local"], out["remote"]
    assert sorted(resolved["tags"]) == ["base", "local", "remote"] and resolved["n"] == 5
    assert local == remote and local["_rev"] == resolved["_rev"]
    assert "_conflicts" not in local and out["localLiveLeaves"] == 1
