"""The differential tester's normaliser and comparison (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from .compare import differences
from .normalize import Hashes, answer, body

hexes = st.text("0123456789abcdef", min_size=32, max_size=32)


@given(st.lists(hexes, min_size=1, max_size=6), st.lists(hexes, min_size=1, max_size=6))
def test_two_servers_hashes_read_alike_when_they_appear_in_the_same_order(mine, theirs):
    n = min(len(set(mine)), len(set(theirs)))
    a = list(dict.fromkeys(mine))[:n]
    b = list(dict.fromkeys(theirs))[:n]
    ha, hb = Hashes(frozenset()), Hashes(frozenset())
    assert [body(f"1-{h}", ha) for h in a] == [body(f"1-{h}", hb) for h in b]


@given(hexes)
def test_given_hashes_are_kept(h):
    assert body(f"3-{h}", Hashes(frozenset({h}))) == f"3-{h}"


def test_sequences_keep_their_number_only():
    hashes = Hashes(frozenset())
    assert body({"last_seq": "12-g1AAAAB", "seq": "3-abcd"}, hashes) == {"last_seq": "12-*", "seq": "3-*"}
    assert body({"id": "12-abc"}, hashes) == {"id": "12-abc"}


def test_differences_name_status_header_and_body():
    hashes = Hashes(frozenset())
    a = answer(200, {"content-type": "application/json"}, {"rows": [1]}, hashes)
    b = answer(200, {"content-type": "application/json"}, {"rows": [1.0]}, Hashes(frozenset()))
    (d,) = differences("GET x", a, b)
    assert d.klass == "GET x [200] | body .rows[] | type int vs float"
    c = answer(400, {}, {"error": "bad_request", "reason": "r"}, hashes)
    (d,) = differences("GET x", a, c)
    assert d.kind == "status" and d.what == "200 vs 400 bad_request"
    assert differences("GET x", a, a) == []
