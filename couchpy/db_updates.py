"""The node's feed of database events behind `GET /_db_updates`: created, updated, deleted.

As CouchDB's `_global_changes` database does, each (type, database) pair is listed once, at the
sequence of its latest occurrence, so a database written a million times is one `updated` row
and a client that catches up reads at most three rows per database. The feed lives in two
sub-databases of the node's catalog: `db_updates` (sequence -> event) and `db_updates_last`
(`type:name` -> its sequence, to drop the superseded row). The highest sequence is always present
(a row is only ever replaced by a newer one), so it is the feed's counter.

Creations and deletions are recorded in the catalog transaction that adds or removes the
database, so they are exactly as durable as the database itself. Updates are coalesced: a
commit marks its database dirty and, `[global_changes] max_event_delay` milliseconds later, one
transaction records every dirty database once, off the event loop (CouchDB batches them the same
way; a crash inside that window loses those `updated` rows, as it does there).
"""

from __future__ import annotations

import asyncio
import struct
from typing import NamedTuple

import lmdb
import orjson

from .storage import Store

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
_SEQ = struct.Struct(">Q")


class Event(NamedTuple):
    seq: int
    db_name: str
    type: str


def _record(txn: lmdb.Transaction, by_seq, last, seq: int, name: str, kind: str) -> None:
    key = f"{kind}:{name}".encode()
    old = txn.get(key, db=last)
    if old is not None:
        txn.delete(old, db=by_seq)
    packed = _SEQ.pack(seq)
    txn.put(packed, orjson.dumps({"db_name": name, "type": kind}), db=by_seq)
    txn.put(key, packed, db=last)


class DbUpdates:
    def __init__(self, store: Store, catalog, delay_ms: int):
        self._store = store
        self._catalog = catalog  # the catalog sub-database: an update is recorded only for a live db
        self._by_seq = store.db("db_updates")
        self._last = store.db("db_updates_last")
        self._delay = max(delay_ms, 0) / 1000
        self._dirty: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task | None = None
        self._changed: asyncio.Future | None = None
        self._seq = self._read_seq()
        self.shared = False  # set by a node whose data directory other server processes write

    @property
    def seq(self) -> int:
        """The feed's last sequence (with other server processes writing the catalog, read again)."""
        if self.shared:
            self._seq = max(self._seq, self._read_seq())
        return self._seq

    def _read_seq(self) -> int:
        with self._store.read() as txn:
            cur = txn.cursor(db=self._by_seq)
            return _SEQ.unpack(cur.key())[0] if cur.last() else 0

    def record(self, txn: lmdb.Transaction, name: str, kind: str) -> int:
        """Record an event inside the caller's catalog write transaction; call `committed` after."""
        seq = _SEQ.unpack(k)[0] if (k := _last_key(txn, self._by_seq)) else 0
        _record(txn, self._by_seq, self._last, seq + 1, name, kind)
        if kind == DELETED:
            self._dirty.discard(name)  # a later flush must not list it as updated after its deletion
        return seq + 1

    def committed(self, seq: int) -> None:
        self._seq = max(self._seq, seq)
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(self._seq)
        self._changed = None

    def note_updated(self, name: str) -> None:
        """A commit changed database `name`: list it as updated within the coalescing delay."""
        self._dirty.add(name)
        if self._timer is not None or self._flushing is not None:
            return  # the pending flush (or the one after the running flush) picks it up
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # library use outside an event loop: record at once
            self.flush_now()
            return
        self._timer = loop.call_later(self._delay, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._dirty:
                names, self._dirty = sorted(self._dirty), set()
                seq = await asyncio.get_running_loop().run_in_executor(None, self._write_updates, names)
                self.committed(seq)
        finally:
            self._flushing = None

    def _write_updates(self, names: list[str]) -> int:
        def fn(txn: lmdb.Transaction) -> int:
            seq = _SEQ.unpack(k)[0] if (k := _last_key(txn, self._by_seq)) else 0
            for name in names:
                # write transactions are serialized: this sees any deletion committed meanwhile
                if txn.get(name.encode(), db=self._catalog) is not None:
                    seq += 1
                    _record(txn, self._by_seq, self._last, seq, name, UPDATED)
            return seq

        return self._store.write(fn)

    def flush_now(self) -> None:
        if self._dirty:
            names, self._dirty = sorted(self._dirty), set()
            self.committed(self._write_updates(names))

    async def aclose(self) -> None:
        """Record what is still pending (a clean shutdown loses no update)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await self._flushing
        self.flush_now()

    def poll_commits(self) -> None:
        """Wake the waiting feeds if another server process recorded events (see Node.watch_shared)."""
        if self._changed is None or self._changed.done():
            return  # nobody waits
        seq = self._read_seq()
        if seq > self._seq:
            self.committed(seq)

    def wake(self) -> None:
        """Wake waiting feeds without an event (they then check whether the server is stopping)."""
        self.committed(self._seq)

    async def wait(self, since: int, timeout: float | None) -> int:
        """Wait (at most `timeout` seconds) for an event after `since`; the current sequence."""
        if self.seq > since:
            return self.seq
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._changed)
        except TimeoutError:
            pass
        return self.seq

    def events(self, since: int, limit: int | None, descending: bool = False) -> list[Event]:
        """The events after `since` in sequence order (descending: from the newest, `since` unused)."""
        out: list[Event] = []
        if limit == 0:
            return out
        with self._store.read() as txn:
            cur = txn.cursor(db=self._by_seq)
            if descending:
                items = cur.iterprev() if cur.last() else iter(())
            else:
                items = cur.iternext() if cur.set_range(_SEQ.pack(since + 1)) else iter(())
            for key, value in items:
                row = orjson.loads(value)
                out.append(Event(_SEQ.unpack(key)[0], row["db_name"], row["type"]))
                if limit is not None and len(out) >= limit:
                    break
        return out


def _last_key(txn: lmdb.Transaction, db) -> bytes | None:
    cur = txn.cursor(db=db)
    return cur.key() if cur.last() else None
