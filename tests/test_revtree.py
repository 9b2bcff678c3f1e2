"""Properties and worked examples of couchpy.revtree, the pure revision-tree module.

Trees are generated the way real ones grow: a random *edit script* (extend a leaf, branch from an
inner revision, delete a leaf, undelete by editing a deleted leaf) builds one "universe" history of a
document; each replica then receives a random subset of its root-to-revision paths (as replication
delivers them), possibly stemmed. Revision ids are derived from the edit (parent, deleted, a nonce)
as couchpy does, so the same revision id always means the same edit.
"""

from __future__ import annotations

import functools
import hashlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchpy import revtree
from couchpy.revtree import Tree

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- generators


def _new_rev(parent: str | None, deleted: bool, nonce: int) -> str:
    gen = 1 if parent is None else revtree.rev_pos(parent) + 1
    digest = hashlib.md5(f"{parent}|{deleted}|{nonce}".encode()).hexdigest()
    return f"{gen}-{digest}"


@st.composite
def universes(draw, max_edits: int = 25) -> Tree:
    """A full, unstemmed history of one document built by a random edit script."""
    tree: Tree = {}
    first = _new_rev(None, False, draw(st.integers(0, 3)))
    tree[first] = (None, False)
    n = draw(st.integers(0, max_edits))
    for i in range(n):
        op = draw(st.sampled_from(["extend", "extend", "extend", "branch", "delete", "new_root"]))
        revs = sorted(tree)
        leaves = revtree.leaves(tree)
        if op == "extend":
            parent = draw(st.sampled_from(sorted(leaves)))
            rev = _new_rev(parent, False, i)
            tree[rev] = (parent, False)
        elif op == "branch":
            parent = draw(st.sampled_from(revs))
            rev = _new_rev(parent, False, i)
            tree[rev] = (parent, False)
        elif op == "delete":
            live = sorted(leaf for leaf in leaves if not tree[leaf][1])
            if not live:
                continue
            parent = draw(st.sampled_from(live))
            rev = _new_rev(parent, True, i)
            tree[rev] = (parent, True)
        else:  # an independent creation of the same doc id elsewhere (a second root)
            deleted = draw(st.booleans())
            tree[_new_rev(None, deleted, 1000 + i)] = (None, deleted)
    return tree


def _path_to(tree: Tree, rev: str) -> list[str]:
    return revtree.ancestry(tree, rev)


@st.composite
def replicas(draw, universe: Tree, stem: bool = True) -> Tree:
    """What one node may hold: a union of some root-to-revision paths, possibly stemmed."""
    revs = sorted(universe)
    chosen = draw(st.lists(st.sampled_from(revs), min_size=1, max_size=6))
    tree: Tree = {}
    for rev in chosen:
        tree = revtree.add_path(tree, _path_to(universe, rev), universe[rev][1])
    if stem and draw(st.booleans()):
        tree = revtree.stem(tree, draw(st.integers(1, 6)))
    return tree


@st.composite
def replica_sets(draw, count: int = 3) -> list[Tree]:
    universe = draw(universes())
    return [draw(replicas(universe)) for _ in range(count)]


# --------------------------------------------------------------------------- oracles


def oracle_leaves(tree: Tree) -> set[str]:
    """Leaves computed independently: revisions no kept revision names as its parent."""
    return {r for r in tree if not any(p == r for p, _ in tree.values())}


def oracle_winner(tree: Tree) -> str:
    """CouchDB's rule: a live leaf beats a deleted one, then the higher generation, then the
    greater revision id string."""
    best = None
    for leaf in oracle_leaves(tree):
        key = (not tree[leaf][1], revtree.rev_pos(leaf), leaf)
        if best is None or key > best[0]:
            best = (key, leaf)
    assert best is not None
    return best[1]


# --------------------------------------------------------------------------- merge algebra


@SETTINGS
@given(replica_sets(2))
def test_merge_is_commutative(trees):
    a, b = trees
    assert revtree.merge(a, b) == revtree.merge(b, a)


@SETTINGS
@given(replica_sets(3))
def test_merge_is_associative(trees):
    a, b, c = trees
    assert revtree.merge(revtree.merge(a, b), c) == revtree.merge(a, revtree.merge(b, c))


@SETTINGS
@given(replica_sets(2))
def test_merge_is_idempotent(trees):
    a, b = trees
    assert revtree.merge(a, a) == a
    ab = revtree.merge(a, b)
    assert revtree.merge(ab, a) == ab
    assert revtree.merge(ab, b) == ab
    assert revtree.merge(ab, ab) == ab


@SETTINGS
@given(replica_sets(4))
def test_winner_does_not_depend_on_merge_order(trees):
    results = set()
    winners = set()
    for order in itertools.permutations(trees):
        merged = functools.reduce(revtree.merge, order, {})
        results.add(frozenset(merged.items()))
        winners.add(revtree.winner(merged))
    assert len(results) == 1
    assert len(winners) == 1
    (only,) = winners
    assert only == oracle_winner(functools.reduce(revtree.merge, trees, {}))


@SETTINGS
@given(replica_sets(2))
def test_merge_keeps_every_revision_of_both(trees):
    a, b = trees
    merged = revtree.merge(a, b)
    assert set(merged) == set(a) | set(b)
    # A known parent is never lost to a stemmed (parentless) copy of the same revision.
    for rev in merged:
        known = {t[rev][0] for t in (a, b) if rev in t and t[rev][0] is not None}
        if known:
            assert merged[rev][0] in known


@SETTINGS
@given(universes())
def test_merging_all_paths_rebuilds_the_universe(universe):
    tree: Tree = {}
    for leaf in revtree.leaves(universe):
        tree = revtree.add_path(tree, _path_to(universe, leaf), universe[leaf][1])
    assert set(tree) == set(universe)
    assert {r: p for r, (p, _) in tree.items()} == {r: p for r, (p, _) in universe.items()}
    assert revtree.winner(tree) == revtree.winner(universe)
    assert set(revtree.leaves(tree)) == set(revtree.leaves(universe))


# --------------------------------------------------------------------------- winner, leaves, conflicts


@SETTINGS
@given(replica_sets(1))
def test_leaves_winner_conflicts_agree_with_oracle(trees):
    (tree,) = trees
    leaves = revtree.leaves(tree)
    assert set(leaves) == oracle_leaves(tree)
    assert len(leaves) == len(set(leaves))
    assert leaves[0] == revtree.winner(tree) == oracle_winner(tree)
    conf = revtree.conflicts(tree)
    dconf = revtree.deleted_conflicts(tree)
    assert set(conf) == {r for r in leaves[1:] if not tree[r][1]}
    assert set(dconf) == {r for r in leaves[1:] if tree[r][1]}
    assert revtree.winner(tree) not in conf + dconf
    assert set(conf) | set(dconf) | {leaves[0]} == set(leaves)
    # leaves() is sorted best first by the winner rule
    keys = [(not tree[r][1], revtree.rev_pos(r), r) for r in leaves]
    assert keys == sorted(keys, reverse=True)


def test_winner_rule_live_beats_deleted_even_if_shorter():
    tree = revtree.path_tree(["3-aaa", "2-aaa", "1-aaa"], deleted=True)
    tree = revtree.add_path(tree, ["2-bbb", "1-aaa"], deleted=False)
    assert revtree.winner(tree) == "2-bbb"
    assert revtree.conflicts(tree) == []
    assert revtree.deleted_conflicts(tree) == ["3-aaa"]


def test_winner_rule_higher_generation_beats_greater_string():
    tree = revtree.path_tree(["3-aaa", "2-aaa", "1-aaa"], deleted=False)
    tree = revtree.add_path(tree, ["2-fff", "1-aaa"], deleted=False)
    assert revtree.winner(tree) == "3-aaa"
    assert revtree.conflicts(tree) == ["2-fff"]


def test_winner_rule_generation_compared_as_number_not_string():
    tree = revtree.path_tree(["10-aaa"], deleted=False)
    tree = revtree.merge(tree, revtree.path_tree(["9-fff"], deleted=False))
    assert revtree.winner(tree) == "10-aaa"


def test_winner_rule_same_generation_greater_rev_string_wins():
    tree = revtree.path_tree(["2-b", "1-a"], deleted=False)
    tree = revtree.add_path(tree, ["2-c", "1-a"], deleted=False)
    tree = revtree.add_path(tree, ["2-a", "1-a"], deleted=False)
    assert revtree.winner(tree) == "2-c"
    assert revtree.leaves(tree) == ["2-c", "2-b", "2-a"]
    assert revtree.conflicts(tree) == ["2-b", "2-a"]


def test_all_leaves_deleted_winner_is_the_best_deleted():
    tree = revtree.path_tree(["2-a", "1-a"], deleted=True)
    tree = revtree.add_path(tree, ["3-b", "2-b", "1-a"], deleted=True)
    assert revtree.winner(tree) == "3-b"
    assert revtree.is_deleted(tree, revtree.winner(tree))
    assert revtree.conflicts(tree) == []
    assert revtree.deleted_conflicts(tree) == ["2-a"]


def test_docstring_example():
    tree = revtree.path_tree(["3-c", "2-b", "1-a"], deleted=False)
    tree = revtree.add_path(tree, ["3-d", "2-b", "1-a"], deleted=False)
    assert set(revtree.leaves(tree)) == {"3-c", "3-d"}
    assert revtree.winner(tree) == "3-d"
    assert revtree.conflicts(tree) == ["3-c"]
    kids = {k: sorted(v) for k, v in revtree.children_map(tree).items()}
    assert kids == {"1-a": ["2-b"], "2-b": ["3-c", "3-d"]}


# --------------------------------------------------------------------------- stemming


@SETTINGS
@given(replica_sets(1), st.integers(1, 8))
def test_stem_keeps_the_newest_revs_limit_of_each_branch(trees, limit):
    (tree,) = trees
    stemmed = revtree.stem(tree, limit)
    expected_keep: set[str] = set()
    for leaf in oracle_leaves(tree):
        path = revtree.ancestry(tree, leaf)
        expected_keep.update(path[:limit])
        # every branch keeps exactly min(limit, its length) revisions
        kept_path = revtree.ancestry(stemmed, leaf)
        assert kept_path == path[: len(kept_path)]
        assert kept_path[:limit] == path[:limit]
    assert set(stemmed) == expected_keep
    # leaves, winner and deleted flags survive stemming
    assert set(revtree.leaves(stemmed)) == set(revtree.leaves(tree))
    assert revtree.winner(stemmed) == revtree.winner(tree)
    for rev, (parent, deleted) in stemmed.items():
        assert deleted == tree[rev][1]
        assert parent is None or parent == tree[rev][0]
        assert parent is None or parent in stemmed
    # stemming twice is stemming once; a generous limit changes nothing
    assert revtree.stem(stemmed, limit) == stemmed
    assert revtree.stem(tree, 10_000) == tree


@SETTINGS
@given(replica_sets(2), st.integers(1, 5))
def test_stem_then_merge_still_converges(trees, limit):
    a, b = (revtree.stem(t, limit) for t in trees)
    assert revtree.merge(a, b) == revtree.merge(b, a)
    merged = revtree.stem(revtree.merge(a, b), limit)
    assert revtree.winner(merged) == oracle_winner(revtree.merge(a, b))


def test_stem_worked_example():
    tree = revtree.path_tree(["5-e", "4-d", "3-c", "2-b", "1-a"], deleted=False)
    tree = revtree.add_path(tree, ["3-x", "2-b", "1-a"], deleted=False)
    stemmed = revtree.stem(tree, 2)
    assert stemmed == {
        "5-e": ("4-d", False),
        "4-d": (None, False),
        "3-x": ("2-b", False),
        "2-b": (None, False),
    }
    assert revtree.revisions_field(stemmed, "5-e") == {"start": 5, "ids": ["e", "d"]}


def test_stem_limit_one_keeps_only_leaves():
    tree = revtree.path_tree(["3-c", "2-b", "1-a"], deleted=False)
    tree = revtree.add_path(tree, ["2-z", "1-a"], deleted=True)
    assert revtree.stem(tree, 1) == {"3-c": (None, False), "2-z": (None, True)}


# --------------------------------------------------------------------------- worked examples


def _example() -> Tree:
    #   1-a ── 2-b ── 3-c ── 4-d          (winner)
    #            │     └──── 4-e (deleted)
    #            └── 3-f                  (conflict)
    tree = revtree.path_tree(["4-d", "3-c", "2-b", "1-a"], deleted=False)
    tree = revtree.add_path(tree, ["4-e", "3-c", "2-b", "1-a"], deleted=True)
    tree = revtree.add_path(tree, ["3-f", "2-b", "1-a"], deleted=False)
    return tree


def test_example_leaves_and_conflicts():
    tree = _example()
    assert revtree.leaves(tree) == ["4-d", "3-f", "4-e"]
    assert revtree.winner(tree) == "4-d"
    assert revtree.conflicts(tree) == ["3-f"]
    assert revtree.deleted_conflicts(tree) == ["4-e"]
    assert revtree.is_deleted(tree, "4-e")
    assert not revtree.is_deleted(tree, "3-c")


def test_example_missing_and_possible_ancestors():
    tree = _example()
    assert revtree.missing(tree, ["4-d", "5-z", "1-a", "3-q"]) == ["5-z", "3-q"]
    assert revtree.missing(tree, []) == []
    assert sorted(revtree.possible_ancestors(tree, "5-z")) == ["3-f", "4-d", "4-e"]
    assert revtree.possible_ancestors(tree, "4-q") == ["3-f"]
    assert revtree.possible_ancestors(tree, "1-q") == []
    assert revtree.possible_ancestors(tree, "garbage") == []


def test_example_revisions_field():
    tree = _example()
    assert revtree.revisions_field(tree, "4-d") == {"start": 4, "ids": ["d", "c", "b", "a"]}
    assert revtree.revisions_field(tree, "3-f") == {"start": 3, "ids": ["f", "b", "a"]}
    assert revtree.revisions_field(tree, "4-e", limit=2) == {"start": 4, "ids": ["e", "c"]}
    assert revtree.revisions_field(tree, "1-a") == {"start": 1, "ids": ["a"]}


def test_example_latest():
    tree = _example()
    assert sorted(revtree.latest(tree, "2-b")) == ["3-f", "4-d", "4-e"]
    assert sorted(revtree.latest(tree, "3-c")) == ["4-d", "4-e"]
    assert revtree.latest(tree, "4-d") == ["4-d"]
    assert revtree.latest(tree, "3-f") == ["3-f"]


def test_example_ancestry():
    tree = _example()
    assert revtree.ancestry(tree, "4-e") == ["4-e", "3-c", "2-b", "1-a"]
    assert revtree.ancestry(tree, "1-a") == ["1-a"]


@SETTINGS
@given(replica_sets(1))
def test_latest_and_possible_ancestors_properties(trees):
    (tree,) = trees
    leaves = set(revtree.leaves(tree))
    for rev in tree:
        lat = revtree.latest(tree, rev)
        assert lat and set(lat) <= leaves
        for leaf in lat:
            assert rev in revtree.ancestry(tree, leaf)
        # every leaf descending from rev is reported
        assert set(lat) == {leaf for leaf in leaves if rev in revtree.ancestry(tree, leaf)}
    probe = f"{max(revtree.rev_pos(r) for r in tree) + 1}-zzz"
    assert set(revtree.possible_ancestors(tree, probe)) == leaves
    assert revtree.missing(tree, [probe, *tree]) == [probe]


@SETTINGS
@given(replica_sets(1))
def test_revisions_field_is_the_consecutive_ancestry(trees):
    (tree,) = trees
    for rev in tree:
        field = revtree.revisions_field(tree, rev)
        assert field["start"] == revtree.rev_pos(rev)
        assert 1 <= len(field["ids"]) <= len(revtree.ancestry(tree, rev))
        assert field["ids"][0] == revtree.rev_hash(rev)
        path = revtree.ancestry(tree, rev)
        for i, h in enumerate(field["ids"]):
            assert path[i] == f"{field['start'] - i}-{h}"


@SETTINGS
@given(replica_sets(1))
def test_encode_decode_round_trip(trees):
    (tree,) = trees
    assert revtree.decode(revtree.encode(tree)) == tree


def test_parse_rev():
    assert revtree.parse_rev("1-abc") == (1, "abc")
    assert revtree.parse_rev("12-" + "a" * 32) == (12, "a" * 32)
    assert revtree.parse_rev("1-") == (1, "")  # CouchDB stores a replicated `1-` as it is
    for bad in ["", "abc", "-abc", "x-abc", None, 5, "1.5-abc", "a" * 300]:
        assert revtree.parse_rev(bad) is None, bad


def test_contradictory_parent_claims_merge_deterministically():
    # Not produced by honest nodes, but merge must stay commutative even then.
    a = {"2-x": ("1-a", False), "1-a": (None, False)}
    b = {"2-x": ("1-b", False), "1-b": (None, False)}
    assert revtree.merge(a, b) == revtree.merge(b, a)


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_stem_long_linear_history(limit):
    path = [f"{n}-h{n}" for n in range(50, 0, -1)]
    tree = revtree.path_tree(path, deleted=False)
    stemmed = revtree.stem(tree, limit)
    assert sorted(stemmed, key=revtree.rev_pos) == sorted(path[:limit], key=revtree.rev_pos)
    assert stemmed[path[limit - 1]][0] is None
    assert revtree.winner(stemmed) == "50-h50"


# --------------------------------------------------------------------------- purge


@st.composite
def purge_cases(draw) -> tuple[Tree, list[str]]:
    """A replica and a purge request naming some of its revisions (leaves or not) and unknown ones."""
    tree = draw(replicas(draw(universes())))
    named = draw(st.lists(st.sampled_from(sorted(tree)), max_size=5))
    unknown = draw(st.lists(st.sampled_from(["9-unknown", "1-unknown"]), max_size=2))
    return tree, draw(st.permutations(named + unknown))


@SETTINGS
@given(purge_cases())
def test_purge_removes_exactly_the_named_leaves(case):
    tree, revs = case
    out, purged = revtree.purge(tree, revs)
    named_leaves = [r for r in dict.fromkeys(revs) if r in oracle_leaves(tree)]
    assert purged == named_leaves
    assert oracle_leaves(out) == oracle_leaves(tree) - set(purged)


@SETTINGS
@given(purge_cases())
def test_purge_keeps_exactly_the_history_of_the_remaining_leaves(case):
    tree, revs = case
    out, _ = revtree.purge(tree, revs)
    # a sub-tree of the original, each revision with its parent and deleted flag unchanged
    assert all(tree[r] == v for r, v in out.items())
    kept = set()
    for leaf in oracle_leaves(out):
        rev = leaf
        while rev is not None:
            kept.add(rev)
            rev = tree[rev][0] if tree[rev][0] in tree else None
    assert set(out) == kept


@SETTINGS
@given(purge_cases(), st.data())
def test_purge_in_steps_equals_purge_at_once(case, data):
    tree, revs = case
    cut = data.draw(st.integers(0, len(revs)))
    step, _ = revtree.purge(revtree.purge(tree, revs[:cut])[0], revs[cut:])
    assert step == revtree.purge(tree, revs)[0]
    assert revtree.purge(step, revs) == (step, [])  # idempotent: nothing left to purge


def test_purge_of_a_conflict_branch_keeps_the_shared_ancestor():
    # as CouchDB 3.4.3 answered: 1-a has children 2-b and 2-c; purging [1-a, 2-c, 9-zz] removes
    # 2-c only (1-a is no leaf, 9-zz unknown) and 1-a stays as the parent of 2-b
    tree: Tree = {"1-a": (None, False), "2-b": ("1-a", False), "2-c": ("1-a", False)}
    assert revtree.purge(tree, ["1-a", "2-c", "9-zz"]) == ({"1-a": (None, False), "2-b": ("1-a", False)}, ["2-c"])
    assert revtree.purge(tree, ["2-b", "2-c"]) == ({}, ["2-b", "2-c"])
    # a linear history purged from its leaf goes whole
    assert revtree.purge({"1-a": (None, False), "2-b": ("1-a", True)}, ["2-b"]) == ({}, ["2-b"])


# every character Python calls a digit outside ASCII (superscripts, other scripts' digits, ...)
_OTHER_DIGITS = [chr(c) for c in range(0x80, 0x110000) if chr(c).isdigit()]


@given(st.sampled_from(_OTHER_DIGITS), st.text(max_size=5))
def test_only_ascii_digits_number_a_revision(digit, tail):
    """str.isdigit() takes '³' and '٣', which CouchDB (and, for '³', int()) refuses."""
    assert revtree.parse_rev(f"{digit}-abc") is None
    assert revtree.parse_rev(f"1{digit}{tail}-abc") is None
