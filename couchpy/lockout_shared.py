"""The failed-login lockout of a node served by several processes (`couchpy serve --workers N`).

`Lockout` counts failures in one process's memory, so with N workers a client could try
`threshold` passwords in each. `SharedLockout` keeps the same table, with the same rules (see
couchpy/lockout.py), in a small LMDB environment every worker opens: LMDB serializes the writers
of all processes, so a failure in any worker counts towards the node's threshold, and a worker
that dies, even inside a write, leaves the table as its last commit (LMDB's lock is robust).

A correct login only reads (an LMDB read transaction, a few microseconds, no round trip to
another process); it writes only to clear failures the user had. The table is not durable (no
fsync: CouchDB keeps it in memory too) and `couchpy serve` empties it when it starts.

Times are `time.monotonic()` seconds, the same clock in every process of one boot; an entry whose
first failure lies in the future (a table left from an earlier boot) counts as expired.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import lmdb

MAP_SIZE = 1 << 30  # address space only; 10,000 entries take about 2 MB
_ENTRY = struct.Struct(">IdQ")  # failures, time of the first failure of this run, order
_ORDER = struct.Struct(">Q")
_NEXT = b"next"  # the next order number (keys of failures are 32-byte digests: no clash)


def _key(user: str, address: str) -> bytes:
    # a digest: LMDB keys are at most 511 bytes, names and addresses are not bounded
    return hashlib.sha256(f"{len(user)}:{user}\0{address}".encode()).digest()


class SharedLockout:
    """`Lockout`'s interface over an LMDB environment at `path` (created when missing)."""

    def __init__(self, path: Path, threshold: int = 5, max_lifetime_s: float = 300.0, max_objects: int = 10000):
        self.threshold = threshold
        self.max_lifetime_s = max_lifetime_s
        self.max_objects = max_objects
        Path(path).mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(path), map_size=MAP_SIZE, max_dbs=2, sync=False, metasync=False,
                             readahead=False, lock=True)
        self._failures = self.env.open_db(b"failures")
        self._order = self.env.open_db(b"order")  # order number -> key: the least recently failed first

    def close(self) -> None:
        self.env.close()

    def _live(self, raw: bytes | None, now: float) -> tuple[int, float, int] | None:
        if raw is None:
            return None
        count, first, order = _ENTRY.unpack(raw)
        if now - first >= self.max_lifetime_s or first > now:
            return None
        return count, first, order

    def is_locked(self, user: str, address: str, now: float) -> bool:
        with self.env.begin(db=self._failures) as txn:
            entry = self._live(txn.get(_key(user, address)), now)
        return entry is not None and entry[0] >= self.threshold

    def failed(self, user: str, address: str, now: float) -> None:
        key = _key(user, address)
        with self.env.begin(write=True) as txn:
            raw = txn.get(key, db=self._failures)
            if raw is not None:
                txn.delete(_ORDER.pack(_ENTRY.unpack(raw)[2]), db=self._order)
            entry = self._live(raw, now)
            count, first = (entry[0], entry[1]) if entry is not None else (0, now)
            next_raw = txn.get(_NEXT, db=self._order)
            order = _ORDER.unpack(next_raw)[0] if next_raw is not None else 0
            txn.put(_NEXT, _ORDER.pack(order + 1), db=self._order)
            txn.put(_ORDER.pack(order), key, db=self._order)
            txn.put(key, _ENTRY.pack(count + 1, first, order), db=self._failures)
            self._evict(txn)

    def _evict(self, txn: lmdb.Transaction) -> None:
        """Forget the least recently failed pairs beyond `max_objects`."""
        excess = txn.stat(self._failures)["entries"] - max(self.max_objects, 0)
        if excess <= 0:
            return
        cursor = txn.cursor(db=self._order)
        cursor.first()
        while excess > 0 and cursor.key() != _NEXT and cursor.key():
            txn.delete(cursor.value(), db=self._failures)
            cursor.delete()  # moves to the next entry
            excess -= 1

    def succeeded(self, user: str, address: str) -> None:
        key = _key(user, address)
        with self.env.begin(db=self._failures) as txn:
            if txn.get(key) is None:
                return  # the usual case: nothing to clear, no write
        with self.env.begin(write=True) as txn:
            raw = txn.get(key, db=self._failures)
            if raw is not None:
                txn.delete(_ORDER.pack(_ENTRY.unpack(raw)[2]), db=self._order)
                txn.delete(key, db=self._failures)
