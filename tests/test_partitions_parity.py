"""Partitioned databases answered as CouchDB 3.4.3 answers them: every request below goes to a
partitioned database on both couchpy and the real CouchDB, and both must answer alike."""

from __future__ import annotations

import json
import uuid

import aiohttp

from tests.parity import Call, caller, on_both

J = json.dumps  # a JSON string parameter (the caller sends strings as they are)

DOCS = [
    {"_id": "a:1", "v": 1, "t": "x"},
    {"_id": "a:2", "v": 2, "t": "y"},
    {"_id": "a:3:z", "v": 3, "t": "x"},
    {"_id": "b:1", "v": 3, "t": "x"},
    {"_id": "b:2", "v": 5, "t": "y"},
    {"_id": "c:9", "v": 2, "t": "x"},
]

def norevs(value):
    """The value with revision ids blanked: couchpy's revision hashes are its own (deterministic,
    not CouchDB's), which is beside the point here."""
    if isinstance(value, dict):
        return {k: "<rev>" if k in ("rev", "_rev") else norevs(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [norevs(v) for v in value]
    return value


MAP = "function(doc){ if (doc.v !== undefined) emit(doc.v, doc.t); }"


async def _fill(call: Call, db: str) -> None:
    status, body = await call("POST", f"/{db}/_bulk_docs", {"docs": DOCS})
    assert status == 201, body


async def test_create_and_db_info(client, couch_client):
    async def scenario(call: Call, db: str):
        out = {}
        status, info = await call("GET", f"/{db}")
        out["props"] = (status, info["props"])
        out["again"] = await call("PUT", f"/{db}", partitioned="true")
        out["bad_flag"] = await call("PUT", f"/{db}-x", partitioned="yes")
        status, _ = await call("PUT", f"/{db}-plain", partitioned="false")
        status2, info = await call("GET", f"/{db}-plain")
        out["plain"] = (status, status2, info["props"])
        await call("DELETE", f"/{db}-plain")
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    assert ours["props"] == [200, {"partitioned": True}]


async def test_features_list_partitioned(client, couch_client):
    for session in (client, couch_client):
        async with session.get("/") as r:
            assert "partitioned" in (await r.json())["features"]


async def test_document_ids(client, couch_client):
    async def scenario(call: Call, db: str):
        out = {}
        for docid in ("nocolon", "a:b", ":b", "a:", "_x:b", "a:_x", "a:b:c", "_design/d", "_local/l"):
            out[docid] = await call("PUT", f"/{db}/{docid}", {"n": 1})
        out["post_without_id"] = (await call("POST", f"/{db}", {"n": 1}))
        # a bad id anywhere refuses the whole request (no row is written)
        out["bulk_bad"] = await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "q:1"}, {"_id": "x"}]})
        out["bulk_empty_partition"] = await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": ":x"}]})
        out["bulk_no_id"] = await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "q:2"}, {"n": 1}]})
        out["bulk_replicated"] = await call("POST", f"/{db}/_bulk_docs", {
            "new_edits": False, "docs": [{"_id": "x", "_rev": "1-abc"}]})
        out["bulk_ok"] = await call("POST", f"/{db}/_bulk_docs", {"docs": [
            {"_id": "q:3"}, {"_id": "_design/e"}, {"_id": "_local/m"}]})
        status, listing = await call("GET", f"/{db}/_all_docs")
        out["ids"] = [row["id"] for row in listing["rows"]]
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    # the server's uuid in a POSTed document's id: no colon, hence refused
    assert ours == theirs
    assert ours["nocolon"] == [400, {"error": "illegal_docid", "reason": "Doc id must be of form partition:id"}]
    assert ours[":b"] == [400, {"error": "illegal_partition", "reason": "Partition must not be empty"}]
    assert ours["ids"] == ["_design/d", "_design/e", "a:b", "a:b:c", "q:3"]


async def test_partition_info(client, couch_client):
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        status, doc = await call("GET", f"/{db}/a:2")
        await call("DELETE", f"/{db}/a:2", rev=doc["_rev"])
        out = {}
        for p in ("a", "b", "zz"):
            status, info = await call("GET", f"/{db}/_partition/{p}")
            # `sizes.active` is bytes on disk: each storage engine its own
            info["sizes"].pop("active")
            out[p] = (status, info)
        for path in ("_partition/_a", "_partition/a:b", "_partition", "_partition/", "_partition/a/_other"):
            out[path] = await call("GET", f"/{db}/{path}")
        out["post"] = await call("POST", f"/{db}/_partition/a", {})
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    for result in (ours, theirs):
        result["a"][1].pop("db_name")
        result["b"][1].pop("db_name")
        result["zz"][1].pop("db_name")
    assert ours == theirs
    assert ours["a"] == [200, {"sizes": {"external": 2 + len('{"v":1,"t":"x"}') * 2}, "partition": "a",
                               "doc_count": 2, "doc_del_count": 1}]


async def test_partition_info_refused_on_plain_db(client, couch_client):
    async def scenario(call: Call, db: str):
        return [await call("GET", f"/{db}/_partition/a"), await call("GET", f"/{db}/_partition/_a"),
                await call("GET", f"/{db}/_partition/a/_all_docs"),
                await call("POST", f"/{db}/_partition/a/_find", {"selector": {}}),
                await call("GET", f"/{db}/_partition/a/_design/d/_view/v"),
                await call("POST", f"/{db}/_find", {"selector": {}, "partition": "a"})]

    ours, theirs = norevs(await on_both(client, couch_client, scenario))
    assert ours == theirs
    assert ours[0] == [400, {"error": "bad_request", "reason": "database is not partitioned"}]


async def test_partition_all_docs(client, couch_client):
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        await call("PUT", f"/{db}/_design/d", {"views": {"v": {"map": MAP}}})
        out = {}
        base = f"/{db}/_partition/a/_all_docs"
        cases = {
            "plain": {}, "docs": {"include_docs": True, "limit": 2},
            "desc": {"descending": True}, "start_out": {"startkey": J("b:1")},
            "start_in": {"startkey": J("a:2"), "limit": 1}, "end_wide": {"endkey": J("z")},
            "start_low": {"startkey": J("0")}, "start_number": {"startkey": 0},
            "desc_start": {"descending": True, "startkey": J("zzz"), "skip": 1},
            "desc_end": {"descending": True, "endkey": J("a:2")},
            "end_excl": {"endkey": J("a:3:z"), "inclusive_end": False}, "key": {"key": J("a:2")},
            "key_other": {"key": J("b:1")}, "keys": {"keys": ["a:1", "b:2", "nope:1"]},
            "bad_json": {"startkey": "a:1"}, "update_seq": {"update_seq": True, "limit": 0},
        }
        for name, q in cases.items():
            status, body = await call("GET", base, **q)
            body.pop("update_seq", None) if name != "update_seq" else body.update(update_seq="present")
            out[name] = (status, body)
        out["post"] = await call("POST", base, {"keys": ["b:1", "a:1"]})
        out["bad_partition"] = await call("GET", f"/{db}/_partition/_a/_all_docs")
        out["put"] = await call("PUT", base, {})
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    plain = ours["plain"][1]
    assert [r["id"] for r in plain["rows"]] == ["a:1", "a:2", "a:3:z"]
    assert (plain["total_rows"], plain["offset"]) == (7, 1)  # the whole database's rows and position


async def test_partitioned_views(client, couch_client):
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        out = {}
        out["ddoc"] = (await call("PUT", f"/{db}/_design/d", {"views": {
            "v": {"map": MAP}, "r": {"map": MAP, "reduce": "_count"}}}))[0]
        out["global_ddoc"] = (await call("PUT", f"/{db}/_design/g", {
            "options": {"partitioned": False}, "views": {"v": {"map": MAP}}}))[0]
        out["bad_option"] = await call("PUT", f"/{db}/_design/x", {
            "options": {"partitioned": "yes"}, "views": {"v": {"map": MAP}}})
        out["bad_options"] = await call("PUT", f"/{db}/_design/x", {"options": "x", "views": {"v": {"map": MAP}}})
        base = f"/{db}/_partition/a/_design/d/_view"
        cases = {
            "map": ("v", {}), "desc": ("v", {"descending": True}), "start": ("v", {"startkey": 2}),
            "docs": ("v", {"include_docs": True, "limit": 2, "skip": 1}), "key": ("v", {"key": 3}),
            "keys": ("v", {"keys": [3, 1, 9]}), "end": ("v", {"endkey": 2, "inclusive_end": False}),
            "reduce": ("r", {}), "group": ("r", {"group": True}), "group_range": ("r", {"group": True, "startkey": 2}),
            "group_level0": ("r", {"group_level": 0}), "reduce_false": ("r", {"reduce": False}),
            "reduce_docs": ("r", {"include_docs": True}), "missing_view": ("nope", {}),
            "other_partition": ("v", {}),
        }
        for name, (view, q) in cases.items():
            path = f"{base}/{view}" if name != "other_partition" else f"/{db}/_partition/b/_design/d/_view/v"
            out[name] = await call("GET", path, **q)
        out["post_keys"] = await call("POST", f"{base}/v", {"keys": [2, 3]})
        out["queries"] = await call("POST", f"{base}/r/queries", {"queries": [{}, {"group": True}]})
        out["param"] = await call("GET", f"/{db}/_design/d/_view/v", partition="b")
        out["param_bad"] = await call("GET", f"/{db}/_design/d/_view/v", partition="_b")
        out["global_refused"] = await call("GET", f"/{db}/_design/d/_view/v")
        out["global_reduce_refused"] = await call("GET", f"/{db}/_design/d/_view/r")
        out["global_view"] = await call("GET", f"/{db}/_design/g/_view/v")
        out["partition_on_global"] = await call("GET", f"/{db}/_partition/a/_design/g/_view/v")
        out["missing_ddoc"] = await call("GET", f"/{db}/_partition/a/_design/nope/_view/v")
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    assert ours["map"][1] == {"total_rows": 6, "offset": 0, "rows": [
        {"id": "a:1", "key": 1, "value": "x"}, {"id": "a:2", "key": 2, "value": "y"},
        {"id": "a:3:z", "key": 3, "value": "x"}]}
    assert ours["global_refused"] == [400, {"error": "query_parse_error",
                                            "reason": "`partition` parameter is mandatory for queries to this view."}]


async def test_partitioned_option_refused_in_plain_db(client, couch_client):
    async def scenario(call: Call, db: str):
        return [await call("PUT", f"/{db}/_design/p", {"options": {"partitioned": True}, "views": {"v": {"map": MAP}}}),
                (await call("PUT", f"/{db}/_design/g", {"options": {"partitioned": False},
                                                        "views": {"v": {"map": MAP}}}))[0],
                await call("GET", f"/{db}/_design/g/_view/v", partition="a")]

    ours, theirs = norevs(await on_both(client, couch_client, scenario))
    assert ours == theirs
    assert ours[0][0] == 400


async def test_partition_find(client, couch_client):
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        out = {}
        base = f"/{db}/_partition/a"
        sel = {"selector": {"v": {"$gt": 1}}}
        out["scan"] = await call("POST", f"{base}/_find", sel)
        out["global_scan"] = await call("POST", f"/{db}/_find", sel)
        out["index_p"] = await call("POST", f"/{db}/_index", {"index": {"fields": ["v"]}, "name": "pv", "ddoc": "pv"})
        out["index_g"] = await call("POST", f"/{db}/_index", {"index": {"fields": ["v"]}, "name": "gv", "ddoc": "gv",
                                                              "partitioned": False})
        out["indexes"] = await call("GET", f"/{db}/_index")
        out["indexed"] = await call("POST", f"{base}/_find", sel)
        out["indexed_limit"] = await call("POST", f"{base}/_find", {**sel, "limit": 1})
        out["fields_sort"] = await call("POST", f"{base}/_find", {**sel, "fields": ["_id", "v"],
                                                                   "sort": [{"v": "desc"}]})
        out["eq"] = await call("POST", f"{base}/_find", {"selector": {"v": 3}})
        out["body_partition"] = await call("POST", f"/{db}/_find", {**sel, "partition": "b"})
        out["global_indexed"] = await call("POST", f"/{db}/_find", sel)
        out["global_use_partitioned"] = await call("POST", f"/{db}/_find", {**sel, "use_index": "pv"})
        out["partition_use_global"] = await call("POST", f"{base}/_find", {**sel, "use_index": "gv"})
        out["id_range"] = await call("POST", f"{base}/_find", {"selector": {"_id": {"$gt": "a:1"}}})
        out["bad_partition"] = await call("POST", f"/{db}/_partition/_a/_find", sel)
        out["partition_type"] = await call("POST", f"/{db}/_find", {**sel, "partition": 5})
        out["get"] = await call("GET", f"{base}/_find")
        for key in ("scan", "global_scan", "indexed", "indexed_limit", "fields_sort", "eq", "body_partition",
                    "global_indexed", "global_use_partitioned", "partition_use_global", "id_range"):
            status, body = out[key]
            body.pop("bookmark", None)  # an opaque token, each server its own
            out[key] = (status, body)
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    assert [d["_id"] for d in ours["indexed"][1]["docs"]] == ["a:2", "a:3:z"]


async def test_partition_explain(client, couch_client):
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        await call("POST", f"/{db}/_index", {"index": {"fields": ["v"]}, "name": "pv", "ddoc": "pv"})
        await call("POST", f"/{db}/_index", {"index": {"fields": ["t"]}, "name": "gt", "ddoc": "gt",
                                             "partitioned": False})
        out = {}
        queries = {
            "partition_v": (f"/{db}/_partition/a/_explain", {"selector": {"v": {"$gt": 1}}}),
            "partition_t": (f"/{db}/_partition/a/_explain", {"selector": {"t": "x"}}),
            "global_v": (f"/{db}/_explain", {"selector": {"v": {"$gt": 1}}}),
            "global_t": (f"/{db}/_explain", {"selector": {"t": "x"}}),
        }
        for name, (path, body) in queries.items():
            status, plan = await call("POST", path, body)
            # the parts couchpy explains as CouchDB does (not its candidate analysis)
            out[name] = (status, plan["index"], plan["partitioned"], plan["opts"]["partition"],
                         plan["mrargs"]["partition"], plan["mrargs"]["start_key"], plan["mrargs"]["end_key"])
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    assert ours["partition_v"][1]["name"] == "pv" and ours["global_t"][1]["name"] == "gt"


async def test_changes_unaffected(client, couch_client):
    """A partitioned database's changes feed is the usual one."""
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        status, feed = await call("GET", f"/{db}/_changes")
        return status, sorted(row["id"] for row in feed["results"])

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs == [200, sorted(d["_id"] for d in DOCS)]


async def _set_config(sessions, section: str, key: str, value: str | None) -> None:
    for session in sessions:
        path = f"/_node/_local/_config/{section}/{key}"
        if value is None:
            async with session.delete(path) as r:
                assert r.status in (200, 404), await r.text()
        else:
            async with session.put(path, json=value) as r:
                assert r.status == 200, await r.text()


async def test_partition_query_limit(client, couch_client):
    """`[query_server_config] partition_query_limit` caps partition queries (a larger `limit` is
    refused, none gets the cap) and leaves global queries alone; `query_limit` caps global views."""
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        await call("PUT", f"/{db}/_design/d", {"views": {"v": {"map": MAP}}})
        await call("PUT", f"/{db}/_design/g", {"options": {"partitioned": False}, "views": {"v": {"map": MAP}}})
        out = {}
        await _set_config((client, couch_client), "query_server_config", "partition_query_limit", "2")
        try:
            for name, path, q in (
                ("view_over", "_partition/a/_design/d/_view/v", {"limit": 3}),
                ("view_capped", "_partition/a/_design/d/_view/v", {}),
                ("view_at_cap", "_partition/a/_design/d/_view/v", {"limit": 2}),
                ("all_docs_over", "_partition/a/_all_docs", {"limit": 3}),
                ("all_docs_capped", "_partition/a/_all_docs", {}),
                ("global_view", "_design/g/_view/v", {"limit": 3}),
            ):
                out[name] = await call("GET", f"/{db}/{path}", **q)
        finally:
            await _set_config((client, couch_client), "query_server_config", "partition_query_limit", None)
        await _set_config((client, couch_client), "query_server_config", "query_limit", "2")
        try:
            out["global_over"] = await call("GET", f"/{db}/_design/g/_view/v", limit=3)
            out["global_capped"] = await call("GET", f"/{db}/_design/g/_view/v")
        finally:
            await _set_config((client, couch_client), "query_server_config", "query_limit", None)
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    assert ours["view_over"] == [400, {"error": "query_parse_error", "reason": "Limit is too large, must not exceed 2"}]
    assert len(ours["all_docs_capped"][1]["rows"]) == 2


async def test_partitioned_database_replicates(client, couch_client, couchdb, server):
    """A partitioned database replicates to a partitioned database, both ways between couchpy and
    CouchDB, and partition queries answer alike on the copies."""
    ours_db, theirs_db = "part-src-" + uuid.uuid4().hex[:8], "part-dst-" + uuid.uuid4().hex[:8]
    ours, theirs = caller(client), caller(couch_client)
    try:
        assert (await ours("PUT", f"/{ours_db}", partitioned="true"))[0] == 201
        assert (await theirs("PUT", f"/{theirs_db}", partitioned="true", q=1))[0] == 201
        await _fill(ours, ours_db)
        await ours("PUT", f"/{ours_db}/_design/d", {"views": {"v": {"map": MAP}}})
        # CouchDB pulls from couchpy, then couchpy pulls a CouchDB edit back
        status, body = await theirs("POST", "/_replicate", {
            "source": f"{server.url}/{ours_db}", "target": f"{couchdb.url}/{theirs_db}"})
        assert status == 200 and body["ok"], body
        status, doc = await theirs("GET", f"/{theirs_db}/b:1")
        assert (await theirs("PUT", f"/{theirs_db}/b:1", {**doc, "v": 7}))[0] == 201
        assert (await theirs("PUT", f"/{theirs_db}/d:1", {"v": 8, "t": "z"}))[0] == 201
        status, body = await ours("POST", "/_replicate", {
            "source": f"{couchdb.url}/{theirs_db}", "target": f"{server.url}/{ours_db}"})
        assert status == 200 and body["ok"], body
        for p in ("a", "b", "d"):
            path = "_partition/{p}/_design/d/_view/v"
            assert await ours("GET", f"/{ours_db}/" + path.format(p=p)) == \
                await theirs("GET", f"/{theirs_db}/" + path.format(p=p))
            mine = await ours("GET", f"/{ours_db}/_partition/{p}")
            other = await theirs("GET", f"/{theirs_db}/_partition/{p}")
            assert mine[1]["doc_count"] == other[1]["doc_count"]
        assert (await ours("GET", f"/{ours_db}/_partition/b/_design/d/_view/v"))[1]["rows"][0]["key"] == 5
    finally:
        await ours("DELETE", f"/{ours_db}")
        await theirs("DELETE", f"/{theirs_db}")


async def test_index_partitioned_option(client, couch_client):
    """An index joins an existing design document only with the same explicit `partitioned`."""
    async def scenario(call: Call, db: str):
        out = {}
        out["default"] = await call("POST", f"/{db}/_index", {"index": {"fields": ["w"]}, "ddoc": "p", "name": "x"})
        out["false_into_default"] = await call("POST", f"/{db}/_index", {
            "index": {"fields": ["w2"]}, "ddoc": "p", "name": "y", "partitioned": False})
        out["true_into_default"] = await call("POST", f"/{db}/_index", {
            "index": {"fields": ["w2"]}, "ddoc": "p", "name": "y", "partitioned": True})
        out["global"] = await call("POST", f"/{db}/_index", {
            "index": {"fields": ["w"]}, "ddoc": "g", "name": "x", "partitioned": False})
        out["default_into_global"] = await call("POST", f"/{db}/_index", {
            "index": {"fields": ["w3"]}, "ddoc": "g", "name": "z"})
        out["global_again"] = await call("POST", f"/{db}/_index", {
            "index": {"fields": ["w3"]}, "ddoc": "g", "name": "z", "partitioned": False})
        status, listing = await call("GET", f"/{db}/_index")
        out["listing"] = [(i["ddoc"], i["name"], i.get("partitioned")) for i in listing["indexes"]]
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    assert ours["true_into_default"][0] == 400
    assert ["_design/g", "z", False] in ours["listing"]


async def test_index_partitioned_value_refused(client, db):
    """A `partitioned` that is no boolean is the client's error (CouchDB answers 500)."""
    async with client.post(f"/{db}/_index", json={"index": {"fields": ["w"]}, "partitioned": "yes"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "invalid_partitioned_value"
    async with client.post(f"/{db}/_index", json={"index": {"fields": ["w"]}, "partitioned": True}) as r:
        assert r.status == 400  # not a partitioned database (CouchDB: 500 error_saving_ddoc)
        assert await r.json() == {"error": "invalid_design_doc",
                                  "reason": "partitioned option cannot be true in a non-partitioned database."}


async def test_partition_routes_need_membership(client, couch_client, anon, couchdb):
    """A partition's routes are the database's: a new database is its admins' only, so an
    anonymous client is refused on each, with CouchDB's answer."""
    answers = []
    async with aiohttp.ClientSession(base_url=couchdb.base) as couch_anon:
        for admin, nobody in ((client, anon), (couch_client, couch_anon)):
            call, anon_call = caller(admin), caller(nobody)
            db = "part-sec-" + uuid.uuid4().hex[:8]
            assert (await call("PUT", f"/{db}", partitioned="true"))[0] == 201
            try:
                answers.append([
                    await anon_call("GET", f"/{db}/_partition/a"),
                    await anon_call("GET", f"/{db}/_partition/a/_all_docs"),
                    await anon_call("POST", f"/{db}/_partition/a/_find", {"selector": {}}),
                    await anon_call("GET", f"/{db}/_partition/a/_design/d/_view/v"),
                ])
            finally:
                await call("DELETE", f"/{db}")
    ours, theirs = answers
    assert ours == theirs
    assert ours[0][0] == 401


async def test_max_partition_size(client, couch_client):
    """`[couchdb] max_partition_size`: a partition whose external size before a request is at the
    limit or above refuses the request's interactive edits that make a document larger (a
    deletion too), with a 403 or a row error; smaller or same-size edits, other partitions,
    design and local documents and replicated revisions pass, and 0, -1 or no integer set no
    limit under the default. Each server is asked with a tiny limit, set at runtime."""
    ten = "x" * 10  # {"v":"xxxxxxxxxx"}: 18 bytes

    async def scenario(session: aiohttp.ClientSession, db: str) -> dict:
        call = caller(session)

        async def limit(value: str) -> None:
            await _set_config((session,), "couchdb", "max_partition_size", value)

        async def rev(docid: str) -> str:
            return (await call("GET", f"/{db}/{docid}"))[1]["_rev"]

        async def info(partition: str):
            status, body = await call("GET", f"/{db}/_partition/{partition}")
            body["sizes"].pop("active")  # bytes on disk: each storage engine its own
            return status, body

        async def raw(method: str, path: str, data: bytes | None = None, **headers: str):
            async with session.request(method, path, data=data, headers=headers) as r:
                return r.status, await r.json(content_type=None)

        out: dict = {}
        await limit("60")
        out["fill"] = [await call("PUT", f"/{db}/a:{i}", {"v": ten}) for i in range(1, 5)]
        out["full"] = await call("PUT", f"/{db}/a:5", {"v": ten})
        out["info_full"] = await info("a")
        await limit("72")  # the size itself: still full
        out["at_limit"] = await call("PUT", f"/{db}/a:5", {"v": ten})
        await limit("73")
        out["below_limit"] = await call("PUT", f"/{db}/a:5", {"v": ten})
        rev1 = await rev("a:1")
        out["same_size"] = await call("PUT", f"/{db}/a:1", {"_rev": rev1, "v": "y" * 10})
        rev2 = out["same_size"][1]["rev"]
        out["larger"] = await call("PUT", f"/{db}/a:1", {"_rev": rev2, "v": "y" * 11})
        out["smaller"] = await call("PUT", f"/{db}/a:1", {"_rev": rev2, "v": "y" * 9})
        out["conflict"] = await call("PUT", f"/{db}/a:1", {"_rev": rev1, "v": "z" * 20})
        out["delete"] = await call("DELETE", f"/{db}/a:2", rev=await rev("a:2"))
        rev3 = await rev("a:3")
        out["delete_larger"] = await call("PUT", f"/{db}/a:3", {"_rev": rev3, "_deleted": True, "v": ten * 4})
        out["delete_same"] = await call("PUT", f"/{db}/a:3", {"_rev": rev3, "_deleted": True, "v": ten})
        out["recreate_empty"] = await call("PUT", f"/{db}/a:2", {})
        out["attachment"] = await raw("PUT", f"/{db}/a:4/att?rev={await rev('a:4')}", b"hello",
                                      **{"Content-Type": "text/plain"})
        out["copy_into"] = await raw("COPY", f"/{db}/a:4", Destination="a:44")
        out["copy_out"] = await raw("COPY", f"/{db}/a:4", Destination="b:44")
        out["post"] = await call("POST", f"/{db}", {"_id": "a:9", "v": ten})
        out["design"] = await call("PUT", f"/{db}/_design/x", {"v": ten})
        out["local"] = await call("PUT", f"/{db}/_local/x", {"v": ten})
        out["bulk"] = await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a:10"}, {"_id": "b:10"},
                                                                       {"_id": "_design/y"}]})
        out["replicated"] = await call("POST", f"/{db}/_bulk_docs", {
            "new_edits": False, "docs": [{"_id": "a:11", "_rev": "1-abc", "v": ten}]})
        out["info_after"] = await info("a")
        await limit("30")
        out["bulk_crossing"] = await call("POST", f"/{db}/_bulk_docs", {"docs": [
            {"_id": f"c:{i}", "v": ten} for i in range(1, 4)]})
        out["bulk_after"] = await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "c:4", "v": "x"}]})
        for value in ("0", "-1", "abc"):
            await limit(value)
            out[f"limit {value}"] = await call("PUT", f"/{db}/c:5{value}", {"v": 1})
        out["info_c"] = await info("c")
        return out

    results = []
    for session in (client, couch_client):
        name = "parity-" + uuid.uuid4().hex[:12]
        async with session.put(f"/{name}?q=1&partitioned=true") as r:
            assert r.status == 201
        try:
            results.append(await scenario(session, name))
        finally:
            await _set_config((session,), "couchdb", "max_partition_size", None)
            async with session.delete(f"/{name}"):
                pass
    ours, theirs = norevs(results)
    for out in (ours, theirs):
        for key in ("info_full", "info_after", "info_c"):
            out[key][1].pop("db_name")
    assert ours == theirs
    refused = [403, {"error": "partition_overflow", "reason": "Partition limit exceeded due to update on 'a:5'"}]
    assert ours["full"] == ours["at_limit"] == refused
    assert ours["below_limit"][0] == ours["smaller"][0] == ours["recreate_empty"][0] == 201
    assert [ours[k][0] for k in ("larger", "delete_larger", "attachment", "copy_into", "post")] == [403] * 5
    assert ours["conflict"][0] == 409
    assert ours["bulk"][1][0] == {"id": "a:10", "error": "partition_overflow",
                                  "reason": "Partition limit exceeded due to update on 'a:10'"}
    assert ours["bulk_after"][1][0]["error"] == "partition_overflow"
    assert all(row.get("ok") for row in ours["bulk_crossing"][1])


async def test_partition_in_query_string_of_partition_routes(client, couch_client):
    """A route below `/_partition/{p}` passes the partition on as the `partition` parameter: one
    naming another partition is refused on every such route (Nouveau's included: CouchDB refuses
    before it looks for a search service), while the partition's info takes no parameters."""
    async def scenario(call: Call, db: str):
        await _fill(call, db)
        await call("PUT", f"/{db}/_design/d", {"views": {"v": {"map": MAP}},
                                              "nouveau": {"i": {"index": "function(doc){}"}}})
        out = {}
        for name, method, path, body in (
            ("all_docs", "GET", "_all_docs", None),
            ("all_docs_post", "POST", "_all_docs", {}),
            ("find", "POST", "_find", {"selector": {}}),
            ("explain", "POST", "_explain", {"selector": {}}),
            ("view", "GET", "_design/d/_view/v", None),
            ("view_queries", "POST", "_design/d/_view/v/queries", {"queries": []}),
            ("nouveau", "GET", "_design/d/_nouveau/i", None),
            ("nouveau_post", "POST", "_design/d/_nouveau/i", {"q": "*:*"}),
            ("nouveau_info", "GET", "_design/d/_nouveau_info/i", None),
            ("other", "GET", "_other", None),
        ):
            out[name] = await call(method, f"/{db}/_partition/a/{path}", body, partition="b", q="*:*")
        out["same"] = await call("GET", f"/{db}/_partition/a/_all_docs", partition="a")
        status, info = await call("GET", f"/{db}/_partition/a", partition="b")
        info.pop("sizes")
        info.pop("db_name")
        out["info"] = (status, info)
        out["bad_partition_first"] = await call("GET", f"/{db}/_partition/_a/_design/d/_nouveau/i", partition="b")
        return out

    ours, theirs = norevs(await on_both(client, couch_client, scenario, partitioned=True))
    assert ours == theirs
    assert ours["nouveau"] == [400, {"error": "bad_request",
                                     "reason": "Conflicting value for `partition` in query string"}]
    assert ours["info"] == [200, {"partition": "a", "doc_count": 3, "doc_del_count": 0}]
