"""The scheduler: max_jobs with fair rotation, crash restarts with exponential backoff, permanent
failures, and the _active_tasks entries (in-process node, local databases)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

import couchpy
from replicator.params import parse
from replicator.scheduler import Scheduler
from tests.inprocess import ADMIN, PASSWORD, serve
from tests.serverproc import free_port


@pytest.fixture
async def node(tmp_path):
    n = couchpy.open(tmp_path / "data")
    yield n
    await n.aclose()


async def until(pred, timeout=5.0):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not pred():
        assert loop.time() - t0 < timeout, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_max_jobs_and_rotation(node):
    sched = Scheduler(node, max_jobs=2, interval=3600, max_churn=2)
    jobs = []
    for i in range(5):
        src = node.create_db(f"s{i}")
        node.create_db(f"t{i}")
        await src.put({"_id": "doc", "i": i})
        jobs.append(sched.add(parse({"source": f"s{i}", "target": f"t{i}", "continuous": True, "checkpoint_interval": 50})))
    try:
        assert len(sched.running) == 2
        assert [j.state for j in jobs] == ["running", "running", "pending", "pending", "pending"]
        served = set()
        for _ in range(3):
            await asyncio.sleep(0.2)
            served |= {j.rep_id for j in sched.running}
            await sched.rotate()
            assert len(sched.running) == 2
        # every job got a turn and copied its document
        assert served == {j.rep_id for j in jobs}
        for i in range(5):
            assert node.get_db(f"t{i}").get_docinfo("doc") is not None
        assert sum(1 for j in jobs if j.state == "running") == 2
        rotated = [j for j in jobs if any(h["type"] == "stopped" for h in j.history)]
        assert rotated
    finally:
        await sched.close()


async def test_rotation_stops_only_jobs_past_their_start(node):
    """A job still starting (here: its source accepts the connection and never answers) is not
    rotated out; one that has begun copying is, and the pending job takes its slot."""
    async def silent(reader, writer):
        await reader.read()  # holds the connection open, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sched = Scheduler(node, max_jobs=2, interval=3600, max_churn=2)
    try:
        for name in ("s", "t1", "t2", "t3"):
            node.create_db(name)
        await node.get_db("s").put({"_id": "doc"})
        starting = sched.add(parse({"source": f"http://127.0.0.1:{port}/db", "target": "t1",
                                    "continuous": True, "connection_timeout": 60000}))
        copying = sched.add(parse({"source": "s", "target": "t2", "continuous": True}))
        waiting = sched.add(parse({"source": "s", "target": "t3", "continuous": True}))
        assert [j.state for j in (starting, copying, waiting)] == ["running", "running", "pending"]
        await until(lambda: node.get_db("t2").get_docinfo("doc") is not None)
        assert copying.past_start and not starting.past_start
        await sched.rotate()
        assert starting.state == "running" and starting.past_start is False
        assert copying.state == "pending"
        assert waiting.state == "running"
        await until(lambda: node.get_db("t3").get_docinfo("doc") is not None)
    finally:
        await sched.close()
        server.close()


async def test_crash_backoff_then_permanent_failure(node):
    sched = Scheduler(node, backoff_base=0.05, backoff_max=0.4)
    node.create_db("t")
    dead = f"http://127.0.0.1:{free_port()}/nowhere"  # connection refused: transient
    job = sched.add(parse({"source": dead, "target": "t", "retries_per_request": 0}))
    try:
        await until(lambda: job.error_count >= 4)
        crashes = [h for h in job.history if h["type"] == "crashed"]
        assert len(crashes) >= 4 and "Connect" in crashes[0]["reason"]
        assert job.state in ("crashing", "pending", "running")
        # a permanent error (missing local source) fails without restarts
        bad = sched.add(parse({"source": "missing", "target": "t"}), restart=True)
        await until(lambda: bad.state == "failed")
        assert "does not exist" in bad.reason
        await asyncio.sleep(0.2)
        assert bad.state == "failed" and bad.error_count == 0
    finally:
        await sched.close()


async def test_active_tasks_and_remove(node):
    sched = Scheduler(node)
    a = node.create_db("a")
    node.create_db("b")
    await a.bulk_docs([{"_id": f"d{i}"} for i in range(10)])
    job = sched.add(parse({"source": "a", "target": "b", "continuous": True}))
    try:
        await until(lambda: node.get_db("b").info()["doc_count"] == 10)
        await until(lambda: any(t.get("docs_written") == 10 for t in node.tasks.list()))
        task = next(t for t in node.tasks.list() if t.get("replication_id") == job.rep_id)
        assert task["type"] == "replication" and task["source"] == "a" and task["continuous"] is True
        assert task["revisions_checked"] == 10 and task["through_seq"] == 10
        await sched.remove(job.rep_id)
        assert not any(t.get("replication_id") == job.rep_id for t in node.tasks.list())
        assert sched.get(job.rep_id) is None
        # stopping checkpointed the progress
        assert a.get_local("_local/" + job.rep_id.split("+")[0])["source_last_seq"] == 10
    finally:
        await sched.close()


async def test_many_jobs_share_the_node(node):
    """Database-per-user style: 200 replications through a scheduler running 16 at a time."""
    sched = Scheduler(node, max_jobs=16)
    jobs = []
    for i in range(200):
        src = node.create_db(f"user{i}")
        await src.put({"_id": "profile", "i": i})
        jobs.append(sched.add(parse({"source": f"user{i}", "target": f"backup{i}", "create_target": True})))
    peak = 0
    try:
        while not all(j.state == "completed" for j in jobs):
            peak = max(peak, len(sched.running))
            assert not any(j.state == "failed" for j in jobs)
            await asyncio.sleep(0.005)
        assert 1 <= peak <= 16
        assert all(node.get_db(f"backup{i}").get("profile")["i"] == i for i in range(200))
    finally:
        await sched.close()


async def test_a_job_between_runs_keeps_no_run(tmp_path):
    """A rotated-out job keeps its last run's numbers, not the run: the stopped run's task (its
    CancelledError's traceback holds every frame), its Replication and its HTTP endpoints are
    freed by reference counting alone (the cyclic collector off, as good as a server's, which
    runs it rarely), and so is a job once removed. With 10,000 pending jobs each keeping its
    last run (~60 KB), the heap grew with the number of replications, not with max_jobs."""
    async with serve(tmp_path) as srv:
        node = srv.node
        sched = Scheduler(node, max_jobs=2, interval=3600, max_churn=2)
        base = f"http://{ADMIN}:{PASSWORD}@127.0.0.1:{srv.port}"
        runs: list[weakref.ref] = []
        jobs = []
        for i in range(4):
            await node.create_db(f"s{i}").put({"_id": "doc"})
        gc.disable()
        try:
            for i in range(4):
                jobs.append(sched.add(parse({"source": f"{base}/s{i}", "target": f"{base}/t{i}",
                                             "continuous": True, "create_target": True})))
            for _ in range(2):  # every job runs once and is rotated out
                running = [j for j in jobs if j.state == "running"]
                await until(lambda: all(j.past_start and j.info()["docs_written"] == 1 for j in running), 20)
                for j in running:
                    runs.extend(weakref.ref(o) for o in (j.replication, j.replication.source, j.replication.target))
                await sched.rotate()
            await asyncio.sleep(0.1)  # the stopped tasks' last callbacks run
            rotated = [j for j in jobs if j.state == "pending"]
            assert len(rotated) == 2
            # their numbers stay visible (_scheduler/docs) while they wait
            assert all(j.info()["docs_written"] == 1 for j in rotated)
            now = {id(o) for j in jobs if j.state == "running" for o in (j.replication, j.replication.source, j.replication.target)}
            alive = [o for o in (r() for r in runs) if o is not None and id(o) not in now]
            assert not alive, alive[:3]
            del alive
            removed = [weakref.ref(j) for j in jobs]
            for j in jobs:
                await sched.remove(j.rep_id)
            del j, jobs, rotated, running
            await asyncio.sleep(0.1)
            assert [r() for r in removed] == [None] * 4
            assert all(r() is None for r in runs)
        finally:
            gc.enable()
            await sched.close()
