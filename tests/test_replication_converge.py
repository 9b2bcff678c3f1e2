"""Convergence between three real servers: random edit scripts (creates, edits, deletions,
resurrections, concurrent edits becoming conflicts) interleaved with replications that go through
fault-injecting proxies (responses cut mid-way, requests cut mid-upload, 500s), then replication
in every direction, without faults, until nothing moves; every document must then have the same
revision tree, bodies, winner and conflicts on all three.

CONVERGE_EXAMPLES sets the number of random scripts (a longer run: CONVERGE_EXAMPLES=200).
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faultproxy import FaultProxy
from tests.serverproc import CouchpyServer
from tests.test_replication_http import all_revs, req

N = 3
EXAMPLES = int(os.environ.get("CONVERGE_EXAMPLES", "12"))
FAULTS = {"cut_prob": 0.3, "cut_range": (20, 800), "error_prob": 0.2, "upload_cut_prob": 0.2}


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    root = tmp_path_factory.mktemp("trio")
    servers = [CouchpyServer(root, name=f"n{i}").start() for i in range(N)]
    proxies = [FaultProxy(s.port, seed=i).start() for i, s in enumerate(servers)]
    for s, p in zip(servers, proxies):
        s.proxy = p  # type: ignore[attr-defined]
    yield servers
    for p in proxies:
        p.stop()
    for s in servers:
        s.stop()


op = st.one_of(
    st.tuples(st.just("put"), st.integers(0, N - 1), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, N - 1), st.integers(0, 3)),
    st.tuples(st.just("push"), st.integers(0, N - 1), st.integers(0, N - 1)),
    st.tuples(st.just("pull"), st.integers(0, N - 1), st.integers(0, N - 1)),
)


@given(st.lists(op, min_size=1, max_size=14))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_three_servers_converge(trio, script):
    asyncio.run(_run(trio, script))


def _url(srv, db, faulty: bool) -> str:
    if not faulty:
        return f"{srv.url}/{db}"
    return f"http://{srv.user}:{srv.password}@127.0.0.1:{srv.proxy.port}/{db}"


async def _replicate(servers, db, via, src, tgt, faulty=False):
    s, t = servers[src], servers[tgt]
    body = {"source": _url(s, db, faulty and via != src), "target": _url(t, db, faulty and via != tgt),
            "retries_per_request": 30}
    st_, res = await req(servers[via], "POST", "/_replicate", body)
    assert st_ == 200, res
    assert res["history"][0]["doc_write_failures"] == 0, res
    return 0 if res.get("no_changes") else res["history"][0]["docs_written"]


async def _run(servers, script):
    db = "c-" + uuid.uuid4().hex[:10]
    for s in servers:
        st_, _ = await req(s, "PUT", f"/{db}")
        assert st_ == 201
        s.proxy.set(**FAULTS)
    n = 0
    for kind, a, b in script:
        n += 1
        if kind in ("put", "delete"):
            srv, docid = servers[a], f"doc{b}"
            st_, cur = await req(srv, "GET", f"/{db}/{docid}")
            if kind == "put":
                body = {"v": n, "by": a}
                if st_ == 200:
                    body["_rev"] = cur["_rev"]
                # else a tombstone (or nothing): a write without a rev creates the document or
                # resurrects it on top of the deleted leaf
                st_, out = await req(srv, "PUT", f"/{db}/{docid}", body)
                assert st_ == 201, out
            elif st_ == 200:
                st_, out = await req(srv, "DELETE", f"/{db}/{docid}", rev=cur["_rev"])
                assert st_ == 200, out
        elif a != b:
            # push: the source's server runs it; pull: the target's server does; the remote
            # side is reached through its fault proxy
            await _replicate(servers, db, a if kind == "push" else b, a, b, faulty=True)
    for s in servers:
        s.proxy.calm()
    print("faults injected so far:", [(p.cuts, p.upload_cuts, p.errors) for p in (s.proxy for s in servers)])
    for _ in range(4):
        moved = 0
        for x in range(N):
            for y in range(N):
                if x != y:
                    moved += await _replicate(servers, db, x, x, y)
        if moved == 0:
            break
    assert moved == 0
    trees = [await all_revs(s, db) for s in servers]
    assert trees[0] == trees[1] == trees[2]
    for docid in trees[0]:
        winners = []
        for s in servers:
            st_, d = await req(s, "GET", f"/{db}/{docid}", conflicts="true", deleted_conflicts="true")
            winners.append((st_, d.get("_rev"), d.get("_conflicts"), d.get("_deleted_conflicts")))
        assert winners[0] == winners[1] == winners[2], winners
