"""The Lucene query parser (pure): Lucene's clause rules, terms, phrases, ranges, boosts, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from couchpy.fulltext import params
from couchpy.fulltext.lucene import (MUST, MUST_NOT, SHOULD, Bool, MatchAll, Phrase, QueryParseError, Range, Term,
                                     parse, wildcard_regex)


def test_terms_fields_and_default_or():
    assert parse("fox") == Term(None, "fox")
    assert parse("title:fox") == Term("title", "fox")
    assert parse("a b") == Bool(((SHOULD, Term(None, "a")), (SHOULD, Term(None, "b"))))
    assert parse("title:(a OR b)") == Bool(((SHOULD, Term("title", "a")), (SHOULD, Term("title", "b"))))
    assert parse(r"a\:b") == Term(None, "a:b")
    assert parse("foo-bar") == Term(None, "foo-bar")


def test_lucene_clause_rules():
    assert parse("a AND b") == Bool(((MUST, Term(None, "a")), (MUST, Term(None, "b"))))
    assert parse("a AND NOT b") == Bool(((MUST, Term(None, "a")), (MUST_NOT, Term(None, "b"))))
    assert parse("a && !b") == Bool(((MUST, Term(None, "a")), (MUST_NOT, Term(None, "b"))))
    assert parse("+a -b c") == Bool(((MUST, Term(None, "a")), (MUST_NOT, Term(None, "b")), (SHOULD, Term(None, "c"))))
    # `a AND b OR c`: Lucene makes a and b required, c optional
    assert parse("a AND b OR c") == Bool(((MUST, Term(None, "a")), (MUST, Term(None, "b")), (SHOULD, Term(None, "c"))))
    # a prohibited clause stays prohibited when AND follows it
    assert parse("NOT a AND b") == Bool(((MUST_NOT, Term(None, "a")), (MUST, Term(None, "b"))))
    assert parse("NOT a") == Bool(((MUST_NOT, Term(None, "a")),))


def test_match_all_phrases_ranges_wildcards_fuzzy_boost():
    assert parse("*:*") == MatchAll() and parse("*") == MatchAll()
    assert parse('t:"red car"~3') == Phrase("t", "red car", 3)
    assert parse('"a \\"b\\""') == Phrase(None, 'a "b"')
    assert parse("p:[1 TO 2}") == Range("p", "1", "2", True, False)
    assert parse("p:{* TO -Infinity]") == Range("p", None, "-Infinity", False, True)
    assert parse('k:["a b" TO c]') == Range("k", "a b", "c", True, True)
    assert parse("ab*") == Term(None, "ab", "prefix")
    assert parse("a?c*").kind == "wildcard"
    assert wildcard_regex(parse("a.?c*").text) == "a\\..c.*"
    assert parse("look~") == Term(None, "look", "fuzzy", 2)
    assert parse("look~1") == Term(None, "look", "fuzzy", 1)
    assert parse("fox^2") == Term(None, "fox", boost=2.0)
    assert parse("(a b)^3").boost == 3.0


@pytest.mark.parametrize("q", ["", "  ", "AND a", "a AND", "(a", "a)", "[1 TO", "p:[1 2]", '"open', "a:", "\\",
                               "x^", "NOT", "a~."])
def test_bad_queries_are_query_parse_errors(q):
    with pytest.raises(QueryParseError) as e:
        parse(q)
    assert e.value.status == 400 and e.value.error == "query_parse_error"


@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_400(q):
    try:
        parse(q)
    except QueryParseError:
        pass


def test_sort_and_bookmark_forms():
    assert params.parse_sort("foo") == params.SortKey("foo", False)
    assert params.parse_sort("-foo<double>") == params.SortKey("foo", True, "double")
    assert params.parse_sort("bar<string>") == params.SortKey("bar", False, "string")
    assert params.parse_sort("relevance") == params.SortKey(None, True)
    assert params.parse_sort("-<score>") == params.SortKey(None, False)
    for bad in ["", "-", "<double>"]:
        with pytest.raises(QueryParseError):
            params.parse_sort(bad)
    token = params.pack_bookmark([[1.5, "x"], 7])
    assert params.unpack_bookmark(token) == [[1.5, "x"], 7]
    a = params.parse_args({"q": "x", "sort": '["a", "-b<double>"]', "limit": "3", "update": "false",
                           "counts": '["k"]', "ranges": '{"p": [{"label": "l", "min": 0, "max": 1}]}'}, text=True)
    assert [k.field for k in a.sort] == ["a", "b"] and a.limit == 3 and a.update is False
    assert a.ranges == {"p": [{"label": "l", "min": 0, "max": 1, "min_inclusive": True, "max_inclusive": True}]}
