"""couchpy.queryvalues: CouchDB's readings of query-string values (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couchpy.errors import QueryParseError
from couchpy.queryvalues import body_bool, body_pos_int, chttpd_flag, erl_repr, view_bool, view_int, view_pos_int


@given(st.sampled_from(["true", "false"]).flatmap(
    lambda w: st.tuples(st.just(w), st.lists(st.booleans(), min_size=len(w), max_size=len(w)))))
def test_view_bool_ignores_case(case):
    word, upper = case
    text = "".join(c.upper() if u else c for c, u in zip(word, upper))
    assert view_bool(text) is (word == "true")


@given(st.text(max_size=8).filter(lambda s: s.lower() not in ("true", "false")))
def test_view_bool_refuses_and_quotes(text):
    with pytest.raises(QueryParseError) as exc:
        view_bool(text)
    assert exc.value.reason == f"Invalid boolean parameter: {erl_repr(text)}"


@given(st.integers())
def test_view_int_reads_decimal(n):
    assert view_int(str(n)) == n
    assert view_int("+" + str(abs(n))) == abs(n)


@given(st.text(max_size=6).filter(lambda s: not s.lstrip("+-").isascii() or not s.lstrip("+-").isdigit()
                                  or s[:1] not in "+-0123456789"))
def test_view_int_refuses_non_integers(text):
    with pytest.raises(QueryParseError):
        view_int(text)


def test_erl_repr_prints_as_erlang():
    assert erl_repr("") == "[]"
    assert erl_repr("x") == '"x"'
    assert erl_repr('a"b') == '"a\\"b"'
    assert erl_repr("\u00e9") == '"\u00e9"'
    assert erl_repr("\x01") == "[1]"
    assert erl_repr("\x7f") == "[127]"


def test_positive_and_body_values():
    with pytest.raises(QueryParseError, match='positive integer: "-1"'):
        view_pos_int("-1")
    assert body_bool("TRUE") is True and body_bool(False) is False
    with pytest.raises(QueryParseError, match='integer: <<"2">>'):
        body_pos_int("2")
    with pytest.raises(QueryParseError, match="integer: 1.5"):
        body_pos_int(1.5)
    assert chttpd_flag("true") and not chttpd_flag("1") and not chttpd_flag(None)
    assert chttpd_flag(None, True) and chttpd_flag("x", True) and not chttpd_flag("false", True)
