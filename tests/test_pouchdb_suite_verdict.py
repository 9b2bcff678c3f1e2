"""The PouchDB-suite runner's verdict: which differences from CouchDB's baseline fail the run."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.pouchdb_suite.run import HERE
from tests.pouchdb_suite.verdict import Divergence, failed_hooks, judge, parse_divergences

titles = st.lists(st.text(min_size=1, max_size=20), unique=True, max_size=8)


@given(titles, titles, st.data())
def test_every_difference_is_a_regression_or_an_accepted_divergence(failing, not_run, data):
    comparison = {"passInAFailInB": [{"title": t, "error": "boom"} for t in failing],
                  "passInANotRunInB": [{"title": t} for t in not_run if t not in failing]}
    differing = failing + [t for t in not_run if t not in failing]
    listed = data.draw(st.lists(st.sampled_from(differing), unique=True) if differing else st.just([]))
    extra = data.draw(st.lists(st.text(min_size=1).filter(lambda t: t not in differing), max_size=3, unique=True))
    divergences = [Divergence("find", t, "why") for t in listed + extra]
    divergences.append(Divergence("mapreduce", differing[0], "other part") if differing else Divergence("x", "y", "z"))
    v = judge("find", comparison, divergences)
    assert sorted(label for label, _ in v.regressions) == sorted(set(differing) - set(listed))
    assert sorted(d.title for d in v.accepted) == sorted(listed)
    assert sorted(d.title for d in v.stale) == sorted(extra)
    assert v.ok == (set(differing) <= set(listed))


def test_regressions_say_why():
    v = judge("mapreduce", {"passInAFailInB": [{"title": "a", "error": "expected 1"}],
                            "passInANotRunInB": [{"title": "b"}]}, [])
    assert v.regressions == [("a", "fails: expected 1"), ("b", "did not run")]


def test_a_divergence_needs_a_reason():
    with pytest.raises(ValueError, match="reason"):
        parse_divergences({"divergence": [{"part": "find", "title": "t", "reason": " "}]})


def test_the_shipped_list_parses():
    for d in parse_divergences(tomllib.loads((HERE / "divergences.toml").read_text())):
        assert d.part in ("integration", "mapreduce", "find")


def test_a_failed_hook_is_told_apart_from_failed_tests():
    # As mocha's JSON reporter wrote it when the suite's own local leveldb adapter raced in a hook.
    result = {"failures": [
        {"title": '"after each" hook for "should emit destroyed even when closed (sync)"',
         "fullTitle": '"after each" hook for "should emit destroyed even when closed (sync)"', "type": "hook"},
        {"title": "Testing all docs", "fullTitle": "test.all_docs.js-http Testing all docs", "type": "test"},
    ]}
    assert failed_hooks(result) == ['"after each" hook for "should emit destroyed even when closed (sync)"']
    assert failed_hooks({"failures": result["failures"][1:]}) == []
    assert failed_hooks({}) == []
