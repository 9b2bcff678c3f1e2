"""Answering view queries from an index: row ranges, keys, grouping and reduce.

All key arithmetic happens on encoded row keys (see collate.py and index.py): a key K's rows are
exactly the row keys starting with encode(K), so "key <= K" is "row key < encode(K) + 0xFF", a
start doc id appends raw(docid), and a group (group=true or group_level=N) is a byte prefix. Reduce
queries read the stored partials (tree.py) of each group's range. Runs in a worker thread: a custom
reduce calls a query server.

Row keys longer than longkeys.PREFIX are stored under a prefix and a digest (index.py): ranges
here are always in row-key space; scans restore the order of such rows and check them against the
bounds, and counts and reductions split a range into a part the stored partials answer exactly
and the (at most two) groups of long rows that straddle its bounds (longkeys.split_range).
"""

from __future__ import annotations

import itertools
import marshal
from typing import Any

from .. import collate, longkeys, partitions
from . import tree
from .rows import full_rowkey, row_of
from .args import QueryArgs, group_level_of

HIGH = b"\xff"


class TooBig(Exception):
    """A query run on the event loop met more rows than its budget: run it again in a thread."""


def _range(a: QueryArgs, enc: Any) -> tuple[bytes | None, bytes | None]:
    """[lo, hi) in row-key space for startkey/endkey/docids/inclusive_end/descending."""
    lo = hi = None
    if not a.descending:
        if a.has_start:
            lo = enc(a.start_key) + (collate.raw_string(a.start_key_docid) if a.start_key_docid is not None else b"")
        if a.has_end:
            e = enc(a.end_key)
            if a.end_key_docid is not None:
                e += collate.raw_string(a.end_key_docid)
                hi = e + HIGH if a.inclusive_end else e
            else:
                hi = e + HIGH if a.inclusive_end else e
    else:
        if a.has_start:
            s = enc(a.start_key)
            hi = s + (collate.raw_string(a.start_key_docid) if a.start_key_docid is not None else b"") + HIGH
        if a.has_end:
            e = enc(a.end_key)
            if a.end_key_docid is not None:
                e += collate.raw_string(a.end_key_docid)
                lo = e if a.inclusive_end else e + HIGH
            else:
                lo = e if a.inclusive_end else e + HIGH
    return lo, hi


def _scoped_range(a: QueryArgs, enc: Any, scope: bytes) -> tuple[bytes | None, bytes | None]:
    """`_range` inside one partition's rows (`scope`, its row prefix; b"" for a global view):
    an open end of the range is the partition's own."""
    lo, hi = _range(a, enc)
    if scope:
        lo = scope if lo is None else lo
        hi = scope + HIGH if hi is None else hi
    return lo, hi


def _stored_rows(txn: Any, rows_db: Any, vp: bytes, slo: bytes | None, shi: bytes | None, descending: bool):
    """(stored row key, raw value) in the stored range [slo, shi), in LMDB order."""
    cur = txn.cursor(db=rows_db)
    n = len(vp)
    if not descending:
        ok = cur.set_range(vp + (slo or b""))
        stop = vp + shi if shi is not None else None
        while ok:
            k = cur.key()
            if not k.startswith(vp) or (stop is not None and k >= stop):
                return
            yield k[n:], cur.value()
            ok = cur.next()
    else:
        ok = cur.set_range(vp + (shi if shi is not None else HIGH))
        ok = cur.prev() if ok else cur.last()
        start = vp + slo if slo is not None else vp
        while ok:
            k = cur.key()
            if not k.startswith(vp) or k < start:
                return
            yield k[n:], cur.value()
            ok = cur.prev()


def _in_order(entries: Any, lo: bytes | None, hi: bytes | None, descending: bool):
    """(row key, stored value) in row-key order from stored entries covering [lo, hi): long rows
    are sorted back into place (with their full row key) and checked against the bounds.
    `rows.row_of(row key, value)` reads each."""
    limit = longkeys.PREFIX
    for rk, raw in longkeys.restore_order(entries, full_rowkey, descending):
        if len(rk) > limit and not longkeys.in_range(rk, lo, hi):
            continue
        yield rk, raw


def _iter_rows(txn: Any, rows_db: Any, vp: bytes, lo: bytes | None, hi: bytes | None, descending: bool):
    """Yield (rowkey, raw value) in [lo, hi), ascending or descending."""
    slo, shi = longkeys.range_bounds(lo, hi)
    return _in_order(_stored_rows(txn, rows_db, vp, slo, shi, descending), lo, hi, descending)


def _edge_rows(txn: Any, rows_db: Any, vp: bytes, edges: list, lo: bytes | None, hi: bytes | None) -> list:
    """Rows (key, docid, value, rowkey) of the groups straddling a bound that fall in [lo, hi)."""
    out = []
    for elo, ehi in edges:
        for _sk, raw in _stored_rows(txn, rows_db, vp, elo, ehi, False):
            row = marshal.loads(raw)
            if longkeys.in_range(row[3], lo, hi):
                out.append(row)
    return out


def _count(index: Any, txn: Any, vi: int, lo: bytes | None, hi: bytes | None) -> int:
    exact, edges = longkeys.split_range(lo, hi)
    n = _count_stored(index, txn, vi, *exact) if exact is not None else 0
    if edges:
        n += len(_edge_rows(txn, index._rows, bytes([vi]), edges, lo, hi))
    return n


def _count_stored(index: Any, txn: Any, vi: int, lo: bytes | None, hi: bytes | None) -> int:
    """Rows in the stored range [lo, hi)."""
    if index.tree_valid(txn):
        t = index.trees[vi]
        # offsets: rows before a point (ascending) or from a point on (descending)
        if (lo is None) != (hi is None):
            n = t.count_below(txn, hi if lo is None else lo, index._get_meta(txn, b"seq", 0))
            if n is not None:
                if lo is None:
                    return n
                p = t.reduce_range(txn, None, None)
                return (p[0] if p else 0) - n
        p = t.reduce_range(txn, lo, hi)
        return p[0] if p else 0
    return sum(1 for _ in _stored_rows(txn, index._rows, bytes([vi]), lo, hi, False))


def _values_asc(txn: Any, rows_db: Any, vp: bytes, lo: bytes | None, hi: bytes | None):
    """Raw row values in [lo, hi), ascending: _iter_rows without the row keys, which a map query
    does not need (one C-level iterator step per row until a long row is met)."""
    slo, shi = longkeys.range_bounds(lo, hi)
    cur = txn.cursor(db=rows_db)
    if not cur.set_range(vp + (slo or b"")):
        return
    # vp is one byte: every row of this view sorts below the next byte value
    stop = vp + shi if shi is not None else (bytes([vp[0] + 1]) if vp[0] != 0xFF else None)
    limit = len(vp) + longkeys.PREFIX
    it = cur.iternext()
    long_row = None
    if stop is None:
        for k, v in it:
            if not k.startswith(vp):
                return
            if len(k) > limit:
                long_row = (k, v)
                break
            yield v
    else:
        for k, v in it:
            if k >= stop:
                return
            if len(k) > limit:
                long_row = (k, v)
                break
            yield v
    if long_row is not None:
        # from the first long row on, rows go through the ordering path
        for _rk, raw in _in_order(_until(itertools.chain([long_row], it), vp, stop), lo, hi, False):
            yield raw


def _until(entries: Any, vp: bytes, stop: bytes | None):
    n = len(vp)
    for k, v in entries:
        if stop is not None and k >= stop or not k.startswith(vp):
            return
        yield k[n:], v


def _reduce(index: Any, txn: Any, vi: int, lo: bytes | None, hi: bytes | None) -> tuple[int, Any]:
    """(row count, user partial) over [lo, hi)."""
    t = index.trees[vi]
    exact, edges = longkeys.split_range(lo, hi)
    rows = _edge_rows(txn, index._rows, bytes([vi]), edges, lo, hi) if edges else []
    if exact is None:
        p = tree.combine(t.reducer, [], rows)
    elif index.tree_valid(txn):
        p = tree.combine(t.reducer, [t.reduce_range(txn, *exact)], rows)
    else:  # a bulk build in progress (stale read): reduce the rows directly
        rows += [row_of(k, v) for k, v in _stored_rows(txn, index._rows, bytes([vi]), *exact, False)]
        p = tree.combine(t.reducer, [], rows)
    return p if p else (0, None)


def run_query(index: Any, vi: int, a: QueryArgs, reducing: bool, load_doc: Any, seq_fmt: Any,
              budget: int | None = None) -> dict:
    """`budget`: raise TooBig rather than read more than that many rows (a map query on the loop)."""
    enc = index.encoders[vi]
    scope = b""
    if index.spec.partitioned and a.partition is not None:
        # a partitioned index's row keys begin with their partition's prefix (couchpy.partitions)
        scope = partitions.row_prefix(a.partition)
        base = enc
        enc = lambda key: scope + base(key)  # noqa: E731
    vp = bytes([vi])
    with index.store.read() as txn:
        update_seq = index._get_meta(txn, b"seq", 0) if a.update_seq else 0
        if reducing:
            out: dict = {"rows": _reduce_rows(index, txn, vi, a, enc, scope)}
        else:
            out = _map_rows(index, txn, vi, vp, a, enc, scope, budget)
    if a.include_docs and not reducing:
        docs = load_doc(out["rows"], a.conflicts)
        for row, doc in zip(out["rows"], docs):
            row["doc"] = doc
    if a.update_seq:
        out["update_seq"] = seq_fmt(update_seq)
    return out


def _map_rows(index: Any, txn: Any, vi: int, vp: bytes, a: QueryArgs, enc: Any, scope: bytes,
              budget: int | None = None) -> dict:
    rows_db = index._rows
    total = _count(index, txn, vi, None, None)
    skip, limit = a.skip, a.limit
    out: list = []
    offset = None
    # skipped rows are read too: they count against the budget
    seen = 0
    max_rows = budget + 1 if budget is not None else float("inf")  # the first seek is free
    cap = limit if limit is not None else float("inf")
    loads = marshal.loads
    append = out.append
    if a.keys is not None:
        ranges = []
        for k in a.keys:
            e = enc(k)
            ranges.append((e, e + HIGH))
    else:
        ranges = [_scoped_range(a, enc, scope)]
    for lo, hi in ranges:
        if limit is not None and len(out) >= limit:
            break
        seen += 1  # a seek costs about a row
        if offset is None and a.keys is None:
            # rows before the first one returned, in the direction of the query
            if not a.descending:
                offset = _count(index, txn, vi, None, lo) if lo is not None else 0
            else:
                offset = _count(index, txn, vi, hi, None) if hi is not None else 0
        if a.descending:
            values = (raw for _rk, raw in _iter_rows(txn, rows_db, vp, lo, hi, True))
        else:
            values = _values_asc(txn, rows_db, vp, lo, hi)
        for raw in values:
            seen += 1
            if seen > max_rows:
                raise TooBig()
            if skip:
                skip -= 1
                continue
            row = loads(raw)  # (key, docid, value[, row key]): rows.py
            append({"id": row[1], "key": row[0], "value": row[2]})
            if len(out) >= cap:
                break
    if a.keys is not None:
        offset = _keys_offset(index, txn, vi, ranges, a.descending, a.skip, total)
    else:
        offset = min((offset or 0) + a.skip, total)
    return {"total_rows": total, "offset": offset, "rows": out}


def _keys_offset(index: Any, txn: Any, vi: int, ranges: list, descending: bool, skip: int, total: int) -> int:
    """CouchDB's offset for a `keys` query: the position (in the query's direction) of the first
    row of the first key that has rows, plus skip, at most total_rows; when no key has rows,
    the position of the last key."""
    pos = 0
    for lo, hi in ranges:
        pos = _count(index, txn, vi, hi, None) if descending else _count(index, txn, vi, None, lo)
        if _count(index, txn, vi, lo, hi):
            return min(pos + skip, total)
    return pos


def _reduce_rows(index: Any, txn: Any, vi: int, a: QueryArgs, enc: Any, scope: bytes) -> list:
    user = index.user_reducers[vi]
    level = group_level_of(a)
    out: list = []
    skip, limit = a.skip, a.limit

    def emit(key: Any, part: tuple[int, Any]) -> bool:
        nonlocal skip
        if part[0] == 0:
            return True
        if skip:
            skip -= 1
            return True
        if limit is not None and len(out) >= limit:
            return False
        out.append({"key": key, "value": user.finalize(part[1])})
        return limit is None or len(out) < limit

    if level is False:
        if a.keys is not None:
            return out
        lo, hi = _scoped_range(a, enc, scope)
        emit(None, _reduce(index, txn, vi, lo, hi))
        return out
    if a.keys is not None:
        for k in a.keys:
            if level is None:
                p = enc(k)
                gk = k
            else:
                p = collate.group_prefix(k, level, enc)
                gk = collate.group_key(k, level)
            if not emit(gk, _reduce(index, txn, vi, p, p + HIGH)):
                break
        return out
    lo, hi = _scoped_range(a, enc, scope)
    vp = bytes([vi])
    rows_db = index._rows
    while True:
        first = next(_iter_rows(txn, rows_db, vp, lo, hi, a.descending), None)
        if first is None:
            break
        key = marshal.loads(first[1])[0]
        p = collate.group_prefix(key, level, enc)
        glo = p if lo is None or lo < p else lo
        ghi = p + HIGH if hi is None or hi > p + HIGH else hi
        if not emit(collate.group_key(key, level), _reduce(index, txn, vi, glo, ghi)):
            break
        if a.descending:
            hi = p
        else:
            lo = p + HIGH
    return out
