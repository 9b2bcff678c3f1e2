"""One node's part in a cluster: the `_dbs` database of databases and the replications it implies.

`_dbs` holds one document per database: `{"_id": <db>, "nodes": [...], "n": <copies>,
"security": {...}}` (the security object only once a `_security` was written through the
cluster). Every node pulls `_dbs` continuously from every other node, so each knows every
database and where it lives; documents have deterministic revision ids, so two nodes recording the
same placement write the same revision, and concurrent different records become an ordinary
conflict with one winner everywhere.

This node watches its `_dbs`: for each database it holds a copy of, it creates the local database,
applies the recorded `_security`, and pulls continuously from each other replica (supervised jobs
of the node's replication scheduler); for a deleted record it removes the jobs and the local copy.
Creating, deleting or securing a database through any node writes the record locally, pushes it to
the other nodes' `_dbs` at once (the continuous replications would also carry it, later) and
waits, bounded, until the replica nodes have acted on it.

The peers' health comes from polling their `/_up`: `/_membership` shows the live ones, placement
only picks live nodes, and a peer coming back gets its crashed jobs restarted at once instead of
after the scheduler's backoff.

Rebalancing: the agent re-reads the definition file every few seconds; when its node list differs
from the one this node last acted on (kept in `_dbs`'s `_local/cluster-nodes`, so a restart with a
new definition counts too), each database whose rendezvous placement over the defined nodes
differs from its record is moved in the steps of couchpy/rebalance.py: new copies seeded by
replication, the record switched only once they hold every revision of the old copies, an old copy
removed only once the new replicas hold every revision of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp

import replicator
from couchpy import rebalance
from couchpy.cluster_config import ClusterConfigError, ClusterDef
from couchpy.errors import Conflict, CouchError, NotFound, PreconditionFailed
from couchpy.node import SYSTEM_DBS, Node, pinning_scope, validate_db_name
from couchpy.placement import Candidate, place
from couchpy.quorum import majority
from replicator import params as rep_params

from .cluster_quorum import Quorum

log = logging.getLogger("couchpy.cluster")

DBS = "_dbs"
PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 2.0
CONFIRM_TIMEOUT = 10.0
REBALANCE_INTERVAL = 2.0
SEEN_NODES = "_local/cluster-nodes"  # in _dbs: the node list this node last rebalanced for
# what a client writing to a copy that is leaving this node is told (503: it retries)
LEAVING = ("This node's copy of the database is being removed (the database moved to other nodes): "
           "write through another node, or again in a moment.")


def _db_url(base: str, name: str) -> str:
    return f"{base}/{quote(name, safe='')}"


class ClusterAgent:
    def __init__(self, node: Node, cdef: ClusterDef, self_name: str,
                 reload: Callable[[], ClusterDef | None] | None = None):
        self.node = node
        self._reload_definition = reload  # re-reads the shared definition; None: never changes
        self.rebalancing = False  # the node list changed: databases are to be moved
        self.cdef = cdef
        self.me = cdef.node(self_name)
        self.peers = [n for n in cdef.nodes if n.name != self_name]
        self.live: dict[str, bool] = {p.name: False for p in self.peers}
        self.jobs: dict[tuple[str, str], str] = {}  # (database, peer name) -> replication id
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None
        # requests for databases this node holds no copy of go to a replica: no overall timeout
        # (continuous feeds), the bytes passed on as they are
        self.forward_session: aiohttp.ClientSession | None = None
        self.quorum = Quorum(self)
        # awaited at each point of a move where a crash or a client's write matters (the move's
        # record just written, its copy checked, ...): fault-injection for tests, which stop the
        # agent or write to a copy exactly there; `step(point, database)`
        self.step_hook: Callable[[str, str], Awaitable[None]] | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT * 3))
        self.forward_session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=PROBE_TIMEOUT),
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
        if not self.node.exists(DBS):
            self.node.create_db(DBS)
        for peer in self.peers:
            self._pull(DBS, peer)
        seen = self._seen_nodes()
        if seen is None:
            await self._note_nodes()  # a new node (or one from before rebalancing): nothing to move
        else:
            self.rebalancing = seen != sorted(self.cdef.names)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._probe_loop()), loop.create_task(self._watch()),
                       loop.create_task(self._rebalance_loop())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.quorum.close()
        for session in (self._session, self.forward_session):
            if session is not None:
                await session.close()

    # ---- what the HTTP layer asks ----------------------------------------------------------
    def live_nodes(self) -> list[str]:
        return sorted([self.me.name] + [name for name, up in self.live.items() if up])

    def membership(self) -> dict[str, list[str]]:
        return {"all_nodes": self.live_nodes(), "cluster_nodes": sorted(self.cdef.names)}

    def record(self, name: str) -> dict[str, Any] | None:
        """The live record of a database, or None (never created, or deleted)."""
        try:
            return self.node.get_db(DBS).get(name)
        except NotFound:
            return None

    def all_dbs(self) -> list[str]:
        with pinning_scope():
            dbs = self.node.get_db(DBS)
            names = {info.id for info in dbs.changes_since(0) if not info.deleted}
        names.update(n for n in self.node.all_dbs() if n in SYSTEM_DBS and n != DBS)  # _dbs is node-level
        return sorted(names)

    def replica_base(self, name: str) -> str | None:
        """Where a request for `name` goes when this node holds no copy of it: a live replica's URL
        (without credentials: the client's own go with the request), or None to answer here."""
        if name.startswith("_"):  # system databases are each node's own
            return None
        rec = self.record(name)
        if rec is None or self.me.name in rec["nodes"]:
            return None
        # a copy being seeded or drained during a move answers for itself: the other holders
        # replicate from and to it, and the move's checks ask it what it holds
        if self.me.name in rebalance.holders(rec) and self.node.exists(name):
            return None
        for node_name in rec["nodes"]:
            if self.live.get(node_name):
                return self.cdef.node(node_name).public_url
        return None

    def cluster_info(self, name: str) -> dict[str, int]:
        """`cluster` of a database's info: its real copy count and the quorum a request gets when
        it asks for none."""
        rec = self.record(name)
        n = len(rec["nodes"]) if rec else 1
        return {"q": 1, "n": n, "w": self.default_w(name), "r": self.default_r()}

    def default_w(self, name: str) -> int:
        rec = self.record(name)
        return self.cdef.w or majority(len(rec["nodes"]) if rec else 1)

    def default_r(self) -> int:
        return self.cdef.r or 1

    def holds(self, name: str) -> bool:
        """Whether `name` is a cluster database this node holds a copy of."""
        rec = self.record(name)
        return rec is not None and self.me.name in rec["nodes"]

    async def create_db(self, name: str) -> bool:
        """Create a database on its replica nodes; True when every replica confirmed it."""
        validate_db_name(name)
        if name in SYSTEM_DBS or name == DBS:  # node-local, as CouchDB's system databases
            self.node.create_db(name)
            return True
        async with self._lock(name):
            if self.record(name) is not None or self.node.exists(name):
                raise PreconditionFailed("The database could not be created, the file already exists.")
            candidates = [Candidate(n.name, n.zone) for n in self.cdef.nodes if n.name in self.live_nodes()]
            nodes = place(name, candidates, min(self.cdef.n, len(candidates)))
            await self._write_record({"_id": name, "nodes": nodes, "n": self.cdef.n})
            await self._apply(name)
        return await self._confirm(name, nodes, exists=True)

    async def delete_db(self, name: str) -> bool:
        rec = self.record(name)
        if rec is None:
            if name in SYSTEM_DBS or (self.node.exists(name) and name != DBS):
                await self.node.delete_db(name)
                return True
            raise NotFound("Database does not exist.")
        async with self._lock(name):
            await self._write_record({"_id": name, "_deleted": True})
            await self._apply(name)
        return await self._confirm(name, rec["nodes"], exists=False)

    async def record_security(self, name: str, security: dict[str, Any]) -> None:
        """Record a database's `_security` so that every replica applies it (now and when it returns)."""
        rec = self.record(name)
        if rec is None or rec.get("security") == security:
            return  # unknown, or recorded already (e.g. this is another node applying it here)
        async with self._lock(name):
            await self._write_record({**rec, "security": security})
            await self._apply(name)
        # the replicas up now apply it before the answer; the record reaches the others later
        peers = [self.cdef.node(n) for n in rec["nodes"] if n != self.me.name and self.live.get(n)]
        await asyncio.gather(*(self._put_security(peer, name, security) for peer in peers))

    async def _put_security(self, peer, name: str, security: dict[str, Any]) -> None:
        try:
            async with self._session.put(f"{_db_url(peer.url, name)}/_security", json=security) as resp:
                await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("could not apply _security on %s: %s", peer.name, type(exc).__name__)

    # ---- the record and its spreading ------------------------------------------------------
    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _write_record(self, doc: dict[str, Any]) -> None:
        dbs = self.node.get_db(DBS)
        for _ in range(5):
            current = dbs.get_docinfo(doc["_id"])
            body = {k: v for k, v in doc.items() if k != "_rev"}
            if current is not None and not current.deleted:
                body["_rev"] = current.rev
            elif current is not None and body.get("_deleted"):
                return  # already deleted
            try:
                await dbs.put(body)
                break
            except Conflict:
                continue
        else:
            raise CouchError("the database record kept changing", "conflict", 409)
        full = dbs.open_revs(doc["_id"], "all", with_revs=True)
        pushes = [self._push(peer, full) for peer in self.peers if self.live[peer.name]]
        await asyncio.gather(*pushes)

    async def _push(self, peer, open_revs: list[dict[str, Any]]) -> None:
        """Write the record's leaves to a peer's `_dbs` as replication does (new_edits=false)."""
        docs = [row["ok"] for row in open_revs if "ok" in row]
        try:
            async with self._session.post(f"{peer.url}/{DBS}/_bulk_docs",
                                          json={"docs": docs, "new_edits": False}) as resp:
                await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("could not push a database record to %s: %s", peer.name, type(exc).__name__)

    async def _confirm(self, name: str, nodes: list[str], *, exists: bool) -> bool:
        """Wait (bounded) until every replica node has (or no longer has) the database."""
        want = 200 if exists else 404
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        pending = {n for n in nodes if n != self.me.name}
        while pending and time.monotonic() < deadline:
            for peer_name in sorted(pending):
                peer = self.cdef.node(peer_name)
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with self._session.head(_db_url(peer.url, name)) as resp:
                        if resp.status == want:
                            pending.discard(peer_name)
            if pending:
                await asyncio.sleep(0.05)
        return not pending

    # ---- acting on records -----------------------------------------------------------------
    async def _watch(self) -> None:
        since = 0
        while True:
            try:
                with pinning_scope():
                    dbs = self.node.get_db(DBS)
                    changed = []
                    for info in dbs.changes_since(since):
                        since = info.seq
                        changed.append(info.id)
                for name in changed:
                    if not name.startswith("_design/"):
                        async with self._lock(name):
                            await self._apply(name)
                with pinning_scope():
                    await self.node.get_db(DBS).wait_for_change(since, 5.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watching %s", DBS)
                await asyncio.sleep(1.0)

    async def _apply(self, name: str) -> None:
        """Make this node's copy of `name` and its replications match the record."""
        rec = self.record(name)
        held = rebalance.holders(rec) if rec is not None else set()
        mine = self.me.name in held
        serving = rec is not None and self.me.name in rec["nodes"] + rec.get("moving", [])
        if mine and not serving and not self.node.exists(name):
            mine = False  # a leaving copy already removed is never made again
        defined = set(self.cdef.names)
        # a leaving copy takes nothing more, from clients (fenced) or from the other copies (no
        # pulls): it holds still while the replicas take what it has (see _leave)
        leaving = mine and not serving
        if leaving:
            await self.node.fence(name, LEAVING)
        wanted = {p for p in held if p != self.me.name and p in defined} if mine and not leaving else set()
        for (db_name, peer_name), rid in list(self.jobs.items()):
            if db_name == name and peer_name not in wanted:
                del self.jobs[(db_name, peer_name)]
                await replicator.get_scheduler(self.node).remove(rid)
        if rec is None:
            if self.node.exists(name):
                with contextlib.suppress(NotFound):
                    await self.node.delete_db(name)
            self.node.unfence(name)  # a database of this name made again takes writes
            return
        if not mine:
            if not self.node.exists(name):
                self.node.unfence(name)
            return
        if serving:
            self.node.unfence(name)
        with pinning_scope():
            try:
                db = self.node.get_db(name)
            except NotFound:
                db = self.node.create_db(name)
            security = rec.get("security")
            if security is not None and db.meta.get("security") != security:
                await db.set_meta_field("security", security)
        for peer_name in sorted(wanted):
            self._pull(name, self.cdef.node(peer_name))

    def _pull(self, name: str, peer) -> None:
        """A continuous replication from the peer's copy of `name` into ours (kept if already there)."""
        params = rep_params.parse({"source": _db_url(peer.url, name), "target": name, "continuous": True})
        job = replicator.get_scheduler(self.node).add(params, restart=True)
        self.jobs[(name, peer.name)] = job.rep_id

    # ---- peers' health ---------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        while True:
            await asyncio.gather(*(self._probe(peer) for peer in self.peers))
            self._supervise()
            await asyncio.sleep(PROBE_INTERVAL)

    def _supervise(self) -> None:
        """Every pull from a live peer runs. A pull fails for good when the peer's copy does not
        exist (yet: replicas create their copies side by side) and the scheduler then forgets it;
        it is started again here."""
        sched = replicator.get_scheduler(self.node)
        for (db_name, peer_name), rid in list(self.jobs.items()):
            job = sched.get(rid)
            if self.live.get(peer_name) and (job is None or job.state == "failed"):
                self._pull(db_name, self.cdef.node(peer_name))

    async def _probe(self, peer) -> None:
        up = False
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async with self._session.get(f"{peer.url}/_up",
                                         timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)) as resp:
                up = resp.status == 200
        was = self.live[peer.name]
        self.live[peer.name] = up
        if up and not was:
            await self._restart_jobs_from(peer)

    async def _restart_jobs_from(self, peer) -> None:
        """A peer is back: its crashed pulls start now rather than after their backoff, and the
        running ones start over too: after a cut link (no reset reaches either side) a running
        pull may be waiting on a connection that is gone, until its read timeout."""
        sched = replicator.get_scheduler(self.node)
        for (db_name, peer_name), rid in list(self.jobs.items()):
            job = sched.get(rid)
            if peer_name == peer.name and job is not None and job.state in ("crashing", "failed", "running"):
                await sched.remove(rid)
                self._pull(db_name, peer)


    # ---- rebalancing (couchpy/rebalance.py has the steps) ----------------------------------
    def _seen_nodes(self) -> list[str] | None:
        try:
            return self.node.get_db(DBS).get_local(SEEN_NODES)["nodes"]
        except NotFound:
            return None

    async def _note_nodes(self) -> None:
        dbs = self.node.get_db(DBS)
        doc: dict[str, Any] = {"_id": SEEN_NODES, "nodes": sorted(self.cdef.names)}
        with contextlib.suppress(NotFound):
            doc["_rev"] = dbs.get_local(SEEN_NODES)["_rev"]
        await dbs.put(doc)

    async def _rebalance_loop(self) -> None:
        while True:
            await asyncio.sleep(REBALANCE_INTERVAL)
            try:
                await self._reload()
                await self._rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rebalancing")

    async def _reload(self) -> None:
        """Take a changed definition (its file re-read): new peers are probed and their `_dbs`
        pulled, removed ones forgotten; a changed node list starts a rebalance."""
        if self._reload_definition is None:
            return
        try:
            new = self._reload_definition()
        except (ClusterConfigError, OSError) as exc:
            log.warning("cluster definition not reloaded: %s", exc)
            return
        if new is None or new == self.cdef:
            return
        if self.me.name not in new.names:
            log.warning("cluster definition not reloaded: it does not name this node")
            return
        changed = sorted(new.names) != sorted(self.cdef.names)
        self.cdef, self.me = new, new.node(self.me.name)
        self.peers = [n for n in new.nodes if n.name != self.me.name]
        self.live = {p.name: self.live.get(p.name, False) for p in self.peers}
        sched = replicator.get_scheduler(self.node)
        for (db_name, peer_name), rid in list(self.jobs.items()):
            if peer_name not in self.live:
                del self.jobs[(db_name, peer_name)]
                await sched.remove(rid)
        for peer in self.peers:
            if (DBS, peer.name) not in self.jobs:
                self._pull(DBS, peer)
        if changed:
            log.info("cluster nodes changed to %s: rebalancing", ", ".join(sorted(new.names)))
            self.rebalancing = True

    async def _rebalance(self) -> None:
        """One pass over every database record: begin the moves the node list asks for, and take
        every move under way one step further when it may."""
        defined = set(self.cdef.names)
        with pinning_scope():
            names = [i.id for i in self.node.get_db(DBS).changes_since(0)
                     if not i.deleted and not i.id.startswith("_design/")]
        all_begun = True
        for name in names:
            async with self._lock(name):
                rec = self.record(name)
                if rec is None:
                    continue
                if (fixed := rebalance.forget_undefined(rec, defined)) is not None:
                    rec = await self._rewrite(fixed)
                if "moving" in rec:
                    if self._drives(rec) and await self._caught_up(name, rec, defined):
                        log.info("%s: new copies caught up on %s", name, ", ".join(rebalance.new_copies(rec)))
                        await self._rewrite(rebalance.switch(rec, defined))
                        await self._step("switched", name)
                elif self.me.name in rec.get("leaving", ()):
                    await self._leave(name, rec)
                elif self.rebalancing:
                    cands = [Candidate(n.name, n.zone) for n in self.cdef.nodes]
                    target = rebalance.ideal(name, cands, self.cdef.n)
                    if sorted(target) != sorted(rec["nodes"]):
                        begun = rebalance.start(rec, target, defined, set(self.live_nodes()))
                        if begun is None:
                            all_begun = False
                        else:
                            log.info("%s: moving from %s to %s", name, rec["nodes"], target)
                            await self._rewrite(begun)
                            await self._step("started", name)
        if self.rebalancing and all_begun:
            await self._note_nodes()
            self.rebalancing = False

    async def _step(self, point: str, name: str) -> None:
        if self.step_hook is not None:
            await self.step_hook(point, name)

    async def _rewrite(self, rec: dict[str, Any]) -> dict[str, Any]:
        await self._write_record(rec)
        await self._apply(rec["_id"])
        return self.record(rec["_id"]) or rec

    def _drives(self, rec: dict[str, Any]) -> bool:
        """One node checks a move at a time (any would write the same record): the first live
        holder."""
        live = set(self.live_nodes())
        first = next((n for n in sorted(rebalance.holders(rec)) if n in live), None)
        return first == self.me.name

    async def _caught_up(self, name: str, rec: dict[str, Any], defined: set[str]) -> bool:
        """Whether every new copy holds every revision every current copy holds."""
        live = set(self.live_nodes())
        srcs, dsts = rebalance.sources(rec, defined), rebalance.new_copies(rec)
        if not srcs or not set(srcs) <= live or not set(dsts) <= live:
            return False
        for src in srcs:
            leaves = await self._leaves(self.cdef.node(src), name)
            if leaves is None:
                return False
            for dst in dsts:
                if not await self._holds_all(self.cdef.node(dst), name, leaves):
                    return False
        return True

    async def _leave(self, name: str, rec: dict[str, Any]) -> None:
        """This node's copy is no longer a replica: remove it once every replica holds all of it.

        The copy is fenced first (Node.fence: document writes refused, those already taken
        committed) and its own pulls stopped, so that what the check below finds the replicas
        hold is all the copy will ever hold: a client writing straight to this node after the
        check is refused (503, and retries) instead of being acknowledged into a copy about to go.
        """
        if self.node.exists(name):
            if not set(rec["nodes"]) <= set(self.live_nodes()):
                return
            for (db_name, peer_name), rid in list(self.jobs.items()):
                if db_name == name:
                    del self.jobs[(db_name, peer_name)]
                    await replicator.get_scheduler(self.node).remove(rid)
            await self.node.fence(name, LEAVING)
            leaves = await self._leaves(self.me, name)
            if leaves is None:
                return
            for dst in rec["nodes"]:
                if not await self._holds_all(self.cdef.node(dst), name, leaves):
                    return
            await self._step("drained", name)
            with contextlib.suppress(NotFound):
                await self.node.delete_db(name)
            self.node.unfence(name)  # the copy is gone: one made here again later takes writes
            log.info("%s: copy removed, every replica holds it", name)
            await self._step("removed", name)
        await self._rewrite(rebalance.left(rec, self.me.name))

    async def _leaves(self, peer, name: str) -> dict[str, list[str]] | None:
        """Every document's leaf revisions in the peer's copy (None: it did not answer)."""
        url = f"{_db_url(peer.url, name)}/_changes?style=all_docs"
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                if resp.status != 200:
                    return None
                body = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None
        return {row["id"]: [c["rev"] for c in row["changes"]] for row in body["results"]}

    async def _holds_all(self, peer, name: str, leaves: dict[str, list[str]]) -> bool:
        if not leaves:
            return True
        try:
            async with self._session.post(f"{_db_url(peer.url, name)}/_revs_diff", json=leaves,
                                          timeout=aiohttp.ClientTimeout(total=60)) as resp:
                if resp.status != 200:
                    return False
                return not rebalance.missing(leaves, await resp.json())
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
