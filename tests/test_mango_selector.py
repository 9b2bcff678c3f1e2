"""Mango selector validation and matching (pure), against worked examples and a brute-force reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from couchpy import collate
from couchpy.errors import BadRequest
from couchpy.mango.selector import (
    MangoError,
    compile_selector,
    fields,
    has_required_fields,
    is_constant_field,
    normalize,
    validate,
)

DOCS = [
    {"_id": "1", "name": "Paul", "age": 30, "tags": ["a", "b"], "addr": {"city": "Bonn", "zip": 53111}},
    {"_id": "2", "name": "paula", "age": 25, "tags": ["b"], "addr": {"city": "Köln"}},
    {"_id": "3", "name": "Mary", "age": "old", "tags": [], "scores": [80, 90]},
    {"_id": "4", "age": None, "tags": "a", "scores": [70, 84], "map": {"k1": 1, "k2": 2}},
    {"_id": "10", "name": "Ann", "age": 31.0, "scores": [], "a.b": 7, "nested": [{"x": 1}, {"x": 2}]},
]


def ids(sel) -> list[str]:
    m = compile_selector(sel)
    return [d["_id"] for d in DOCS if m(d)]


def test_examples():
    assert ids({}) == ["1", "2", "3", "4", "10"]
    assert ids({"name": "Paul"}) == ["1"]
    assert ids({"age": {"$gt": 26}}) == ["1", "3", "10"]  # strings sort after numbers
    assert ids({"age": {"$gt": 26, "$lt": 100}}) == ["1", "10"]
    assert ids({"age": {"$type": "number"}}) == ["1", "2", "10"]
    assert ids({"age": 31}) == ["10"]  # 31 == 31.0 in collation
    assert ids({"addr.city": "Bonn"}) == ["1"]
    assert ids({"addr": {"city": "Bonn"}}) == ["1"]
    assert ids({"addr": {"zip": {"$exists": True}}}) == ["1"]
    assert ids({"addr.zip": {"$exists": False}}) == ["2", "3", "4", "10"]
    assert ids({"tags": {"$all": ["a", "b"]}}) == ["1"]
    assert ids({"tags": {"$all": [["b"]]}}) == ["2"]
    assert ids({"tags": {"$in": ["a"]}}) == ["1", "4"]
    assert ids({"tags": {"$nin": ["a"]}}) == ["2", "3"]
    assert ids({"tags": {"$size": 0}}) == ["3"]
    assert ids({"scores": {"$elemMatch": {"$gte": 80, "$lt": 85}}}) == ["3", "4"]
    assert ids({"scores": {"$allMatch": {"$gte": 80}}}) == ["3"]  # [] never allMatches
    assert ids({"nested": {"$elemMatch": {"x": 2}}}) == ["10"]
    assert ids({"map": {"$keyMapMatch": {"$eq": "k2"}}}) == ["4"]
    assert ids({"name": {"$regex": "^[Pp]aul"}}) == ["1", "2"]
    assert ids({"name": {"$beginsWith": "Pa"}}) == ["1"]
    assert ids({"age": {"$mod": [5, 0]}}) == ["1", "2"]  # 31.0 is not an integer
    assert ids({"$or": [{"name": "Mary"}, {"age": None}]}) == ["3", "4"]
    assert ids({"$nor": [{"name": "Mary"}, {"age": 30}]}) == ["2", "10"]  # both fields must exist
    assert ids({"$not": {"name": "Paul"}}) == ["2", "3", "10"]
    assert ids({"name": {"$not": {"$regex": "^P"}}}) == ["2", "3", "10"]
    assert ids({"scores.1": 90}) == ["3"]
    assert ids({"a\\.b": 7}) == ["10"]
    assert ids({"name": {"$gte": "p", "$lt": "q"}}) == ["1", "2"]  # ICU: p < Paul < paula < q
    assert ids({"_id": {"$gt": "1"}}) == ["2", "3", "4", "10"]  # _id compares raw: "10" > "1"
    assert ids({"_id": {"$lt": "2"}}) == ["1", "10"]
    assert ids({"$and": []}) == ids({})
    assert ids({"tags": {"$all": []}}) == []


def test_normalization_shapes():
    assert normalize({"a": {"b": {"$gt": 1}}}) == {"a.b": {"$gt": 1}}
    assert normalize({"$not": {"a": {"$gt": 10}}}) == {"a": {"$lte": 10}}
    assert normalize({"$not": {"$and": [{"a": {"$gt": 10}}, {"b": {"$in": [1]}}]}}) == {
        "$or": [{"a": {"$lte": 10}}, {"b": {"$nin": [1]}}]
    }
    assert normalize({"a": 1, "b": 2}) == {"$and": [{"a": {"$eq": 1}}, {"b": {"$eq": 2}}]}
    n = normalize({"a": 1, "$or": [{"b": 1}, {"b": 2}], "c": {"$exists": False}})
    assert fields(n) == ["a", "b", "b", "c"]
    assert has_required_fields(n, ["a", "b"])
    assert not has_required_fields(n, ["c"])
    assert is_constant_field(n, "a") and not is_constant_field(n, "b")


@pytest.mark.parametrize(
    "sel, error",
    [
        ([1], "invalid_selector_json"),
        ({"$and": {}}, "bad_arg"),
        ({"a": {"$in": 1}}, "bad_arg"),
        ({"a": {"$exists": 1}}, "bad_arg"),
        ({"a": {"$size": -1}}, "bad_arg"),
        ({"a": {"$mod": [0, 1]}}, "bad_arg"),
        ({"a": {"$mod": [2.5, 1]}}, "bad_arg"),
        ({"a": {"$regex": "("}}, "bad_arg"),
        ({"a": {"$type": 1}}, "bad_arg"),
        ({"a": {"$elemMatch": 1}}, "bad_arg"),
        ({"a": {"$beginsWith": 1}}, "bad_arg"),
        ({"a": {"$foo": 1}}, "invalid_operator"),
        ({"a": {"$where": "x"}}, "not_supported"),
        ({"$gt": 1}, "invalid_selector"),
    ],
)
def test_invalid(sel, error):
    with pytest.raises(MangoError) as exc:
        validate(sel)
    assert exc.value.error == error and exc.value.status == 400
    assert isinstance(exc.value, BadRequest)


# ------------------------------------------------------------ brute force reference

POOL = [None, True, False, 0, 1, 1.0, 2, -1, "a", "A", "b", "", [1, "a"], [], {"x": 1}, {"x": "a"}]
scalars = st.sampled_from(POOL)
FIELDS = ["a", "b", "a.x", "c.0", "a.y.z"]

leaf_values = st.sampled_from([None, True, 0, 1, 2.5, -1, "a", "A", "ab", "b", ""])
values = st.recursive(
    leaf_values,
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.sampled_from(["x", "y", "z"]), ch, max_size=2),
    max_leaves=5,
)
docs = st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3)

op_conds = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), scalars),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(scalars, max_size=3)),
    st.tuples(st.just("$exists"), st.booleans()),
    st.tuples(st.just("$type"), st.sampled_from(["null", "boolean", "number", "string", "array", "object"])),
    st.tuples(st.just("$size"), st.integers(0, 2)),
    st.tuples(st.just("$mod"), st.tuples(st.sampled_from([2, 3, -2]), st.integers(-1, 1)).map(list)),
    st.tuples(st.just("$regex"), st.sampled_from(["^a", "b", "^$"])),
    st.tuples(st.just("$beginsWith"), st.sampled_from(["a", "", "A"])),
    st.tuples(st.just("$all"), st.lists(scalars, max_size=2)),
    st.tuples(st.sampled_from(["$elemMatch", "$allMatch"]), st.sampled_from([{"$gt": 0}, {"x": 1}, {"$type": "string"}])),
    st.tuples(st.just("$keyMapMatch"), st.sampled_from([{"$eq": "x"}, {"$gt": "x"}])),
)


def field_sel(field, op_arg):
    op, arg = op_arg
    return {field: {op: arg}}


positive = st.recursive(
    st.builds(field_sel, st.sampled_from(FIELDS), op_conds),
    lambda ch: st.builds(lambda xs: {"$and": xs}, st.lists(ch, max_size=3))
    | st.builds(lambda xs: {"$or": xs}, st.lists(ch, max_size=3)),
    max_leaves=5,
)

MISSING = object()


def ref_get(doc, field):
    v = doc
    for part in field.split("."):
        if isinstance(v, dict) and part in v:
            v = v[part]
        elif isinstance(v, list) and part.isdigit() and int(part) < len(v):
            v = v[int(part)]
        else:
            return MISSING
    return v


def jtype(v):
    return {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string",
            list: "array", dict: "object"}[type(v)]


def exact(a, b):
    return type(a) is type(b) and collate.encode(a) == collate.encode(b) and repr(a) == repr(b)


def ref_op(op, arg, v):
    if op == "$exists":
        return (v is not MISSING) == arg
    if v is MISSING:
        return False
    c = lambda x, y: collate.compare(x, y)  # noqa: E731
    if op == "$eq":
        return c(v, arg) == 0
    if op == "$ne":
        return c(v, arg) != 0
    if op == "$gt":
        return c(v, arg) > 0
    if op == "$gte":
        return c(v, arg) >= 0
    if op == "$lt":
        return c(v, arg) < 0
    if op == "$lte":
        return c(v, arg) <= 0
    if op in ("$in", "$nin"):
        elems = v if isinstance(v, list) else [v]
        hit = any(c(x, a) == 0 for x in elems for a in arg)
        return hit if op == "$in" else not hit
    if op == "$type":
        return jtype(v) == arg
    if op == "$size":
        return isinstance(v, list) and len(v) == arg
    if op == "$mod":
        if type(v) is not int:
            return False
        d, r = arg
        q = int(v / d)  # truncating division, as Erlang rem
        return v - q * d == r
    if op == "$regex":
        import re
        return isinstance(v, str) and re.search(arg, v) is not None
    if op == "$beginsWith":
        return isinstance(v, str) and v[: len(arg)] == arg
    if op == "$all":
        if not isinstance(v, list) or not arg:
            return False
        if len(arg) == 1 and isinstance(arg[0], list) and repr(arg[0]) == repr(v):
            return True
        return all(any(exact(a, x) for x in v) for a in arg)
    if op in ("$elemMatch", "$allMatch"):
        if not isinstance(v, list):
            return False
        res = [ref_cond(arg, x) for x in v]
        return any(res) if op == "$elemMatch" else bool(res) and all(res)
    if op == "$keyMapMatch":
        return isinstance(v, dict) and any(ref_cond(arg, k) for k in v)
    raise AssertionError(op)


def ref_cond(cond, v):
    """A condition object applied to a value: operators, or sub-fields; a bare value means $eq."""
    if not isinstance(cond, dict):
        return ref_op("$eq", cond, v)
    out = True
    for k, a in cond.items():
        if k.startswith("$"):
            out = out and ref_op(k, a, v)
        else:
            out = out and ref(({k: a}), v if v is not MISSING else {})
    return out


def ref(sel, doc):
    for k, a in sel.items():
        if k == "$and":
            if not all(ref(s, doc) for s in a):
                return False
        elif k == "$or":
            if a and not any(ref(s, doc) for s in a):
                return False
        else:
            if not ref_cond(a, ref_get(doc, k)):
                return False
    return True


@settings(max_examples=600, deadline=None)
@given(positive, docs)
def test_positive_fragment_matches_reference(sel, doc):
    assert compile_selector(sel)(doc) == ref(sel, doc)


@settings(max_examples=300, deadline=None)
@given(positive, positive, docs)
def test_boolean_laws(s1, s2, doc):
    m = lambda s: compile_selector(s)(doc)  # noqa: E731
    assert m({"$and": [s1, s2]}) == (m(s1) and m(s2))
    assert m({"$or": [s1, s2]}) == (m(s1) or m(s2))
    assert m({"$not": {"$not": s1}}) == m(s1)
    assert m({"$nor": [s1, s2]}) == m({"$and": [{"$not": s1}, {"$not": s2}]})
    assert m({"$not": {"$or": [s1, s2]}}) == m({"$and": [{"$not": s1}, {"$not": s2}]})
    assert m({"$not": {"$and": [s1, s2]}}) == m({"$or": [{"$not": s1}, {"$not": s2}]})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), scalars, docs)
def test_negated_comparison_requires_field(field, op, arg, doc):
    # CouchDB pushes $not into the comparison, so the field must exist for the negation to match.
    v = ref_get(doc, field)
    got = compile_selector({"$not": {field: {op: arg}}})(doc)
    assert got == (v is not MISSING and not ref_op(op, arg, v))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b"]), st.dictionaries(st.sampled_from(["x", "y"]), leaf_values, max_size=2), max_size=2), leaf_values)
def test_nested_object_equals_dotted_path(doc, val):
    assert compile_selector({"a": {"x": val}})(doc) == compile_selector({"a.x": val})(doc)
    assert compile_selector({"a": {"x": {"$gt": val}}})(doc) == compile_selector({"a.x": {"$gt": val}})(doc)
