"""Design-document functions outside views: _changes filter functions, filter=_view, and
validation of design documents on save."""

from __future__ import annotations


async def _put(client, path, body):
    async with client.put(path, json=body) as r:
        return r.status, await r.json()


async def test_changes_filter_function_with_query_params(client, db):
    status, _ = await _put(client, f"/{db}/_design/app", {
        "filters": {
            "by_type": "function(doc, req) { return doc.type === req.query.type; }",
            "no_deleted": "function(doc, req) { return !doc._deleted; }",
        },
    })
    assert status == 201
    for i, t in enumerate(["a", "b", "a", "c"]):
        await _put(client, f"/{db}/d{i}", {"type": t})
    async with client.get(f"/{db}/d3") as r:
        rev = (await r.json())["_rev"]
    async with client.delete(f"/{db}/d3", params={"rev": rev}) as r:
        assert r.status == 200
    async with client.get(f"/{db}/_changes", params={"filter": "app/by_type", "type": "a"}) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert [row["id"] for row in body["results"]] == ["d0", "d2"]
    async with client.get(f"/{db}/_changes", params={"filter": "app/no_deleted", "include_docs": "true"}) as r:
        rows = (await r.json())["results"]
    ids = [row["id"] for row in rows]
    assert "d3" not in ids and {"d0", "d1", "d2", "_design/app"} <= set(ids)
    assert all("doc" in row for row in rows)
    # longpoll with a filter wakes for a matching write
    await _put(client, f"/{db}/d9", {"type": "a"})
    async with client.get(f"/{db}/_changes", params={"filter": "app/by_type", "type": "a", "feed": "longpoll",
                                                      "since": body["last_seq"]}) as r:
        assert [row["id"] for row in (await r.json())["results"]] == ["d9"]


async def test_changes_view_filter(client, db):
    await _put(client, f"/{db}/_design/v", {"views": {"odd": {"map": "function(doc) { if (doc.n % 2) emit(doc.n); }"}}})
    for n in range(6):
        await _put(client, f"/{db}/n{n}", {"n": n})
    async with client.get(f"/{db}/_changes", params={"filter": "_view", "view": "v/odd"}) as r:
        assert r.status == 200, await r.text()
        assert [row["id"] for row in (await r.json())["results"]] == ["n1", "n3", "n5"]


async def test_filter_errors(client, db):
    async with client.get(f"/{db}/_changes", params={"filter": "nope/x"}) as r:
        assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing"})
    await _put(client, f"/{db}/_design/f", {"filters": {}})
    async with client.get(f"/{db}/_changes", params={"filter": "f/missing"}) as r:
        assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing json key: missing"})
    async with client.get(f"/{db}/_changes", params={"filter": "_view"}) as r:
        assert (r.status, await r.json()) == (400, {"error": "bad_request",
                                                    "reason": "`view` filter parameter is not provided."})


async def test_design_doc_with_a_broken_map_is_refused(client, db):
    status, body = await _put(client, f"/{db}/_design/bad", {"views": {"v": {"map": "function(doc) { emit(doc.x"}}})
    assert status == 400 and body["error"] in ("compilation_error", "invalid_design_doc")
    async with client.get(f"/{db}/_design/bad") as r:
        assert r.status == 404  # nothing was stored
    status, body = await _put(client, f"/{db}/_design/bad2", {"views": "not an object"})
    assert status == 400
    status, _ = await _put(client, f"/{db}/_design/good", {"views": {"v": {"map": "function(doc) { emit(doc.x, 1); }"}}})
    assert status == 201


async def test_replication_with_a_filter_function(client, server, db):
    await _put(client, f"/{db}/_design/app", {
        "filters": {"by_type": "function(doc, req) { return doc.type === req.query.type; }"},
    })
    for i, t in enumerate(["a", "b", "a"]):
        await _put(client, f"/{db}/d{i}", {"type": t})
    for source in (db, f"{server.url}/{db}"):  # a local database, then the same over HTTP
        target = f"{db}-copy-{'http' if '://' in source else 'local'}"
        async with client.post("/_replicate", json={
            "source": source, "target": target, "create_target": True,
            "filter": "app/by_type", "query_params": {"type": "a"},
        }) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["ok"] is True
        async with client.get(f"/{target}/_all_docs") as r:
            assert [row["id"] for row in (await r.json())["rows"]] == ["d0", "d2"]
        async with client.delete(f"/{target}") as r:
            assert r.status == 200


VDU = """function(newDoc, oldDoc, userCtx, secObj) {
  if (newDoc._deleted) return;
  if (!newDoc.title) throw({forbidden: 'doc.title is required'});
  if (newDoc.secret === 'open sesame' && userCtx.name !== 'nobody') throw({unauthorized: 'not you'});
  if (oldDoc && oldDoc.locked) throw({forbidden: 'locked by ' + (secObj.owner || '?')});
  if (newDoc.who && newDoc.who !== userCtx.name) throw({forbidden: 'who must be ' + userCtx.name});
}"""


async def test_validate_doc_update_guards_writes(client, server, db):
    assert (await _put(client, f"/{db}/_design/guard", {"validate_doc_update": VDU}))[0] == 201
    async with client.put(f"/{db}/_security", json={"owner": "ops"}) as r:
        assert r.status == 200
    status, body = await _put(client, f"/{db}/a", {"x": 1})
    assert status == 403 and body == {"error": "forbidden", "reason": "doc.title is required"}
    status, body = await _put(client, f"/{db}/b", {"title": "t", "secret": "open sesame"})
    assert status == 401 and body["error"] == "unauthorized"
    status, body = await _put(client, f"/{db}/c", {"title": "t", "who": server.user})  # userCtx.name
    assert status == 201
    status, body = await _put(client, f"/{db}/d", {"title": "t", "locked": True})
    assert status == 201
    status, body = await _put(client, f"/{db}/d", {"title": "u", "_rev": body["rev"]})  # oldDoc, secObj
    assert status == 403 and body["reason"] == "locked by ops"
    async with client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": "e", "title": "ok"}, {"_id": "f"}]}) as r:
        rows = await r.json()
    assert rows[0]["ok"] is True and rows[1] == {"id": "f", "error": "forbidden", "reason": "doc.title is required"}
    # design documents are not subject to validators; deletions pass this one
    assert (await _put(client, f"/{db}/_design/other", {"views": {}}))[0] == 201
    async with client.get(f"/{db}/e") as r:
        rev = (await r.json())["_rev"]
    async with client.delete(f"/{db}/e", params={"rev": rev}) as r:
        assert r.status == 200
    # removing the validator lifts the guard
    async with client.get(f"/{db}/_design/guard") as r:
        rev = (await r.json())["_rev"]
    async with client.delete(f"/{db}/_design/guard", params={"rev": rev}) as r:
        assert r.status == 200
    assert (await _put(client, f"/{db}/a", {"x": 1}))[0] == 201


async def test_replicated_writes_refused_by_a_validator_are_counted(client, db):
    for i in range(4):
        await _put(client, f"/{db}/d{i}", {"title": "t"} if i % 2 else {"untitled": True})
    target = f"{db}-guarded"
    async with client.put(f"/{target}") as r:
        assert r.status == 201
    await _put(client, f"/{target}/_design/guard", {"validate_doc_update": VDU})
    async with client.post("/_replicate", json={"source": db, "target": target}) as r:
        assert r.status == 200, await r.text()
        history = (await r.json())["history"][0]
    assert history["docs_written"] == 2 and history["doc_write_failures"] == 2
    async with client.get(f"/{target}/_all_docs") as r:
        ids = [row["id"] for row in (await r.json())["rows"]]
    assert ids == ["_design/guard", "d1", "d3"]
    async with client.delete(f"/{target}") as r:
        assert r.status == 200


async def test_python_validate_doc_update(tmp_path):
    import pytest

    import couchpy
    from couchpy.config import Config
    from couchpy.errors import Forbidden

    config = Config(tmp_path / "couchpy.ini")
    config.set("query_servers", "python", "true")
    node = couchpy.open(tmp_path, config=config)
    try:
        db = node.create_db("py")
        await db.put({"_id": "_design/g", "language": "python", "validate_doc_update":
                      "def fun(new_doc, old_doc, user_ctx, sec_obj):\n"
                      "    if new_doc.get('n', 0) < 0:\n"
                      "        raise Exception({'forbidden': 'n must not be negative'})\n"})
        assert (await db.put({"_id": "ok", "n": 1}))["ok"] is True
        with pytest.raises(Forbidden) as exc:
            await db.put({"_id": "bad", "n": -1})
        assert exc.value.reason == "n must not be negative"
    finally:
        await node.aclose()


async def test_design_functions_that_do_not_compile_are_refused_on_save(client, db):
    cases = [
        ({"validate_doc_update": "not js at all((("}, "compilation_error"),
        ({"filters": {"bad": "function(doc { nope"}}, "compilation_error"),
        ({"filters": "not an object"}, "invalid_design_doc"),
        ({"filters": {"num": 42}}, "invalid_design_doc"),
        ({"validate_doc_update": ["x"]}, "invalid_design_doc"),
    ]
    for i, (body, error) in enumerate(cases):
        status, answer = await _put(client, f"/{db}/_design/d{i}", body)
        assert (status, answer["error"]) == (400, error), (body, answer)
    # nothing was stored, so ordinary writes are not blocked by a broken validator
    assert (await _put(client, f"/{db}/plain", {"x": 1}))[0] == 201
    async with client.get(f"/{db}/_design_docs") as r:
        assert (await r.json())["rows"] == []


async def test_replication_with_a_failing_filter_is_a_client_error(client, db):
    await _put(client, f"/{db}/_design/f", {"filters": {"throws": "function(doc, req) { throw new Error('x'); }"}})
    async with client.post("/_replicate", json={"source": db, "target": f"{db}-t", "create_target": True,
                                                "filter": "f/missing"}) as r:
        body = await r.json()
        assert r.status == 404, body
        # CouchDB 3.4.3: {"error": "not_found", "reason": "Couldn't parse filter code from document f on
        # `<source url>`  Error: {not_found,<<\"missing json key: missing\">>}"}
        assert body["error"] == "not_found", body
        assert body["reason"].startswith("Couldn't parse filter code from document f on "), body
    async with client.get(f"/{db}-t") as r:
        assert r.status == 404  # the replication never started, so create_target did not run
