"""Keys of any length in LMDB (couchpy.longkeys): the pure encoding, document ids through the
engine and view rows through a server, checked against brute force over mixes of long and short
keys and ids."""

from __future__ import annotations

import asyncio
import tempfile
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import couchpy
from couchpy import collate, longkeys
from tests.test_views_property import Http, brute, qs

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


# ---------------------------------------------------------------- views through a server

_L = "L" * 500  # its collated form alone is over the stored-key prefix
VIEW_KEYS = [_L, _L + "a", _L + "b", [_L, 1], [_L, 1, "x"], {"x": _L}, "a", [_L + "a"]]
SUM_VIEW = {"sum": {"map": "function(doc) { if ('k' in doc) emit(doc.k, doc.v); }", "reduce": "_sum"}}


def _docid(n: int) -> str:
    return f"doc{n}" if n % 2 else "D" * 600 + str(n)  # long ids share their first 600 bytes


@st.composite
def view_queries(draw):
    q: dict = {}
    for bound in ("startkey", "endkey"):
        if draw(st.booleans()):
            q[bound] = draw(st.sampled_from(VIEW_KEYS))
    q["descending"] = draw(st.booleans())
    if "startkey" in q and "endkey" in q:
        c = collate.compare(q["startkey"], q["endkey"])
        if (c > 0 and not q["descending"]) or (c < 0 and q["descending"]):
            q["startkey"], q["endkey"] = q["endkey"], q["startkey"]
    if draw(st.booleans()):
        q["inclusive_end"] = False
    mode = draw(st.sampled_from(["map", "reduce", "group", "level"]))
    if mode == "map":
        q["reduce"] = False
    elif mode == "group":
        q["group"] = True
    elif mode == "level":
        q["group_level"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        q["limit"] = draw(st.integers(0, 6))
    if draw(st.booleans()):
        q["skip"] = draw(st.integers(0, 4))
    return q


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.integers(0, 9), st.one_of(st.none(), st.sampled_from(VIEW_KEYS)),
                                   st.integers(-5, 20)), min_size=1, max_size=20), min_size=1, max_size=3),
       st.lists(view_queries(), min_size=1, max_size=5))
def test_views_over_long_keys_and_ids_equal_brute_force(server, rounds, qlist):
    h = Http(server)
    db = "lkv-" + uuid.uuid4().hex[:10]
    assert h.req("PUT", f"/{db}")[0] == 201
    try:
        assert h.req("PUT", f"/{db}/_design/js", {"views": SUM_VIEW})[0] == 201
        docs: dict[str, dict] = {}
        revs: dict[str, str] = {}
        for batch in rounds:
            bulk, seen = [], set()
            for n, k, v in batch:
                did = _docid(n)
                if did in seen:
                    continue
                seen.add(did)
                if k is None and did in revs:
                    bulk.append({"_id": did, "_rev": revs.pop(did), "_deleted": True})
                    docs.pop(did, None)
                elif k is not None:
                    bulk.append({"_id": did, "k": k, "v": v, **({"_rev": revs[did]} if did in revs else {})})
                    docs[did] = {"k": k, "v": v}
            status, res = h.req("POST", f"/{db}/_bulk_docs", {"docs": bulk})
            assert status == 201
            for r in res:
                assert r.get("ok"), r
                if r["id"] in docs:
                    revs[r["id"]] = r["rev"]
            for q in qlist:
                status, body = h.req("GET", f"/{db}/_design/js/_view/sum?{qs(q)}")
                assert status == 200, (q, body)
                assert body["rows"] == brute(docs, q), q
                if not q.get("reduce", True):
                    assert body["total_rows"] == len(docs)
                    everything = brute(docs, {"reduce": False, "descending": q["descending"]})
                    if body["rows"] and not q.get("skip"):
                        assert body["offset"] == everything.index(body["rows"][0]), q
    finally:
        h.req("DELETE", f"/{db}")


def test_view_offsets_count_long_rows_around_a_long_bound(server):
    """Rows sharing a long stored prefix with the bound are partly before it: each is counted."""
    h = Http(server)
    db = "lko-" + uuid.uuid4().hex[:10]
    assert h.req("PUT", f"/{db}")[0] == 201
    try:
        assert h.req("PUT", f"/{db}/_design/js", {"views": SUM_VIEW})[0] == 201
        docs = {_docid(n): {"k": k, "v": n} for n, k in
                enumerate([_L, _L, _L + "a", _L + "a", _L + "b", "a", [_L, 1]])}
        status, _ = h.req("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": i, **d} for i, d in docs.items()]})
        assert status == 201
        for start in (_L, _L + "a", _L + "b"):
            for descending in (False, True):
                q = {"startkey": start, "reduce": False, "descending": descending}
                status, body = h.req("GET", f"/{db}/_design/js/_view/sum?{qs(q)}")
                everything = brute(docs, {"reduce": False, "descending": descending})
                assert body["rows"] == brute(docs, q)
                assert body["offset"] == everything.index(body["rows"][0]), q
                lo, hi = (_L + "b", start) if descending else (start, _L + "b")
                q = {"startkey": lo, "endkey": hi, "descending": descending, "group": True}
                status, body = h.req("GET", f"/{db}/_design/js/_view/sum?{qs(q)}")
                assert body["rows"] == brute(docs, q), q
    finally:
        h.req("DELETE", f"/{db}")


def test_long_ids_survive_compaction(tmp_path):
    async def go():
        node = couchpy.open(tmp_path)
        db = node.create_db("t")
        ids = ["q" * 3000 + s for s in "cab"] + ["q" * 3000, "a"]
        for docid in ids:
            res = await db.put({"_id": docid, "v": 1})
            await db.put({"_id": docid, "_rev": res["rev"], "v": 2})
        await db.compact()
        assert [i.id for i in db.iter_docinfos()] == sorted(ids)
        assert all(db.get(docid)["v"] == 2 for docid in ids)
        assert [i.id for i in db.changes_since(0)] == ids
        await node.aclose()

    _run(go())
