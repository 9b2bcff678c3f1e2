"""Map/reduce views through the real server: parameters, reduce, collation, errors, containment."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import aiohttp
import pytest

from tests.serverproc import CouchpyServer
from tests.test_collate import DOC_ORDER


@pytest.fixture(scope="module")
def vserver(tmp_path_factory):
    srv = CouchpyServer(
        tmp_path_factory.mktemp("views"),
        config={"query_servers": {"python": "true"}, "couchdb": {"os_process_timeout": "2000"}},
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def c(vserver):
    async with aiohttp.ClientSession(base_url=vserver.base, auth=vserver.auth) as session:
        yield session


@pytest.fixture
async def vdb(c):
    name = "v-" + uuid.uuid4().hex[:10]
    async with c.put(f"/{name}") as r:
        assert r.status == 201
    yield name
    async with c.delete(f"/{name}"):
        pass


async def get(c, path, **params):
    q = "&".join(f"{k}={quote(v if isinstance(v, str) else json.dumps(v))}" for k, v in params.items())
    async with c.get(path + ("?" + q if q else "")) as r:
        return r.status, await r.json()


async def put_docs(c, db, docs):
    async with c.post(f"/{db}/_bulk_docs", json={"docs": docs}) as r:
        assert r.status == 201
        return await r.json()


JS_DDOC = {
    "views": {
        "by_n": {"map": "function(doc) { if (typeof doc.n === 'number') emit(doc.n, doc.n); }", "reduce": "_sum"},
        "by_tag": {"map": "function(doc) { (doc.tags || []).forEach(function (t) { emit([t, doc.n], 1); }); }",
                   "reduce": "_count"},
        "stats": {"map": "function(doc) { if (doc.n !== undefined) emit(doc.k, doc.n); }", "reduce": "_stats"},
        "custom": {"map": "function(doc) { if (doc.n !== undefined) emit(doc.k, doc.n); }",
                   "reduce": "function(keys, values, rereduce) { return sum(values); }"},
        "linked": {"map": "function(doc) { if (doc.link) emit(doc._id, {_id: doc.link}); }"},
    }
}


def _docs(n=30):
    return [{"_id": f"d{i:02d}", "n": i, "k": "abc"[i % 3], "tags": ["x", "y"][: i % 3]} for i in range(n)]


async def test_map_parameters(c, vdb):
    await put_docs(c, vdb, _docs() + [{"_id": "link1", "link": "d05"}])
    async with c.put(f"/{vdb}/_design/t", json=JS_DDOC) as r:
        assert r.status == 201
    base = f"/{vdb}/_design/t/_view/by_n"
    s, body = await get(c, base, reduce="false")
    assert s == 200 and body["total_rows"] == 30 and body["offset"] == 0
    assert [r["key"] for r in body["rows"]] == list(range(30))
    assert body["rows"][0] == {"id": "d00", "key": 0, "value": 0}
    s, body = await get(c, base, reduce="false", startkey=5, endkey=8)
    assert [r["key"] for r in body["rows"]] == [5, 6, 7, 8] and body["offset"] == 5
    s, body = await get(c, base, reduce="false", start_key=5, end_key=8, inclusive_end="false")
    assert [r["key"] for r in body["rows"]] == [5, 6, 7]
    s, body = await get(c, base, reduce="false", startkey=8, endkey=5, descending="true")
    assert [r["key"] for r in body["rows"]] == [8, 7, 6, 5] and body["offset"] == 21
    s, body = await get(c, base, reduce="false", key=7)
    assert [r["id"] for r in body["rows"]] == ["d07"]
    s, body = await get(c, base, reduce="false", limit=3, skip=2)
    assert [r["key"] for r in body["rows"]] == [2, 3, 4] and body["offset"] == 2
    s, body = await get(c, base, reduce="false", limit=0)
    assert body["rows"] == [] and body["total_rows"] == 30
    s, body = await get(c, base, reduce="false", keys=[3, 1, 99, 3])
    assert [r["key"] for r in body["rows"]] == [3, 1, 3]
    async with c.post(base, params={"reduce": "false"}, json={"keys": [4, 2]}) as r:
        assert r.status == 200 and [x["key"] for x in (await r.json())["rows"]] == [4, 2]
    s, body = await get(c, base, reduce="false", key=3, include_docs="true", update_seq="true")
    assert body["rows"][0]["doc"]["_id"] == "d03" and body["rows"][0]["doc"]["n"] == 3
    assert isinstance(body["update_seq"], str)
    s, body = await get(c, f"/{vdb}/_design/t/_view/linked", include_docs="true")
    assert body["rows"][0]["doc"]["_id"] == "d05"
    # startkey_docid / endkey_docid among equal keys
    s, body = await get(c, f"/{vdb}/_design/t/_view/stats", reduce="false", startkey='"a"', endkey='"a"',
                        startkey_docid="d03", endkey_docid="d09")
    assert [r["id"] for r in body["rows"]] == ["d03", "d06", "d09"]
    s, body = await get(c, f"/{vdb}/_design/t/_view/stats", reduce="false", startkey='"a"', endkey='"a"',
                        startkey_docid="d03", endkey_docid="d09", inclusive_end="false")
    assert [r["id"] for r in body["rows"]] == ["d03", "d06"]
    # update/stale modes answer from the index as it is
    await put_docs(c, vdb, [{"_id": "late", "n": 100}])
    s, body = await get(c, base, reduce="false", stale="ok", startkey=100)
    assert body["rows"] == []
    s, body = await get(c, base, reduce="false", update="false", startkey=100)
    assert body["rows"] == []
    s, body = await get(c, base, reduce="false", startkey=100)
    assert [r["id"] for r in body["rows"]] == ["late"]
    # POST .../queries
    async with c.post(base + "/queries", json={"queries": [{"reduce": False, "keys": [1]}, {"startkey": 28}]}) as r:
        res = (await r.json())["results"]
        assert r.status == 200 and res[0]["rows"][0]["key"] == 1 and res[1]["rows"] == [{"key": None, "value": 157}]


async def test_reduce_and_grouping(c, vdb):
    await put_docs(c, vdb, _docs())
    async with c.put(f"/{vdb}/_design/t", json=JS_DDOC) as r:
        assert r.status == 201
    s, body = await get(c, f"/{vdb}/_design/t/_view/by_n")
    assert body == {"rows": [{"key": None, "value": sum(range(30))}]}
    s, body = await get(c, f"/{vdb}/_design/t/_view/by_n", startkey=10, endkey=12)
    assert body["rows"][0]["value"] == 33
    s, body = await get(c, f"/{vdb}/_design/t/_view/by_tag", group_level=1)
    assert body["rows"] == [{"key": ["x"], "value": 20}, {"key": ["y"], "value": 10}]
    s, body = await get(c, f"/{vdb}/_design/t/_view/by_tag", group="true", limit=2)
    assert body["rows"] == [{"key": ["x", 1], "value": 1}, {"key": ["x", 2], "value": 1}]
    s, body = await get(c, f"/{vdb}/_design/t/_view/by_tag", group_level=1, descending="true")
    assert [r["key"] for r in body["rows"]] == [["y"], ["x"]]
    s, body = await get(c, f"/{vdb}/_design/t/_view/stats", group="true")
    a = [i for i in range(30) if i % 3 == 0]
    assert body["rows"][0] == {"key": "a", "value": {"sum": sum(a), "count": 10, "min": 0, "max": 27,
                                                     "sumsqr": sum(x * x for x in a)}}
    s, body = await get(c, f"/{vdb}/_design/t/_view/custom", group="true")
    assert [r["value"] for r in body["rows"]] == [sum(i for i in range(30) if i % 3 == m) for m in range(3)]
    s, body = await get(c, f"/{vdb}/_design/t/_view/custom", keys=["c", "a"], group="true")
    assert [r["key"] for r in body["rows"]] == ["c", "a"]


@pytest.mark.parametrize("language", ["javascript", "python"])
async def test_documented_collation_order(c, vdb, language):
    docs = [{"_id": f"c{i:02d}", "key": k} for i, k in enumerate(DOC_ORDER)]
    await put_docs(c, vdb, list(reversed(docs)))
    if language == "javascript":
        view = {"map": "function(doc) { if ('key' in doc) emit(doc.key, null); }"}
    else:
        view = {"map": "def fun(doc):\n    if 'key' in doc:\n        yield doc['key'], None\n"}
    async with c.put(f"/{vdb}/_design/coll", json={"language": language, "views": {"v": view}}) as r:
        assert r.status == 201, await r.text()
    s, body = await get(c, f"/{vdb}/_design/coll/_view/v")
    assert s == 200
    assert [r["id"] for r in body["rows"]] == [d["_id"] for d in docs]
    s, body = await get(c, f"/{vdb}/_design/coll/_view/v", startkey=["b"], endkey=["b", {}])
    assert [r["key"] for r in body["rows"]] == [["b"], ["b", "c"], ["b", "c", "a"], ["b", "d"], ["b", "d", "e"]]


async def test_raw_collation(c, vdb):
    await put_docs(c, vdb, [{"_id": str(i), "key": k} for i, k in enumerate(["a", "B", 1, None, ["a"], {"a": 1}])])
    ddoc = {"views": {"v": {"map": "function(doc) { emit(doc.key, null); }", "options": {"collation": "raw"}}}}
    async with c.put(f"/{vdb}/_design/raw", json=ddoc) as r:
        assert r.status == 201
    s, body = await get(c, f"/{vdb}/_design/raw/_view/v")
    assert [r["key"] for r in body["rows"]] == [1, None, {"a": 1}, ["a"], "B", "a"]


async def test_errors(c, vdb):
    await put_docs(c, vdb, _docs(3))
    async with c.put(f"/{vdb}/_design/t", json=JS_DDOC) as r:
        assert r.status == 201
    cases = [
        (f"/{vdb}/_design/t/_view/linked", {"group": "true"}, 400, "Invalid use of grouping on a map view."),
        (f"/{vdb}/_design/t/_view/linked", {"reduce": "true"}, 400, "Reduce is invalid for map-only views."),
        (f"/{vdb}/_design/t/_view/by_n", {"include_docs": "true"}, 400, "`include_docs` is invalid for reduce"),
        (f"/{vdb}/_design/t/_view/by_n", {"limit": "x"}, 400, 'Invalid value for integer: "x"'),
        (f"/{vdb}/_design/t/_view/by_n", {"limit": "-1"}, 400, 'Invalid value for positive integer: "-1"'),
        (f"/{vdb}/_design/t/_view/by_n", {"descending": "maybe"}, 400, 'Invalid boolean parameter: "maybe"'),
        (f"/{vdb}/_design/t/_view/by_n", {"startkey": "5", "endkey": "1"}, 400,
         "No rows can match your key range, reverse your start_key and end_key or set descending=true"),
        (f"/{vdb}/_design/t/_view/by_n", {"keys": "[1, 2]"}, 400, "Multi-key fetches for reduce views must use `group=true`"),
        (f"/{vdb}/_design/t/_view/by_n", {"stale": "nope"}, 400, "Invalid value for `stale`."),
    ]
    for path, params, status, reason in cases:
        async with c.get(path, params=params) as r:
            body = await r.json()
            assert (r.status, body.get("reason")) == (status, reason), (params, body)
            assert body["error"] == "query_parse_error"
    async with c.get(f"/{vdb}/_design/t/_view/missing") as r:
        assert r.status == 404 and (await r.json()) == {"error": "not_found", "reason": "missing_named_view"}
    async with c.get(f"/{vdb}/_design/nope/_view/x") as r:
        assert r.status == 404 and (await r.json())["error"] == "not_found"
    # CouchDB 3.4.3 compiles map functions on save and refuses a broken one (the message after the
    # colon is the JavaScript engine's own)
    async with c.put(f"/{vdb}/_design/bad", json={"views": {"v": {"map": "function(doc) { emit(1 }"}}}) as r:
        body = await r.json()
        assert r.status == 400 and body["error"] == "compilation_error", body
        assert body["reason"].startswith("Compilation of the map function in the 'v' view failed: "), body
    async with c.get(f"/{vdb}/_design/bad") as r:
        assert r.status == 404  # nothing saved


async def test_map_errors_and_looping_functions_are_contained(c, vdb):
    await put_docs(c, vdb, _docs(5))
    ddoc = {"views": {"v": {"map": "function(doc) { if (doc.n === 2) throw new Error('x'); emit(doc.n, null); }"}}}
    async with c.put(f"/{vdb}/_design/err", json=ddoc) as r:
        assert r.status == 201
    s, body = await get(c, f"/{vdb}/_design/err/_view/v")
    assert [r["key"] for r in body["rows"]] == [0, 1, 3, 4]
    loop = {"views": {"v": {"map": "function(doc) { while (true) {} }"}}}
    async with c.put(f"/{vdb}/_design/loop", json=loop) as r:
        assert r.status == 201
    async with c.get(f"/{vdb}/_design/loop/_view/v") as r:
        assert r.status == 500 and (await r.json())["error"] == "os_process_error"
    s, body = await get(c, f"/{vdb}/_design/err/_view/v", key=3)
    assert s == 200 and [r["id"] for r in body["rows"]] == ["d03"]
    crash = {"language": "python", "views": {"v": {"map": "def fun(doc):\n    import os\n    os._exit(3)\n"}}}
    async with c.put(f"/{vdb}/_design/crash", json=crash) as r:
        assert r.status == 201
    async with c.get(f"/{vdb}/_design/crash/_view/v") as r:
        assert r.status == 500 and (await r.json())["error"] == "os_process_error"
    py_ok = {"language": "python", "views": {"v": {"map": "def fun(doc):\n    yield doc['n'], None\n"}}}
    async with c.put(f"/{vdb}/_design/pyok", json=py_ok) as r:
        assert r.status == 201
    s, body = await get(c, f"/{vdb}/_design/pyok/_view/v", limit=1)
    assert s == 200 and body["rows"][0]["key"] == 0
    async with c.get("/") as r:
        assert r.status == 200


async def test_info_cleanup_compact(c, vdb):
    await put_docs(c, vdb, _docs(5))
    async with c.put(f"/{vdb}/_design/t", json=JS_DDOC) as r:
        rev = (await r.json())["rev"]
    s, body = await get(c, f"/{vdb}/_design/t/_view/by_n")
    s, info = await get(c, f"/{vdb}/_design/t/_info")
    assert s == 200 and info["name"] == "t" and info["view_index"]["language"] == "javascript"
    assert info["view_index"]["update_seq"] == 6
    async with c.post(f"/{vdb}/_compact/t", json={}) as r:
        assert r.status == 202 and (await r.json()) == {"ok": True}
    async with c.delete(f"/{vdb}/_design/t", params={"rev": rev}) as r:
        assert r.status == 200
    async with c.post(f"/{vdb}/_view_cleanup", json={}) as r:
        assert r.status == 202
    async with c.post(f"/{vdb}/_view_cleanup", data="x") as r:
        assert r.status == 202  # CouchDB reads no body here (tests/test_parity_content_type.py)


async def test_active_tasks_show_indexer_and_queries_share_one_build(c, vdb):
    import asyncio

    await put_docs(c, vdb, [{"_id": f"s{i:04d}", "n": i} for i in range(6000)])
    slow = {"language": "python", "views": {"v": {
        "map": "def fun(doc):\n    import time\n    time.sleep(0.0002)\n    yield doc['n'], None\n",
        "reduce": "_count"}}}
    async with c.put(f"/{vdb}/_design/slow", json=slow) as r:
        assert r.status == 201
    queries = [asyncio.ensure_future(get(c, f"/{vdb}/_design/slow/_view/v")) for _ in range(3)]
    seen = []
    for _ in range(100):
        async with c.get("/_active_tasks") as r:
            tasks = [t for t in await r.json() if t.get("type") == "indexer" and t.get("database") == vdb]
        assert len(tasks) <= 1  # one build for all three queries
        seen += tasks
        if all(q.done() for q in queries):
            break
        await asyncio.sleep(0.05)
    results = await asyncio.gather(*queries)
    assert all(s == 200 and body["rows"] == [{"key": None, "value": 6000}] for s, body in results)
    assert seen and seen[0]["design_document"] == "_design/slow"
    assert {"changes_done", "total_changes", "progress"} <= set(seen[-1])
    async with c.get("/_active_tasks") as r:
        assert not [t for t in await r.json() if t.get("database") == vdb]


async def test_include_docs_with_conflicts(c, vdb):
    docs = [{"_id": "x", "_rev": "1-aaa", "n": 1}, {"_id": "x", "_rev": "1-bbb", "n": 2}]
    async with c.post(f"/{vdb}/_bulk_docs", json={"docs": docs, "new_edits": False}) as r:
        assert r.status == 201
    async with c.put(f"/{vdb}/_design/t", json={"views": {"v": {"map": "function(doc) { emit(doc.n, null); }"}}}) as r:
        assert r.status == 201
    s, body = await get(c, f"/{vdb}/_design/t/_view/v", include_docs="true", conflicts="true")
    assert s == 200 and len(body["rows"]) == 1  # only the winner is indexed
    row = body["rows"][0]
    assert row["doc"]["_rev"] == "1-bbb" and row["doc"]["_conflicts"] == ["1-aaa"]
    s, body = await get(c, f"/{vdb}/_design/t/_view/v", include_docs="true")
    assert "_conflicts" not in body["rows"][0]["doc"]


async def test_design_options_include_design_and_local_seq(c, vdb):
    await put_docs(c, vdb, [{"_id": "a", "n": 1}])
    ddoc = {"options": {"include_design": True, "local_seq": True},
            "views": {"v": {"map": "function(doc) { emit(doc._id, doc._local_seq); }"}}}
    async with c.put(f"/{vdb}/_design/opt", json=ddoc) as r:
        assert r.status == 201
    s, body = await get(c, f"/{vdb}/_design/opt/_view/v")
    assert [r["id"] for r in body["rows"]] == ["_design/opt", "a"]
    assert all(isinstance(r["value"], int) and r["value"] > 0 for r in body["rows"])
    plain = {"views": {"v": {"map": "function(doc) { emit(doc._id, doc._local_seq || null); }"}}}
    async with c.put(f"/{vdb}/_design/plain", json=plain) as r:
        assert r.status == 201
    s, body = await get(c, f"/{vdb}/_design/plain/_view/v")
    assert [(r["id"], r["value"]) for r in body["rows"]] == [("a", None)]


async def test_large_keys_and_offsets(c, vdb):
    """One key holding more rows than a query may read on the event loop (it moves to a thread and
    still answers every row); offsets in both directions; skip past the loop budget."""
    n = 3300
    await put_docs(c, vdb, [{"_id": f"d{i:05d}", "n": i, "g": i % 3} for i in range(n)])
    ddoc = {"views": {"by_g": {"map": "function(doc) { emit(doc.g, doc.n); }"}}}
    async with c.put(f"/{vdb}/_design/big", json=ddoc) as r:
        assert r.status == 201
    base = f"/{vdb}/_design/big/_view/by_g"
    for g in range(3):
        s, body = await get(c, base, key=g)
        assert s == 200 and body["total_rows"] == n and body["offset"] == 1100 * g
        assert [r["value"] for r in body["rows"]] == list(range(g, n, 3))
        assert all(r["key"] == g and r["id"] == f"d{r['value']:05d}" for r in body["rows"])
        s, body = await get(c, base, key=g, descending="true")
        assert body["offset"] == 1100 * (2 - g)
        assert [r["value"] for r in body["rows"]] == list(range(g, n, 3))[::-1]
    s, body = await get(c, base, key=1, include_docs="true")
    assert len(body["rows"]) == 1100 and all(r["doc"]["n"] == r["value"] for r in body["rows"])
    s, body = await get(c, base, startkey=1, skip=1050, limit=3)
    assert [r["value"] for r in body["rows"]] == [1 + 3 * 1050, 1 + 3 * 1051, 1 + 3 * 1052]
    assert body["offset"] == 1100 + 1050
    s, body = await get(c, base, startkey=0, endkey=1, skip=2150)
    assert [r["key"] for r in body["rows"]] == [1] * 50 and body["offset"] == 2150
    s, body = await get(c, base, keys=[2, 0], limit=1101)
    assert [r["key"] for r in body["rows"]] == [2] * 1100 + [0]
    s, body = await get(c, base, startkey=1, descending="true", skip=5, limit=2)
    assert [r["value"] for r in body["rows"]] == [n - 2 - 15, n - 2 - 18] and body["offset"] == 1100 + 5
    # incremental updates move offsets (remembered tree blocks are forgotten with the old index)
    await put_docs(c, vdb, [{"_id": f"e{i:05d}", "n": i, "g": 0} for i in range(40)])
    for _ in range(2):
        s, body = await get(c, base, key=1, limit=1)
        assert body["offset"] == 1140 and body["total_rows"] == n + 40
        s, body = await get(c, base, key=0, descending="true", limit=1)
        assert body["offset"] == 2200 and body["rows"][0]["id"] == "e00039"
