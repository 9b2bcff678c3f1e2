"""Group commit: one writer per database, many updates per durable LMDB transaction.

Callers `submit` a group of documents and await a future. While a commit is in flight, newly
submitted groups queue up; when the commit returns, everything queued is applied together in the
next transaction. So under load each fsync acknowledges many writes, and with a single client each
write still costs just one fsync. The transaction runs on a worker thread so the event loop keeps
serving reads while the disk syncs.

Every future is resolved only after its transaction committed (LMDB `sync=True` fsyncs on commit):
an acknowledged write survives SIGKILL.
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

# Writers of different databases commit in parallel (separate LMDB environments), up to this many.
EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="couchpy-writer")

# Bound one transaction so a flood of writes still gets acknowledged in steady steps.
MAX_DOCS_PER_TXN = 20000


class GroupCommitWriter:
    def __init__(self, db):
        # Weak: the database owns its writer, and a reference back would make every database a
        # cycle that only the cyclic collector frees, long after the LRU closed it. A caller of
        # `submit` holds the database while its write runs.
        self._db = weakref.ref(db)
        # (docs, new_edits, future, adopt_missing: see updates.write_edit)
        self._queue: list[tuple[list[dict], bool, asyncio.Future, bool]] = []
        self._task: asyncio.Task | None = None
        self._idle_event: asyncio.Event | None = None
        # True while a transaction commits in the executor thread: readers on the event loop may
        # already see its documents while the database's published metadata is the previous one
        self.in_flight = False

    @property
    def db(self):
        return self._db()

    def idle(self) -> bool:
        return not self._queue and (self._task is None or self._task.done())

    def submit(self, docs: list[dict], new_edits: bool, adopt_missing: bool = False) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((docs, new_edits, fut, adopt_missing))
        self._kick()
        return fut

    async def run_exclusive(self, fn: Callable[[Any], Any],
                            then: Callable[[Any], Awaitable[None]] | None = None,
                            holding: Callable[[], AbstractContextManager] | None = None) -> Any:
        """Run fn(txn) in its own durable write transaction, in queue order with the updates.

        `then(result)`, when given, is awaited after the commit and before any later write runs
        (compaction moves to the new environment there). `holding()`, when given, is held from
        before the transaction begins until it is committed (compaction's swap lock)."""
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(([], ("exclusive", fn, then, holding), fut, False))  # type: ignore[arg-type]
        self._kick()
        return await fut

    async def drain(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._commit_queued()
        finally:
            # A finished task keeps the context it was started in (the pins of the request that
            # started it): let go of it, so a closed database is freed by reference counting.
            if self._task is asyncio.current_task():
                self._task = None

    async def _commit(self, loop: asyncio.AbstractEventLoop, fn: Callable[[Any], Any],
                      holding: Callable[[], AbstractContextManager] | None = None) -> Any:
        self.in_flight = True
        try:
            return await loop.run_in_executor(EXECUTOR, _write_holding, self.db.store, fn, holding)
        finally:
            self.in_flight = False

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        db = self.db
        while self._queue:
            head = self._queue[0]
            if isinstance(head[1], tuple):  # an exclusive job runs alone
                self._queue.pop(0)
                _, (_, fn, then, holding), fut, _ = head
                try:
                    result = await self._commit(loop, fn, holding)
                    if then is not None:
                        await then(result)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                    if not fut.done():
                        fut.set_exception(exc)
                else:
                    if not fut.done():
                        fut.set_result(result)
                continue
            group, n = [], 0
            while self._queue and not isinstance(self._queue[0][1], tuple):
                if group and n + len(self._queue[0][0]) > MAX_DOCS_PER_TXN:
                    break
                item = self._queue.pop(0)
                group.append(item)
                n += len(item[0])
            batch = [(docs, new_edits, adopt) for docs, new_edits, _, adopt in group]

            def apply(txn, batch=batch):
                meta = db.meta_for_write(txn)
                return db.apply_updates(txn, batch, meta), meta

            try:
                results, meta = await self._commit(loop, apply)
            except BaseException as exc:  # noqa: BLE001 - every waiter learns the commit failed
                for _, _, fut, _ in group:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            db.apply_meta(meta)
            for (_, _, fut, _), res in zip(group, results):
                if not fut.done():
                    fut.set_result(res)
            db.maybe_train()
            # Let the writers just woken queue their next update, so that it joins the next group
            # instead of each waking a commit of its own.
            await asyncio.sleep(0)


def _write_holding(store: Any, fn: Callable[[Any], Any],
                   holding: Callable[[], AbstractContextManager] | None) -> Any:
    with holding() if holding is not None else nullcontext():
        return store.write(fn)
