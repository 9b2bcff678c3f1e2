"""The Nouveau HTTP API on a real couchpy server: GET/POST searches and their response shape,
include_docs, bookmarks, facets, `_nouveau_info`, errors, security, `_view_cleanup`, a restart,
and a SIGKILL in the middle of building an index."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from tests.test_access_http import adb, call  # noqa: F401  (adb is a fixture)

INDEX = """function(doc){
  if (typeof doc.title == 'string') { index('text','default',doc.title); index('text','title',doc.title,{store:true}); }
  if (typeof doc.kind == 'string') index('string','kind',doc.kind,{store:true});
  if (typeof doc.price == 'number') index('double','price',doc.price);
}"""
DDOC = {"nouveau": {"idx": {"index": INDEX}}}
DOCS = [
    {"_id": "a", "title": "The quick brown fox", "kind": "animal", "price": 3.5},
    {"_id": "b", "title": "Lazy dogs sleep", "kind": "animal", "price": 10},
    {"_id": "c", "title": "A red car", "kind": "thing", "price": 100},
]
S = "/_design/s/_nouveau/idx"


async def _fill(client, db, docs=DOCS):
    async with client.put(f"/{db}/_design/s", json=DDOC) as r:
        assert r.status == 201, await r.text()
    async with client.post(f"/{db}/_bulk_docs", json={"docs": docs}) as r:
        assert r.status == 201


async def test_get_and_post_searches(client, db):
    await _fill(client, db)
    async with client.get(f"/{db}{S}", params={"q": "fox OR car", "include_docs": "true",
                                                "counts": '["kind"]', "sort": '"-price<double>"'}) as r:
        assert r.status == 200
        body = await r.json()
    assert set(body) == {"total_hits", "total_hits_relation", "hits", "bookmark", "counts", "ranges"}
    assert body["total_hits"] == 2 and body["total_hits_relation"] == "EQUAL_TO"
    assert [h["id"] for h in body["hits"]] == ["c", "a"]
    assert body["hits"][0]["doc"]["title"] == "A red car" and body["hits"][0]["doc"]["_rev"].startswith("1-")
    assert body["hits"][0]["fields"] == {"title": "A red car", "kind": "thing"}
    assert body["hits"][0]["order"] == [{"@type": "double", "value": 100.0}, {"@type": "string", "value": "c"}]
    assert body["counts"] == {"kind": {"animal": 1, "thing": 1}} and body["ranges"] is None
    post = {"q": "*:*", "limit": 2, "sort": "price", "ranges": {"price": [{"label": "low", "min": 0, "max": 10}]}}
    async with client.post(f"/{db}{S}", json=post) as r:
        assert r.status == 200
        page1 = await r.json()
    assert [h["id"] for h in page1["hits"]] == ["a", "b"] and "doc" not in page1["hits"][0]
    assert page1["ranges"] == {"price": {"low": 2}} and page1["counts"] is None
    async with client.post(f"/{db}{S}", json={**post, "bookmark": page1["bookmark"]}) as r:
        page2 = await r.json()
    assert [h["id"] for h in page2["hits"]] == ["c"]
    async with client.post(f"/{db}{S}", json={**post, "bookmark": page2["bookmark"]}) as r:
        page3 = await r.json()
    assert page3["hits"] == [] and page3["bookmark"] == page2["bookmark"]
    async with client.get(f"/{db}/_design/s/_nouveau_info/idx") as r:
        assert r.status == 200
        info = await r.json()
    assert info["name"] == "_design/s/idx"
    assert info["search_index"]["num_docs"] == 3 and info["search_index"]["update_seq"] == 4
    assert info["search_index"]["disk_size"] > 0


async def test_errors(client, db):
    await _fill(client, db)
    cases = [
        ("/_design/s/_nouveau/nope", {"q": "x"}, 404, "not_found"),
        ("/_design/missing/_nouveau/idx", {"q": "x"}, 404, "not_found"),
        (S, {}, 400, "query_parse_error"),
        (S, {"q": "fox AND"}, 400, "query_parse_error"),
        (S, {"q": "price:abc"}, 400, "query_parse_error"),
        (S, {"q": "x", "limit": "-1"}, 400, "query_parse_error"),
        (S, {"q": "x", "sort": "not json"}, 400, "query_parse_error"),
        (S, {"q": "x", "bookmark": "%%%"}, 400, "query_parse_error"),
        ("/_design/s/_nouveau_info/nope", {}, 404, "not_found"),
    ]
    for path, q, status, error in cases:
        async with client.get(f"/{db}{path}", params=q) as r:
            body = await r.json()
            assert (r.status, body["error"]) == (status, error), (path, q, body)
            assert isinstance(body["reason"], str)
    async with client.delete(f"/{db}{S}") as r:
        assert r.status == 405
    async with client.post(f"/{db}{S}", data="q=x", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
    async with client.post(f"/{db}{S}", json=["q"]) as r:
        assert r.status == 400
    async with client.put(f"/{db}/_design/bad", json={"nouveau": {"i": {"index": "function(doc) {"}}}) as r:
        assert r.status == 400 and (await r.json())["error"] == "compilation_error"
    async with client.put(f"/{db}/_design/bad", json={"nouveau": {"i": {"index": 1}}}) as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid_design_doc"


async def test_readers_only(client, anon, db):
    await _fill(client, db)
    async with anon.get(f"/{db}{S}", params={"q": "fox"}) as r:
        assert r.status == 401
    async with anon.post(f"/{db}{S}", json={"q": "fox"}) as r:
        assert r.status == 401
    async with anon.get(f"/{db}/_design/s/_nouveau_info/idx") as r:
        assert r.status == 401
    async with client.put(f"/{db}/_security", json={"members": {"names": [], "roles": []}}) as r:
        assert r.status == 200
    async with anon.post(f"/{db}{S}", json={"q": "fox"}) as r:  # a public database: readable
        assert r.status == 200 and [h["id"] for h in (await r.json())["hits"]] == ["a"]


async def test_cleanup_and_database_deletion(client, server, db):
    await _fill(client, db)
    async with client.get(f"/{db}{S}", params={"q": "fox"}) as r:
        assert r.status == 200
    root = next(p for p in (server.data_dir / "dbs").iterdir() if p.name.startswith(db + ".")) / "nouveau"
    assert len(list(root.iterdir())) == 1
    async with client.get(f"/{db}/_design/s") as r:
        rev = (await r.json())["_rev"]
    async with client.delete(f"/{db}/_design/s", params={"rev": rev}) as r:
        assert r.status == 200
    async with client.post(f"/{db}/_view_cleanup", json={}) as r:
        assert r.status == 202
    assert list(root.iterdir()) == []
    await _fill(client, db, [])
    async with client.get(f"/{db}{S}", params={"q": "fox"}) as r:
        assert r.status == 200
    async with client.delete(f"/{db}") as r:
        assert r.status == 200
    assert not root.exists()


async def test_nouveau_cleanup_alone(client, anon, server, db):
    """`POST /{db}/_nouveau_cleanup` (CouchDB 3.4's nouveau_httpd): 202 for a db admin, JSON only."""
    await _fill(client, db)
    async with client.get(f"/{db}{S}", params={"q": "fox"}) as r:
        assert r.status == 200
    root = next(p for p in (server.data_dir / "dbs").iterdir() if p.name.startswith(db + ".")) / "nouveau"
    async with client.get(f"/{db}/_design/s") as r:
        rev = (await r.json())["_rev"]
    async with client.put(f"/{db}/_design/s", json={"_rev": rev, "nouveau": {"other": {"index": INDEX + " "}}}) as r:
        assert r.status == 201
    async with client.put(f"/{db}/_security", json={"members": {"names": [], "roles": []}}) as r:
        assert r.status == 200  # a public database: anyone reads and writes, only admins clean up
    async with anon.post(f"/{db}/_nouveau_cleanup", json={}) as r:
        assert r.status == 401 and (await r.json())["reason"] == "You are not a server or db admin."
    async with client.post(f"/{db}/_nouveau_cleanup", data="{}", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
    assert len(list(root.iterdir())) == 1  # refused requests removed nothing
    async with client.post(f"/{db}/_nouveau_cleanup", json={}) as r:
        assert r.status == 202 and await r.json() == {"ok": True}
    assert list(root.iterdir()) == []
    async with client.get(f"/{db}/_nouveau_cleanup") as r:
        assert r.status == 405


async def test_nouveau_analyze(client, anon):
    """`POST /_nouveau_analyze`: the tokens of a text, as CouchDB's own test asks
    (`{"analyzer": "standard", "text": "hello there"}` -> `["hello", "there"]`)."""
    cases = [("standard", "hello there", ["hello", "there"]),
             ("english", "Running shoes", ["run", "shoe"]),
             ("keyword", "ablanks@renovations.com", ["ablanks@renovations.com"]),
             ("whitespace", "Keep Case here", ["Keep", "Case", "here"])]
    for analyzer, text, tokens in cases:
        async with anon.post("/_nouveau_analyze", json={"analyzer": analyzer, "text": text}) as r:
            assert r.status == 200, await r.text()
            assert await r.json() == {"tokens": tokens}, analyzer
    for body in ({"analyzer": "nope", "text": "x"}, {"text": "x"}, {"analyzer": "standard"},
                 {"analyzer": "standard", "text": 5}, ["standard"]):
        async with client.post("/_nouveau_analyze", json=body) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_request", body
    async with client.post("/_nouveau_analyze", data='{"analyzer":"standard","text":"x"}',
                           headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
    async with client.get("/_nouveau_analyze") as r:
        assert r.status == 405


async def test_restart_and_sigkill_mid_build(new_server):
    """Killed while building: after a restart the index is at its last commit (or rebuilt) and
    catches up; its answers equal a scan of the documents."""
    srv = new_server()
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta"]
    docs = [{"_id": f"d{i:05}", "title": " ".join(rng.choice(words) for _ in range(3))} for i in range(12000)]
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:
        async with c.put("/k") as r:
            assert r.status == 201
        for i in range(0, len(docs), 2000):
            async with c.post("/k/_bulk_docs", json={"docs": docs[i:i + 2000]}) as r:
                assert r.status == 201
        async with c.put("/k/_design/s", json=DDOC) as r:
            assert r.status == 201
        search = asyncio.ensure_future(c.get("/k" + S, params={"q": "alpha"}, timeout=aiohttp.ClientTimeout(total=120)))
        # kill once the build has committed part of the documents (COMMIT_EVERY) and not all
        killed_at = None
        for _ in range(3000):
            async with c.get("/k/_design/s/_nouveau_info/idx") as r:
                seq = (await r.json())["search_index"]["update_seq"]
            if 0 < seq < len(docs):
                srv.kill()
                killed_at = seq
                break
            if seq > len(docs) or search.done():
                break
            await asyncio.sleep(0.01)
        srv.kill()
        try:
            await search
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
    srv.start()
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:
        async with c.get("/k/_design/s/_nouveau_info/idx") as r:
            before = (await r.json())["search_index"]
        for w in words:
            async with c.get("/k" + S, params={"q": w, "limit": "1"}) as r:
                body = await r.json()
            assert body["total_hits"] == sum(w in d["title"].split() for d in docs), (w, before)
        async with c.get("/k/_design/s/_nouveau_info/idx") as r:
            info = (await r.json())["search_index"]
        assert info["num_docs"] == len(docs) and info["update_seq"] == len(docs) + 1
        assert killed_at is not None, "the build ended before it could be killed half-way"
        assert before["update_seq"] >= killed_at  # restarted at its last commit, then caught up
        # an edit after the restart is picked up incrementally
        async with c.put("/k/zz", json={"title": "omega"}) as r:
            assert r.status == 201
        async with c.get("/k" + S, params={"q": "omega"}) as r:
            assert [h["id"] for h in (await r.json())["hits"]] == ["zz"]
    srv.stop()
    srv.start()
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as c:
        async with c.get("/k" + S, params={"q": "omega", "update": "false"}) as r:
            assert [h["id"] for h in (await r.json())["hits"]] == ["zz"]


async def test_access_database_searches_only_for_unrestricted_readers(server, client, anon, adb):
    """In an access database (`?access=true`) a search would list documents whatever their
    `_access`: plain members are refused (403); db admins and server admins search everything."""
    name, cast = adb
    ft = {"nouveau": {"i": {"index": "function(doc){ if (typeof doc.k == 'number') index('double','k',doc.k); }"}}}
    st, body = await call(client, "PUT", f"/{name}/_design/ft", json=ft)
    assert st == 201, body
    for who in (cast.alice, cast.bob, cast.carol):
        for method, kw in (("GET", {"params": {"q": "*:*"}}), ("POST", {"json": {"q": "*:*"}})):
            st, body = await call(anon, method, f"/{name}/_design/ft/_nouveau/i", headers=cast.headers(who), **kw)
            assert st == 403, (who, method, body)
        st, body = await call(anon, "GET", f"/{name}/_design/ft/_nouveau_info/i", headers=cast.headers(who))
        assert st == 403, (who, body)
    for who in (cast.dave, "admin"):
        st, body = await call(anon, "GET", f"/{name}/_design/ft/_nouveau/i", headers=cast.headers(who),
                              params={"q": "*:*", "sort": '"k"'})
        assert st == 200, body
        assert [h["id"] for h in body["hits"]] == ["a1", "b1", "t1", "ab", "n1"]
