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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import quote

import aiohttp

import replicator
from couchpy.cluster_config import ClusterDef
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


def _db_url(base: str, name: str) -> str:
    return f"{base}/{quote(name, safe='')}"


class ClusterAgent:
    def __init__(self, node: Node, cdef: ClusterDef, self_name: str):
        self.node = node
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
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._probe_loop()), loop.create_task(self._watch())]

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
        mine = rec is not None and self.me.name in rec["nodes"]
        wanted = {p for p in (rec["nodes"] if mine else []) if p != self.me.name}
        for (db_name, peer_name), rid in list(self.jobs.items()):
            if db_name == name and peer_name not in wanted:
                del self.jobs[(db_name, peer_name)]
                await replicator.get_scheduler(self.node).remove(rid)
        if rec is None:
            if self.node.exists(name):
                with contextlib.suppress(NotFound):
                    await self.node.delete_db(name)
            return
        if not mine:
            return
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

