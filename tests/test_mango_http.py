"""Mango through the real server: _index, _find (index choice, sort, paging, fields), _explain, errors."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from couchpy.mango.selector import compile_selector


@pytest.fixture
def mserver(server):
    return server


@pytest.fixture
def c(client):
    """The session server's admin client (tests/conftest.py): Mango needs no special config."""
    return client


@pytest.fixture
async def mdb(c):
    name = "m-" + uuid.uuid4().hex[:10]
    async with c.put(f"/{name}") as r:
        assert r.status == 201
    docs = [{"_id": f"d{i:02d}", "n": i, "kind": "ab"[i % 2], "sub": {"x": i % 5}, "tags": ["t"] * (i % 3)}
            for i in range(40)]
    docs.append({"_id": "nofield", "kind": "a"})
    async with c.post(f"/{name}/_bulk_docs", json={"docs": docs}) as r:
        assert r.status == 201
    yield name
    async with c.delete(f"/{name}"):
        pass


async def post(c, path, body):
    async with c.post(path, json=body) as r:
        return r.status, await r.json()


async def test_index_lifecycle(c, mdb):
    s, body = await post(c, f"/{mdb}/_index", {"index": {"fields": ["n"]}, "name": "by-n", "ddoc": "idx"})
    assert (s, body) == (200, {"result": "created", "id": "_design/idx", "name": "by-n"})
    s, body = await post(c, f"/{mdb}/_index", {"index": {"fields": ["n"]}, "name": "by-n", "ddoc": "idx"})
    assert body["result"] == "exists"
    s, body = await post(c, f"/{mdb}/_index", {"index": {"fields": ["kind", "n"]}})
    assert body["result"] == "created" and body["id"].startswith("_design/")
    async with c.get(f"/{mdb}/_index") as r:
        listing = await r.json()
    assert listing["total_rows"] == 3
    assert listing["indexes"][0] == {"ddoc": None, "name": "_all_docs", "type": "special",
                                     "def": {"fields": [{"_id": "asc"}]}}
    names = {i["name"]: i for i in listing["indexes"]}
    assert names["by-n"]["def"] == {"fields": [{"n": "asc"}]} and names["by-n"]["type"] == "json"
    async with c.get(f"/{mdb}/_design/idx") as r:
        ddoc = await r.json()
    assert ddoc["language"] == "query" and ddoc["views"]["by-n"]["map"]["fields"] == {"n": "asc"}
    async with c.delete(f"/{mdb}/_index/idx/json/by-n") as r:
        assert r.status == 200 and (await r.json()) == {"ok": True}
    async with c.delete(f"/{mdb}/_index/idx/json/by-n") as r:
        assert r.status == 404
    s, body = await post(c, f"/{mdb}/_index", {"index": {"fields": []}})
    assert s == 400


async def test_find_with_index(c, mdb):
    await post(c, f"/{mdb}/_index", {"index": {"fields": ["n"]}, "name": "by-n", "ddoc": "idx"})
    q = {"selector": {"n": {"$gte": 10, "$lt": 20}, "kind": "a"}, "fields": ["_id", "n", "sub.x"],
         "sort": [{"n": "desc"}], "limit": 3, "execution_stats": True}
    s, body = await post(c, f"/{mdb}/_find", q)
    assert s == 200, body
    assert body["docs"] == [{"_id": "d18", "n": 18, "sub": {"x": 3}}, {"_id": "d16", "n": 16, "sub": {"x": 1}},
                            {"_id": "d14", "n": 14, "sub": {"x": 4}}]
    assert "warning" not in body
    st_ = body["execution_stats"]
    assert st_["results_returned"] == 3 and st_["total_keys_examined"] <= 10
    # bookmark paging continues where the last page ended
    s, page2 = await post(c, f"/{mdb}/_find", {**q, "bookmark": body["bookmark"]})
    assert [d["n"] for d in page2["docs"]] == [12, 10]
    s, page3 = await post(c, f"/{mdb}/_find", {**q, "bookmark": page2["bookmark"]})
    assert page3["docs"] == []
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"n": {"$gt": 35}}, "sort": ["n"], "skip": 1})
    assert [d["n"] for d in body["docs"]] == [37, 38, 39]
    s, body = await post(c, f"/{mdb}/_explain", {"selector": {"n": {"$gt": 35}}})
    assert s == 200 and body["index"]["name"] == "by-n" and body["dbname"] == mdb
    assert body["selector"] == {"n": {"$gt": 35}}
    assert body["mrargs"]["start_key"] == [35] and body["mrargs"]["end_key"] == ["<MAX>"]


async def test_find_without_index(c, mdb):
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"sub.x": 4, "tags": {"$size": 2}}})
    assert s == 200
    assert [d["_id"] for d in body["docs"]] == ["d14", "d29"]
    assert body["warning"].startswith("No matching index found")
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"_id": {"$gt": "d37"}}})
    assert [d["_id"] for d in body["docs"]] == ["d38", "d39", "nofield"]
    # as CouchDB: _all_docs serves a sort on _id only for a selector with a condition on _id
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"kind": "a"}, "sort": [{"_id": "desc"}], "limit": 2})
    assert s == 400 and body["error"] == "no_usable_index"
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"kind": "a", "_id": {"$gt": None}},
                                              "sort": [{"_id": "desc"}], "limit": 2})
    assert [d["_id"] for d in body["docs"]] == ["nofield", "d38"]
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"kind": "a"}, "sort": ["n"]})
    assert s == 400 and body["error"] == "no_usable_index"
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"n": {"$foo": 1}}})
    assert s == 400 and body["error"] == "invalid_operator"
    s, body = await post(c, f"/{mdb}/_find", {"limit": 1})
    assert s == 400 and body == {"error": "missing_required_key", "reason": "Missing required key: selector"}
    s, body = await post(c, f"/{mdb}/_find", {"selector": {}, "limit": -1})
    assert s == 400 and body["error"] == "invalid_non_neg_integer"
    s, body = await post(c, f"/{mdb}/_find", {"selector": {}, "bookmark": "%%%"})
    assert s == 400 and body["error"] == "invalid_bookmark"
    s, body = await post(c, f"/{mdb}/_find", {"selector": {}, "use_index": "nope"})
    assert s == 200 and "was not used" in body["warning"]
    async with c.post(f"/{mdb}/_find", data="{}") as r:
        assert r.status == 415


# ------------------------------------------------------------------ brute force


class Http:
    def __init__(self, srv):
        self.base = srv.base
        self.auth = "Basic " + base64.b64encode(f"{srv.auth.login}:{srv.auth.password}".encode()).decode()

    def req(self, method, path, body=None):
        r = urllib.request.Request(self.base + path, data=json.dumps(body).encode() if body is not None else None,
                                   method=method,
                                   headers={"Authorization": self.auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


VALS = [None, True, 0, 1, 2, 3.5, -1, "a", "B", "b", [1], {"x": 1}]
vals = st.sampled_from(VALS)
cond = st.one_of(
    vals,
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]), vals),
    st.builds(lambda a, b: {"$gt": a, "$lt": b}, vals, vals),
    st.builds(lambda v: {"$in": v}, st.lists(vals, max_size=3)),
    st.builds(lambda b: {"$exists": b}, st.booleans()),
)
selectors = st.one_of(
    st.builds(lambda c: {"n": c}, cond),
    st.builds(lambda c, d: {"n": c, "m": d}, cond, cond),
    st.builds(lambda c, d: {"$or": [{"n": c}, {"m": d}]}, cond, cond),
)
docs_st = st.lists(st.tuples(st.one_of(st.none(), vals), st.one_of(st.none(), vals)), min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs_st, st.lists(selectors, min_size=1, max_size=4), st.booleans())
def test_find_equals_brute_force(mserver, rows, sels, with_index):
    h = Http(mserver)
    db = "mp-" + uuid.uuid4().hex[:10]
    assert h.req("PUT", f"/{db}")[0] == 201
    try:
        docs = []
        for i, (n, m) in enumerate(rows):
            d = {"_id": f"d{i:03d}"}
            if n is not None:
                d["n"] = n
            if m is not None:
                d["m"] = m
            docs.append(d)
        assert h.req("POST", f"/{db}/_bulk_docs", {"docs": docs})[0] == 201
        if with_index:
            assert h.req("POST", f"/{db}/_index", {"index": {"fields": ["n"]}, "name": "n", "ddoc": "n"})[0] == 200
            assert h.req("POST", f"/{db}/_index", {"index": {"fields": ["n", "m"]}, "name": "nm", "ddoc": "nm"})[0] == 200
        for sel in sels:
            want = sorted(d["_id"] for d in docs if compile_selector(sel)(d))
            status, body = h.req("POST", f"/{db}/_find", {"selector": sel, "limit": 1000})
            assert status == 200, body
            assert sorted(d["_id"] for d in body["docs"]) == want, sel
            # paging with a bookmark yields the same set
            got, bm = [], None
            for _ in range(30):
                q = {"selector": sel, "limit": 4}
                if bm:
                    q["bookmark"] = bm
                status, body = h.req("POST", f"/{db}/_find", q)
                got += [d["_id"] for d in body["docs"]]
                if not body["docs"]:
                    break
                bm = body["bookmark"]
            assert sorted(got) == want, sel
    finally:
        h.req("DELETE", f"/{db}")


async def test_stale_index_results_are_rechecked(c, mdb):
    await post(c, f"/{mdb}/_index", {"index": {"fields": ["n"]}, "name": "by-n", "ddoc": "idx"})
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"n": {"$gte": 4, "$lt": 7}}})
    assert [d["_id"] for d in body["docs"]] == ["d04", "d05", "d06"]
    async with c.get(f"/{mdb}/d05") as r:
        doc = await r.json()
    doc["n"] = 500
    async with c.put(f"/{mdb}/d05", json=doc) as r:
        assert r.status == 201
    # the index still says n=5, but the document no longer matches: never returned
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"n": {"$gte": 4, "$lt": 7}}, "update": False})
    assert [d["_id"] for d in body["docs"]] == ["d04", "d06"]
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"n": {"$gte": 400}}})
    assert [d["_id"] for d in body["docs"]] == ["d05"] and body["docs"][0]["n"] == 500


async def test_partial_and_compound_indexes(c, mdb):
    s, body = await post(c, f"/{mdb}/_index", {
        "index": {"fields": ["n"], "partial_filter_selector": {"kind": "b"}}, "name": "b-only", "ddoc": "part"})
    assert body["result"] == "created"
    # not used unless named (CouchDB's rule for partial indexes)
    s, body = await post(c, f"/{mdb}/_explain", {"selector": {"n": {"$gt": 30}}})
    assert body["index"]["name"] == "_all_docs"
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"n": {"$gt": 30}}, "use_index": ["part", "b-only"]})
    assert "warning" not in body
    assert [d["_id"] for d in body["docs"]] == ["d31", "d33", "d35", "d37", "d39"]  # the index holds kind=b only
    s, body = await post(c, f"/{mdb}/_index", {"index": {"fields": ["kind", "n"]}, "name": "kind-n", "ddoc": "kn"})
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"kind": "a", "n": {"$gte": 30}},
                                              "sort": [{"kind": "desc"}, {"n": "desc"}], "fields": ["n"]})
    assert s == 200 and body["docs"] == [{"n": 38}, {"n": 36}, {"n": 34}, {"n": 32}, {"n": 30}]
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"kind": "a", "n": {"$gte": 30}}, "sort": ["n"]})
    assert s == 200 and [d["n"] for d in body["docs"]] == [30, 32, 34, 36, 38]  # kind pinned by $eq
    s, body = await post(c, f"/{mdb}/_find", {"selector": {"kind": "a"}, "sort": [{"n": "asc"}, {"kind": "desc"}]})
    assert s == 400 and body["error"] == "unsupported_mixed_sort"


async def test_exact_ranges_large_results_and_paging(c):
    """Exact index ranges (documents spliced from stored JSON): both directions, skip, bookmarks,
    whole documents, and results past the on-loop budget (the query moves to a thread)."""
    name = "mx-" + uuid.uuid4().hex[:10]
    async with c.put(f"/{name}") as r:
        assert r.status == 201
    try:
        n = 1500
        docs = [{"_id": f"e{i:05d}", "n": i, "body": {"s": "x" * (i % 7), "q": [i, None, True]}} for i in range(n)]
        docs.append({"_id": "empty", "n": -1})  # a body with nothing but n
        async with c.post(f"/{name}/_bulk_docs", json={"docs": docs}) as r:
            assert r.status == 201
            revs = {x["id"]: x["rev"] for x in await r.json()}
        await post(c, f"/{name}/_index", {"index": {"fields": ["n"]}, "name": "by-n", "ddoc": "idx"})
        s, body = await post(c, f"/{name}/_find", {"selector": {"n": {"$gte": -5, "$lt": 3}}, "sort": ["n"]})
        assert s == 200 and body["docs"][0] == {"_id": "empty", "_rev": revs["empty"], "n": -1}
        assert body["docs"][1] == {"_id": "e00000", "_rev": revs["e00000"], "n": 0,
                                   "body": {"s": "", "q": [0, None, True]}}
        assert [d["n"] for d in body["docs"]] == [-1, 0, 1, 2]
        # more results than the loop budget
        s, body = await post(c, f"/{name}/_find", {"selector": {"n": {"$gte": 100}}, "sort": ["n"],
                                                   "limit": 1400, "execution_stats": True})
        assert [d["n"] for d in body["docs"]] == list(range(100, n))
        assert body["execution_stats"]["results_returned"] == n - 100
        assert all(d["_rev"] == revs[d["_id"]] and d["body"]["q"][0] == d["n"] for d in body["docs"])
        s, body = await post(c, f"/{name}/_find", {"selector": {"n": {"$lte": 1200}}, "sort": [{"n": "desc"}],
                                                   "skip": 3, "limit": 1000})
        assert [d["n"] for d in body["docs"]] == list(range(1197, 197, -1))
        # pages by bookmark, descending
        got, bm = [], None
        for _ in range(10):
            q = {"selector": {"n": {"$gt": 10, "$lte": 40}}, "sort": [{"n": "desc"}], "limit": 7}
            if bm:
                q["bookmark"] = bm
            s, body = await post(c, f"/{name}/_find", q)
            if not body["docs"]:
                break
            got += [d["n"] for d in body["docs"]]
            bm = body["bookmark"]
        assert got == list(range(40, 10, -1))
        # scans past the loop budget without an index, and through the index with re-checks
        s, body = await post(c, f"/{name}/_find", {"selector": {"body.q.0": {"$gte": 1495}}})
        assert [d["n"] for d in body["docs"]] == list(range(1495, n)) and "warning" in body
        s, body = await post(c, f"/{name}/_find", {"selector": {"n": {"$gte": 100}, "body.s": "xxxxxx"},
                                                   "sort": ["n"], "limit": 40})
        assert [d["n"] for d in body["docs"]] == [i for i in range(100, n) if i % 7 == 6][:40]
        # a document changed after the index was read is not returned with stale contents
        async with c.put(f"/{name}/e00020", json={"_rev": revs["e00020"], "n": 20, "v": 2}) as r:
            assert r.status == 201
        s, body = await post(c, f"/{name}/_find", {"selector": {"n": {"$gte": 20, "$lt": 22}}, "update": False})
        assert [(d["_id"], d.get("v")) for d in body["docs"]] == [("e00020", 2), ("e00021", None)]
        s, body = await post(c, f"/{name}/_find", {"selector": {"n": {"$gte": 20, "$lt": 22}}})
        assert [(d["_id"], d.get("v")) for d in body["docs"]] == [("e00020", 2), ("e00021", None)]
    finally:
        async with c.delete(f"/{name}"):
            pass


async def test_bad_sort_and_field_specs_are_400(c, mdb):
    for sort, error in (([{"n": "up"}], "invalid_sort_field"), ([3], "invalid_sort_field"),
                        ([{"n": "asc"}, {"kind": "desc"}], "unsupported_mixed_sort"), ("n", "invalid_sort_json")):
        async with c.post(f"/{mdb}/_find", json={"selector": {"n": {"$gt": 0}}, "sort": sort}) as r:
            assert r.status == 400, (sort, await r.text())
            assert (await r.json())["error"] == error
    for fields, error in (([], "invalid_field"), ([7], "invalid_sort_field"), ([{"n": "sideways"}], "invalid_sort_field")):
        async with c.post(f"/{mdb}/_index", json={"index": {"fields": fields}}) as r:
            assert r.status == 400, (fields, await r.text())
            assert (await r.json())["error"] == error
