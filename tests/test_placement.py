"""Rendezvous placement: stable, spread over zones, and moving little when nodes join or leave."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from couchpy.placement import Candidate, place

db_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=20)
node_names = st.lists(st.text(alphabet="abcdefgh0123456789@.", min_size=1, max_size=12), min_size=1,
                      max_size=8, unique=True)


@st.composite
def clusters(draw, zoned: bool):
    names = draw(node_names)
    zones = st.sampled_from(["a", "b", "c"]) if zoned else st.none()
    nodes = [Candidate(name, draw(zones)) for name in names]
    n = draw(st.integers(min_value=1, max_value=len(nodes)))
    return nodes, n


@given(db_names, clusters(zoned=True), st.randoms())
def test_same_answer_whatever_the_order_of_nodes(db, cluster, rnd):
    nodes, n = cluster
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    assert place(db, nodes, n) == place(db, shuffled, n)


@given(db_names, clusters(zoned=True))
def test_n_distinct_live_nodes(db, cluster):
    nodes, n = cluster
    chosen = place(db, nodes, n)
    assert len(chosen) == n == len(set(chosen))
    assert set(chosen) <= {c.name for c in nodes}


@given(db_names, clusters(zoned=True))
def test_copies_spread_over_as_many_zones_as_possible(db, cluster):
    nodes, n = cluster
    zone_of = {c.name: c.zone for c in nodes}
    zones = {c.zone for c in nodes}
    chosen_zones = {zone_of[name] for name in place(db, nodes, n)}
    assert len(chosen_zones) == min(n, len(zones))


@given(db_names, clusters(zoned=False))
def test_a_node_leaving_moves_only_what_it_held(db, cluster):
    nodes, n = cluster
    before = place(db, nodes, n)
    for gone in nodes:
        rest = [c for c in nodes if c != gone]
        after = place(db, rest, min(n, len(rest)))
        if gone.name not in before:
            assert after == before
        else:
            # the survivors keep their copies; at most one new node takes the lost one's place
            assert set(before) - {gone.name} <= set(after)
            assert len(set(after) - set(before)) <= 1


@given(db_names, clusters(zoned=True))
def test_a_node_that_holds_nothing_leaving_changes_nothing_with_zones(db, cluster):
    nodes, n = cluster
    before = place(db, nodes, n)
    for gone in nodes:
        if gone.name not in before:
            assert place(db, [c for c in nodes if c != gone], n) == before


@given(db_names, clusters(zoned=False), st.text(alphabet="xyz", min_size=13, max_size=14))
def test_a_node_joining_takes_at_most_one_copy(db, cluster, newcomer):
    nodes, n = cluster
    before = place(db, nodes, n)
    after = place(db, nodes + [Candidate(newcomer)], n)
    moved = set(after) - set(before)
    assert moved <= {newcomer}
    assert len(set(before) - set(after)) == len(moved)


def test_databases_spread_evenly_over_nodes():
    nodes = [Candidate(f"node{i}@127.0.0.1") for i in range(5)]
    load = Counter(name for i in range(5000) for name in place(f"db{i}", nodes, 2))
    # 10,000 copies over 5 nodes: each near 2,000 (a uniform hash stays within a few percent)
    assert all(1800 < count < 2200 for count in load.values()), load
    assert len(load) == 5
