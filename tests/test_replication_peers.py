"""couchpy's replicator against an independent CouchDB-compatible peer: pouchdb-server (npm).

Push to it, pull from it, concurrent edits on both sides converging to the same revision trees,
and a continuous push."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest

from tests.nodeenv import PouchdbServer, node_modules
from tests.serverproc import CouchpyServer
from tests.test_replication_http import all_revs, fill, req, wait_for

pytestmark = pytest.mark.node


class Peer:
    """Just enough of CouchpyServer's interface for the helpers (no credentials: admin party)."""

    def __init__(self, url: str):
        self.base = url.rstrip("/")
        self.url = self.base
        self.auth = None


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    node_modules()  # installs the pinned npm packages or skips
    root = tmp_path_factory.mktemp("peers")
    with PouchdbServer(data_dir=root / "pouch") as peer:
        srv = CouchpyServer(root, name="couchpy").start()
        try:
            yield srv, Peer(peer.url)
        finally:
            srv.stop()


def name() -> str:
    return "p-" + uuid.uuid4().hex[:10]


async def peer_put(peer, path, body):
    async with aiohttp.ClientSession() as s:
        async with s.put(peer.base + path, json=body) as r:
            return r.status, await r.json(content_type=None)


async def test_push_and_pull_with_pouchdb_server(servers):
    srv, peer = servers
    src, remote, back = name(), name(), name()
    await fill(srv, src, 150)
    st, doc = await req(srv, "GET", f"/{src}/d00007")
    await req(srv, "DELETE", f"/{src}/d00007", rev=doc["_rev"])
    st, res = await req(srv, "POST", "/_replicate", {"source": f"{srv.url}/{src}", "target": f"{peer.base}/{remote}", "create_target": True})
    assert st == 200, res
    assert res["history"][0]["docs_written"] == 150
    assert await all_revs(peer, remote) == await all_revs(srv, src)
    # pull it back into a new database
    st, res = await req(srv, "POST", "/_replicate", {"source": f"{peer.base}/{remote}", "target": back, "create_target": True})
    assert st == 200, res
    assert await all_revs(srv, back) == await all_revs(srv, src)
    # idempotent against the peer too
    st, res = await req(srv, "POST", "/_replicate", {"source": f"{srv.url}/{src}", "target": f"{peer.base}/{remote}"})
    assert st == 200 and (res.get("no_changes") or res["history"][0]["docs_written"] == 0), res


async def test_conflicts_converge_with_pouchdb_server(servers):
    srv, peer = servers
    mine, theirs = name(), name()
    await fill(srv, mine, 10)
    st, _ = await req(srv, "POST", "/_replicate", {"source": f"{srv.url}/{mine}", "target": f"{peer.base}/{theirs}", "create_target": True})
    assert st == 200
    # concurrent edits of the same documents on both sides, and a deletion on the peer
    for i in range(5):
        st, d = await req(srv, "GET", f"/{mine}/d{i:05}")
        await req(srv, "PUT", f"/{mine}/d{i:05}", {**d, "side": "couchpy"})
        st, d = await req(peer, "GET", f"/{theirs}/d{i:05}")
        await peer_put(peer, f"/{theirs}/d{i:05}", {**d, "side": "pouch"})
    st, d = await req(peer, "GET", f"/{theirs}/d00009")
    await req(peer, "DELETE", f"/{theirs}/d00009", rev=d["_rev"])
    for _ in range(2):
        st, r1 = await req(srv, "POST", "/_replicate", {"source": f"{srv.url}/{mine}", "target": f"{peer.base}/{theirs}"})
        assert st == 200, r1
        st, r2 = await req(srv, "POST", "/_replicate", {"source": f"{peer.base}/{theirs}", "target": f"{srv.url}/{mine}"})
        assert st == 200, r2
    assert await all_revs(srv, mine) == await all_revs(peer, theirs)
    # both pick the same winner and list the same conflicts
    for i in range(5):
        st, a = await req(srv, "GET", f"/{mine}/d{i:05}", conflicts="true")
        st, b = await req(peer, "GET", f"/{theirs}/d{i:05}", conflicts="true")
        assert a["_rev"] == b["_rev"] and a["_conflicts"] == b["_conflicts"] and len(a["_conflicts"]) == 1
    st, gone = await req(srv, "GET", f"/{mine}/d00009")
    assert st == 404


async def test_continuous_push_to_pouchdb_server(servers):
    srv, peer = servers
    src, remote = name(), name()
    await fill(srv, src, 3)
    body = {"source": f"{srv.url}/{src}", "target": f"{peer.base}/{remote}", "create_target": True, "continuous": True}
    st, res = await req(srv, "POST", "/_replicate", body)
    assert st == 202, res
    try:
        async def has(docid):
            async def check():
                st, _ = await req(peer, "GET", f"/{remote}/{docid}")
                return st == 200
            return check

        await wait_for(await has("d00002"))
        t0 = time.monotonic()
        await req(srv, "PUT", f"/{src}/live", {"x": 1})
        await wait_for(await has("live"), timeout=3)
        assert time.monotonic() - t0 < 3
    finally:
        st, _ = await req(srv, "POST", "/_replicate", {**body, "cancel": True})
        assert st == 200
