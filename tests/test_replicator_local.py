"""The replication protocol between databases of one in-process node (local endpoints).

Same job code as over HTTP, minus the network: fast enough for property tests of convergence.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import couchpy
from replicator.checkpoint import compare_logs
from replicator.endpoint import make_endpoint
from replicator.job import Replication
from replicator.params import parse


async def replicate(node, source: str, target: str, **opts):
    params = parse({"source": source, "target": target, **opts})
    rep = Replication(params, make_endpoint(source, node=node), make_endpoint(target, node=node))
    return rep, await rep.run()


def snapshot(db) -> dict:
    """Every document's full state: all leaves with their bodies and histories, and the winner."""
    out = {}
    for info in db.changes_since(0):
        leaves = sorted(db.open_revs(info.id, "all", with_revs=True), key=lambda r: r["ok"]["_rev"])
        out[info.id] = (info.rev, leaves)
    return out


@pytest.fixture
async def node(tmp_path):
    n = couchpy.open(tmp_path / "data")
    yield n
    await n.aclose()


async def test_one_shot_copies_everything_and_second_run_writes_nothing(node):
    a = node.create_db("a")
    await a.bulk_docs([{"_id": f"d{i:03}", "n": i} for i in range(250)])
    d1 = a.get("d001")
    await a.put({**d1, "n": "edited"})
    d2 = a.get("d002")
    await a.put({"_id": "d002", "_rev": d2["_rev"], "_deleted": True})
    rep, res = await replicate(node, "a", "b", create_target=True, worker_batch_size=40)
    assert res["ok"] is True
    h = res["history"][0]
    assert h["docs_written"] == 250 and h["missing_found"] == 250 and h["doc_write_failures"] == 0
    b = node.get_db("b")
    assert snapshot(b) == snapshot(a)
    assert b.get("d001", revs=True)["_revisions"]["start"] == 2
    # checkpoints are the same on both sides
    ca, cb = a.get_local("_local/" + rep.base_id), b.get_local("_local/" + rep.base_id)
    assert ca["session_id"] == cb["session_id"] == rep.session_id
    assert ca["source_last_seq"] == a.update_seq
    seq_before = b.update_seq
    _, again = await replicate(node, "a", "b", worker_batch_size=40)
    assert again.get("no_changes") is True
    assert b.update_seq == seq_before


async def test_missing_source_and_target_fail_permanently(node):
    from replicator.errors import DbNotFound

    node.create_db("a")
    with pytest.raises(DbNotFound):
        await replicate(node, "nope", "a")
    with pytest.raises(DbNotFound):
        await replicate(node, "a", "nope")  # no create_target


async def test_doc_ids_filter(node):
    a = node.create_db("a")
    node.create_db("b")
    await a.bulk_docs([{"_id": f"d{i}", "n": i} for i in range(20)])
    _, res = await replicate(node, "a", "b", doc_ids=["d3", "d7", "absent"])
    b = node.get_db("b")
    assert sorted(i.id for i in b.changes_since(0)) == ["d3", "d7"]
    assert res["history"][0]["docs_written"] == 2


async def test_resume_from_checkpoint_after_cancel(node):
    a = node.create_db("a")
    node.create_db("b")
    for chunk in range(10):
        await a.bulk_docs([{"_id": f"d{chunk}-{i}", "n": i} for i in range(100)])
    params = parse({"source": "a", "target": "b", "worker_batch_size": 50, "worker_processes": 1, "checkpoint_interval": 20})
    rep = Replication(params, make_endpoint("a", node=node), make_endpoint("b", node=node))
    task = asyncio.create_task(rep.run())
    while rep.checkpointed_seq is None or rep.stats.docs_written < 300:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first_written = rep.stats.docs_written
    assert first_written < 1000
    await asyncio.sleep(0.3)  # a write submitted before the cancel still commits: let it land
    # A checkpoint may have been cut between its two writes: the resume point is what the two
    # sides agree on (same session: the source's record, written last).
    checkpointed, _ = compare_logs(a.get_local("_local/" + rep.base_id), node.get_db("b").get_local("_local/" + rep.base_id))
    present = node.get_db("b").info()["doc_count"]
    assert present >= first_written and present >= checkpointed
    rep2, res = await replicate(node, "a", "b", worker_batch_size=50)
    assert rep2.start_seq == checkpointed > 0
    h = res["history"][0]
    # only what was not checkpointed is looked at again; nothing is written twice
    assert h["missing_checked"] == 1000 - checkpointed
    assert h["docs_written"] == 1000 - present
    assert snapshot(node.get_db("b")) == snapshot(a)


async def test_continuous_local(node):
    a = node.create_db("a")
    node.create_db("b")
    params = parse({"source": "a", "target": "b", "continuous": True, "checkpoint_interval": 100})
    rep = Replication(params, make_endpoint("a", node=node), make_endpoint("b", node=node))
    task = asyncio.create_task(rep.run())
    try:
        b = node.get_db("b")
        for i in range(3):
            await a.put({"_id": f"live{i}"})
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            while b.get_docinfo(f"live{i}") is None:
                assert loop.time() - t0 < 1.0, "write did not arrive within 1 s"
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# ------------------------------------------------------------------ convergence (property)

DBS = ["n0", "n1", "n2"]
op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(DBS), st.integers(0, 4), st.integers(0, 99)),
    st.tuples(st.just("delete"), st.sampled_from(DBS), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("repl"), st.sampled_from(DBS), st.sampled_from(DBS), st.just(0)),
)


@given(st.lists(op, min_size=1, max_size=25))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_bidirectional_convergence(tmp_path_factory, script):
    asyncio.run(_converge(tmp_path_factory.mktemp("conv"), script))


async def _converge(path, script):
    node = couchpy.open(path)
    try:
        dbs = {name: node.create_db(name) for name in DBS}
        for kind, a, b, v in script:
            if kind == "put":
                docid = f"doc{b}"
                info = dbs[a].get_docinfo(docid)
                doc = {"_id": docid, "v": v, "by": a}
                if info is not None and not info.deleted:
                    doc["_rev"] = info.rev  # edit the winner; a tombstone is recreated without a rev
                await dbs[a].put(doc)
            elif kind == "delete":
                docid = f"doc{b}"
                info = dbs[a].get_docinfo(docid)
                if info is not None and not info.deleted:
                    await dbs[a].put({"_id": docid, "_rev": info.rev, "_deleted": True})
            elif a != b:
                await replicate(node, a, b)
        # replicate in every direction until nothing moves
        for _ in range(4):
            written = 0
            for x in DBS:
                for y in DBS:
                    if x != y:
                        _, res = await replicate(node, x, y)
                        written += 0 if res.get("no_changes") else res["history"][0]["docs_written"]
            if written == 0:
                break
        assert written == 0
        snaps = [snapshot(dbs[n]) for n in DBS]
        assert snaps[0] == snaps[1] == snaps[2]
    finally:
        await node.aclose()


async def test_selector_filter(node):
    a = node.create_db("a")
    node.create_db("b")
    await a.bulk_docs([{"_id": f"d{i}", "n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(10)])
    _, res = await replicate(node, "a", "b", selector={"kind": "even", "n": {"$gte": 4}})
    b = node.get_db("b")
    assert sorted(i.id for i in b.changes_since(0)) == ["d4", "d6", "d8"]
    assert res["history"][0]["docs_written"] == 3


async def test_since_seq_and_no_checkpoints(node):
    a = node.create_db("a")
    node.create_db("b")
    node.create_db("c")
    await a.bulk_docs([{"_id": f"d{i}"} for i in range(10)])
    rep, res = await replicate(node, "a", "b", since_seq=6)
    assert rep.start_seq == 6
    assert sorted(i.id for i in node.get_db("b").changes_since(0)) == ["d6", "d7", "d8", "d9"]
    rep, res = await replicate(node, "a", "c", use_checkpoints=False)
    assert res["history"][0]["docs_written"] == 10
    from couchpy.errors import NotFound

    with pytest.raises(NotFound):
        a.get_local("_local/" + rep.base_id)
    rep, res = await replicate(node, "a", "c", use_checkpoints=False)
    assert rep.start_seq == 0 and res["history"][0]["missing_checked"] == 10


async def test_design_filter(node):
    a = node.create_db("a")
    node.create_db("b")
    await a.bulk_docs([{"_id": "plain"}, {"_id": "_design/x", "views": {}}])
    _, res = await replicate(node, "a", "b", filter="_design")
    assert [i.id for i in node.get_db("b").changes_since(0)] == ["_design/x"]
