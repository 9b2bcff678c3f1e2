"""The `_replicator` database: documents that describe replications.

Creating a document starts its replication, updating it (any field other than the `_replication_*`
ones the replicator writes itself) restarts it with the new parameters, deleting it stops it. As in
CouchDB 3, only final states are written back onto the document: `completed` (one-shot finished,
with `_replication_stats`) and `failed` (permanent error or an invalid document, with
`_replication_state_reason`); transient states are visible in `GET /_scheduler/docs`. A document
already `completed`/`failed` is not started again (after a restart either): edit it to re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from couchpy import replication_owners
from couchpy.errors import Conflict, CouchError, NotFound
from couchpy.jsonutil import dumps_sorted

from . import filter_code
from . import params as params_mod
from .scheduler import Job, Scheduler, display_endpoint, iso

log = logging.getLogger("couchpy.replicator")

DBNAME = "_replicator"


def _user_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


class DocState:
    """What _scheduler/docs shows for a document without a live job (final or invalid)."""

    def __init__(self, doc_id: str, state: str, reason: str | None, fingerprint: bytes, doc: dict[str, Any]):
        self.doc_id = doc_id
        self.state = state
        self.reason = reason
        self.fingerprint = fingerprint
        self.source = doc.get("source")
        self.target = doc.get("target")
        self.stats = doc.get("_replication_stats")
        self.last_updated = time.time()
        self.job: Job | None = None

    def doc_json(self) -> dict[str, Any]:
        if self.job is not None:
            return self.job.doc_json()
        info: Any = self.stats if self.state == "completed" else ({"error": self.reason} if self.reason else None)
        return {
            "database": DBNAME,
            "doc_id": self.doc_id,
            "id": None,
            "node": "couchpy@127.0.0.1",
            "source": display_endpoint(self.source) if self.source else None,
            "target": display_endpoint(self.target) if self.target else None,
            "state": self.state,
            "info": info,
            "error_count": 1 if self.state == "failed" else 0,
            "last_updated": iso(self.last_updated),
            "start_time": iso(self.last_updated),
            "source_proxy": None,
            "target_proxy": None,
        }


class ReplicatorDb:
    def __init__(self, scheduler: Scheduler, node: Any):
        self.scheduler = scheduler
        self.node = node
        self.docs: dict[str, DocState] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _db(self):
        try:
            return self.node.get_db(DBNAME)
        except NotFound:
            return self.node.create_db(DBNAME)

    async def _watch(self) -> None:
        since = 0
        while True:
            try:
                db = self._db()
                for info in list(db.changes_since(since)):
                    since = info.seq
                    if info.id.startswith("_design/"):
                        continue
                    try:
                        await self._handle(db, info)
                    except Exception:
                        log.exception("_replicator document %s", info.id)
                await db.wait_for_change(since, 5.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watching _replicator")
                since = 0
                await asyncio.sleep(1.0)

    async def _handle(self, db, info) -> None:
        current = self.docs.get(info.id)
        if info.deleted:
            if current is not None:
                self.docs.pop(info.id, None)
                if current.job is not None:
                    await self.scheduler.remove(current.job.rep_id)
            return
        try:
            doc = db.get(info.id)
        except NotFound:
            return
        fields = _user_fields(doc)
        fp = dumps_sorted(fields)
        if current is not None and current.fingerprint == fp:
            return  # our own state write, or an edit that changes nothing
        if current is not None and current.job is not None:
            await self.scheduler.remove(current.job.rep_id)
        state = doc.get("_replication_state")
        if state in ("completed", "failed") and current is None:
            # Finished before (e.g. before a restart): stays finished until edited.
            self.docs[info.id] = DocState(info.id, state, doc.get("_replication_state_reason"), fp, doc)
            return
        try:
            params = params_mod.parse(fields)
            if params.cancel:
                raise CouchError("`cancel` has no meaning in a _replicator document", "bad_request", 400)
            # a replication runs with its owner's rights, never the server's
            refused = replication_owners.may_run(doc.get("owner"), set(self.node.config.section("admins")),
                                                 params.source, params.target)
            if refused is not None:
                raise CouchError(refused, "forbidden", 403)
        except CouchError as exc:
            ds = DocState(info.id, "failed", f"invalid replication document: {exc.reason}", fp, doc)
            self.docs[info.id] = ds
            await self._write_state(info.id, fp, "failed", reason=ds.reason)
            return
        ds = DocState(info.id, "initializing", None, fp, doc)
        self.docs[info.id] = ds
        params = await filter_code.resolved(params, self.node)
        existing = self.scheduler.get(self.scheduler.replication_id(params))
        if existing is not None and existing.doc_id not in (None, info.id) and existing.state not in ("completed", "failed"):
            ds.state, ds.reason = "failed", f"Replication `{existing.rep_id}` specified by document `{info.id}` already started, triggered by document `{existing.doc_id}` from db `{DBNAME}`"
            return
        job = self.scheduler.add(params, database=DBNAME, doc_id=info.id, restart=True)
        job.on_finish = lambda j, docid=info.id, fp=fp: self._finished(docid, fp, j)
        ds.job = job

    async def _finished(self, doc_id: str, fp: bytes, job: Job) -> None:
        ds = self.docs.get(doc_id)
        if ds is None or ds.fingerprint != fp:
            return
        ds.job = None
        ds.state = job.state
        ds.reason = job.reason
        ds.last_updated = time.time()
        if job.state == "completed":
            info = job.info() or {}
            stats = {k: info.get(k) for k in ("revisions_checked", "missing_revisions_found", "docs_read",
                                              "docs_written", "doc_write_failures", "checkpointed_source_seq")}
            stats["start_time"] = iso(job.start_time)
            ds.stats = stats
            await self._write_state(doc_id, fp, "completed", stats=stats)
        else:
            await self._write_state(doc_id, fp, "failed", reason=job.reason)

    async def _write_state(self, doc_id: str, fp: bytes, state: str, *, reason: str | None = None,
                           stats: dict[str, Any] | None = None) -> None:
        db = self._db()
        for _ in range(5):
            try:
                doc = db.get(doc_id)
            except NotFound:
                return
            if dumps_sorted(_user_fields(doc)) != fp:
                return  # edited meanwhile: the new version is being handled
            for k in ("_replication_state", "_replication_state_time", "_replication_state_reason",
                      "_replication_stats", "_replication_id"):
                doc.pop(k, None)
            doc["_replication_state"] = state
            doc["_replication_state_time"] = iso(time.time())
            if reason:
                doc["_replication_state_reason"] = reason
            if stats is not None:
                doc["_replication_stats"] = stats
            try:
                await db.put(doc)
                return
            except Conflict:
                continue
            except CouchError as exc:
                # e.g. an engine that refuses CouchDB's _replication_* fields: the state stays
                # visible in _scheduler/docs.
                log.warning("could not record state %s on _replicator/%s: %s", state, doc_id, exc.reason)
                return
        with contextlib.suppress(Exception):
            log.warning("could not record state %s on _replicator/%s", state, doc_id)

    def states(self) -> list[DocState]:
        """Every document's state in document id order (render only the ones shown: with
        thousands of replications, `_scheduler/docs` is read a page at a time)."""
        return [ds for _, ds in sorted(self.docs.items())]
