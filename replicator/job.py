"""One replication run: CouchDB's replication protocol between two endpoints.

    1. verify peers: source info (missing -> permanent failure), target info (missing: create it
       when `create_target`, else permanent failure)
    2. read `_local/<base id>` on both sides and resume from the newest common session
    3. read the source's changes (style=all_docs) from there, in batches; continuous jobs then keep
       long-polling for more
    4. per batch (several batches in flight, `worker_processes` workers): ask the target which
       revisions it lacks (`_revs_diff`), fetch those with their history (`_bulk_get`
       revs=true&latest=true, attachment stubs) and write them with `_bulk_docs` new_edits=false;
       a revision naming attachments the target may lack (newer than its possible ancestors) is
       fetched again as multipart `open_revs` with `atts_since` and written as a multipart/related
       `PUT ?new_edits=false`, bodies streamed from source to target (replicator.attachments)
    5. checkpoint both sides every `checkpoint_interval` ms and at the end, claiming only the
       sequence up to which every batch is done (see batching.CompletionTracker)

A second run of the same replication finds nothing missing and writes nothing. Failures are raised
as replicator.errors (transient ones already retried per request); the scheduler decides what next.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from . import filter_code, repid
from .attachments import needs_data
from .batching import CompletionTracker
from .checkpoint import LOWEST_SEQ, checkpoint_doc, compare_logs
from .endpoint import Endpoint
from .errors import ChangesReaderDied, DbNotFound, PermanentError, TransientError
from .params import ReplicationParams

log = logging.getLogger("couchpy.replicator")


@dataclass
class Stats:
    missing_checked: int = 0
    missing_found: int = 0
    docs_read: int = 0
    docs_written: int = 0
    doc_write_failures: int = 0

    def add(self, other: Stats) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


def _http_date(t: float | None = None) -> str:
    return email.utils.formatdate(t, usegmt=True)


def seq_number(seq: Any) -> int | None:
    """The numeric part of a sequence when it has one (for progress only; seqs stay opaque)."""
    if isinstance(seq, bool):
        return None
    if isinstance(seq, int):
        return seq
    if isinstance(seq, str):
        head = seq.split("-", 1)[0]
        return int(head) if head.isascii() and head.isdigit() else None
    if isinstance(seq, list) and seq and isinstance(seq[0], int):
        return seq[0]
    return None


class Replication:
    """One run (a session). Create, then `await run()`; `stats`/`status()` may be read any time."""

    def __init__(self, params: ReplicationParams, source: Endpoint, target: Endpoint, rep_id: str | None = None):
        self.params = params
        self.source = source
        self.target = target
        self.rep_id = rep_id or repid.replication_id(params.source, params.target, params.id_options())
        self.base_id = repid.split_id(self.rep_id)
        self.session_id = uuid.uuid4().hex
        self.stats = Stats()
        self.start_seq: Any = LOWEST_SEQ
        self.source_seq: Any = None  # the newest source sequence seen
        self.changes_pending: int | None = None
        self.checkpointed_seq: Any = None
        self.started_at = time.time()
        self.updated_at = self.started_at
        self.history: list[dict[str, Any]] = []
        self.tracker: CompletionTracker | None = None
        self.past_start = False  # peers checked and checkpoints read: copying has begun
        self._stopping = False
        self._last_checkpoint_stats: Stats | None = None
        self._checkpoint_lock = asyncio.Lock()
        self.result: dict[str, Any] | None = None
        # the source expired deletions past this job's checkpoint (couchpy.tombstones): the target
        # may keep documents deleted on the source; kept for the job's life, shown in `info`
        self.tombstones_expired: dict[str, Any] | None = None
        self.progress_hook: Any = None  # called (no args) after each batch and checkpoint

    # ------------------------------------------------------------------ status

    @property
    def through_seq(self) -> Any:
        return self.tracker.through_seq if self.tracker else self.start_seq

    def info(self) -> dict[str, Any]:
        """The `info` object of _scheduler/jobs and _scheduler/docs."""
        s = self.stats
        return {
            "revisions_checked": s.missing_checked,
            "missing_revisions_found": s.missing_found,
            "docs_read": s.docs_read,
            "docs_written": s.docs_written,
            "doc_write_failures": s.doc_write_failures,
            "changes_pending": self.changes_pending,
            "checkpointed_source_seq": self.checkpointed_seq,
            "source_seq": self.source_seq,
            "through_seq": self.through_seq,
            **({"tombstones_expired": self.tombstones_expired} if self.tombstones_expired else {}),
        }

    # ------------------------------------------------------------------ the run

    async def run(self) -> dict[str, Any]:
        p = self.params
        await self._verify_peers()
        source_log = target_log = None
        if p.use_checkpoints:
            source_log, target_log = await asyncio.gather(
                self.source.get_local(self.base_id), self.target.get_local(self.base_id)
            )
        self.start_seq, self.history = compare_logs(source_log, target_log)
        if self.start_seq == LOWEST_SEQ and p.since_seq is not None:
            self.start_seq = p.since_seq
        self.checkpointed_seq = self.start_seq if self.start_seq != LOWEST_SEQ else None
        self.tracker = CompletionTracker(self.start_seq)
        self.started_at = time.time()
        self.past_start = True

        queue: asyncio.Queue[tuple[int, list[dict[str, Any]]] | None] = asyncio.Queue(maxsize=p.worker_processes * 2)
        workers = max(1, p.worker_processes)
        tasks = [asyncio.create_task(self._read_changes(queue, workers))]
        tasks += [asyncio.create_task(self._worker(queue)) for _ in range(workers)]
        ticker = asyncio.create_task(self._checkpoint_timer())
        try:
            waiting = set(tasks) | {ticker}
            while any(not t.done() for t in tasks):
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
        finally:
            for t in (*tasks, ticker):
                t.cancel()
            await asyncio.gather(*tasks, ticker, return_exceptions=True)
        await self.checkpoint()
        no_changes = self.stats.missing_checked == 0 and self.through_seq == self.start_seq
        self.result = {
            "ok": True,
            **({"no_changes": True} if no_changes else {}),
            "session_id": self.session_id,
            "source_last_seq": self.through_seq,
            "replication_id_version": repid.REPLICATION_ID_VERSION,
            "history": self.history if self.history else [self._session_entry()],
        }
        return self.result

    async def stop(self) -> None:
        """Ask a continuous run to finish its batches in flight and checkpoint (used by cancel)."""
        self._stopping = True

    async def _verify_peers(self) -> None:
        p = self.params
        try:
            await self.source.info()
        except DbNotFound as exc:
            raise DbNotFound(f"Database {self.source.display} does not exist ({exc.reason})") from None
        if p.filter and not p.filter.startswith("_"):
            await self._check_filter(p.filter)
        try:
            await self.target.info()
        except DbNotFound:
            if not p.create_target:
                raise DbNotFound(f"Database {self.target.display} does not exist") from None
            await self.target.create(p.create_target_params)
            await self.target.info()

    async def _check_filter(self, name: str) -> None:
        """A design filter must exist on the source before anything happens (CouchDB reads its code
        to start the replication, so a missing one is the client's 404, and no target is created).
        The checkpoints are named by the code this run uses (see filter_code)."""
        ddoc, _, fname = name.partition("/")
        doc = await self.source.get_design(ddoc)
        code = filter_code.code_in(doc, fname)
        if doc is None:
            missing = "missing"
        elif code is None:
            missing = f"missing json key: {fname}"
        else:
            options = {**self.params.id_options(), "filter_code": code}
            self.base_id = repid.base_id(self.params.source, self.params.target, options)
            return
        raise PermanentError(f"Couldn't parse filter code from document {ddoc} on `{self.source.display}`  "
                             f"Error: {{not_found,<<\"{missing}\">>}}", "not_found", 404)

    async def _read_changes(self, queue: asyncio.Queue, workers: int) -> None:
        p = self.params
        assert self.tracker is not None
        since = self.start_seq
        # One changes request feeds every worker: fewer round trips (and fewer `pending` counts on
        # the source) than one request per worker batch.
        limit = p.worker_batch_size * max(1, p.worker_processes)
        caught_up = False
        while not self._stopping:
            feed = "longpoll" if (p.continuous and caught_up) else "normal"
            try:
                out = await self.source.changes(
                    since,
                    limit,
                    feed=feed,
                    timeout_ms=min(10000, p.connection_timeout // 2),
                    doc_ids=p.doc_ids,
                    selector=p.selector,
                    filter=p.filter,
                    query_params=p.query_params,
                )
            except TransientError as exc:
                if exc.status is None or exc.status < 500 or isinstance(exc, ChangesReaderDied):
                    raise
                raise ChangesReaderDied(f"{self.source.display}: {exc.reason}", status=exc.status) from None
            self._note_expired(out)
            rows = out["results"]
            last = out.get("last_seq", rows[-1]["seq"] if rows else since)
            if rows and last is None:
                last = rows[-1]["seq"]
            self.source_seq = last
            pending = out.get("pending")
            self.changes_pending = pending if isinstance(pending, int) else None
            if not rows:
                if last is not None and last != since:
                    # Filtered-out changes still move the checkpoint forward.
                    self.tracker.complete(self.tracker.issue(last))
                    since = last
                if not p.continuous:
                    break
                caught_up = True
                continue
            size = p.worker_batch_size
            for i in range(0, len(rows), size):
                chunk = rows[i : i + size]
                # every batch but the last is checkpointable at its own last row's seq
                seq = last if i + size >= len(rows) else chunk[-1]["seq"]
                await queue.put((self.tracker.issue(seq), chunk))
            since = last
            if not p.continuous and isinstance(pending, int) and pending == 0:
                break
        # End of feed (never reached by a failed or cancelled reader: the job is torn down then).
        for _ in range(workers):
            await queue.put(None)

    def _note_expired(self, out: dict[str, Any]) -> None:
        marker = out.get("couchpy_tombstones_expired")
        if not isinstance(marker, dict) or self.tombstones_expired is not None:
            return
        self.tombstones_expired = {
            **marker,
            "warning": "the source purged deletions (tombstone expiry) newer than this replication's "
                       "checkpoint: the target may still hold documents deleted on the source, and "
                       "replicating them back would recreate them there",
        }
        log.warning("replication %s: source %s expired tombstones up to %s, after this job's checkpoint %s; "
                    "the target may hold documents deleted on the source", self.rep_id, self.source.display,
                    marker.get("horizon"), marker.get("since"))

    async def _worker(self, queue: asyncio.Queue) -> None:
        assert self.tracker is not None
        while True:
            item = await queue.get()
            if item is None:
                return
            ticket, rows = item
            await self._copy(rows)
            self.tracker.complete(ticket)
            self.updated_at = time.time()
            if self.progress_hook is not None:
                self.progress_hook()

    async def _copy(self, rows: list[dict[str, Any]]) -> None:
        revs: dict[str, list[str]] = {}
        for row in rows:
            lst = revs.setdefault(row["id"], [])
            for ch in row.get("changes") or []:
                if ch.get("rev") and ch["rev"] not in lst:
                    lst.append(ch["rev"])
        self.stats.missing_checked += sum(len(v) for v in revs.values())
        diff = await self.target.revs_diff(revs)
        reqs: list[dict[str, Any]] = []
        for docid, entry in diff.items():
            ancestors = entry.get("possible_ancestors") or []
            for rev in entry.get("missing") or []:
                req: dict[str, Any] = {"id": docid, "rev": rev}
                if ancestors:
                    req["atts_since"] = ancestors
                reqs.append(req)
        if not reqs:
            return
        self.stats.missing_found += len(reqs)
        # Stubs first; revisions naming attachments the target lacks then travel one by one as
        # multipart, their bodies streamed (see replicator.attachments).
        docs = await self.source.bulk_get(reqs, attachments=False)
        self.stats.docs_read += len(docs)
        if not docs:
            return
        since = {r["id"]: r.get("atts_since") or [] for r in reqs}
        heavy = [d for d in docs if needs_data(d, since.get(d.get("_id"), []))]
        light = [d for d in docs if not needs_data(d, since.get(d.get("_id"), []))]
        failures = await self._write(light) if light else []
        for d in heavy:
            failures += await self._write_with_bodies(d["_id"], d["_rev"], since.get(d["_id"], []))
        for row in failures:
            log.warning("replication %s: %s not written: %s %s", self.rep_id, row.get("id"), row.get("error"), row.get("reason"))
        self.stats.doc_write_failures += len(failures)
        self.stats.docs_written += len(docs) - len(failures)

    async def _write_with_bodies(self, docid: str, rev: str, atts_since: list[str]) -> list[dict[str, Any]]:
        """Stream one revision with its bodies from source to target. A stream cannot be replayed,
        so a transient failure on either side restarts the whole copy (writing a revision again
        with new_edits=false is harmless), with the per-request retry budget and backoff."""
        delay = 0.25
        attempt = 0
        while True:
            try:
                failures = []
                async with contextlib.aclosing(self.source.open_revs_stream(docid, [rev], atts_since)) as revs:
                    async for doc, parts in revs:
                        row = await self.target.write_doc(doc, parts)
                        if row is not None:
                            failures.append(row)
                return failures
            except TransientError as exc:
                attempt += 1
                if attempt > self.params.retries_per_request:
                    raise
                log.info("retrying (%d/%d) the copy of %s after %s", attempt, self.params.retries_per_request,
                         docid, exc.reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _write(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """bulk_docs, splitting the batch when the target refuses it as too large (413), as
        CouchDB's replicator does: a single document still refused is a write failure."""
        try:
            return await self.target.bulk_docs(docs)
        except PermanentError as exc:
            if exc.status != 413:
                raise
            if len(docs) == 1:
                return [{"id": docs[0].get("_id"), "error": "too_large", "reason": exc.reason}]
            half = len(docs) // 2
            return await self._write(docs[:half]) + await self._write(docs[half:])

    async def _checkpoint_timer(self) -> None:
        interval = self.params.checkpoint_interval / 1000.0
        while True:
            await asyncio.sleep(interval)
            await self.checkpoint()

    def _session_entry(self) -> dict[str, Any]:
        s = self.stats
        return {
            "session_id": self.session_id,
            "start_time": _http_date(self.started_at),
            "end_time": _http_date(),
            "start_last_seq": self.start_seq,
            "end_last_seq": self.source_seq if self.source_seq is not None else self.through_seq,
            "recorded_seq": self.through_seq,
            "missing_checked": s.missing_checked,
            "missing_found": s.missing_found,
            "docs_read": s.docs_read,
            "docs_written": s.docs_written,
            "doc_write_failures": s.doc_write_failures,
            # recorded with the checkpoint, so that the gap stays known after the job moves past it
            **({"tombstones_expired": self.tombstones_expired} if self.tombstones_expired else {}),
        }

    async def checkpoint(self) -> None:
        """Record progress on both sides, when there is progress to record."""
        if not self.params.use_checkpoints or self.tracker is None:
            return
        async with self._checkpoint_lock:
            seq = self.through_seq
            if seq == self.checkpointed_seq or seq == LOWEST_SEQ:
                return
            doc = checkpoint_doc(self.session_id, seq, self._session_entry(), self.history)
            # Target first: a checkpoint only on the source could claim revisions the target lacks
            # if the target is later restored; comparison needs both anyway.
            await self.target.put_local(self.base_id, doc)
            await self.source.put_local(self.base_id, doc)
            self.history = doc["history"]
            self.checkpointed_seq = seq


def _first_cause(group: BaseExceptionGroup) -> BaseException:
    """The most telling exception of a TaskGroup failure (a permanent one if any)."""
    flat: list[BaseException] = []

    def walk(g: BaseException) -> None:
        if isinstance(g, BaseExceptionGroup):
            for e in g.exceptions:
                walk(e)
        else:
            flat.append(g)

    walk(group)
    for e in flat:
        if isinstance(e, PermanentError):
            return e
    for e in flat:
        if not isinstance(e, asyncio.CancelledError):
            return e
    return flat[0] if flat else group


async def run_once(params: ReplicationParams, source: Endpoint, target: Endpoint) -> dict[str, Any]:
    """Convenience: one run, closing both endpoints afterwards."""
    rep = Replication(params, source, target)
    try:
        return await rep.run()
    finally:
        with contextlib.suppress(Exception):
            await source.close()
        with contextlib.suppress(Exception):
            await target.close()
