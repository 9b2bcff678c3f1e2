"""Views answer as Apache CouchDB 3.4.3 does where PouchDB's own test suite looks: each scenario runs
against couchpy and the real CouchDB, and both answers are checked (CouchDB's too, so the test
shows what CouchDB does)."""

from __future__ import annotations

from typing import Any

from tests.parity import Call, on_both


async def _view(call: Call, db: str, views: dict, view: str = "v", **query: Any) -> tuple[int, Any]:
    status, body = await call("PUT", f"/{db}/_design/d", {"views": views})
    assert status == 201, body
    return await call("GET", f"/{db}/_design/d/_view/{view}", **query)


async def test_map_function_with_a_trailing_semicolon_compiles(client, couch_client):
    async def scenario(call, db):
        await call("PUT", f"/{db}/a", {"n": 1})
        src = "function (doc) { emit(doc._id, doc.n); }; \n"
        return await _view(call, db, {"v": {"map": src}})

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs == (200, {"total_rows": 1, "offset": 0, "rows": [{"id": "a", "key": "a", "value": 1}]})
    assert ours == theirs


async def test_map_functions_see_conflicts_and_deleted_conflicts(client, couch_client):
    async def scenario(call, db):
        docs = [{"_id": "x", "_rev": "1-aaa", "n": 1}, {"_id": "x", "_rev": "1-bbb", "n": 2},
                {"_id": "x", "_rev": "1-ccc", "_deleted": True}]
        await call("POST", f"/{db}/_bulk_docs", {"docs": docs, "new_edits": False})
        src = "function (doc) { emit(doc._id, [Object.keys(doc), doc._conflicts, doc._deleted_conflicts]); }"
        return await _view(call, db, {"v": {"map": src}})

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs[1]["rows"][0]["value"] == [["_id", "_rev", "n", "_conflicts", "_deleted_conflicts"],
                                             ["1-aaa"], ["1-ccc"]]
    assert ours == theirs


async def test_rows_one_document_emits_under_one_key_are_in_erlang_term_order(client, couch_client):
    async def scenario(call, db):
        await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a"}, {"_id": "b"}]})
        src = ("function (doc) { ['b', 'a', 2, 1, null, true, false, [1], {x: 1}, 'B', [0], {a: 2}, 1.5]"
               ".forEach(function (v) { emit(1, v); }); emit(0, 'crayon'); emit(0, null); }")
        full = await _view(call, db, {"v": {"map": src}})
        status, paged = await call("GET", f"/{db}/_design/d/_view/v", keys=[1, 0], skip=3, limit=12)
        return full, (status, paged["rows"])

    ours, theirs = await on_both(client, couch_client, scenario)
    values = [r["value"] for r in theirs[0][1]["rows"] if r["id"] == "a"]
    assert values == [None, "crayon", 1, 1.5, 2, False, None, True, {"a": 2}, {"x": 1}, [0], [1], "B", "a", "b"]
    assert ours == theirs


async def test_errors_thrown_by_a_reduce_function_reduce_to_null(client, couch_client):
    async def scenario(call, db):
        await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a"}, {"_id": "b"}]})
        views = {"v": {"map": "function (doc) { emit(doc._id, 1); }",
                       "reduce": "function (keys, values) { return keys[0].foo.bar; }"},
                 "w": {"map": "function (doc) { emit(doc._id, 1); }",
                       "reduce": "function (keys, values) { throw {error: 'x', reason: 'y'}; }"}}
        out = [await _view(call, db, views, "v", group=True)]
        for view in ("v", "w"):
            out.append(await call("GET", f"/{db}/_design/d/_view/{view}"))
            out.append(await call("GET", f"/{db}/_design/d/_view/{view}", reduce=False))
        return out

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs[0] == (200, {"rows": [{"key": "a", "value": None}, {"key": "b", "value": None}]})
    assert theirs[1] == theirs[3] == (200, {"rows": [{"key": None, "value": None}]})
    assert ours == theirs


async def test_include_docs_with_attachments_inlines_their_data(client, couch_client):
    async def scenario(call, db):
        doc = {"_attachments": {"t.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}, "k": 1}
        await call("PUT", f"/{db}/a", doc)
        await call("PUT", f"/{db}/b", {"k": 2})
        src = "function (doc) { emit(doc.k, null); }"
        out = [await _view(call, db, {"v": {"map": src}}, include_docs=True, attachments=True)]
        out.append(await call("POST", f"/{db}/_design/d/_view/v",
                              {"keys": [1], "include_docs": True, "attachments": True}))
        out.append(await call("GET", f"/{db}/_design/d/_view/v", include_docs=True))
        for _status, body in out:
            for row in body["rows"]:
                del row["doc"]["_rev"]
                for stub in row["doc"].get("_attachments", {}).values():
                    del stub["digest"]  # CouchDB digests what it stores (gzip for text/plain)
        return [(status, [r["doc"] for r in body["rows"]]) for status, body in out]

    ours, theirs = await on_both(client, couch_client, scenario)
    inline = theirs[0][1][0]["_attachments"]["t.txt"]
    assert inline["data"] == "aGVsbG8=" and "stub" not in inline
    assert theirs[1][1] == theirs[0][1][:1]
    assert theirs[2][1][0]["_attachments"]["t.txt"]["stub"] is True
    assert ours == theirs


async def test_revisions_win_over_a_disagreeing_rev_in_replicated_writes(client, couch_client):
    async def scenario(call, db):
        doc = {"_id": "doc", "name": "zab", "_rev": "2-y", "_revisions": {"start": 1, "ids": ["y"]}}
        bulk = await call("POST", f"/{db}/_bulk_docs", {"docs": [doc], "new_edits": False})
        put = await call("PUT", f"/{db}/doc2", {"_rev": "5-q", "_revisions": {"start": 3, "ids": ["a", "b"]}},
                         new_edits=False)
        return bulk, put, await call("GET", f"/{db}/doc", revs=True), await call("GET", f"/{db}/doc2", revs=True)

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs[1] == (201, {"ok": True, "id": "doc2", "rev": "3-a"})
    assert theirs[2][1]["_rev"] == "1-y"
    assert ours == theirs


async def test_offset_of_a_keys_query(client, couch_client):
    async def scenario(call, db):
        await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a"}, {"_id": "b"}]})
        src = "function (doc) { for (var i = 0; i < 13; i++) emit(1, i); emit(0, 1); emit(0, 2); }"
        await _view(call, db, {"v": {"map": src}})
        out = []
        for query in ({"keys": [1, 0], "skip": 3, "limit": 2}, {"keys": [5, 1], "limit": 1},
                      {"keys": [1, 0], "skip": 27, "limit": 1}, {"keys": [7]}, {"keys": [1, 0], "skip": 40},
                      {"keys": [0, 1], "skip": 5, "limit": 1}, {"keys": [1], "descending": True, "limit": 1},
                      {"keys": [0], "descending": True, "limit": 1}, {"keys": [7], "descending": True},
                      {"keys": [1, 0], "limit": 0}, {"keys": []}, {"keys": [-1]}, {"keys": [0.5]},
                      {"keys": [0.5, 0], "skip": 40}, {"keys": [7, -1]}):
            status, body = await call("GET", f"/{db}/_design/d/_view/v", **query)
            out.append((status, body["offset"], len(body["rows"])))
        return out

    ours, theirs = await on_both(client, couch_client, scenario)
    assert [offset for _, offset, _ in theirs][:5] == [7, 4, 30, 30, 30]
    assert ours == theirs
