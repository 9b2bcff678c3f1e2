"""Embedded sync: a database of this process replicating to and from any server, as PouchDB does.

`db.replicate_to(url)`, `db.replicate_from(url)` and `db.sync(url)` (couchpy.database, installed by
`import couchpy_sync`) run the node's own replication scheduler in-process: the same jobs, local
endpoint and HTTP endpoint as the server's `_replicate`, checkpoints included, so a later run
resumes where the last one ended and a continuous one is retried with backoff while the peer is
unreachable (an app working offline). A one-shot replication fails instead of retrying, so that
the caller learns the peer is unreachable.

The node's scheduler is created on first use and stopped (running jobs checkpoint first) when
the node is closed (`Node.before_close`). The node's conflict resolver starts with it: in an
embedded node conflicts come from replication, and a database with a conflict policy
(couchpy.conflict_resolver) resolves them as a server would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from couchpy.conflict_resolver import Resolver

from . import get_scheduler, stop
from .errors import ReplicationError
from .params import parse
from .scheduler import Job, Scheduler


class Replication:
    """One embedded replication, or the two of a sync. Await it for the result (one-shot; a
    continuous one ends only when stopped), or `await stop()` it."""

    def __init__(self, scheduler: Scheduler, jobs: dict[str, Job]):
        self._scheduler = scheduler
        self._jobs = jobs

    def __await__(self) -> Generator[Any, None, Any]:
        return self.wait().__await__()

    async def wait(self) -> dict[str, Any]:
        """The result of a replication (`_replicate`'s answer); of a sync, {"push", "pull"}."""
        results = await asyncio.gather(*(asyncio.shield(job.done) for job in self._jobs.values()))
        if len(self._jobs) == 1:
            return results[0]
        return dict(zip(self._jobs, results))

    @property
    def state(self) -> str | dict[str, str]:
        """The scheduler's state (`running`, `crashing`, `completed`, `failed`, ...)."""
        states = {k: job.state for k, job in self._jobs.items()}
        return next(iter(states.values())) if len(states) == 1 else states

    def info(self) -> dict[str, Any] | None | dict[str, Any]:
        """The `_scheduler/jobs` info (documents read and written, sequences, warnings)."""
        infos = {k: job.info() for k, job in self._jobs.items()}
        return next(iter(infos.values())) if len(infos) == 1 else infos

    async def stop(self) -> None:
        """Stop (a running job records its checkpoint first); awaiting it afterwards raises."""
        for job in self._jobs.values():
            if self._scheduler.jobs.get(job.rep_id) is job:
                await self._scheduler.remove(job.rep_id)


class Provider:
    def _scheduler(self, db: Any) -> Scheduler:
        node = db.node
        fresh = not any(getattr(h, "_couchpy_sync", False) for h in node.before_close)
        sched = get_scheduler(node)
        if fresh:
            resolver = Resolver(node)
            resolver.start()

            async def close() -> None:
                await resolver.stop()
                await stop(node)
            close._couchpy_sync = True  # type: ignore[attr-defined]
            node.before_close.append(close)
        return sched

    def _add(self, sched: Scheduler, source: Any, target: Any, continuous: bool, options: dict) -> Job:
        params = parse({**options, "source": source, "target": target, "continuous": continuous})
        return sched.add(params, restart=continuous)

    def replicate(self, db: Any, source: Any, target: Any, *, continuous: bool = False, **options: Any) -> Replication:
        sched = self._scheduler(db)
        return Replication(sched, {"replication": self._add(sched, source, target, continuous, options)})

    def sync(self, db: Any, url: Any, *, continuous: bool = False, **options: Any) -> Replication:
        sched = self._scheduler(db)
        return Replication(sched, {
            "push": self._add(sched, db.name, url, continuous, options),
            "pull": self._add(sched, url, db.name, continuous, options),
        })


PROVIDER = Provider()

__all__ = ["PROVIDER", "Provider", "Replication", "ReplicationError"]
