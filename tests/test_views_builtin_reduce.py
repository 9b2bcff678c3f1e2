"""Built-in reduces: CouchDB's results, and rereduce of partials equals reduce of everything."""

from __future__ import annotations

import marshal

import pytest
from hypothesis import given, settings, strategies as st

from couchpy.views.builtin_reduce import SUM_ERROR, BuiltinReduceError, builtin, is_builtin


def run(name, keys, values):
    r = builtin(name)
    return r.finalize(r.reduce(keys, values))


def test_sum_examples():
    assert run("_sum", [None] * 3, [1, 2, 3.5]) == 6.5
    assert run("_sum", [None] * 3, [[1, 2], [3], 4]) == [8, 2]
    assert run("_sum", [None] * 2, [{"a": 1, "b": {"c": 2}}, {"a": 2, "b": {"c": 1, "d": [1]}}]) == {
        "a": 3, "b": {"c": 3, "d": [1]}
    }
    err = run("_sum", [None] * 2, [1, "Bob"])
    assert err == {"error": "builtin_reduce_error", "reason": SUM_ERROR, "caused_by": "Bob"}
    r = builtin("_sum")
    # an error partial wins over later rereduce
    assert r.rereduce([3, err, 4]) == err
    assert run("_sum", [], []) == 0


def test_count_and_stats_examples():
    assert run("_count", [1, 2, 3], ["a", None, 3]) == 3
    assert builtin("_count").rereduce([3, 4]) == 7
    assert run("_stats", [None] * 3, [1, 2, 3]) == {"sum": 6, "count": 3, "min": 1, "max": 3, "sumsqr": 14}
    assert run("_stats", [None] * 2, [[1, 10], [2, 20]]) == [
        {"sum": 3, "count": 2, "min": 1, "max": 2, "sumsqr": 5},
        {"sum": 30, "count": 2, "min": 10, "max": 20, "sumsqr": 500},
    ]
    pre = {"sum": 10, "count": 2, "min": 4, "max": 6, "sumsqr": 52}
    assert run("_stats", [None] * 2, [pre, 1]) == {"sum": 11, "count": 3, "min": 1, "max": 6, "sumsqr": 53}
    with pytest.raises(BuiltinReduceError) as exc:
        run("_stats", [None] * 2, [1, "x"])
    assert "_stats function requires" in exc.value.reason


def test_approx_count_distinct_accuracy():
    keys = [[i % 700, "k"] for i in range(5000)]
    est = run("_approx_count_distinct", keys, [None] * len(keys))
    assert abs(est - 700) <= 700 * 0.05
    assert run("_approx_count_distinct", ["a", "a", "b"], [0, 0, 0]) == 2
    assert run("_approx_count_distinct", [1, 1.0], [0, 0]) == 2  # distinct terms, as CouchDB


def test_names():
    assert is_builtin("_sum") and is_builtin(" _count ") and not is_builtin("function(k,v){}")
    assert builtin("_sum_whatever").name == "_sum"  # CouchDB matches by prefix
    with pytest.raises(ValueError):
        builtin("_median")


def _chunks(xs, cuts):
    cuts = sorted({c % (len(xs) + 1) for c in cuts})
    out, prev = [], 0
    for c in cuts + [len(xs)]:
        out.append(xs[prev:c])
        prev = c
    return [c for c in out if c]


nums = st.integers(-1000, 1000)
sum_values = st.one_of(nums, st.lists(nums, max_size=3))
obj_values = st.dictionaries(st.sampled_from("abc"), st.one_of(nums, st.lists(nums, max_size=2)), max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["_sum", "_count", "_stats", "_approx_count_distinct"]),
    st.lists(st.tuples(st.integers(0, 30), nums), min_size=1, max_size=40),
    st.lists(st.integers(0, 100), max_size=5),
)
def test_rereduce_of_partials_equals_reduce(name, rows, cuts):
    r = builtin(name)
    keys = [k for k, _ in rows]
    values = [v for _, v in rows]
    whole = r.finalize(r.reduce(keys, values))
    parts = []
    for chunk in _chunks(rows, cuts):
        p = r.reduce([k for k, _ in chunk], [v for _, v in chunk])
        parts.append(marshal.loads(marshal.dumps(p)))  # partials survive storage
    # and rereduce is itself associative (partials of partials)
    mid = len(parts) // 2
    nested = [r.rereduce(parts[:mid]), r.rereduce(parts[mid:])] if mid else parts
    assert r.finalize(r.rereduce(nested)) == whole
    if name == "_count":
        assert whole == len(rows)
    if name == "_sum":
        assert whole == sum(values)
    if name == "_approx_count_distinct":
        assert abs(whole - len(set(keys))) <= 1


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.lists(sum_values, min_size=1, max_size=20), st.lists(obj_values, min_size=1, max_size=20)),
       st.lists(st.integers(0, 100), max_size=4))
def test_sum_structures_rereduce(values, cuts):
    r = builtin("_sum")
    whole = r.reduce([None] * len(values), values)
    parts = [r.reduce([None] * len(c), c) for c in _chunks(values, cuts)]
    assert r.rereduce(parts) == whole
