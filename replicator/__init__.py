"""The CouchDB replication protocol: endpoints, jobs, scheduler and the _replicator database.

For the server: `start(node)` on application startup (scheduler + `_replicator` watcher),
`await stop(node)` on cleanup; `get_scheduler(node)` for the HTTP routes (http_api/replication.py).
"""

from __future__ import annotations

from typing import Any

from .replicator_db import ReplicatorDb
from .scheduler import Scheduler

_STATE: dict[int, tuple[Any, Any, Any]] = {}  # id(node) -> (node, scheduler, replicator db)


def get_scheduler(node: Any):
    """The node's scheduler, created (without the _replicator watcher) on first use."""
    entry = _STATE.get(id(node))
    if entry is None or entry[0] is not node:
        sched = Scheduler(node, **_config(node))
        sched.start()
        _STATE[id(node)] = (node, sched, None)
        return sched
    return entry[1]


def get_replicator_db(node: Any):
    entry = _STATE.get(id(node))
    return entry[2] if entry and entry[0] is node else None


def _config(node: Any) -> dict[str, Any]:
    cfg = getattr(node, "config", None)
    out: dict[str, Any] = {}
    if cfg is None:
        return out
    for key, cast in (("max_jobs", int), ("interval", float), ("max_churn", int)):
        try:
            value = cfg.get("replicator", key)
        except Exception:  # noqa: BLE001 - configuration is optional
            value = None
        if value not in (None, ""):
            v = cast(value)
            out[key] = v / 1000.0 if key == "interval" else v  # CouchDB gives the interval in ms
    return out


def start(node: Any) -> None:
    sched = get_scheduler(node)
    rdb = ReplicatorDb(sched, node)
    rdb.start()
    _STATE[id(node)] = (node, sched, rdb)


async def stop(node: Any) -> None:
    entry = _STATE.pop(id(node), None)
    if entry is None or entry[0] is not node:
        return
    _, sched, rdb = entry
    if rdb is not None:
        await rdb.close()
    await sched.close()
