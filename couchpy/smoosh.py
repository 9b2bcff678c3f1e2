"""Compaction jobs: on request (`POST /{db}/_compact`) and automatic, as CouchDB 3's smoosh.

A job is a Database.compact() registered in `/_active_tasks` as CouchDB shows it
(`database_compaction`, `phase`, `progress`, `changes_done`, `total_changes`).

Automatic compaction reads CouchDB's settings:

    [smoosh]
    db_channels = upgrade_dbs,ratio_dbs,slack_dbs   ; channels in order; the first that wants a db takes it
    view_channels = upgrade_views,ratio_views,slack_views   ; the same for view and Mango indexes
    check_interval = 30                             ; seconds between looks (couchpy: smoosh is event-driven)
    [smoosh.ratio_dbs]   priority = ratio, min_priority = 2.0     ; sizes.file / sizes.active
    [smoosh.slack_dbs]   priority = slack, min_priority = 536870912  ; sizes.file - sizes.active
    [smoosh.ratio_views], [smoosh.slack_views]: the same defaults
    [smoosh.<channel>]   min_size (1 MiB), max_size, max_priority, min_changes, from, to (HH:MM)

Open databases whose update sequence moved since they were last looked at, and the open indexes
of those databases whose sequence moved, are checked; of those a channel wants, the one with the
highest priority is compacted, one at a time, inside the channel's window. An index's file stops
growing at about twice its live data (LMDB reuses the pages updates free), so with CouchDB's
thresholds the ratio channel seldom wants one and the slack channel takes the big ones.
`upgrade_dbs`/`upgrade_views` have nothing to do: couchpy has one on-disk format. `[smoosh]
enabled = false` turns it off. Channel rules (`Channel.wants`) are pure.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import math
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from .background import BackgroundTask
from .errors import CouchError
from .node import pinning_scope
from .views import manager as views

log = logging.getLogger("couchpy.smoosh")

DEFAULT_CHANNELS = "upgrade_dbs,ratio_dbs,slack_dbs"
DEFAULT_VIEW_CHANNELS = "upgrade_views,ratio_views,slack_views"
BUILTIN = {
    "ratio_dbs": {"priority": "ratio", "min_priority": "2.0"},
    "slack_dbs": {"priority": "slack", "min_priority": "536870912"},
    "ratio_views": {"priority": "ratio", "min_priority": "2.0"},
    "slack_views": {"priority": "slack", "min_priority": "536870912"},
}


def _hhmm(value: str | None) -> datetime.time | None:
    if not value:
        return None
    try:
        hh, mm = value.strip().split(":")
        return datetime.time(int(hh), int(mm))
    except ValueError:
        return None


def _number(value: str | None, default: float) -> float:
    if value is None:
        return default
    if value.strip().lower() == "infinity":
        return math.inf
    try:
        return float(value)
    except ValueError:
        return default


@dataclass(frozen=True)
class Channel:
    name: str
    priority: str = "ratio"  # "ratio": file/active; "slack": file - active
    min_priority: float = 5.0
    max_priority: float = math.inf
    min_size: float = 1 << 20
    max_size: float = math.inf
    min_changes: float = 0
    window_from: datetime.time | None = None
    window_to: datetime.time | None = None

    @classmethod
    def from_settings(cls, name: str, settings: dict[str, str]) -> Channel:
        merged = {**BUILTIN.get(name, {}), **settings}
        kind = merged.get("priority", "ratio")
        return cls(
            name=name,
            priority=kind if kind in ("ratio", "slack") else "ratio",
            min_priority=_number(merged.get("min_priority"), 5.0 if kind == "ratio" else 16 << 20),
            max_priority=_number(merged.get("max_priority"), math.inf),
            min_size=_number(merged.get("min_size"), 1 << 20),
            max_size=_number(merged.get("max_size"), math.inf),
            min_changes=_number(merged.get("min_changes"), 0),
            window_from=_hhmm(merged.get("from")),
            window_to=_hhmm(merged.get("to")),
        )

    def priority_of(self, sizes: dict[str, int]) -> float:
        file, active = sizes["file"], sizes["active"]
        if self.priority == "slack":
            return file - active
        return file / active if active > 0 else math.inf

    def in_window(self, now: datetime.time) -> bool:
        start, end = self.window_from, self.window_to
        if start is None or end is None or start == end:
            return True
        if start < end:
            return start <= now < end
        return now >= start or now < end  # the window runs over midnight

    def wants(self, sizes: dict[str, int], changes: int) -> float | None:
        """The priority this channel gives a database with these sizes, or None if it passes."""
        if not self.min_size <= sizes["file"] <= self.max_size or changes < self.min_changes:
            return None
        p = self.priority_of(sizes)
        below_max = p < self.max_priority or self.max_priority == math.inf
        return p if self.min_priority <= p and below_max else None


def channels(config: Any, key: str = "db_channels", default: str = DEFAULT_CHANNELS) -> list[Channel]:
    names = (config.get("smoosh", key) or default).split(",")
    return [Channel.from_settings(n.strip(), config.section(f"smoosh.{n.strip()}"))
            for n in names if n.strip() and not n.strip().startswith("upgrade_")]


def pick(chans: list[Channel], sizes: dict[str, int], changes: int, now: datetime.time) -> tuple[Channel, float] | None:
    """The first channel (in order) that wants the database and may run now, with its priority."""
    for ch in chans:
        p = ch.wants(sizes, changes)
        if p is not None:
            return (ch, p) if ch.in_window(now) else None
    return None


# ------------------------------------------------------------------ jobs

_background: set[asyncio.Task] = set()  # asyncio keeps only weak references to running tasks


def in_background(job: Coroutine[Any, Any, None], what: str) -> asyncio.Task:
    """Run a compaction the client does not wait for (`_compact` answers 202 at once); how it
    ends is logged, a failure as one line with its reason (a full disk: the copy is removed and the
    database is as it was), never as an exception nobody retrieved."""
    task = asyncio.get_running_loop().create_task(job)
    _background.add(task)
    task.add_done_callback(functools.partial(_ended, what))
    return task


def _ended(what: str, task: asyncio.Task) -> None:
    _background.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, CouchError):
        log.error("%s stopped: %s %s", what, exc.status, exc.reason)
    elif exc is not None:
        log.error("%s failed", what, exc_info=exc)


async def compact(node: Any, db: Any) -> None:
    """Compact `db` as a task listed in /_active_tasks."""
    task = node.tasks.add(type="database_compaction", database=db.name, phase="document_copy",
                          progress=0, changes_done=0, total_changes=0)
    try:
        await db.compact(lambda fields: task.update(**fields))
    finally:
        task.done()


class Daemon(BackgroundTask):
    """The automatic compactor of one node."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.seen: dict[str, int] = {}  # db name -> update seq at its last compaction (or first look)
        self.seen_views: dict[tuple[str, str], int] = {}  # (db name, signature) -> index seq, likewise

    def _interval(self) -> float:
        return max(0.05, _number(self.node.config.get("smoosh", "check_interval"), 30.0))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval())
            if (self.node.config.get("smoosh", "enabled") or "true").strip().lower() == "false":
                continue
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one failed look must not end automatic compaction
                log.exception("automatic compaction check failed")

    async def check(self, now: datetime.time | None = None) -> str | None:
        """Compact the open database or view index the channels want most; its name (a database's,
        or `<db>/<signature>` for an index), None if none."""
        now = now or datetime.datetime.now().time()
        db_chans = channels(self.node.config)
        view_chans = channels(self.node.config, "view_channels", DEFAULT_VIEW_CHANNELS)
        best: tuple[float, Any, Any] | None = None  # (priority, db, index or None)
        for db in self.node.open_dbs():
            if db.closed:
                continue
            changes = db.update_seq - self.seen.get(db.name, 0)
            if changes > 0 and not db.compact_running:
                choice = pick(db_chans, db.info()["sizes"], changes, now)
                if choice is not None and (best is None or choice[1] > best[0]):
                    best = (choice[1], db, None)
            for ix in views.open_indexes(db):
                seq = ix.seq
                changes = seq - self.seen_views.get((db.name, ix.spec.sig), 0)
                if changes <= 0 or ix.compact_running:
                    continue
                sizes = {"file": ix.store.file_size(), "active": ix.store.used_bytes()}
                choice = pick(view_chans, sizes, changes, now)
                if choice is not None and (best is None or choice[1] > best[0]):
                    best = (choice[1], db, ix)
        if best is None:
            return None
        _, db, ix = best
        with pinning_scope():
            self.node.get_db(db.name)  # pinned: the LRU keeps it open while it is compacted
            if ix is None:
                self.seen[db.name] = db.update_seq
                await compact(self.node, db)
                return db.name
            self.seen_views[(db.name, ix.spec.sig)] = ix.seq
            await views.compact_index(self.node, db, ix)
            return f"{db.name}/{ix.spec.sig}"
