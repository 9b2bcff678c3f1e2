"""Replication through failures: a fault-injecting proxy (cut connections, 500s, delays) and a
target killed with SIGKILL and restarted during a continuous replication."""

from __future__ import annotations

import uuid

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
