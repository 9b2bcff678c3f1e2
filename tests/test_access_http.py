"""Per-document access over HTTP: every route that reads or writes documents of an access
database, asked by each kind of principal, returns exactly the documents `_access` lets them see
(docs/security.md, "Per-document access")."""

from __future__ import annotations

import base64
import json
import uuid

import aiohttp
import pytest


def basic(user: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw-{user}".encode()).decode()}


async def call(session, method, path, headers=None, **kw):
    async with session.request(method, path, headers=headers, **kw) as r:
        raw = await r.read()
        if r.content_type == "application/json" and raw.strip():
            if b"\n{" in raw.strip():  # a continuous feed: one JSON object per line
                return r.status, [json.loads(line) for line in raw.splitlines() if line.strip()]
            return r.status, json.loads(raw)
        return r.status, raw


class Cast:
    """Users of one test: alice and bob (plain members), carol (a member by role `team`), dave (a
    db admin by name) and the server admin."""

    def __init__(self, server, tag: str):
        self.server, self.tag = server, tag
        self.alice, self.bob, self.carol, self.dave = (f"{n}{tag}" for n in ("alice", "bob", "carol", "dave"))
        self.team = "team" + tag

    def headers(self, who: str | None) -> dict | None:
        if who == "admin":
            return basic_admin(self.server)
        return basic(who) if who else None


def basic_admin(server) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{server.auth.login}:{server.auth.password}".encode()).decode()}


@pytest.fixture
async def adb(server, client, anon):
    """An access database holding: a1 (alice's), b1 (bob's), t1 (role team's), ab (alice's and
    bob's), n1 (no _access: db admins only), _design/app (no _access: every member), _design/hid
    (`_access` bob), a deleted document of alice's (ad) and one of bob's (bd)."""
    tag = uuid.uuid4().hex[:6]
    cast = Cast(server, tag)
    for name, roles in ((cast.alice, []), (cast.bob, []), (cast.carol, [cast.team]), (cast.dave, [])):
        doc = {"name": name, "password": "pw-" + name, "roles": roles, "type": "user"}
        st, body = await call(client, "PUT", f"/_users/org.couchdb.user:{name}", json=doc)
        assert st == 201, body
    name = "acc-" + tag
    st, body = await call(client, "PUT", f"/{name}?access=true")
    assert st == 201, body
    sec = {"members": {"names": [cast.alice, cast.bob], "roles": [cast.team]}, "admins": {"names": [cast.dave]}}
    assert (await call(client, "PUT", f"/{name}/_security", json=sec))[0] == 200
    map_fn = "function(doc){ emit(doc.k, doc.k); }"
    docs = [
        {"_id": "a1", "k": 1, "_access": [cast.alice]},
        {"_id": "b1", "k": 2, "_access": [cast.bob]},
        {"_id": "t1", "k": 3, "_access": [cast.team]},
        {"_id": "ab", "k": 4, "_access": [cast.alice, cast.bob]},
        {"_id": "n1", "k": 5},
        {"_id": "ad", "k": 6, "_access": [cast.alice]},
        {"_id": "bd", "k": 7, "_access": [cast.bob]},
        {"_id": "_design/app", "views": {"v": {"map": map_fn}, "r": {"map": map_fn, "reduce": "_count"}}},
        {"_id": "_design/hid", "_access": [cast.bob], "views": {"v": {"map": map_fn}}},
    ]
    st, res = await call(client, "POST", f"/{name}/_bulk_docs", json={"docs": docs})
    assert st == 201 and all("ok" in r for r in res), res
    revs = {r["id"]: r["rev"] for r in res}
    for d in ("ad", "bd"):
        assert (await call(client, "DELETE", f"/{name}/{d}?rev={revs[d]}"))[0] == 200
    st, _ = await call(client, "PUT", f"/{name}/a1/f.txt?rev={revs['a1']}", data=b"hello",
                       headers={"Content-Type": "text/plain"})
    assert st == 201
    st, _ = await call(client, "PUT", f"/{name}/b1/f.txt?rev={revs['b1']}", data=b"secret",
                       headers={"Content-Type": "text/plain"})
    assert st == 201
    yield name, cast
    await call(client, "DELETE", f"/{name}")


# what each principal sees: live documents (ids) and deleted ones
def seen(cast: Cast, who: str) -> tuple[set[str], set[str]]:
    everything = ({"a1", "b1", "t1", "ab", "n1", "_design/app", "_design/hid"}, {"ad", "bd"})
    return {
        cast.alice: ({"a1", "ab", "_design/app"}, {"ad"}),
        cast.bob: ({"b1", "ab", "_design/app", "_design/hid"}, {"bd"}),
        cast.carol: ({"t1", "_design/app"}, set()),
        cast.dave: everything,
        "admin": everything,
    }[who]


PRINCIPALS = ["alice", "bob", "carol", "dave", "admin"]


def who_of(cast: Cast, p: str) -> str:
    return p if p == "admin" else getattr(cast, p)


@pytest.mark.parametrize("p", PRINCIPALS)
async def test_listings_show_exactly_the_visible_documents(adb, anon, p):
    name, cast = adb
    who = who_of(cast, p)
    h = cast.headers(who)
    live, deleted = seen(cast, who)
    every = {"a1", "b1", "t1", "ab", "n1", "_design/app", "_design/hid", "ad", "bd"}

    st, body = await call(anon, "GET", f"/{name}/_all_docs", headers=h)
    assert st == 200
    assert {r["id"] for r in body["rows"]} == live
    assert body["total_rows"] == len(live) and body["offset"] == 0

    st, body = await call(anon, "GET", f"/{name}/_all_docs?include_docs=true&skip=1&limit=1", headers=h)
    assert [r["id"] for r in body["rows"]] == sorted(live)[1:2] and body["offset"] == 1
    assert all(r["doc"]["_id"] == r["id"] for r in body["rows"])

    st, body = await call(anon, "GET", f"/{name}/_all_docs?startkey=%22b%22", headers=h)
    assert [r["id"] for r in body["rows"]] == sorted(i for i in live if i >= "b")
    assert body["offset"] == sum(1 for i in live if i < "b")

    st, body = await call(anon, "POST", f"/{name}/_all_docs", headers=h, json={"keys": sorted(every)})
    for row in body["rows"]:
        if row["key"] in live:
            assert row["id"] == row["key"] and "error" not in row
        elif row["key"] in deleted:
            assert row["value"]["deleted"] is True
        else:
            assert row == {"key": row["key"], "error": "not_found"}

    st, body = await call(anon, "GET", f"/{name}/_design_docs", headers=h)
    assert {r["id"] for r in body["rows"]} == {i for i in live if i.startswith("_design/")}

    for feed in ("normal", "longpoll", "continuous"):
        st, body = await call(anon, "GET", f"/{name}/_changes?feed={feed}&timeout=50&include_docs=true", headers=h)
        assert st == 200, (feed, body)
        rows = body["results"] if isinstance(body, dict) else [r for r in body if "id" in r]
        assert {r["id"] for r in rows} == live | deleted, feed
        assert all(r["doc"]["_id"] == r["id"] for r in rows)
    st, body = await call(anon, "POST", f"/{name}/_changes?filter=_doc_ids", headers=h,
                          json={"doc_ids": sorted(every)})
    assert {r["id"] for r in body["results"]} == live | deleted
    st, body = await call(anon, "POST", f"/{name}/_changes?filter=_selector", headers=h,
                          json={"selector": {"k": {"$gt": 0}}})
    assert {r["id"] for r in body["results"]} == {i for i in live if not i.startswith("_design/")}

    st, body = await call(anon, "POST", f"/{name}/_find", headers=h, json={"selector": {"k": {"$gt": 0}}})
    assert st == 200 and {d["_id"] for d in body["docs"]} == {i for i in live if not i.startswith("_design/")}

    st, body = await call(anon, "POST", f"/{name}/_bulk_get", headers=h, json={"docs": [{"id": i} for i in sorted(every)]})
    for res in body["results"]:
        got = res["docs"][0]
        if res["id"] in live | deleted:
            assert "ok" in got, res
        else:
            assert got == {"error": {"id": res["id"], "rev": "undefined", "error": "not_found", "reason": "missing"}}

    st, body = await call(anon, "POST", f"/{name}/_revs_diff", headers=h, json={"b1": ["9-x"], "a1": ["9-x"]})
    assert st == 200 and set(body) == {"a1", "b1"}
    # a document the reader does not see has no revision they could be told about
    assert ("possible_ancestors" in body["b1"]) == ("b1" in live)
    assert ("possible_ancestors" in body["a1"]) == ("a1" in live)
    revs = {d: (await call(anon, "GET", f"/{name}/{d}", headers=basic_admin(cast.server)))[1]["_rev"]
            for d in ("a1", "b1")}
    st, body = await call(anon, "POST", f"/{name}/_missing_revs", headers=h, json={d: [r] for d, r in revs.items()})
    assert st == 200 and body == {"missing_revs": {d: [r] for d, r in revs.items() if d not in live}}


@pytest.mark.parametrize("p", PRINCIPALS)
async def test_views_show_rows_of_visible_documents_only(adb, anon, p):
    name, cast = adb
    who = who_of(cast, p)
    h = cast.headers(who)
    live, _ = seen(cast, who)
    docs = {i for i in live if not i.startswith("_design/")}
    st, body = await call(anon, "GET", f"/{name}/_design/app/_view/v?include_docs=true", headers=h)
    assert st == 200, body
    assert {r["id"] for r in body["rows"]} == docs and body["total_rows"] == len(docs)
    st, body = await call(anon, "GET", f"/{name}/_design/app/_view/v?skip=1&limit=1", headers=h)
    assert [r["id"] for r in body["rows"]] == sorted(docs, key=lambda i: ["a1", "b1", "t1", "ab", "n1"].index(i))[1:2]
    assert body["offset"] == 1
    st, body = await call(anon, "POST", f"/{name}/_design/app/_view/v", headers=h, json={"keys": [1, 2, 3, 4, 5]})
    assert {r["id"] for r in body["rows"]} == docs
    st, body = await call(anon, "POST", f"/{name}/_design/app/_view/v/queries", headers=h,
                          json={"queries": [{"keys": [1, 2]}, {"startkey": 3, "include_docs": True}]})
    assert st == 200
    assert {r["id"] for r in body["results"][0]["rows"]} == docs & {"a1", "b1"}
    assert {r["id"] for r in body["results"][1]["rows"]} == docs & {"t1", "ab", "n1"}
    assert all(r["doc"]["_id"] == r["id"] for r in body["results"][1]["rows"])
    st, body = await call(anon, "GET", f"/{name}/_design/app/_view/r", headers=h)
    if p in ("dave", "admin"):
        assert st == 200 and body["rows"][0]["value"] == 5
    else:
        assert st == 403 and body["error"] == "forbidden"
    st, body = await call(anon, "GET", f"/{name}/_design/app/_view/r?reduce=false", headers=h)
    assert st == 200 and {r["id"] for r in body["rows"]} == docs
    st, body = await call(anon, "GET", f"/{name}/_design/hid/_view/v", headers=h)
    assert st == (200 if "_design/hid" in live else 404), body


@pytest.mark.parametrize("p", PRINCIPALS)
async def test_single_documents_and_attachments(adb, anon, p):
    name, cast = adb
    who = who_of(cast, p)
    h = cast.headers(who)
    live, deleted = seen(cast, who)
    for docid in ("a1", "b1", "t1", "ab", "n1", "_design/app", "_design/hid"):
        st, body = await call(anon, "GET", f"/{name}/{docid}", headers=h)
        if docid in live:
            assert st == 200 and body["_id"] == docid
        else:
            assert (st, body) == (404, {"error": "not_found", "reason": "missing"}), docid
        st, _ = await call(anon, "HEAD", f"/{name}/{docid}", headers=h)
        assert st == (200 if docid in live else 404)
        st, _ = await call(anon, "GET", f"/{name}/{docid}?open_revs=all", headers={**h, "Accept": "application/json"})
        assert st == (200 if docid in live else 404), docid
    for docid, data in (("a1", b"hello"), ("b1", b"secret")):
        st, body = await call(anon, "GET", f"/{name}/{docid}/f.txt", headers=h)
        assert (st, body) == ((200, data) if docid in live else (404, {"error": "not_found", "reason": "missing"}))
    # COPY of a document one does not see is a 404; of one's own, a copy one sees
    st, body = await call(anon, "COPY", f"/{name}/b1", headers={**h, "Destination": "copy-b1"})
    assert st == (201 if "b1" in live else 404), body
    st, body = await call(anon, "GET", f"/{name}/copy-b1", headers=h)
    assert st == (200 if "b1" in live else 404)


async def test_writes(adb, anon, client):
    name, cast = adb
    ha, hb, hc = cast.headers(cast.alice), cast.headers(cast.bob), cast.headers(cast.carol)
    # a new document without _access is alice's
    st, body = await call(anon, "PUT", f"/{name}/new-a", headers=ha, json={"x": 1})
    assert st == 201, body
    st, doc = await call(anon, "GET", f"/{name}/new-a", headers=ha)
    assert doc["_access"] == [cast.alice]
    assert (await call(anon, "GET", f"/{name}/new-a", headers=hb))[0] == 404
    # _access not listing the writer, malformed, or naming only others: refused
    st, body = await call(anon, "PUT", f"/{name}/new-b", headers=ha, json={"_access": [cast.bob]})
    assert (st, body["error"]) == (403, "forbidden")
    st, body = await call(anon, "PUT", f"/{name}/new-c", headers=ha, json={"_access": "alice"})
    assert (st, body["error"]) == (400, "bad_request")
    # a role of the writer will do; so will a list shared with someone else
    assert (await call(anon, "PUT", f"/{name}/new-t", headers=hc, json={"_access": [cast.team]}))[0] == 201
    assert (await call(anon, "PUT", f"/{name}/new-ab", headers=ha, json={"_access": [cast.alice, cast.bob]}))[0] == 201
    assert (await call(anon, "GET", f"/{name}/new-ab", headers=hb))[0] == 200
    # bob may not change or delete alice's document, nor take a1's id
    rev = (await call(client, "GET", f"/{name}/a1"))[1]["_rev"]
    st, body = await call(anon, "PUT", f"/{name}/a1", headers=hb, json={"_rev": rev, "_access": [cast.bob]})
    assert (st, body["error"]) == (403, "forbidden")
    st, body = await call(anon, "DELETE", f"/{name}/a1?rev={rev}", headers=hb)
    assert (st, body["error"]) == (403, "forbidden")
    st, body = await call(anon, "PUT", f"/{name}/a1/evil.txt?rev={rev}", headers={**hb, "Content-Type": "text/plain"},
                          data=b"x")
    assert (st, body["error"]) == (403, "forbidden")
    st, res = await call(anon, "POST", f"/{name}/_bulk_docs", headers=hb,
                         json={"docs": [{"_id": "a1", "_rev": rev}, {"_id": "bulk-b"}]})
    assert st == 201 and res[0]["error"] == "forbidden" and "ok" in res[1]
    # replicated writes (new_edits=false) obey the same rules
    st, res = await call(anon, "POST", f"/{name}/_bulk_docs", headers=hb, json={"new_edits": False, "docs": [
        {"_id": "a1", "_rev": "9-abc", "_access": [cast.bob]},
        {"_id": "rep-b", "_rev": "1-abc", "_access": [cast.bob]},
    ]})
    assert st == 201 and len(res) == 1 and res[0]["id"] == "a1" and res[0]["error"] == "forbidden", res
    assert (await call(anon, "GET", f"/{name}/rep-b", headers=hb))[0] == 200
    # alice may not take herself out, but may delete; the deletion keeps _access
    st, body = await call(anon, "PUT", f"/{name}/a1", headers=ha, json={"_rev": rev, "_access": [cast.bob]})
    assert (st, body["error"]) == (403, "forbidden")
    st, body = await call(anon, "PUT", f"/{name}/a1", headers=ha, json={"_rev": rev, "k": 10})
    assert st == 201, body
    st, body = await call(anon, "DELETE", f"/{name}/a1?rev={body['rev']}", headers=ha)
    assert st == 200
    st, body = await call(anon, "GET", f"/{name}/_changes?doc_ids=%5B%22a1%22%5D&filter=_doc_ids", headers=ha)
    assert [r["id"] for r in body["results"]] == ["a1"] and body["results"][0]["deleted"] is True
    st, body = await call(anon, "GET", f"/{name}/_changes?doc_ids=%5B%22a1%22%5D&filter=_doc_ids", headers=hb)
    assert body["results"] == []
    # design documents stay with db admins
    st, body = await call(anon, "PUT", f"/{name}/_design/mine", headers=ha, json={"_access": [cast.alice]})
    assert st == 403
    # anonymous may not write (the database has members: it is not even let in)
    assert (await call(anon, "PUT", f"/{name}/anon", json={"x": 1}))[0] == 401
    # dave (db admin) writes anything, with any _access or none
    hd = cast.headers(cast.dave)
    assert (await call(anon, "PUT", f"/{name}/for-bob", headers=hd, json={"_access": [cast.bob]}))[0] == 201
    assert (await call(anon, "GET", f"/{name}/for-bob", headers=hb))[0] == 200


async def test_local_documents_are_per_user(adb, anon):
    name, cast = adb
    ha, hb = cast.headers(cast.alice), cast.headers(cast.bob)
    assert (await call(anon, "PUT", f"/{name}/_local/ck", headers=ha, json={"seq": 1}))[0] == 201
    st, doc = await call(anon, "GET", f"/{name}/_local/ck", headers=ha)
    assert st == 200 and doc["_access"] == [cast.alice]
    assert (await call(anon, "GET", f"/{name}/_local/ck", headers=hb))[0] == 404
    st, body = await call(anon, "PUT", f"/{name}/_local/ck", headers=hb, json={"seq": 2})
    assert st == 403
    st, body = await call(anon, "GET", f"/{name}/_local_docs", headers=hb)
    assert body["rows"] == []
    st, body = await call(anon, "GET", f"/{name}/_local_docs", headers=ha)
    assert [r["id"] for r in body["rows"]] == ["_local/ck"]


async def test_access_mode_is_chosen_at_creation(client, dbname):
    st, body = await call(client, "PUT", f"/{dbname}?access=maybe")
    assert (st, body["error"]) == (400, "bad_request")
    assert (await call(client, "PUT", f"/{dbname}"))[0] == 201
    st, info = await call(client, "GET", f"/{dbname}")
    assert info["props"] == {}
    # outside an access database `_access` is what CouchDB 3.4.3 makes of it: a bad special member
    st, body = await call(client, "PUT", f"/{dbname}/d", json={"_access": ["x"]})
    assert (st, body) == (400, {"error": "doc_validation", "reason": "Bad special document member: _access"})
    st, body = await call(client, "POST", f"/{dbname}/_bulk_docs", json={"docs": [{"_id": "d", "_access": ["x"]}]})
    assert (st, body["error"]) == (400, "doc_validation")
    await call(client, "DELETE", f"/{dbname}")
    assert (await call(client, "PUT", f"/{dbname}?access=true"))[0] == 201
    st, info = await call(client, "GET", f"/{dbname}")
    assert info["props"] == {"access": True}
    await call(client, "DELETE", f"/{dbname}")


async def test_purged_infos_refused_to_users(adb, anon):
    name, cast = adb
    st, body = await call(anon, "GET", f"/{name}/_purged_infos", headers=cast.headers(cast.alice))
    assert (st, body["error"]) == (403, "forbidden")
    assert (await call(anon, "GET", f"/{name}/_purged_infos", headers=cast.headers(cast.dave)))[0] == 200
    # a db admin's answers are not cut
    assert (await call(anon, "GET", f"/{name}/_all_docs", headers=cast.headers(cast.dave)))[1]["total_rows"] == 7


async def test_filtered_and_event_feeds_never_reach_hidden_documents(adb, anon, client):
    name, cast = adb
    # a design-document filter and a view filter that would pass everything
    ddoc = {"filters": {"all": "function(doc, req){ return true; }"},
            "views": {"all": {"map": "function(doc){ emit(doc._id, null); }"}}}
    assert (await call(client, "PUT", f"/{name}/_design/f", json=ddoc))[0] == 201
    for p in ("alice", "bob", "carol"):
        who = getattr(cast, p)
        h = cast.headers(who)
        live, deleted = seen(cast, who)
        plain = {i for i in live | deleted if not i.startswith("_design/")}
        visible_changes = plain | {"_design/app", "_design/f"} | ({"_design/hid"} & live)
        st, body = await call(anon, "GET", f"/{name}/_changes?filter=f/all", headers=h)
        assert st == 200 and {r["id"] for r in body["results"]} == visible_changes, body
        # the view's map emits for every document it is given: it is given only visible ones
        st, body = await call(anon, "GET", f"/{name}/_changes?filter=_view&view=f/all", headers=h)
        assert st == 200 and {r["id"] for r in body["results"]} == visible_changes, body
        st, body = await call(anon, "GET", f"/{name}/_changes?filter=_design", headers=h)
        assert {r["id"] for r in body["results"]} == {"_design/app", "_design/f"} | ({"_design/hid"} & live)
        # a filter in a design document the reader does not see: missing, like the document
        for path in ("/_changes?filter=hid/f", "/_changes?filter=_view&view=hid/v"):
            st, body = await call(anon, "GET", f"/{name}{path}", headers=h)
            if "_design/hid" in live:
                if "_view" in path:
                    assert st == 200, body
            else:
                assert (st, body) == (404, {"error": "not_found", "reason": "missing"}), (p, path)
        async with anon.get(f"/{name}/_changes?feed=eventsource&timeout=50", headers=h) as r:
            text = (await r.read()).decode()
        ids = {json.loads(line[6:])["id"] for line in text.splitlines() if line.startswith("data: {")}
        assert ids == live | deleted | {"_design/f"}, p


async def test_update_handlers_and_copy_respect_access(adb, anon, client):
    name, cast = adb
    ddoc = {"updates": {"touch": "function(doc, req){ if (doc) { doc.touched = true; } return [doc, 'ok']; }"}}
    assert (await call(client, "PUT", f"/{name}/_design/u", json=ddoc))[0] == 201
    ha = cast.headers(cast.alice)
    st, body = await call(anon, "POST", f"/{name}/_design/u/_update/touch/b1", headers=ha)
    assert (st, body) == (404, {"error": "not_found", "reason": "missing"})
    st, _ = await call(anon, "POST", f"/{name}/_design/u/_update/touch/a1", headers=ha)
    assert st == 201
    assert (await call(anon, "GET", f"/{name}/a1", headers=ha))[1]["touched"] is True
    # COPY of one's own document onto another user's: refused, the target untouched
    st, body = await call(anon, "COPY", f"/{name}/a1", headers={**ha, "Destination": "b1"})
    assert st in (403, 409), body
    st, doc = await call(client, "GET", f"/{name}/b1")
    assert doc["_access"] == [cast.bob] and doc["k"] == 2


async def test_outsiders_and_a_public_access_database(server, client, anon):
    tag = uuid.uuid4().hex[:6]
    eve = f"eve{tag}"
    st, _ = await call(client, "PUT", f"/_users/org.couchdb.user:{eve}",
                       json={"name": eve, "password": "pw-" + eve, "roles": [], "type": "user"})
    assert st == 201
    name = "acc-pub-" + tag
    assert (await call(client, "PUT", f"/{name}?access=true"))[0] == 201
    sec = {"members": {"names": ["someone-else"]}}
    assert (await call(client, "PUT", f"/{name}/_security", json=sec))[0] == 200
    docs = [{"_id": "e1", "_access": [eve]}, {"_id": "_design/app"}, {"_id": "n1"}]
    assert (await call(client, "POST", f"/{name}/_bulk_docs", json={"docs": docs}))[0] == 201
    # not a member: the database-level refusal, whatever _access says
    st, body = await call(anon, "GET", f"/{name}/e1", headers=basic(eve))
    assert (st, body) == (403, {"error": "forbidden", "reason": "You are not allowed to access this db."})
    st, body = await call(anon, "GET", f"/{name}/_all_docs")
    assert st == 401
    # a public access database (no members): anonymous sees the shared design documents only
    assert (await call(client, "PUT", f"/{name}/_security", json={}))[0] == 200
    st, body = await call(anon, "GET", f"/{name}/_all_docs")
    assert st == 200 and [r["id"] for r in body["rows"]] == ["_design/app"]
    st, body = await call(anon, "GET", f"/{name}/_changes")
    assert [r["id"] for r in body["results"]] == ["_design/app"]
    assert (await call(anon, "GET", f"/{name}/e1"))[0] == 404
    st, body = await call(anon, "PUT", f"/{name}/anon-doc", json={"x": 1})
    assert (st, body["error"]) == (401, "unauthorized")
    st, body = await call(anon, "GET", f"/{name}/_all_docs", headers=basic(eve))
    assert [r["id"] for r in body["rows"]] == ["_design/app", "e1"]
    await call(client, "DELETE", f"/{name}")


async def test_routes_without_a_filtered_form_are_refused(client, anon, server):
    tag = uuid.uuid4().hex[:6]
    zoe = f"zoe{tag}"
    st, _ = await call(client, "PUT", f"/_users/org.couchdb.user:{zoe}",
                       json={"name": zoe, "password": "pw-" + zoe, "roles": [], "type": "user"})
    assert st == 201
    name = "acc-part-" + tag
    assert (await call(client, "PUT", f"/{name}?access=true&partitioned=true"))[0] == 201
    assert (await call(client, "PUT", f"/{name}/_security", json={"members": {"names": [zoe]}}))[0] == 200
    docs = [{"_id": "p:mine", "_access": [zoe]}, {"_id": "p:theirs", "_access": ["other"], "secret": "s3"}]
    assert (await call(client, "POST", f"/{name}/_bulk_docs", json={"docs": docs}))[0] == 201
    for method, path, body in (("GET", "/_partition/p/_all_docs", None), ("GET", "/_partition/p", None),
                               ("POST", "/_partition/p/_find", {"selector": {}}), ("GET", "/_purged_infos", None)):
        st, got = await call(anon, method, f"/{name}{path}", headers=basic(zoe), json=body)
        assert (st, got) == (403, {"error": "forbidden",
                                   "reason": "This route is not available to users of an access database."}), path
        assert (await call(client, method, f"/{name}{path}", json=body))[0] == 200, path
    st, got = await call(anon, "GET", f"/{name}/_all_docs", headers=basic(zoe))
    assert [r["id"] for r in got["rows"]] == ["p:mine"]
    await call(client, "DELETE", f"/{name}")
