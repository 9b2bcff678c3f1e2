"""Stored partial reductions: any range reduce equals a brute-force reduce, across random updates."""

from __future__ import annotations

import marshal

import lmdb
import pytest
from hypothesis import given, settings, strategies as st

from couchpy.views import tree
from couchpy.views.builtin_reduce import builtin


class Adapter:
    def __init__(self, name):
        self.b = builtin(name)
        self.calls = 0

    def reduce(self, rows):
        self.calls += 1
        return self.b.reduce([r[0] for r in rows], [r[2] for r in rows])

    def rereduce(self, parts):
        self.calls += 1
        return self.b.rereduce(parts)


@pytest.fixture
def env(tmp_path):
    e = lmdb.open(str(tmp_path / "t"), max_dbs=4, map_size=1 << 30)
    yield e
    e.close()


def key(i: int) -> bytes:
    return i.to_bytes(4, "big")


def brute(rows: dict, lo, hi):
    return sum(v for k, v in rows.items() if (lo is None or k >= lo) and (hi is None or k < hi))


ops = st.lists(st.tuples(st.booleans(), st.integers(0, 3000), st.integers(-5, 5)), min_size=1, max_size=300)
bounds = st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 3000)), st.one_of(st.none(), st.integers(0, 3001))),
                  min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(st.lists(ops, min_size=1, max_size=4), bounds)
def test_random_updates_and_ranges(tmp_path_factory, batches, ranges):
    path = tmp_path_factory.mktemp("tree")
    env = lmdb.open(str(path), max_dbs=4, map_size=1 << 28)
    rows_db, tree_db = env.open_db(b"rows"), env.open_db(b"tree")
    red = Adapter("_sum")
    t = tree.ReduceTree(rows_db, tree_db, b"\x00", red)
    model: dict[bytes, int] = {}
    for n, batch in enumerate(batches):
        with env.begin(write=True) as txn:
            changed = {}
            for insert, i, v in batch:
                k = key(i)
                if insert:
                    model[k] = v
                    txn.put(b"\x00" + k, marshal.dumps((i, "doc", v)), db=rows_db)
                    changed[k] = True
                else:
                    model.pop(k, None)
                    txn.delete(b"\x00" + k, db=rows_db)
                    changed[k] = False
            if n == 0:
                t.rebuild(txn)
            else:
                t.update(txn, changed)
        with env.begin() as txn:
            for a, b in ranges + [(None, None)]:
                lo = key(a) if a is not None else None
                hi = key(b) if b is not None else None
                got = t.reduce_range(txn, lo, hi)
                want = brute(model, lo, hi)
                assert (got or 0) == want, (a, b)
    # a full rebuild gives the same tree as incremental maintenance
    with env.begin() as txn:
        before = list(txn.cursor(db=tree_db))
    with env.begin(write=True) as txn:
        t.rebuild(txn)
    with env.begin() as txn:
        assert list(txn.cursor(db=tree_db)) == before
    env.close()


def test_range_reduce_reads_few_partials(env):
    rows_db, tree_db = env.open_db(b"rows"), env.open_db(b"tree")
    red = Adapter("_count")
    t = tree.ReduceTree(rows_db, tree_db, b"\x01", red)
    n = 60000
    with env.begin(write=True) as txn:
        for i in range(n):
            txn.put(b"\x01" + key(i), marshal.dumps((i, "d", 1)), db=rows_db)
        t.rebuild(txn)
    with env.begin() as txn:
        red.calls = 0
        assert t.reduce_range(txn, None, None) == n
        assert red.calls <= 2
        red.calls = 0
        assert t.reduce_range(txn, key(123), key(59000)) == 59000 - 123
        # O(log n): a few partials and edge rows, not 58877 rows
        assert red.calls <= 3
    with env.begin(write=True) as txn:
        txn.delete(b"\x01" + key(500), db=rows_db)
        t.update(txn, {key(500): False})
    with env.begin() as txn:
        assert t.reduce_range(txn, None, None) == n - 1
        assert t.reduce_range(txn, key(400), key(600)) == 199


def test_count_below_on_a_deep_tree(env):
    """Offsets over 40k rows (several tree levels), before and after incremental updates."""
    from couchpy.views.index import CountReducer

    rows_db, tree_db = env.open_db(b"rows"), env.open_db(b"tree")
    t = tree.ReduceTree(rows_db, tree_db, b"\x03", CountReducer(None))
    n = 40000
    with env.begin(write=True) as txn:
        for i in range(0, 2 * n, 2):
            txn.put(b"\x03" + key(i), marshal.dumps((i, "d", 1)), db=rows_db)
        t.rebuild(txn)
    with env.begin() as txn:
        levels = {k[1] for k in txn.cursor(db=tree_db).iternext(values=False)}
        assert len(levels) >= 3
        for hi in (0, 1, 2, 3, 777, 20001, 39999, 2 * n - 2, 2 * n - 1, 2 * n + 5):
            assert t.count_below(txn, key(hi)) == min(n, (hi + 1) // 2), hi
            # with a version, the blocks on the path are remembered: the second call reads them
            for _ in range(2):
                assert t.count_below(txn, key(hi), version=1) == min(n, (hi + 1) // 2), hi
        assert t.count_below(txn, b"", version=1) == 0
    deleted = [key(i) for i in range(1000, 1400, 2)]
    with env.begin(write=True) as txn:
        for k in deleted:
            txn.delete(b"\x03" + k, db=rows_db)
        t.update(txn, {k: False for k in deleted})
    with env.begin() as txn:
        for version in (None, 2, 2):  # a new version forgets what the old tree looked like
            assert t.count_below(txn, key(999), version) == 500
            assert t.count_below(txn, key(1401), version) == 701 - 200
            assert t.count_below(txn, key(2 * n), version) == n - 200

@pytest.mark.slow
def test_full_range_sum_over_a_million_rows_is_fast(tmp_path):
    env = lmdb.open(str(tmp_path / "big"), max_dbs=4, map_size=1 << 31, sync=False)
    try:
        rows_db, tree_db = env.open_db(b"rows"), env.open_db(b"tree")
        t = tree.ReduceTree(rows_db, tree_db, b"\x00", Adapter("_sum"))
        n = 1_000_000
        with env.begin(write=True) as txn:
            put = txn.put
            for i in range(n):
                put(b"\x00" + key(i), marshal.dumps((i, "d", 1)), db=rows_db)
            t.rebuild(txn)
        with env.begin() as txn:
            best = min(_timed(lambda: t.reduce_range(txn, None, None)) for _ in range(5))
            assert t.reduce_range(txn, None, None) == n
            assert best < 0.020, best
            # an arbitrary range reads O(log n) partials: still far below 20 ms
            best = min(_timed(lambda: t.reduce_range(txn, key(12345), key(987654))) for _ in range(5))
            assert t.reduce_range(txn, key(12345), key(987654)) == 987654 - 12345
            assert best < 0.020, best
    finally:
        env.close()


def _timed(fn) -> float:
    import time

    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@settings(max_examples=30, deadline=None)
@given(st.lists(ops, min_size=1, max_size=4), st.lists(st.integers(0, 3001), min_size=1, max_size=8))
def test_count_below_equals_brute_force(tmp_path_factory, batches, his):
    """count_below (view offsets) over (count, partial) trees, as views keep them, across updates."""
    from couchpy.views.index import BuiltinAdapter, CountReducer

    path = tmp_path_factory.mktemp("count")
    env = lmdb.open(str(path), max_dbs=4, map_size=1 << 28)
    rows_db, tree_db = env.open_db(b"rows"), env.open_db(b"tree")
    t = tree.ReduceTree(rows_db, tree_db, b"\x02", CountReducer(BuiltinAdapter(builtin("_sum"))))
    model: dict[bytes, int] = {}
    for n, batch in enumerate(batches):
        with env.begin(write=True) as txn:
            changed = {}
            for insert, i, v in batch:
                k = key(i)
                if insert:
                    model[k] = v
                    txn.put(b"\x02" + k, marshal.dumps((i, "doc", v)), db=rows_db)
                else:
                    model.pop(k, None)
                    txn.delete(b"\x02" + k, db=rows_db)
                changed[k] = insert
            if n == 0:
                t.rebuild(txn)
            else:
                t.update(txn, changed)
        with env.begin() as txn:
            for b in his + [0, 3001]:
                want = sum(1 for k in model if k < key(b))
                assert t.count_below(txn, key(b)) == want, b
                part = t.reduce_range(txn, None, key(b))
                assert (part[0] if part else 0) == want
    env.close()
