"""The steps of a move (couchpy/rebalance.py) under random interleavings of writes, replication,
nodes going down and coming back, and each node taking the step the cluster agent would take.

A model of the copies (node -> set of document ids) stands in for the databases; the agent's
checks (`_revs_diff` against the other copies) become set inclusions. Whatever the order, no
written document is ever only on a removed copy, the copies complete when the node list changed
stay complete until enough new copies are complete, and once everything has run the record is the
new placement with one complete copy on each of its nodes and none elsewhere."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from couchpy import rebalance
from couchpy.placement import Candidate, place

NODES = [f"n{i}" for i in range(6)]


@st.composite
def scenarios(draw):
    old = draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=5, unique=True))
    new = draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=5, unique=True))
    n = draw(st.integers(min_value=1, max_value=3))
    name = draw(st.sampled_from(["db", "accounts", "x1", "logs"]))
    events = draw(st.lists(st.tuples(st.sampled_from(["write", "repl", "step", "down", "up"]),
                                     st.sampled_from(NODES), st.sampled_from(NODES)), max_size=60))
    return sorted(old), sorted(new), n, name, events


class Model:
    def __init__(self, name: str, old: list[str], new: list[str], n: int):
        self.name = name
        self.defined = set(new)
        self.n = n
        nodes = place(name, [Candidate(x) for x in old], min(n, len(old)))
        self.rec = {"_id": name, "nodes": nodes, "n": n}
        self.docs = {"d0", "d1"}
        self.copies = {x: set(self.docs) for x in nodes}
        self.live = set(NODES)
        self.rebalancing = set(new)  # every node saw the node list change
        self.target = rebalance.ideal(name, [Candidate(x) for x in new], n)
        # the copies complete when the list changed, on nodes still defined
        self.floor = len([x for x in nodes if x in self.defined])

    def apply(self, node: str) -> None:
        """The agent's `_apply`: a holder's copy exists (a drained leaving copy is not remade)."""
        rec = self.rec
        if node in rec["nodes"] or node in rec.get("moving", ()):
            self.copies.setdefault(node, set())

    def step(self, me: str) -> None:
        """What the agent's `_rebalance` does on node `me` for this database."""
        if me not in self.defined or me not in self.live:
            return
        rec, defined = self.rec, self.defined
        if (fixed := rebalance.forget_undefined(rec, defined)) is not None:
            rec = self.rec = fixed
        if "moving" in rec:
            srcs, dsts = rebalance.sources(rec, defined), rebalance.new_copies(rec)
            if srcs and set(srcs + dsts) <= self.live and all(
                    self.copies.get(s, set()) <= self.copies.get(d, set()) for s in srcs for d in dsts):
                self.rec = rebalance.switch(rec, defined)
        elif me in rec.get("leaving", ()):
            if me in self.copies:
                if not set(rec["nodes"]) <= self.live:
                    return
                if not all(self.copies[me] <= self.copies.get(d, set()) for d in rec["nodes"]):
                    return
                del self.copies[me]
            self.rec = rebalance.left(rec, me)
        elif me in self.rebalancing:
            begun = rebalance.start(rec, self.target, defined, self.live & defined)
            if begun is not None:
                self.rec = begun
            elif sorted(self.target) == sorted(rec["nodes"]):
                self.rebalancing.discard(me)
        for x in NODES:
            self.apply(x)

    def replicate(self, into: str, frm: str) -> None:
        held = rebalance.holders(self.rec) & self.defined
        if {into, frm} <= held & self.live and into in self.copies and frm in self.copies:
            self.copies[into] |= self.copies[frm]

    def write(self, node: str, i: int) -> None:
        if node in self.rec["nodes"] and node in self.defined and node in self.live and node in self.copies:
            doc = f"w{i}"
            self.docs.add(doc)
            self.copies[node].add(doc)

    def check(self, *, writes: bool) -> None:
        kept = [c for x, c in self.copies.items() if x in self.defined]
        for doc in self.docs:  # no document is only on a removed or abandoned copy
            assert any(doc in c for c in kept), (doc, self.rec, self.copies)
        if not writes:
            complete = [x for x in rebalance.holders(self.rec) & self.defined
                        if self.copies.get(x, set()) >= self.docs]
            assert len(complete) >= self.floor, (self.rec, self.copies)
        listed = set(self.rec["nodes"])
        if "moving" not in self.rec and not writes:  # switched: the new replicas hold everything
            assert all(self.copies.get(x, set()) >= self.docs for x in listed & self.defined)

    def settle(self) -> None:
        """Everyone up, replicating and stepping until nothing changes."""
        self.live = set(NODES)
        for _ in range(20):
            for a in NODES:
                for b in NODES:
                    self.replicate(a, b)
            for x in NODES:
                self.step(x)


def run(scenario, *, writes: bool) -> Model:
    old, new, n, name, events = scenario
    placed = place(name, [Candidate(x) for x in old], min(n, len(old)))
    if not set(placed) & set(new):
        # a definition keeping none of a database's copies leaves nothing to move it from
        new = sorted(set(new) | {placed[0]})
    m = Model(name, old, new, n)
    for i, (kind, a, b) in enumerate(events):
        if kind == "write" and writes:
            m.write(a, i)
        elif kind == "repl":
            m.replicate(a, b)
        elif kind == "step":
            m.step(a)
        elif kind == "down":
            m.live.discard(a)
        elif kind == "up":
            m.live.add(a)
        m.check(writes=writes)
    m.settle()
    m.check(writes=False)
    assert sorted(m.rec["nodes"]) == sorted(m.target)
    assert "moving" not in m.rec and "leaving" not in m.rec
    assert {x for x in m.copies if x in m.defined} == set(m.target)
    assert all(m.copies[x] == m.docs for x in m.target)
    return m


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_copy_lost_and_the_move_completes_without_writes(scenario):
    run(scenario, writes=False)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_acknowledged_write_lost_while_moving(scenario):
    run(scenario, writes=True)


def test_start_waits_for_every_new_node_and_a_source():
    rec = {"_id": "db", "nodes": ["a", "b"]}
    assert rebalance.start(rec, ["a", "c"], {"a", "b", "c"}, {"a", "b"}) is None  # c is down
    assert rebalance.start(rec, ["a", "c"], {"a", "b", "c"}, {"a", "c"}) == {**rec, "moving": ["a", "c"]}
    assert rebalance.start(rec, ["b", "a"], {"a", "b", "c"}, {"a", "b", "c"}) is None  # already there
    assert rebalance.holders({**rec, "moving": ["a", "c"]}) == {"a", "b", "c"}


def test_switch_lists_the_old_defined_copies_as_leaving():
    rec = {"_id": "db", "nodes": ["a", "b"], "moving": ["a", "c"], "security": {}}
    assert rebalance.switch(rec, {"a", "b", "c"}) == {"_id": "db", "nodes": ["a", "c"], "leaving": ["b"],
                                                      "security": {}}
    assert rebalance.switch(rec, {"a", "c"}) == {"_id": "db", "nodes": ["a", "c"], "security": {}}
    assert rebalance.left({"_id": "db", "nodes": ["a"], "leaving": ["b"]}, "b") == {"_id": "db", "nodes": ["a"]}
