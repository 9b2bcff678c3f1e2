"""couchpy.erlterm: JSON values printed and compared as CouchDB's Erlang terms."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from couchpy import erlterm

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-5, 5, allow_nan=False), st.text(max_size=3)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=2), inner, max_size=3)),
    max_leaves=8)


def test_exact_equality_tells_numbers_booleans_and_member_order_apart():
    assert not erlterm.equal(1, 1.0) and not erlterm.equal(1, True) and not erlterm.equal(0, False)
    assert not erlterm.equal([1], [1.0]) and not erlterm.equal({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert erlterm.equal({"a": [1, "x", None]}, {"a": [1, "x", None]})


def test_equality_by_value_takes_numbers_at_any_depth_but_not_booleans_or_member_order():
    assert erlterm.equal([{"a": 1}], [{"a": 1.0}], numbers_by_value=True)
    assert not erlterm.equal(1, True, numbers_by_value=True)
    assert not erlterm.equal({"a": 1, "b": 2}, {"b": 2, "a": 1}, numbers_by_value=True)


@given(a=json_values, b=json_values)
def test_equality_is_reflexive_symmetric_and_exact_implies_by_value(a, b):
    assert erlterm.equal(a, a) and erlterm.equal(a, a, numbers_by_value=True)
    assert erlterm.equal(a, b) == erlterm.equal(b, a)
    if erlterm.equal(a, b):
        assert erlterm.equal(a, b, numbers_by_value=True)
