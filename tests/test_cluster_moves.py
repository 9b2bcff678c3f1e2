"""A database's move between nodes, driven one step at a time: nodes run in this process (real
Node, ClusterAgent, aiohttp application and replication scheduler, on loopback ports), so that the
test can act at an exact point of a move through the agent's `step_hook` — write straight to the
copy that is leaving just after it was found drained, or stop the node driving the move right after
one of its record writes and start it again from its data directory.

The setting: a database created on node1 while it was the only node (n = 1); node2 then joins the
definition, and the database's rendezvous placement over both is node2, so its copy moves from
node1 to node2: started (node1 seeds node2), switched (node2 serves, node1 leaving), drained
(node2 holds every revision of node1's copy), removed."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import replicator

from couchpy.cluster_config import ClusterDef, parse
from couchpy.node import Node
from couchpy.placement import Candidate, place
from couchpy_cli import prepare_config
from couchpy_cli.cluster_agent import ClusterAgent
from http_api.app import make_app

from .serverproc import free_port

A, B = "node1@127.0.0.1", "node2@127.0.0.1"
DOCS = 60


def _moving_name() -> str:
    """A database name whose placement over both nodes (one copy) is node2."""
    return next(f"mv-{i}" for i in range(100) if place(f"mv-{i}", [Candidate(A), Candidate(B)], 1) == [B])


class InProcNode:
    """One cluster node in this process; `definition()` is what its agent reads (and re-reads)."""

    def __init__(self, root: Path, name: str, port: int, password: str,
                 definition: Callable[[], ClusterDef]):
        self.dir, self.name, self.port = root / name.split("@")[0], name, port
        self.password, self.definition = password, definition
        self.runner: web.AppRunner | None = None
        self.node: Node | None = None
        self.agent: ClusterAgent | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, hook: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        ini = self.dir / "couchpy.ini"
        if not ini.exists():
            ini.write_text(f"[admins]\nadmin = {self.password}\n[chttpd_auth]\niterations = 1000\n"
                           "[replicator]\ncheckpoint_interval = 500\n")
        config, _ = prepare_config(self.dir, None)
        self.node = Node(self.dir, config)
        self.node.ensure_system_dbs()
        self.agent = ClusterAgent(self.node, self.definition(), self.name, reload=self.definition)
        self.agent.step_hook = hook
        self.runner = web.AppRunner(make_app(self.node, self.agent), access_log=None,
                                    handle_signals=False, shutdown_timeout=5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        """The node's server, agent, replications and databases closed (what a restart finds is
        only what is on disk)."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


class Pair:
    """node1 and node2 with a definition the test changes (node1 alone first)."""

    def __init__(self, tmp: Path):
        self.password = secrets.token_hex(8)
        ports = {A: free_port(), B: free_port()}
        self.lines = {n: f"http://admin:{self.password}@127.0.0.1:{p}" for n, p in ports.items()}
        self.members = [A]
        self.a = InProcNode(tmp, A, ports[A], self.password, self.definition)
        self.b = InProcNode(tmp, B, ports[B], self.password, self.definition)

    def definition(self) -> ClusterDef:
        cdef = parse({"n": "1", **{n: self.lines[n] for n in self.members}})
        assert cdef is not None
        return cdef

    async def close(self) -> None:
        await self.b.stop()
        await self.a.stop()


async def _json(s: aiohttp.ClientSession, method: str, url: str, **kw) -> tuple[int, object]:
    async with s.request(method, url, **kw) as r:
        return r.status, await r.json()


async def _prepare(pair: Pair, s: aiohttp.ClientSession, db: str, written: set[str]) -> None:
    """The database on node1 alone, with documents; then node2 joins and the move begins."""
    assert (await _json(s, "PUT", f"{pair.a.base}/{db}"))[0] == 201
    docs = [{"_id": f"d{i:03}"} for i in range(DOCS)]
    status, _ = await _json(s, "POST", f"{pair.a.base}/{db}/_bulk_docs", json={"docs": docs})
    assert status == 201
    written.update(d["_id"] for d in docs)
    pair.members = [A, B]  # node1's agent re-reads this within 2 s and starts the move
    await pair.b.start()


async def _moved(pair: Pair, s: aiohttp.ClientSession, db: str, deadline: float) -> None:
    """Until node1's record says the move is done and node1 holds no copy."""
    while True:
        status, rec = await _json(s, "GET", f"{pair.a.base}/_dbs/{db}")
        if status == 200 and rec["nodes"] == [B] and not {"moving", "leaving"} & set(rec) \
                and not pair.a.node.exists(db):
            return
        assert time.monotonic() < deadline, rec
        await asyncio.sleep(0.2)


async def _all_on_node2(pair: Pair, s: aiohttp.ClientSession, db: str, written: set[str]) -> None:
    status, rows = await _json(s, "GET", f"{pair.b.base}/{db}/_all_docs")
    assert status == 200
    ids = {r["id"] for r in rows["rows"]}
    assert written <= ids, sorted(written - ids)  # every acknowledged write is on the replica


async def _hold_back_pull(node: InProcNode, db: str, source: str) -> None:
    """Stop `node`'s pull of `db` from `source`, as a slow link would hold it back (it comes back
    when the database's record next changes): what reaches the other copy from then on is up to
    the move's own steps, not to how fast replication happens to be in this process."""
    rid = node.agent.jobs.pop((db, source), None)
    if rid is not None:
        await replicator.get_scheduler(node.node).remove(rid)


def test_a_write_to_the_leaving_copy_after_its_drain_check_is_not_lost(tmp_path):
    """The worst moment for a client writing straight to the copy that leaves: node2 was just
    found to hold all of it, and it is about to be removed. That write must either be refused
    (and succeed when retried) or reach node2: never acknowledged and then removed with the copy."""
    db = _moving_name()
    pair = Pair(tmp_path)
    late: dict[str, int] = {}

    async def go():
        async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", pair.password),
                                         timeout=aiohttp.ClientTimeout(total=30)) as s:

            async def at_step(point: str, name: str) -> None:
                if point == "drained" and name == db and "status" not in late:
                    await _hold_back_pull(pair.b, db, A)
                    status, body = await _json(s, "PUT", f"{pair.a.base}/{db}/late", json={"at": point})
                    late["status"], late["body"] = status, body

            await pair.a.start(hook=at_step)
            written: set[str] = set()
            await _prepare(pair, s, db, written)
            await _moved(pair, s, db, time.monotonic() + 90)
            assert "status" in late, "the move never reached its drain check"
            if late["status"] in (201, 202):
                written.add("late")
            else:  # refused, as CouchDB answers a write it cannot take now: the client retries
                assert (late["status"], late["body"]["error"]) == (503, "unavailable"), late
                status, _ = await _json(s, "PUT", f"{pair.a.base}/{db}/late", json={"at": "retry"})
                assert status in (201, 202)  # node1 now passes it on to node2
                written.add("late")
            await _all_on_node2(pair, s, db, written)

    async def main():
        try:
            await asyncio.wait_for(go(), 150)
        finally:
            await pair.close()

    asyncio.run(main())


async def _write(s: aiohttp.ClientSession, base: str, db: str, doc_id: str, written: set[str],
                 *, until_taken: float = 0.0) -> int:
    """One write; acknowledged ones are noted. `until_taken`: seconds to keep retrying a refusal
    (a copy not made yet answers 404, a fenced one 503)."""
    deadline = time.monotonic() + until_taken
    while True:
        async with s.put(f"{base}/{db}/{doc_id}", json={"w": doc_id}) as r:
            await r.read()
            if r.status in (201, 202):
                written.add(doc_id)
                return r.status
            if time.monotonic() >= deadline:
                return r.status
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("point", ["started", "switched", "drained", "removed"])
def test_a_move_goes_on_from_its_record_after_the_node_driving_it_stops(tmp_path, point):
    """node1 drives the move and holds the copy that leaves. It is stopped right after the step
    `point` (its agent held there, then the whole node closed: server, agent, replications,
    databases), clients write to both nodes while it is down, and it is started again from its
    data directory with nothing but what is on disk: the move finishes from the `_dbs` record,
    no acknowledged write is lost, and node1's copy is still there whenever the move stopped
    before its removal."""
    db = _moving_name()
    pair = Pair(tmp_path)
    reached = asyncio.Event()

    async def go():
        async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", pair.password),
                                         timeout=aiohttp.ClientTimeout(total=30)) as s:

            async def hold_at(step: str, name: str) -> None:
                if step == point and name == db:
                    reached.set()
                    await asyncio.Event().wait()  # held here until the node is stopped

            await pair.a.start(hook=hold_at)
            written: set[str] = set()
            await _prepare(pair, s, db, written)
            await asyncio.wait_for(reached.wait(), 60)
            # node1's copy goes only at the last step, and only then
            assert pair.a.node.exists(db) == (point != "removed")
            # a client writing to node1 meanwhile: taken while its copy serves, refused while it is
            # leaving, passed on to node2 once it is gone
            status = await _write(s, pair.a.base, db, "to-node1-at-step", written)
            assert status == {"started": 201, "removed": 201}.get(point, 503), status
            await pair.a.stop()
            # node2 takes writes while node1 is down (its copy being seeded, or the replica)
            assert await _write(s, pair.b.base, db, "to-node2-while-down", written, until_taken=10) in (201, 202)
            await pair.a.start()  # no hook: the move goes on by itself
            await _moved(pair, s, db, time.monotonic() + 90)
            await _write(s, pair.a.base, db, "to-node1-after", written, until_taken=10)
            assert "to-node1-after" in written  # passed on to node2
            await _all_on_node2(pair, s, db, written)
            assert not pair.a.node.exists(db)

    async def main():
        try:
            await asyncio.wait_for(go(), 200)
        finally:
            await pair.close()

    asyncio.run(main())
