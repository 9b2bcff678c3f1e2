"""Properties and worked examples of couchpy.conflict_merge, the pure conflict-policy merges.

Leaves are generated as (rev, body) pairs with distinct revision ids; bodies carry a few fields of
mixed JSON types so that collation across types, missing fields and ties all occur.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchpy import collate, conflict_merge, docrules
from couchpy.errors import BadRequest

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["a", "b", "B", "é"]))
values = st.one_of(scalars, st.lists(scalars, max_size=4))
bodies = st.dictionaries(st.sampled_from(["t", "n", "tags", "title", "x"]), values, max_size=5)

POLICIES = [
    {"type": "last_writer_wins", "field": "t"},
    {"type": "max", "field": "n"},
    {"type": "min", "field": "n"},
    {"type": "union", "field": "tags"},
    {"type": "fields", "fields": {"tags": "union", "n": "max", "title": "lww:t", "x": "min"}},
    conflict_merge.parse_policy({"type": "fields", "fields": {"title": "lww:t", "tags": "union"}}),
]
policies = st.sampled_from(POLICIES)


@st.composite
def leaf_sets(draw, max_leaves: int = 5) -> list[tuple[str, dict]]:
    n = draw(st.integers(1, max_leaves))
    out = []
    for i in range(n):
        pos = draw(st.integers(1, 4))
        h = hashlib.md5(f"{i}-{draw(st.integers(0, 1000))}".encode()).hexdigest()
        out.append((f"{pos}-{h}", draw(bodies)))
    revs = {r for r, _ in out}
    if len(revs) != len(out):  # distinct revisions, as leaves of one tree are
        out = list({r: b for r, b in out}.items())
    return out


@SETTINGS
@given(policies, leaf_sets(), st.randoms(use_true_random=False))
def test_merge_does_not_depend_on_leaf_order(policy, leaves, rnd):
    shuffled = list(leaves)
    rnd.shuffle(shuffled)
    assert conflict_merge.merge(policy, shuffled) == conflict_merge.merge(policy, leaves)


@SETTINGS
@given(policies, leaf_sets())
def test_merge_of_the_merge_as_new_winner_is_the_merge(policy, leaves):
    """What a node sees after resolving: the old leaves plus the merge written as a child of the
    winner (deeper than every leaf). Merging again must change nothing, or nodes would keep writing."""
    merged = conflict_merge.merge(policy, leaves)
    winner = conflict_merge.order_leaves(leaves)[0][0]
    child = docrules.new_rev(winner, False, merged)
    deeper = f"{max(int(r.split('-')[0]) for r, _ in leaves) + 1}-{child.split('-')[1]}"
    assert conflict_merge.merge(policy, leaves + [(deeper, merged)]) == merged
    assert conflict_merge.merge(policy, [(deeper, merged)]) == merged


@SETTINGS
@given(policies, st.lists(leaf_sets(), min_size=2, max_size=3))
def test_merging_in_steps_agrees_with_merging_at_once_for_field_rules(policy, groups):
    """Two nodes that each resolved part of the conflicts, then exchanged their resolutions: merging
    the two resolutions keeps every max/min/union contribution of every original leaf."""
    if policy["type"] not in ("max", "min", "union"):
        return
    seen: set[str] = set()
    groups = [[(r, b) for r, b in g if not (r in seen or seen.add(r))] for g in groups]
    groups = [g for g in groups if g]
    everything = [leaf for g in groups for leaf in g]
    partials = [(f"{9 + i}-{i:032x}", conflict_merge.merge(policy, g)) for i, g in enumerate(groups)]
    field = policy["field"]
    once = conflict_merge.merge(policy, everything).get(field)
    stepwise = conflict_merge.merge(policy, partials).get(field)
    if policy["type"] == "union":
        key = conflict_merge.canonical
        assert sorted(map(key, stepwise or [])) == sorted(map(key, once or []))
    else:
        assert (once is None) == (stepwise is None) or collate.compare(once, stepwise) == 0


@SETTINGS
@given(leaf_sets())
def test_max_and_min_bound_every_leaf(leaves):
    top = conflict_merge.merge({"type": "max", "field": "n"}, leaves)
    low = conflict_merge.merge({"type": "min", "field": "n"}, leaves)
    for _, body in leaves:
        if "n" in body:
            assert collate.compare(top["n"], body["n"]) >= 0
            assert collate.compare(low["n"], body["n"]) <= 0


def test_worked_examples():
    a = ("3-aaa", {"title": "old", "t": "2024-01-01", "n": 3, "tags": ["x", "y"], "keep": 1})
    b = ("3-bbb", {"title": "new", "t": "2024-02-01", "n": 1, "tags": ["z", "x"], "keep": 2})
    c = ("2-ccc", {"title": "mid", "t": "2024-01-15", "n": 7})
    leaves = [a, b, c]
    # the winner is the deepest leaf with the greatest id: 3-bbb
    assert conflict_merge.merge({"type": "last_writer_wins", "field": "t"}, leaves) == b[1]
    assert conflict_merge.merge({"type": "max", "field": "n"}, leaves) == {**b[1], "n": 7}
    assert conflict_merge.merge({"type": "min", "field": "n"}, leaves) == {**b[1], "n": 1}
    assert conflict_merge.merge({"type": "union", "field": "tags"}, leaves)["tags"] == ["z", "x", "y"]
    policy = conflict_merge.parse_policy({"type": "fields", "fields": {"tags": "union", "n": "max", "title": "lww:t"}})
    assert policy["fields"]["t"] == "max"  # the lww field's own time goes with it
    merged = conflict_merge.merge(policy, [c, a])
    # winner of {a, c} is a (deeper): its body, tags union, n max, title and t of the latest t (c's)
    assert merged == {"title": "mid", "t": "2024-01-15", "n": 7, "tags": ["x", "y"], "keep": 1}
    # lww picks a leaf lacking the field only when no leaf has it
    assert conflict_merge.merge({"type": "last_writer_wins", "field": "zz"}, leaves) == b[1]


def test_parse_policy():
    assert conflict_merge.parse_policy({}) == {}
    assert conflict_merge.parse_policy({"type": "max", "field": "n", "extra": 1}) == {"type": "max", "field": "n"}
    assert conflict_merge.parse_policy({"type": "function", "ddoc": "m"}) == {"type": "function", "ddoc": "_design/m"}
    for bad in ([], "lww", {"type": "nope"}, {"type": "max"}, {"type": "max", "field": "_id"},
                {"type": "fields", "fields": {}}, {"type": "fields", "fields": {"a": "sum"}},
                {"type": "fields", "fields": {"a": "lww:"}}, {"type": "function"}):
        with pytest.raises(BadRequest):
            conflict_merge.parse_policy(bad)


def test_function_io():
    leaves = [("1-a", {"v": 1, "_attachments": {}}), ("2-b", {"v": 2})]
    assert conflict_merge.function_input("d", leaves) == [
        {"_id": "d", "_rev": "2-b", "v": 2}, {"_id": "d", "_rev": "1-a", "v": 1}]
    assert conflict_merge.function_output({"_id": "d", "_rev": "x", "_deleted": True, "v": 3}) == {"v": 3}
    with pytest.raises(ValueError):
        conflict_merge.function_output([1])
