"""Erlang term order of JSON values (the order CouchDB gives the rows one document emits under one key)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from couchpy.views.erlang_order import term_key

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=8)


def rank(v) -> int:
    if isinstance(v, bool) or v is None:
        return 1
    if isinstance(v, (int, float)):
        return 0
    return {dict: 2, list: 3, str: 4}[type(v)]


@given(json_values, json_values)
def test_types_order_number_atom_object_array_string(a, b):
    if rank(a) < rank(b):
        assert term_key(a) < term_key(b)


@given(st.lists(json_values, max_size=4), json_values)
def test_a_list_sorts_before_its_extensions(items, extra):
    assert term_key(items) < term_key(items + [extra])


@given(st.lists(st.text(), min_size=2))
def test_strings_order_by_utf8_bytes(items):
    assert sorted(items, key=term_key) == sorted(items, key=lambda s: s.encode("utf-8", "surrogatepass"))


def test_the_order_couchdb_shows():
    # as Apache CouchDB 3.4.3 lists values one document emitted under one key
    # (tests/test_views_couchdb_parity.py checks this against the real server)
    seen = ["b", "a", 2, 1, None, True, False, [1], {"x": 1}, "B", [0], {"a": 2}, 1.5]
    assert sorted(seen, key=term_key) == [1, 1.5, 2, False, None, True, {"a": 2}, {"x": 1}, [0], [1], "B", "a", "b"]
