"""Stored partial reductions over a sorted row space, so a range reduce reads O(log n) partials.

CouchDB keeps reductions in the inner nodes of its B-tree. LMDB is a B-tree too, but it does not let
us attach values to its inner nodes, so we build the hierarchy ourselves beside the rows, the way a
"prolly tree" does: a row is a *boundary* at level L when a hash of its row key ends in L*5 zero bits.
Level-L blocks start at each boundary of level >= L (plus a leftmost block starting at b""), so
blocks hold ~32 rows at level 1 and ~32 level-(L-1) blocks at level L. Boundaries depend only on
the row's own key, so inserting or deleting a row changes the block structure only around that row:
an update recomputes the handful of blocks that contain changed rows, level by level.

Storage: `tree` sub-database, key = view prefix + level byte + block start row key, value =
marshal(partial), None for an empty block. Row keys here are the keys as stored in `rows`
(`longkeys.ordered`, at most PREFIX + 16 bytes): the tree sums stored ranges, and query.py turns
a range of full row keys into a stored range plus the rows of the groups at its edges.

A range reduce over [lo, hi) descends from the top level: a block entirely inside the range
contributes its stored partial, a block partly inside is opened one level down, and only the two
edges of the range are ever opened, each at most ~32 wide per level.
"""

from __future__ import annotations

import hashlib
import marshal
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any, Protocol

MAXL = 6
BITS = 5
_MEMO_MAX = 4096  # blocks whose children count_below keeps in memory (~40 keys each)
_MASK = (1 << BITS) - 1


class Reducer(Protocol):
    def reduce(self, rows: list[tuple[Any, str, Any]]) -> Any: ...  # rows: (key, docid, value)

    def rereduce(self, partials: list[Any]) -> Any: ...


def level(rowkey: bytes) -> int:
    h = int.from_bytes(hashlib.blake2b(rowkey, digest_size=8).digest(), "little")
    lv = 0
    while lv < MAXL and (h & _MASK) == 0:
        lv += 1
        h >>= BITS
    return lv


def combine(reducer: Reducer, partials: list[Any], rows: list) -> Any:
    parts = [p for p in partials if p is not None]
    if rows:
        parts.append(reducer.reduce(rows))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return reducer.rereduce(parts)


class ReduceTree:
    """Partials of one view. `rows_db`: prefix + rowkey -> a stored row (rows.py)."""

    def __init__(self, rows_db: Any, tree_db: Any, prefix: bytes, reducer: Reducer):
        self.rows_db = rows_db
        self.tree_db = tree_db
        self.prefix = prefix
        self.reducer = reducer
        self._memo: tuple[Any, dict] | None = None  # count_below: (version, {(level, start): children})

    def _tp(self, lv: int) -> bytes:
        return self.prefix + bytes([lv])

    # ------------------------------------------------------------------ reading

    def _rows(self, txn: Any, start: bytes, end: bytes | None) -> list:
        p = self.prefix
        cur = txn.cursor(db=self.rows_db)
        out = []
        if not cur.set_range(p + start):
            return out
        stop = p + end if end is not None else None
        loads = marshal.loads
        for k, v in cur:
            if not k.startswith(p) or (stop is not None and k >= stop):
                break
            out.append(loads(v))  # (key, docid, value[, row key]): rows.py
        return out

    def _blocks(self, txn: Any, lv: int, pstart: bytes, pend: bytes | None, seek: bytes,
                stop: bytes | None) -> list[tuple[bytes, bytes | None, bytes]]:
        """Level-lv blocks inside [pstart, pend) from the one containing `seek` up to `stop`:
        (start, end, raw partial)."""
        tp = self._tp(lv)
        n = len(tp)
        cur = txn.cursor(db=self.tree_db)
        found = cur.set_range(tp + seek)
        if not found or cur.key() != tp + seek:
            if found:
                found = cur.prev()
            else:
                found = cur.last()
        out: list = []
        while found:
            k = cur.key()
            if not k.startswith(tp):
                break
            s = k[n:]
            if pend is not None and s >= pend:
                break
            if stop is not None and s >= stop:
                break
            if s >= pstart:
                out.append([s, None, cur.value()])
            found = cur.next()
        nxt = None
        if found:
            k = cur.key()
            if k.startswith(tp):
                nxt = k[n:]
        for i, b in enumerate(out):
            e = out[i + 1][0] if i + 1 < len(out) else nxt
            if pend is not None and (e is None or e > pend):
                e = pend
            b[1] = e
        return [tuple(b) for b in out]

    def reduce_range(self, txn: Any, lo: bytes | None, hi: bytes | None) -> Any:
        """Partial of all rows with lo <= rowkey < hi (None: unbounded); None when there are none."""
        partials: list = []
        rows: list = []
        self._collect(txn, MAXL, b"", None, lo, hi, partials, rows)
        return combine(self.reducer, partials, rows)

    def count_below(self, txn: Any, hi: bytes, version: Any = None) -> int | None:
        """Number of rows with rowkey < hi, for partials of the form (count, ...) (CountReducer).

        Cheaper than reduce_range(None, hi): only the path to `hi` is opened. `version` (the index
        sequence read in `txn`) names the tree's state: while it stays the same, the blocks on the
        paths taken are remembered as their children's start keys and running counts, so a later
        call bisects instead of reading. The first call at a new version only reads (a tree that
        changes between every two queries gains nothing from remembering). Returns None when the
        block structure is not what it should be (the caller falls back to reduce_range).
        """
        if version is None:
            return self._count_scan(txn, hi)
        held = self._memo
        if held is None or held[0] != version:
            self._memo = (version, {})  # one reference swap: safe with readers in other threads
            return self._count_scan(txn, hi)
        memo = held[1]
        if len(memo) > _MEMO_MAX:
            memo.clear()
        total = 0
        pstart, pend = b"", None
        for lv in range(MAXL, 0, -1):
            entry = memo.get((lv, pstart))
            if entry is None:
                entry = self._children(txn, lv, pstart, pend)
                if entry is None:
                    return None
                memo[(lv, pstart)] = entry
            starts, before = entry
            # the last child starting below hi holds it: open it one level down
            i = bisect_left(starts, hi) - 1
            if i < 0:
                return total  # hi == b"": nothing sorts below it
            total += before[i]
            pstart = starts[i]
            if i + 1 < len(starts):
                pend = starts[i + 1]
        return total + self._rows_below(txn, pstart, hi)

    def _count_scan(self, txn: Any, hi: bytes) -> int | None:
        """count_below reading the tree: at each level, the blocks left of `hi` inside the block
        holding it contribute their stored counts, and that block is opened one level down."""
        loads = marshal.loads
        total = 0
        pstart = b""
        for lv in range(MAXL, 0, -1):
            tp = self._tp(lv)
            n = len(tp)
            cur = txn.cursor(db=self.tree_db)
            # every level-(lv+1) block start is also a level-lv block start
            if not cur.set_range(tp + pstart) or cur.key() != tp + pstart:
                return None
            stop = tp + hi
            last = None
            start = pstart
            for k, v in cur.iternext():
                if k >= stop or not k.startswith(tp):
                    break
                if last is not None:
                    part = loads(last)
                    if part is not None:
                        total += part[0]
                start, last = k[n:], v
            pstart = start
        return total + self._rows_below(txn, pstart, hi)

    def _rows_below(self, txn: Any, start: bytes, hi: bytes) -> int:
        """Rows in [start, hi), counted without reading their values."""
        cur = txn.cursor(db=self.rows_db)
        p = self.prefix
        n = 0
        if cur.set_range(p + start):
            stop = p + hi
            for k in cur.iternext(keys=True, values=False):
                if k >= stop:
                    break
                n += 1
        return n

    def _children(self, txn: Any, lv: int, pstart: bytes, pend: bytes | None) -> tuple | None:
        """Level-lv blocks of the parent block [pstart, pend): (start keys, rows before each)."""
        tp = self._tp(lv)
        n = len(tp)
        cur = txn.cursor(db=self.tree_db)
        # every level-(lv+1) block start is also a level-lv block start
        if not cur.set_range(tp + pstart) or cur.key() != tp + pstart:
            return None
        stop = tp + pend if pend is not None else None
        loads = marshal.loads
        starts: list[bytes] = []
        before: list[int] = []
        running = 0
        for k, v in cur.iternext():
            if not k.startswith(tp) or (stop is not None and k >= stop):
                break
            starts.append(k[n:])
            before.append(running)
            part = loads(v)
            if part is not None:
                running += part[0]
        return starts, before

    def _collect(self, txn, lv, pstart, pend, lo, hi, partials, rows) -> None:
        if lv == 0:
            start = pstart if lo is None or lo < pstart else lo
            end = pend
            if hi is not None and (end is None or hi < end):
                end = hi
            if end is not None and start >= end:
                return
            rows.extend(self._rows(txn, start, end))
            return
        seek = pstart if lo is None or lo < pstart else lo
        for s, e, raw in self._blocks(txn, lv, pstart, pend, seek, hi):
            if lo is not None and e is not None and e <= lo:
                continue
            inside = (lo is None or lo <= s) and (hi is None or (e is not None and e <= hi))
            if inside:
                p = marshal.loads(raw)
                if p is not None:
                    partials.append(p)
            else:
                self._collect(txn, lv - 1, s, e, lo, hi, partials, rows)

    # ------------------------------------------------------------------ writing

    def _put(self, txn: Any, lv: int, start: bytes, partial: Any) -> None:
        txn.put(self._tp(lv) + start, marshal.dumps(partial), db=self.tree_db)

    def clear(self, txn: Any) -> None:
        cur = txn.cursor(db=self.tree_db)
        p = self.prefix
        if cur.set_range(p):
            while cur.key().startswith(p):
                if not cur.delete():
                    break

    def rebuild(self, txn: Any) -> None:
        """Recompute every partial in one ordered pass over the rows (initial builds, big batches)."""
        self.clear(txn)
        starts = [b""] * (MAXL + 1)
        acc_rows: list = []
        acc: list[list] = [[] for _ in range(MAXL + 2)]
        reducer = self.reducer
        loads = marshal.loads
        p = self.prefix
        n = len(p)

        def close(lv: int) -> None:
            nonlocal acc_rows
            if lv == 1:
                part = reducer.reduce(acc_rows) if acc_rows else None
                acc_rows = []
            else:
                part = combine(reducer, acc[lv], [])
                acc[lv] = []
            self._put(txn, lv, starts[lv], part)
            if part is not None:
                acc[lv + 1].append(part)

        cur = txn.cursor(db=self.rows_db)
        if cur.set_range(p):
            for k, v in cur:
                if not k.startswith(p):
                    break
                rk = k[n:]
                lv = level(rk)
                for L in range(1, lv + 1):
                    close(L)
                    starts[L] = rk
                acc_rows.append(loads(v))
        for L in range(1, MAXL + 1):
            close(L)

    def _containing(self, txn: Any, lv: int, key: bytes, strict: bool = False) -> bytes:
        tp = self._tp(lv)
        cur = txn.cursor(db=self.tree_db)
        found = cur.set_range(tp + key)
        if found and not strict and cur.key() == tp + key:
            return key
        found = cur.prev() if found else cur.last()
        while found:
            k = cur.key()
            if k.startswith(tp):
                return k[len(tp):]
            break
        return b""

    def _recompute(self, txn: Any, lv: int, start: bytes) -> None:
        tp = self._tp(lv)
        cur = txn.cursor(db=self.tree_db)
        end = None
        if cur.set_range(tp + start):
            if cur.key() == tp + start:
                if cur.next() and cur.key().startswith(tp):
                    end = cur.key()[len(tp):]
            elif cur.key().startswith(tp):
                end = cur.key()[len(tp):]
        if lv == 1:
            rows = self._rows(txn, start, end)
            part = self.reducer.reduce(rows) if rows else None
        else:
            parts = [marshal.loads(raw) for _s, _e, raw in self._blocks(txn, lv - 1, start, end, start, end)]
            part = combine(self.reducer, parts, [])
        self._put(txn, lv, start, part)

    def update(self, txn: Any, changed: dict[bytes, bool]) -> None:
        """Bring partials up to date after rows in `changed` (rowkey -> exists now) were written."""
        if not changed:
            return
        keys = sorted(changed)
        levels = {k: level(k) for k in keys}
        for lv in range(1, MAXL + 1):
            if txn.get(self._tp(lv), db=self.tree_db) is None:
                self._put(txn, lv, b"", None)
        for k in keys:
            for lv in range(1, levels[k] + 1):
                if changed[k]:
                    if txn.get(self._tp(lv) + k, db=self.tree_db) is None:
                        self._put(txn, lv, k, None)
                else:
                    txn.delete(self._tp(lv) + k, db=self.tree_db)
        for lv in range(1, MAXL + 1):
            dirty: set[bytes] = set()
            for k in keys:
                dirty.add(self._containing(txn, lv, k))
                if changed[k] and levels[k] >= lv and k:
                    dirty.add(self._containing(txn, lv, k, strict=True))
            for s in sorted(dirty):
                self._recompute(txn, lv, s)


def scan_reduce(reducer: Reducer, rows: Iterable) -> Any:
    """Reference/fallback: reduce rows directly."""
    return combine(reducer, [], list(rows))


Loader = Callable[[bytes], Any]
