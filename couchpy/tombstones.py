"""Tombstone expiry: purging deletions older than a retention window, safely for replicas.

A deleted document keeps a tombstone forever in CouchDB so that replicas learn of the deletion.
With `[couchdb] tombstone_ttl = <seconds>` (or a database's own `PUT /{db}/_tombstone_ttl`, which
wins; 0 turns expiry off for that database) a background task purges the documents whose winning
revision is a deletion committed more than the window ago, with the ordinary purge machinery
(`Database.purge`: indexes catch up, the purge is in `_purged_infos`).

The age of a tombstone is the commit time of its sequence, read from the time index
(couchpy.timeseq): only tombstones whose sequence is certainly older than the window are purged
(`seq_since_time(now - ttl)` rounds the other way, so a tombstone younger than the window is
never purged; one may live up to a time bucket longer than the window).

Replication safety: the database remembers the highest sequence of any tombstone it expired,
its `tombstone_horizon`. A replica that read the changes up to a checkpoint at or beyond it saw
every expired deletion; one whose checkpoint is below it may have missed some, and would keep (and
could replicate back) documents deleted here. The changes feed therefore marks every answer to
`since` in (0, horizon) (`expired_marker`), and couchpy's replicator reports it in the job's
`_scheduler` info (docs/extensions.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .background import BackgroundTask
from .node import pinning_scope

log = logging.getLogger("couchpy.tombstones")

META_TTL = "tombstone_ttl"          # the database's own window (seconds; 0: off), when set
META_HORIZON = "tombstone_horizon"  # highest sequence of a tombstone purged by expiry
DEFAULT_CHECK_INTERVAL = 300.0
BATCH = 500  # documents purged per transaction


def effective_ttl(config_value: str | None, override: Any) -> int | None:
    """The window in seconds for a database, None when expiry is off. The database's own value
    wins over the node's; 0 or a malformed node value means off."""
    if isinstance(override, int) and not isinstance(override, bool):
        return override if override > 0 else None
    try:
        value = int(str(config_value).strip()) if config_value not in (None, "") else 0
    except ValueError:
        return None
    return value if value > 0 else None


def expired_marker(horizon: int, since: int) -> bool:
    """Whether a reader of the changes after `since` may have missed expired deletions (a reader
    from 0 is copying the database afresh: it has nothing a deletion could have removed)."""
    return 0 < since < horizon


def ttl_of(db) -> int | None:
    return effective_ttl(db.config.get("couchdb", "tombstone_ttl"), db.meta.get(META_TTL))


def horizon_of(db) -> int:
    return int(db.meta.get(META_HORIZON, 0))


async def expire(db, now_ms: int | None = None, start: int = 0) -> tuple[int, int]:
    """Purge the tombstones of `db` older than its window: (documents purged, the sequence the
    scan reached). Every tombstone at or below that sequence is gone, and none can appear there
    later (a deletion always takes a new sequence), so the next scan may start from it."""
    ttl = ttl_of(db)
    if ttl is None:
        return 0, start
    now_ms = int(db.clock() * 1000) if now_ms is None else now_ms
    cutoff = db.seq_since_time(now_ms - ttl * 1000)
    purged = 0
    while True:
        batch: dict[str, list[str]] = {}
        highest = 0
        reached = start
        for info in db.changes_since(start):
            if info.seq > cutoff:
                break
            reached = info.seq
            if info.deleted:
                batch[info.id] = info.leaves()
                highest = max(highest, info.seq)
                if len(batch) >= BATCH:
                    break
        else:
            reached = max(reached, min(cutoff, db.update_seq))
        if not batch:
            return purged, max(reached, start)
        # the horizon goes with the purge: set first, so that no reader ever sees the documents
        # gone without the marker (a crash in between only marks a little early)
        if highest > horizon_of(db):
            await db.set_meta_field(META_HORIZON, highest)
        await db.purge(batch)
        purged += len(batch)
        start = reached


class Daemon(BackgroundTask):
    """Expires tombstones now and then (`[couchdb] tombstone_check_interval`, seconds): of every
    database when `[couchdb] tombstone_ttl` is set, else of the open databases with a window of
    their own; a failure on one database is logged and the others go on."""

    def __init__(self, node: Any) -> None:
        self.node = node
        # (db name, creation time) -> sequence its last scan reached (see `expire`)
        self._reached: dict[tuple[str, Any], int] = {}

    def _interval(self) -> float:
        raw = self.node.config.get("couchdb", "tombstone_check_interval")
        try:
            return max(0.05, float(raw)) if raw else DEFAULT_CHECK_INTERVAL
        except ValueError:
            return DEFAULT_CHECK_INTERVAL

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval())
            await self.check()

    async def check(self) -> int:
        """One pass over every database; the number of documents purged."""
        total = 0
        if effective_ttl(self.node.config.get("couchdb", "tombstone_ttl"), None) is None:
            # No node-wide window: only databases with their own can expire anything. Those are
            # looked at while open (their metadata is at hand), rather than opening every database
            # of the node each pass; one that is closed has its tombstones expired when next used.
            names = [db.name for db in self.node.open_dbs() if not db.closed and ttl_of(db) is not None]
        else:
            names = self.node.all_dbs()
        for name in names:
            if self.node.closing:
                break
            try:
                with pinning_scope():
                    db = self.node.get_db(name)
                    key = (name, db.meta.get("created"))
                    purged, self._reached[key] = await expire(db, start=self._reached.get(key, 0))
                    total += purged
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one database failing must not stop expiry elsewhere
                log.exception("tombstone expiry of %s failed", name)
            await asyncio.sleep(0)
        return total
