"""Update handlers `_design/{d}/_update/{func}[/{docid}]`: the same requests to couchpy and to
Apache CouchDB 3.4.3 (fixtures `peer`/`pdb`), answered the same."""

from __future__ import annotations

import json

import pytest

from tests.parity import pdb, peer  # noqa: F401  (pytest fixtures)

UPDATES = {
    "set": "function(doc, req){ if(!doc){ if(req.id) return [{_id:req.id, n:1}, 'created'];"
           " return [null, {code:400, json:{err:'no id'}}]; }"
           " doc.n = (doc.n||0)+1; return [doc, {json:{n:doc.n, q:req.query, m:req.method, b:req.body}}]; }",
    "noid": "function(doc, req){ return [{a:1}, 'x']; }",
    "thr": "function(doc, req){ throw({forbidden:'no'}); }",
    "hdr": "function(doc, req){ return [null, {code:202, headers:{'X-My':'1', 'Content-Type':'text/plain'},"
           " body:'hi'}]; }",
    "b64": "function(doc, req){ return [null, {base64:'AAEC', headers:{'Content-Type':'application/octet-stream'}}]; }",
    "who": "function(doc, req){ return [null, {json:{id:req.id, path:req.path, name:req.userCtx.name,"
           " auth:req.headers.Authorization || null}}]; }",
    "form": "function(doc, req){ return [null, {json:{form:req.form, cookie:req.cookie}}]; }",
}


@pytest.fixture
async def udb(peer, pdb):
    async with peer.put(f"/{pdb}/_design/d", json={"updates": UPDATES}) as r:
        assert r.status == 201
    return pdb


async def _call(peer, method: str, path: str, data: bytes = b"body!"):
    async with peer.request(method, path, data=data) as r:
        return r.status, dict(r.headers), await r.read()


async def test_create_then_update_a_document(peer, udb):
    status, headers, body = await _call(peer, "POST", f"/{udb}/_design/d/_update/set/x1")
    assert (status, body) == (201, b"created")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Couch-Id"] == "x1" and headers["X-Couch-Update-NewRev"].startswith("1-")
    status, headers, body = await _call(peer, "PUT", f"/{udb}/_design/d/_update/set/x1?a=1")
    assert status == 201 and headers["Content-Type"] == "application/json"
    assert headers["X-Couch-Update-NewRev"].startswith("2-")

    assert json.loads(body) == {"n": 2, "q": {"a": "1"}, "m": "PUT", "b": "body!"}
    async with peer.get(f"/{udb}/x1") as r:
        doc = await r.json()
    assert doc["n"] == 2 and doc["_rev"] == headers["X-Couch-Update-NewRev"]


async def test_no_document_saved(peer, udb):
    status, headers, body = await _call(peer, "POST", f"/{udb}/_design/d/_update/set")
    assert (status, body) == (400, b'{"err":"no id"}\n')
    assert "X-Couch-Id" not in headers
    status, headers, body = await _call(peer, "POST", f"/{udb}/_design/d/_update/hdr")
    assert (status, headers["Content-Type"], headers["X-My"], body) == (202, "text/plain", "1", b"hi")
    status, headers, body = await _call(peer, "POST", f"/{udb}/_design/d/_update/b64")
    assert (status, headers["Content-Type"], body) == (200, "application/octet-stream", b"\x00\x01\x02")


async def test_request_object(peer, udb):

    status, _, body = await _call(peer, "POST", f"/{udb}/_design/d/_update/who/some%2Fid")
    got = json.loads(body)
    assert status == 200
    assert got == {"id": "some/id", "path": [udb, "_design", "d", "_update", "who", "some/id"], "name": "admin",
                   "auth": None}


FORM_ANSWERS = [  # as CouchDB 3.4.3 answers them; it never passes cookies to user code
    ("application/x-www-form-urlencoded", b"a=1&b=x+y&c=%2F%C3%A9&a=2&flag&=e",
     {"a": "2", "b": "x y", "c": "/\u00e9", "flag": "", "": "e"}),
    ("application/x-www-form-urlencoded; charset=utf-8", b"x=1;y=2", {"x": "1", "y": "2"}),
    ("text/plain", b"a=1", {}),
]


@pytest.mark.parametrize("content_type,data,form", FORM_ANSWERS)
async def test_form_and_cookie(peer, udb, content_type, data, form):
    headers = {"Content-Type": content_type, "Cookie": "k=v; two=2"}
    for method in ("POST", "PUT"):
        async with peer.request(method, f"/{udb}/_design/d/_update/form", data=data, headers=headers) as r:
            assert (r.status, await r.json()) == (200, {"form": form, "cookie": {}})


@pytest.mark.parametrize("method,path,status,expected", [
    ("POST", "/_design/d/_update/nope", 404, {"error": "not_found", "reason": "missing json key: nope"}),
    ("POST", "/_design/zz/_update/set", 404, {"error": "not_found", "reason": "missing"}),
    ("POST", "/_design/d/_update/noid", 400, {"error": "illegal_docid", "reason": "Document id must not be empty"}),
    ("GET", "/_design/d/_update/hdr", 405, {"error": "method_not_allowed",
                                             "reason": "Update functions do not allow GET"}),
])
async def test_errors(peer, udb, method, path, status, expected):

    got_status, _, body = await _call(peer, method, f"/{udb}{path}")
    assert (got_status, json.loads(body)) == (status, expected)


async def test_a_throw_is_a_render_error(peer, udb):

    status, _, body = await _call(peer, "POST", f"/{udb}/_design/d/_update/thr")
    assert status == 500 and json.loads(body)["error"] == "render_error"


async def test_the_function_sees_the_document_with_its_revisions(peer, pdb):
    ddoc = {"updates": {"u": "function(doc, req){ doc.n = (doc.n || 0) + 1; return [doc, toJSON(doc)]; }"}}
    async with peer.put(f"/{pdb}/_design/d", json=ddoc) as r:
        assert r.status == 201
    async with peer.put(f"/{pdb}/x", json={}) as r:
        first = (await r.json())["rev"]
    status, headers, body = await _call(peer, "POST", f"/{pdb}/_design/d/_update/u/x")
    assert status == 201
    assert json.loads(body) == {"_id": "x", "_rev": first, "n": 1,
                                "_revisions": {"start": 1, "ids": [first.split("-", 1)[1]]}}
    status, headers, body = await _call(peer, "POST", f"/{pdb}/_design/d/_update/u/x")
    assert json.loads(body)["_revisions"]["start"] == 2  # and the saved revision goes on from it
    async with peer.get(f"/{pdb}/x") as r:
        assert (await r.json())["_rev"].startswith("3-")


UNDEFINED_RESPONSE = (500, {"error": "render_error", "reason": "undefined response from update function"})


@pytest.mark.parametrize("returned, answer", [
    # couchjs reads result[0] and result[1] of whatever the function returned: a document that
    # is not an object saves nothing; a response neither a string nor an object is an error
    ('["s", "ok"]', (200, b"ok")),
    ("[[1], 'ok']", (200, b"ok")),
    ("[true, 'ok']", (200, b"ok")),
    ('"ab"', (200, b"b")),
    ("[null, 'ok', 3]", (200, b"ok")),
    ("[null, null]", UNDEFINED_RESPONSE),
    ("[null, true]", UNDEFINED_RESPONSE),
    ("[null]", UNDEFINED_RESPONSE),
    ("5", UNDEFINED_RESPONSE),
    ("{json: 1}", UNDEFINED_RESPONSE),
])
async def test_what_an_update_function_returns(peer, pdb, returned, answer):
    ddoc = {"updates": {"u": f"function(doc, req){{ return {returned}; }}"}}
    async with peer.put(f"/{pdb}/_design/d", json=ddoc) as r:
        assert r.status == 201
    status, _, body = await _call(peer, "POST", f"/{pdb}/_design/d/_update/u/x")
    assert (status, json.loads(body) if status >= 400 else body) == answer
    async with peer.get(f"/{pdb}/_all_docs") as r:
        assert [row["id"] for row in (await r.json())["rows"]] == ["_design/d"]  # nothing saved


@pytest.mark.parametrize("updates, reason", [
    (None, "missing json key: updates"),
    ({"x": "function(doc, req){ return [null, 'x']; }"}, "missing json key: u"),
    ({"u": ""}, "missing updates function u on design doc _design/d"),
])
async def test_a_missing_update_function(peer, pdb, updates, reason):
    async with peer.put(f"/{pdb}/_design/d", json={} if updates is None else {"updates": updates}) as r:
        assert r.status == 201
    status, _, body = await _call(peer, "POST", f"/{pdb}/_design/d/_update/u/x")
    assert (status, json.loads(body)) == (404, {"error": "not_found", "reason": reason})


async def test_an_integer_beyond_64_bits_reaches_every_function_as_a_double(peer, pdb):
    """A `_security` object (or a body, or `views.lib`) may hold an integer beyond 64 bits; every
    JavaScript function it reaches reads the nearest double, as in CouchDB, rather than every
    update function and every validated write of the database failing with 500."""
    big = 99999999999999999999999
    ddoc = {"updates": {"u": "function(doc, req){ return [null, toJSON([req.secObj.x, JSON.parse(req.body).y])]; }"},
            "validate_doc_update": "function(n, o, u, s){ if (n.x && s.x !== n.x) throw({forbidden: '' + s.x}); }",
            "views": {"lib": {"n": f"exports.n = {big};", "big": big},
                      "v": {"map": "function(d){ if (d.x) emit(d.x, require('views/lib/n').n); }"}}}
    async with peer.put(f"/{pdb}/_design/d", data=json.dumps(ddoc)) as r:
        assert r.status == 201, await r.text()
    async with peer.put(f"/{pdb}/_security", data=json.dumps({"x": big})) as r:
        assert r.status == 200
    status, _, body = await _call(peer, "POST", f"/{pdb}/_design/d/_update/u", json.dumps({"y": big}).encode())
    assert (status, json.loads(body)) == (200, [1e23, 1e23])
    async with peer.put(f"/{pdb}/d1", json={"x": 1}) as r:
        assert (r.status, await r.json()) == (403, {"error": "forbidden", "reason": "1e+23"})
    async with peer.put(f"/{pdb}/d2", data=json.dumps({"x": big})) as r:
        assert r.status == 201, await r.text()
    async with peer.get(f"/{pdb}/_design/d/_view/v") as r:
        assert [(row["key"], row["value"]) for row in (await r.json())["rows"]] == [(1e23, 1e23)]


async def test_python_update_handler_only_when_enabled(new_server):
    import aiohttp

    src = "def fun(doc, req):\n    return {'_id': req['id'], 'body': req['body']}, {'json': {'ok': 1}}\n"
    for enabled, expected in (("true", 201), ("false", 400)):
        srv = new_server(name=f"py{enabled}", config={"query_servers": {"python": enabled}})
        async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:
            async with c.put("/p") as r:
                assert r.status == 201
            async with c.put("/p/_design/d", json={"language": "python", "updates": {"u": src}}) as r:
                assert r.status == 201
            async with c.post("/p/_design/d/_update/u/doc1", data=b"hello") as r:
                assert r.status == expected, await r.text()
            if expected == 201:
                async with c.get("/p/doc1") as r:
                    assert (await r.json())["body"] == "hello"


@pytest.mark.parametrize("language", ["JavaScript", "JAVASCRIPT"])
async def test_a_language_named_in_other_capitals_runs(peer, pdb, language):
    """CouchDB finds a query server by its language's name in any case (couchpy/query_language.py)."""
    ddoc = {"language": language,
            "updates": {"u": "function(doc, req){ return [null, 'up']; }"},
            "filters": {"f": "function(doc, req){ return doc.keep === true; }"},
            "validate_doc_update": "function(n, o, u, s){ if (n.bad) throw({forbidden: 'bad'}); }",
            "views": {"v": {"map": "function(d){ if (d.keep !== undefined) emit(d._id, d.keep); }"}}}
    async with peer.put(f"/{pdb}/_design/d", json=ddoc) as r:
        assert r.status == 201
    for docid, keep in (("a", True), ("b", False)):
        async with peer.put(f"/{pdb}/{docid}", json={"keep": keep}) as r:
            assert r.status == 201
    async with peer.put(f"/{pdb}/c", json={"bad": True}) as r:
        assert (r.status, await r.json()) == (403, {"error": "forbidden", "reason": "bad"})
    assert (await _call(peer, "POST", f"/{pdb}/_design/d/_update/u"))[::2] == (200, b"up")
    async with peer.get(f"/{pdb}/_design/d/_view/v") as r:
        assert [(row["key"], row["value"]) for row in (await r.json())["rows"]] == [("a", True), ("b", False)]
    async with peer.get(f"/{pdb}/_changes", params={"filter": "d/f"}) as r:
        assert [row["id"] for row in (await r.json())["results"]] == ["a"]
