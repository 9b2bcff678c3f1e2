"""Keys of any length in LMDB (couchpy.longkeys): the pure encoding, and document ids through the
engine, checked against brute force over mixes of long and short ids."""

from __future__ import annotations

import asyncio
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import couchpy
from couchpy import longkeys

# Prefixes around the stored-key limit, so that ids share whole groups (equal first PREFIX bytes),
# end exactly at the limit, or are a group's prefix themselves; multi-byte characters cut mid-way.
_PREFIXES = ["", "p" * (longkeys.PREFIX - 2), "p" * longkeys.PREFIX, "p" * (longkeys.PREFIX + 7),
             "é" * (longkeys.PREFIX // 2), "q" * 3000]
ids = st.builds(lambda p, s: p + s, st.sampled_from(_PREFIXES),
                st.text(alphabet="ab\u00e9\U0001F600", min_size=1, max_size=4))
raw_keys = st.builds(lambda p, s: p.encode() + s, st.sampled_from(_PREFIXES), st.binary(max_size=20))


@given(st.sets(raw_keys, max_size=30))
def test_restore_order_sorts_stored_keys_back_into_raw_order(keys):
    stored = {longkeys.ordered(k): k for k in keys if k}
    assert len(stored) == len([k for k in keys if k])  # no two raw keys share a stored key
    assert all(0 < len(s) <= longkeys.LMDB_MAX for s in stored)
    entries = [(s, b"v") for s in sorted(stored)]
    out = [k for k, _ in longkeys.restore_order(entries, lambda s, v: stored[s])]
    assert out == sorted(stored.values())
    down = [k for k, _ in longkeys.restore_order(reversed(entries), lambda s, v: stored[s], True)]
    assert down == sorted(stored.values(), reverse=True)


@given(st.sets(raw_keys.filter(bool), min_size=1, max_size=30), st.one_of(st.none(), raw_keys),
       st.one_of(st.none(), raw_keys))
def test_range_bounds_cover_the_range_and_short_keys_exactly(keys, lo, hi):
    slo, shi = longkeys.range_bounds(lo, hi)
    for k in keys:
        s = longkeys.ordered(k)
        inside = (slo is None or slo <= s) and (shi is None or s < shi)
        if longkeys.in_range(k, lo, hi):
            assert inside
        elif not longkeys.is_long(s):
            assert not inside


@given(st.sets(raw_keys.filter(bool), min_size=1, max_size=30), st.one_of(st.none(), raw_keys),
       st.one_of(st.none(), raw_keys))
def test_split_range_is_an_exact_part_plus_filtered_groups(keys, lo, hi):
    exact, edges = longkeys.split_range(lo, hi)
    assert len(edges) <= 2
    found = []
    for k in keys:
        s = longkeys.ordered(k)
        in_exact = exact is not None and (exact[0] is None or exact[0] <= s) and (exact[1] is None or s < exact[1])
        in_edges = [e for e in edges if e[0] <= s < e[1]]
        if in_exact:
            assert longkeys.in_range(k, lo, hi) and not in_edges
            found.append(k)
        elif in_edges and longkeys.in_range(k, lo, hi):
            assert len(in_edges) == 1
            found.append(k)
    assert sorted(found) == sorted(k for k in keys if longkeys.in_range(k, lo, hi))


def test_point_keys_fit_and_differ():
    a, b = b"x" * 5000 + b"\x001-a", b"x" * 5000 + b"\x001-b"
    assert longkeys.point(a) != longkeys.point(b)
    assert len(longkeys.point(a)) == longkeys.LMDB_MAX
    assert longkeys.point(b"short") == b"short"


def _run(coro):
    return asyncio.run(coro)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(ids, st.booleans()), min_size=1, max_size=25, unique_by=lambda t: t[0]),
       st.lists(st.tuples(st.one_of(st.none(), ids), st.one_of(st.none(), ids), st.booleans(),
                          st.booleans(), st.integers(1, 4)), min_size=1, max_size=6))
def test_id_scans_match_brute_force(docs, queries):
    async def go():
        with tempfile.TemporaryDirectory() as d:
            node = couchpy.open(d)
            db = node.create_db("t")
            for docid, deleted in docs:
                res = await db.put({"_id": docid, "n": len(docid)})
                if deleted:
                    await db.put({"_id": docid, "_rev": res["rev"], "_deleted": True})
            every = sorted((docid for docid, _ in docs), key=str.encode)
            live = [i for i in every if not dict(docs)[i]]
            for docid, deleted in docs:
                info = db.get_docinfo(docid)
                assert info is not None and info.id == docid and info.deleted == deleted
                if not deleted:
                    assert db.get(docid)["n"] == len(docid)
            assert db.get_docinfo("") is None
            for start, end, descending, inclusive, chunk in queries:
                got = [i.id for i in db.iter_docinfos(start, end, descending, inclusive, chunk)]
                want = [i for i in (every[::-1] if descending else every)
                        if (start is None or (i.encode() <= start.encode() if descending
                                              else i.encode() >= start.encode()))
                        and (end is None or _before_end(i.encode(), end.encode(), descending, inclusive))]
                assert got == want
                if start is not None:
                    sb = start.encode()
                    expect = sum(1 for i in live if (i.encode() > sb if descending else i.encode() < sb))
                    assert db.count_live_before(start, descending) == expect
            assert [i.id for i in db.changes_since(0)] == [docid for docid, _ in docs]
            await node.aclose()

    _run(go())


def _before_end(key: bytes, end: bytes, descending: bool, inclusive: bool) -> bool:
    if descending:
        return key > end or (inclusive and key == end)
    return key < end or (inclusive and key == end)


def test_local_documents_with_long_ids_list_in_order(tmp_path):
    async def go():
        node = couchpy.open(tmp_path)
        db = node.create_db("t")
        names = ["_local/" + p + s for p in ("", "l" * 700) for s in ("b", "a", "c")]
        for name in names:
            await db.put({"_id": name, "v": name[-1]})
        assert db.get_local(names[1])["v"] == "a"
        listed = [r["_id"] for r in db.iter_local(None, None, False, True)]
        assert listed == sorted(names)
        listed = [r["_id"] for r in db.iter_local(None, None, True, True)]
        assert listed == sorted(names, reverse=True)
        await node.aclose()

    _run(go())
