"""The replication scheduler: supervised jobs, restarts with backoff, at most `max_jobs` at once.

A job (one replication id) moves through CouchDB's scheduler states:

    initializing -> pending -> running -> completed            (one-shot finished)
                                       -> crashing -> pending  (transient failure: retried later,
                                                                 backoff doubling per crash)
                                       -> failed               (permanent failure: not retried)
    error                                                     (bad _replicator document)

Each run is an asyncio task. At most `max_jobs` run at once; the others wait as `pending`, and every
`interval` seconds up to `max_churn` continuous jobs that have run longest are stopped (after a
checkpoint) to give pending ones their turn, so thousands of replications share the node fairly.
Only a job past its start (peers checked, checkpoints read) is stopped for rotation: on a node
too busy to start a job within one interval, stopping jobs still starting would let none of them
ever copy anything (seen with 10,000 replications on 2 cores). A job stuck starting holds its
slot until its requests time out and it crashes.
A crashed job's backoff resets once a run makes progress.

A job between runs keeps its last run's `info` (the numbers `_scheduler` shows), not the run: a
stopped run's task holds its CancelledError, whose traceback holds every frame of the run, its
Replication, endpoints, queues and worker tasks (about 200 objects, 40 KB). Kept by each of
thousands of pending jobs, that was the memory of 10,000 replications growing with their count
rather than with `max_jobs`, and left as reference cycles for the rarely run cyclic collector
once deleted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from couchpy.node import pinning_scope

from . import repid
from .endpoint import make_endpoint
from .errors import PermanentError, ReplicationError
from .http_endpoint import HttpEndpoint
from .job import Replication, seq_number
from .params import ReplicationParams

log = logging.getLogger("couchpy.replicator")

HISTORY_MAX = 20


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Job:
    def __init__(self, rep_id: str, params: ReplicationParams, *, database: str | None, doc_id: str | None,
                 restart: bool, user: str | None = None):
        self.rep_id = rep_id
        self.params = params
        self.database = database
        self.doc_id = doc_id
        self.restart = restart  # crashed runs are retried (else the crash fails the job)
        self.user = user
        self.state = "initializing"
        self.reason: str | None = None
        self.error_count = 0
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY_MAX)
        self.start_time = time.time()
        self.last_updated = self.start_time
        self.run_started: float | None = None
        self.replication: Replication | None = None  # the running run's
        self.last_info: dict[str, Any] | None = None  # the last run's `info`, between runs
        self.task: asyncio.Task | None = None  # the running run's
        self.retry_handle: asyncio.TimerHandle | None = None
        self.result: dict[str, Any] | None = None
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.on_finish: Callable[[Job], Any] | None = None
        self.active_task: Any = None
        self.display_source = display_endpoint(params.source)
        self.display_target = display_endpoint(params.target)
        self.event("added")

    @property
    def past_start(self) -> bool:
        """The running run has checked its peers and read its checkpoints."""
        return self.state == "running" and self.replication is not None and self.replication.past_start

    def event(self, kind: str, reason: str | None = None) -> None:
        entry: dict[str, Any] = {"timestamp": iso(time.time()), "type": kind}
        if reason:
            entry["reason"] = reason
        self.history.appendleft(entry)
        self.last_updated = time.time()

    def set_state(self, state: str, reason: str | None = None) -> None:
        self.state = state
        self.reason = reason
        self.last_updated = time.time()

    def info(self) -> dict[str, Any] | None:
        if self.reason and self.state in ("crashing", "failed"):
            # as CouchDB shows a crashed job: why, not the stats of the run that crashed
            return {"error": self.reason}
        if self.replication is not None:
            return self.replication.info()
        if self.last_info is not None:
            return self.last_info
        if self.reason:
            return {"error": self.reason}
        return None

    def run_ended(self, rep: Replication | None) -> None:
        """Keep what the run `rep` shows, and let the run itself go."""
        if rep is not None and self.replication is rep:
            self.last_info = rep.info()
            self.replication = None

    def _task_done(self, task: asyncio.Task) -> None:
        if self.task is task:
            self.task = None  # a finished task holds its run's frames (see the module's doc)

    def job_json(self) -> dict[str, Any]:
        """An entry of GET /_scheduler/jobs."""
        return {
            "database": self.database,
            "id": self.rep_id,
            "pid": f"<0.{id(self) % 100000}.0>" if self.state == "running" else None,
            "source": self.display_source,
            "target": self.display_target,
            "user": self.user,
            "doc_id": self.doc_id,
            "info": self.info(),
            "history": list(self.history),
            "node": "couchpy@127.0.0.1",
            "start_time": iso(self.start_time),
        }

    def doc_json(self) -> dict[str, Any]:
        """An entry of GET /_scheduler/docs."""
        return {
            "database": self.database,
            "doc_id": self.doc_id,
            "id": self.rep_id,
            "node": "couchpy@127.0.0.1",
            "source": self.display_source,
            "target": self.display_target,
            "state": self.state,
            "info": self.info(),
            "error_count": self.error_count,
            "last_updated": iso(self.last_updated),
            "start_time": iso(self.start_time),
            "source_proxy": None,
            "target_proxy": None,
        }


def display_endpoint(spec: Any) -> str:
    """An endpoint as shown in `_scheduler` and `_active_tasks`: its URL without credentials."""
    url = spec.get("url") if isinstance(spec, dict) else spec
    if isinstance(url, str) and "://" in url:
        return HttpEndpoint({"url": url}).display
    return str(url)


class Scheduler:
    def __init__(self, node: Any = None, *, max_jobs: int = 500, interval: float = 60.0, max_churn: int = 20,
                 backoff_base: float = 1.0, backoff_max: float = 300.0):
        self.node = node
        self.max_jobs = max_jobs
        self.interval = interval
        self.max_churn = max_churn
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.jobs: dict[str, Job] = {}
        self.pending: collections.deque[Job] = collections.deque()
        self.running: set[Job] = set()
        self._rotator: asyncio.Task | None = None
        self._closed = False

    # ------------------------------------------------------------------ API

    def start(self) -> None:
        if self._rotator is None:
            self._rotator = asyncio.get_running_loop().create_task(self._rotate_forever())

    def replication_id(self, params: ReplicationParams) -> str:
        """The id of `params` run by this node (which it stamps with the node's uuid)."""
        if self.node is not None and not params.node_uuid:
            params.node_uuid = self.node.uuid
        return repid.replication_id(params.source, params.target, params.id_options())

    def add(self, params: ReplicationParams, *, database: str | None = None, doc_id: str | None = None,
            restart: bool = True, user: str | None = None) -> Job:
        """Schedule a replication; an identical one already scheduled is returned instead."""
        rid = self.replication_id(params)
        existing = self.jobs.get(rid)
        if existing is not None and existing.state not in ("completed", "failed"):
            return existing
        job = Job(rid, params, database=database, doc_id=doc_id, restart=restart, user=user)
        self.jobs[rid] = job
        job.set_state("pending")
        self.pending.append(job)
        self._fill()
        return job

    async def remove(self, rep_id: str) -> Job | None:
        """Stop and forget a job (checkpointing a running one first)."""
        job = self.jobs.pop(rep_id, None)
        if job is None:
            return None
        await self._halt(job)
        job.event("stopped")
        if not job.done.done():
            job.done.set_exception(ReplicationError("replication cancelled", "cancelled"))
            job.done.exception()  # retrieved: nobody may be waiting
        self._fill()
        return job

    def get(self, rep_id: str) -> Job | None:
        job = self.jobs.get(rep_id)
        if job is None and "+" not in rep_id:
            for j in self.jobs.values():
                if repid.split_id(j.rep_id) == rep_id:
                    return j
        return job

    def active_tasks(self) -> list[dict[str, Any]]:
        return [j.job_json() for j in self.running]

    async def close(self) -> None:
        self._closed = True
        if self._rotator is not None:
            self._rotator.cancel()
            await asyncio.gather(self._rotator, return_exceptions=True)
        await asyncio.gather(*(self._halt(j) for j in list(self.jobs.values())), return_exceptions=True)
        for job in list(self.jobs.values()):
            if job.state not in ("completed", "failed"):
                job.set_state("stopped")
            if not job.done.done():  # whoever awaits a job learns it ended with the node
                job.done.set_exception(ReplicationError("replication stopped: the node is closing", "cancelled"))
                job.done.exception()

    # ------------------------------------------------------------------ running

    def _fill(self) -> None:
        while not self._closed and self.pending and len(self.running) < self.max_jobs:
            job = self.pending.popleft()
            if job.state != "pending" or self.jobs.get(job.rep_id) is not job:
                continue
            self._launch(job)

    def _launch(self, job: Job) -> None:
        job.replication = job.last_info = None  # the last run's, until this run makes its own
        job.set_state("running")
        job.run_started = time.time()
        job.event("started")
        self.running.add(job)
        # A fresh context: a job outlives the request that may have started it, so it must not
        # share that request's database pins; it holds its own for as long as it runs.
        job.task = asyncio.get_running_loop().create_task(self._run_pinned(job), context=contextvars.Context())
        job.task.add_done_callback(job._task_done)

    async def _run_pinned(self, job: Job) -> None:
        with pinning_scope():
            await self._run(job)

    async def _run(self, job: Job) -> None:
        p = job.params
        opts = dict(http_connections=p.http_connections, connection_timeout=p.connection_timeout,
                    retries_per_request=p.retries_per_request)
        source = target = None
        rep: Replication | None = None
        try:
            source = make_endpoint(p.source, node=self.node, **opts)
            target = make_endpoint(p.target, node=self.node, **opts)
            rep = Replication(p, source, target, job.rep_id)
            job.replication = rep
            self._register_task(job)
            rep.progress_hook = lambda: self._update_task(job)
            result = await rep.run()
            job.result = result
            job.set_state("completed")
            job.event("stopped")
            if not job.done.done():
                job.done.set_result(result)
        except asyncio.CancelledError:
            if rep is not None:
                # Stopped by the user or for rotation: keep what was done.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(rep.checkpoint(), 5)
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            reason = (exc.describe() if isinstance(exc, ReplicationError) else getattr(exc, "reason", None)) \
                or f"{type(exc).__name__}: {exc}"
            if isinstance(exc, PermanentError) or not job.restart:
                job.set_state("failed", reason)
                job.event("crashed", reason)
                if not job.done.done():
                    job.done.set_exception(exc)
                    job.done.exception()
            else:
                if rep is not None and rep.through_seq != rep.start_seq:
                    job.error_count = 0  # it was making progress: start the backoff over
                job.error_count += 1
                job.set_state("crashing", reason)
                job.event("crashed", reason)
                delay = min(self.backoff_base * 2 ** (job.error_count - 1), self.backoff_max)
                log.warning("replication %s crashed (%s); retry in %.1fs", job.rep_id, reason, delay)
                job.retry_handle = asyncio.get_running_loop().call_later(delay, self._requeue, job)
        finally:
            job.run_ended(rep)
            self.running.discard(job)
            if job.database is None and job.state in ("completed", "failed") and self.jobs.get(job.rep_id) is job:
                del self.jobs[job.rep_id]  # a finished _replicate call: its caller has the result
            if job.active_task is not None:
                job.active_task.done()
                job.active_task = None
            for ep in (source, target):
                if ep is not None:
                    with contextlib.suppress(Exception):
                        await ep.close()
            if job.on_finish is not None and job.state in ("completed", "failed"):
                with contextlib.suppress(Exception):
                    res = job.on_finish(job)
                    if asyncio.iscoroutine(res):
                        await res
            self._fill()

    def _requeue(self, job: Job) -> None:
        job.retry_handle = None
        if self.jobs.get(job.rep_id) is job and job.state == "crashing":
            job.set_state("pending", job.reason)
            self.pending.append(job)
            self._fill()

    async def _halt(self, job: Job) -> None:
        if job.retry_handle is not None:
            job.retry_handle.cancel()
            job.retry_handle = None
        with contextlib.suppress(ValueError):
            self.pending.remove(job)
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)

    async def _rotate_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):
                await self.rotate()

    async def rotate(self) -> None:
        """Give pending jobs a turn: stop the longest-running continuous jobs, start pending ones."""
        if not self.pending or len(self.running) < self.max_jobs:
            self._fill()
            return
        n = min(self.max_churn, len(self.pending))
        started = (j for j in self.running if j.params.continuous and j.past_start)
        victims = sorted(started, key=lambda j: j.run_started or 0)[:n]
        # stopped together: each checkpoints on the way out, and a few hundred checkpoints one
        # after the other would hold the pending jobs back for minutes
        tasks = [job.task for job in victims if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in victims:
            if job.state != "running":  # it ended by itself meanwhile (completed, crashed)
                continue
            job.set_state("pending")
            job.event("stopped", "rotated out for a pending job")
            self.pending.append(job)
        self._fill()

    # ------------------------------------------------------------------ _active_tasks

    def _register_task(self, job: Job) -> None:
        tasks = getattr(self.node, "tasks", None) if self.node is not None else None
        if tasks is None:
            return
        job.active_task = tasks.add(
            type="replication",
            replication_id=job.rep_id,
            doc_id=job.doc_id,
            database=job.database,
            user=job.user,
            source=job.display_source,
            target=job.display_target,
            continuous=job.params.continuous,
            checkpoint_interval=job.params.checkpoint_interval,
            **self._task_fields(job),
        )

    def _task_fields(self, job: Job) -> dict[str, Any]:
        rep = job.replication
        if rep is None:
            return {}
        info = rep.info()
        fields = {k: info[k] for k in ("docs_read", "docs_written", "doc_write_failures", "missing_revisions_found",
                                       "revisions_checked", "changes_pending", "source_seq", "through_seq",
                                       "checkpointed_source_seq")}
        done, total = seq_number(rep.through_seq), seq_number(rep.source_seq)
        if done is not None and total:
            fields["progress"] = min(100, int(done * 100 / total))
        return fields

    def _update_task(self, job: Job) -> None:
        if job.active_task is not None:
            job.active_task.update(**self._task_fields(job))
