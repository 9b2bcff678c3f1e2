"""Document endpoints through a real couchpy server: GET/HEAD/PUT/DELETE/COPY /{db}/{docid}
including `_design/` and `_local/`, revision selection, ETags, query options, new_edits=false,
document rules and limits. Expected behaviour from CouchDB 3.x (api/document/common,
chttpd_db.erl, couch_doc.erl, chttpd.erl error_info)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest

REV_RE = re.compile(r"[0-9]+-[0-9a-f]{32}")


@pytest.fixture
async def db(client):
    name = f"docs-{uuid.uuid4().hex[:12]}"
    resp = await client.put(f"/{name}")
    assert resp.status == 201, await resp.text()
    yield name
    await client.delete(f"/{name}")


async def put(client, path, doc, status=201, **params):
    resp = await client.put(path, json=doc, params={k: str(v) for k, v in params.items()})
    body = await resp.json()
    assert resp.status == status, (resp.status, body)
    return body


async def get(client, path, status=200, **params):
    resp = await client.get(path, params={k: str(v) for k, v in params.items()},
                            headers={"Accept": "application/json"})
    body = await resp.json()
    assert resp.status == status, (resp.status, body)
    return body


def h(rev: str) -> str:
    return rev.split("-", 1)[1]


# --------------------------------------------------------------------------- create / read


async def test_put_and_get(client, db):
    resp = await client.put(f"/{db}/doc1", json={"a": 1, "b": [1, 2], "c": {"d": None}})
    assert resp.status == 201
    body = await resp.json()
    assert body["ok"] is True and body["id"] == "doc1"
    assert REV_RE.fullmatch(body["rev"]) and body["rev"].startswith("1-")
    assert resp.headers["ETag"] == f'"{body["rev"]}"'
    assert resp.headers.get("Location", "").endswith(f"/{db}/doc1")

    resp = await client.get(f"/{db}/doc1")
    assert resp.status == 200
    assert resp.headers["ETag"] == f'"{body["rev"]}"'
    doc = await resp.json()
    assert doc == {"_id": "doc1", "_rev": body["rev"], "a": 1, "b": [1, 2], "c": {"d": None}}


async def test_field_order_and_big_ints_kept(client, db):
    raw = b'{"zeta":1,"alpha":18446744073709551616,"mid":{"y":-123456789012345678901234567890,"b":2.5}}'
    resp = await client.put(f"/{db}/ordered", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 201
    text = await (await client.get(f"/{db}/ordered")).read()
    assert b'"alpha":18446744073709551616' in text
    assert b"-123456789012345678901234567890" in text
    doc = json.loads(text)
    assert list(doc) == ["_id", "_rev", "zeta", "alpha", "mid"]
    assert list(doc["mid"]) == ["y", "b"]
    assert doc["alpha"] == 18446744073709551616


async def test_same_edit_gives_same_rev(client, db):
    a = await put(client, f"/{db}/same1", {"x": 1, "y": "z"})
    b = await put(client, f"/{db}/same2", {"x": 1, "y": "z"})
    assert a["rev"] == b["rev"]  # deterministic: (parent, deleted, body)
    c = await put(client, f"/{db}/same3", {"x": 2, "y": "z"})
    assert c["rev"] != a["rev"]


async def test_head(client, db):
    rev = (await put(client, f"/{db}/hd", {"a": 1}))["rev"]
    resp = await client.head(f"/{db}/hd")
    assert resp.status == 200
    assert resp.headers["ETag"] == f'"{rev}"'
    assert await resp.read() == b""
    resp = await client.head(f"/{db}/nope")
    assert resp.status == 404


async def test_if_none_match_304(client, db):
    rev = (await put(client, f"/{db}/etag", {"a": 1}))["rev"]
    resp = await client.get(f"/{db}/etag", headers={"If-None-Match": f'"{rev}"'})
    assert resp.status == 304
    assert await resp.read() == b""
    resp = await client.get(f"/{db}/etag", headers={"If-None-Match": '"1-00000000000000000000000000000000"'})
    assert resp.status == 200


async def test_missing_doc(client, db):
    resp = await client.get(f"/{db}/nothere")
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "missing"}


async def test_non_object_body_rejected(client, db):
    for raw in (b"[]", b"1", b'"s"', b"null"):
        resp = await client.put(f"/{db}/x", data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 400, raw
        assert (await resp.json())["error"] == "bad_request"


async def test_docid_with_slash_and_unicode(client, db):
    await put(client, f"/{db}/a%2Fb", {"v": 1})
    doc = await get(client, f"/{db}/a%2Fb")
    assert doc["_id"] == "a/b"
    await put(client, f"/{db}/%C3%A9t%C3%A9%20%E2%98%83", {"v": 2})
    doc = await get(client, f"/{db}/%C3%A9t%C3%A9%20%E2%98%83")
    assert doc["_id"] == "été ☃"
    rows = (await get(client, f"/{db}/_all_docs"))["rows"]
    assert {r["id"] for r in rows} == {"a/b", "été ☃"}


# --------------------------------------------------------------------------- updates and revs


async def test_update_with_body_rev(client, db):
    r1 = (await put(client, f"/{db}/u", {"v": 1}))["rev"]
    r2 = (await put(client, f"/{db}/u", {"v": 2, "_rev": r1}))["rev"]
    assert r2.startswith("2-")
    doc = await get(client, f"/{db}/u")
    assert doc == {"_id": "u", "_rev": r2, "v": 2}


async def test_update_with_query_rev(client, db):
    r1 = (await put(client, f"/{db}/u", {"v": 1}))["rev"]
    r2 = (await put(client, f"/{db}/u", {"v": 2}, rev=r1))["rev"]
    assert r2.startswith("2-")


async def test_update_with_if_match(client, db):
    r1 = (await put(client, f"/{db}/u", {"v": 1}))["rev"]
    resp = await client.put(f"/{db}/u", json={"v": 2}, headers={"If-Match": f'"{r1}"'})
    assert resp.status == 201
    assert (await resp.json())["rev"].startswith("2-")


async def test_rev_sources_must_agree(client, db):
    r1 = (await put(client, f"/{db}/u", {"v": 1}))["rev"]
    other = "1-" + "0" * 32
    resp = await client.put(f"/{db}/u", json={"v": 2, "_rev": r1}, params={"rev": other})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    resp = await client.put(f"/{db}/u", json={"v": 2}, params={"rev": r1},
                            headers={"If-Match": f'"{other}"'})
    assert resp.status == 400


async def test_conflicts_409(client, db):
    r1 = (await put(client, f"/{db}/c", {"v": 1}))["rev"]
    body = await put(client, f"/{db}/c", {"v": 2}, status=409)  # no rev for an existing doc
    assert body == {"error": "conflict", "reason": "Document update conflict."}
    await put(client, f"/{db}/c", {"v": 2, "_rev": r1})
    body = await put(client, f"/{db}/c", {"v": 3, "_rev": r1}, status=409)  # stale rev
    assert body["error"] == "conflict"
    body = await put(client, f"/{db}/c", {"v": 3, "_rev": "9-" + "a" * 32}, status=409)  # unknown
    assert body["error"] == "conflict"
    # as in CouchDB 3.4.3 once the database has validated a write (and has no validators): an edit
    # of a document that does not exist creates it (tests/differential/test_parity_missing_rev.py)
    body = await put(client, f"/{db}/newdoc", {"v": 3, "_rev": "1-" + "a" * 32})
    assert body["rev"].startswith("2-")


async def test_invalid_rev_format(client, db):
    await put(client, f"/{db}/r", {"v": 1})
    resp = await client.get(f"/{db}/r", params={"rev": "garbage"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    resp = await client.put(f"/{db}/r", json={"_rev": "garbage"})
    assert resp.status == 400


async def test_concurrent_updates_one_wins(client, db):
    r1 = (await put(client, f"/{db}/race", {"v": 0}))["rev"]
    resps = await asyncio.gather(
        *[client.put(f"/{db}/race", json={"v": i, "_rev": r1}) for i in range(10)]
    )
    statuses = sorted(r.status for r in resps)
    assert statuses == [201] + [409] * 9
    doc = await get(client, f"/{db}/race")
    assert doc["_rev"].startswith("2-")


async def test_get_specific_rev(client, db):
    r1 = (await put(client, f"/{db}/g", {"v": 1}))["rev"]
    r2 = (await put(client, f"/{db}/g", {"v": 2, "_rev": r1}))["rev"]
    assert (await get(client, f"/{db}/g", rev=r1)) == {"_id": "g", "_rev": r1, "v": 1}
    assert (await get(client, f"/{db}/g", rev=r2))["v"] == 2
    body = await get(client, f"/{db}/g", status=404, rev="1-" + "f" * 32)
    assert body["error"] == "not_found"


# --------------------------------------------------------------------------- delete


async def test_delete(client, db):
    r1 = (await put(client, f"/{db}/del", {"v": 1}))["rev"]
    resp = await client.delete(f"/{db}/del")  # no rev: conflict
    assert resp.status == 409
    assert (await resp.json())["error"] == "conflict"
    resp = await client.delete(f"/{db}/del", params={"rev": r1})
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True and body["id"] == "del" and body["rev"].startswith("2-")
    r2 = body["rev"]
    resp = await client.get(f"/{db}/del")
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "deleted"}
    resp = await client.head(f"/{db}/del")
    assert resp.status == 404
    # the tombstone itself can still be read by rev
    tomb = await get(client, f"/{db}/del", rev=r2)
    assert tomb == {"_id": "del", "_rev": r2, "_deleted": True}
    # deleting again: the document is already deleted
    resp = await client.delete(f"/{db}/del", params={"rev": r2})
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "deleted"}
    # recreate without a rev: continues the history after the tombstone
    r3 = (await put(client, f"/{db}/del", {"v": 3}))["rev"]
    assert r3.startswith("3-")
    assert (await get(client, f"/{db}/del"))["v"] == 3


async def test_delete_with_if_match(client, db):
    r1 = (await put(client, f"/{db}/dim", {"v": 1}))["rev"]
    resp = await client.delete(f"/{db}/dim", headers={"If-Match": f'"{r1}"'})
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True and body["id"] == "dim" and body["rev"].startswith("2-")
    assert await get(client, f"/{db}/dim", status=404) == {"error": "not_found", "reason": "deleted"}
    assert (await get(client, f"/{db}/dim", rev=body["rev"]))["_deleted"] is True
    resp = await client.delete(f"/{db}/missing", params={"rev": "1-" + "a" * 32})
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "missing"}


async def test_delete_via_put_deleted_flag(client, db):
    r1 = (await put(client, f"/{db}/pd", {"v": 1}))["rev"]
    resp = await client.put(f"/{db}/pd", json={"_rev": r1, "_deleted": True, "keep": "me"})
    assert resp.status == 200  # CouchDB answers a deleting PUT with 200, not 201
    r2 = (await resp.json())["rev"]
    body = await get(client, f"/{db}/pd", status=404)
    assert body["reason"] == "deleted"
    tomb = await get(client, f"/{db}/pd", rev=r2)
    assert tomb["_deleted"] is True and tomb["keep"] == "me"


# --------------------------------------------------------------------------- batch


async def test_batch_ok(client, db):
    resp = await client.put(f"/{db}/b", json={"v": 1}, params={"batch": "ok"})
    assert resp.status == 202
    body = await resp.json()
    assert body["ok"] is True and body["id"] == "b"
    for _ in range(100):
        r = await client.get(f"/{db}/b")
        if r.status == 200:
            break
        await asyncio.sleep(0.05)
    assert r.status == 200 and (await r.json())["v"] == 1


# --------------------------------------------------------------------------- copy


async def test_copy(client, db):
    src = (await put(client, f"/{db}/src", {"v": 1, "nested": {"a": [1]}}))["rev"]
    resp = await client.request("COPY", f"/{db}/src", headers={"Destination": "dst"})
    assert resp.status == 201
    body = await resp.json()
    assert body["ok"] is True and body["id"] == "dst" and body["rev"].startswith("1-")
    assert resp.headers["ETag"] == f'"{body["rev"]}"'
    doc = await get(client, f"/{db}/dst")
    assert doc == {"_id": "dst", "_rev": body["rev"], "v": 1, "nested": {"a": [1]}}
    # copying onto an existing doc needs its rev
    resp = await client.request("COPY", f"/{db}/src", headers={"Destination": "dst"})
    assert resp.status == 409
    resp = await client.request("COPY", f"/{db}/src", headers={"Destination": f"dst?rev={body['rev']}"})
    assert resp.status == 201
    assert (await resp.json())["rev"].startswith("2-")
    # copy of a specific source revision
    src2 = (await put(client, f"/{db}/src", {"v": 2, "_rev": src}))["rev"]
    resp = await client.request("COPY", f"/{db}/src", params={"rev": src},
                                headers={"Destination": "old-copy"})
    assert resp.status == 201
    assert (await get(client, f"/{db}/old-copy"))["v"] == 1
    assert (await get(client, f"/{db}/src"))["_rev"] == src2


async def test_copy_errors(client, db):
    resp = await client.request("COPY", f"/{db}/absent", headers={"Destination": "x"})
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "missing"}
    await get(client, f"/{db}/x", status=404)  # nothing was written
    await put(client, f"/{db}/s", {"v": 1})
    resp = await client.request("COPY", f"/{db}/s")  # no Destination
    assert resp.status == 400
    assert await resp.json() == {"error": "bad_request", "reason": "Destination header is mandatory for COPY."}


async def test_copy_design_and_local(client, db):
    await put(client, f"/{db}/_design/orig", {"views": {}})
    resp = await client.request("COPY", f"/{db}/_design/orig", headers={"Destination": "_design/copy"})
    assert resp.status == 201
    assert (await get(client, f"/{db}/_design/copy"))["views"] == {}
    await put(client, f"/{db}/_local/lo", {"x": 1})
    resp = await client.request("COPY", f"/{db}/_local/lo", headers={"Destination": "_local/lc"})
    assert resp.status == 201
    assert (await get(client, f"/{db}/_local/lc"))["x"] == 1


# --------------------------------------------------------------------------- design and local docs


async def test_design_doc(client, db):
    r1 = (await put(client, f"/{db}/_design/foo", {"language": "javascript", "views": {}}))["rev"]
    doc = await get(client, f"/{db}/_design/foo")
    assert doc["_id"] == "_design/foo" and doc["_rev"] == r1
    # the encoded form names the same document
    doc2 = await get(client, f"/{db}/_design%2Ffoo")
    assert doc2["_id"] == "_design/foo"
    r2 = (await put(client, f"/{db}/_design/foo", {"views": {}, "_rev": r1}))["rev"]
    resp = await client.delete(f"/{db}/_design/foo", params={"rev": r2})
    assert resp.status == 200
    assert (await get(client, f"/{db}/_design/foo", status=404))["reason"] == "deleted"


async def test_local_doc(client, db):
    body = await put(client, f"/{db}/_local/cfg", {"a": 1})
    assert body["id"] == "_local/cfg"
    assert body["rev"] == "0-1"
    doc = await get(client, f"/{db}/_local/cfg")
    assert doc == {"_id": "_local/cfg", "_rev": "0-1", "a": 1}
    body = await put(client, f"/{db}/_local/cfg", {"a": 2, "_rev": "0-1"})
    assert body["rev"] == "0-2"
    # CouchDB keeps no history of local documents: a write without a rev replaces it as 0-1
    body = await put(client, f"/{db}/_local/cfg", {"a": 3})
    assert body["rev"] == "0-1"
    # local docs are not in _all_docs, _changes or doc_count
    all_docs = await get(client, f"/{db}/_all_docs")
    assert all_docs["rows"] == [] and all_docs["total_rows"] == 0
    changes = await get(client, f"/{db}/_changes")
    assert changes["results"] == []
    assert (await get(client, f"/{db}"))["doc_count"] == 0
    resp = await client.delete(f"/{db}/_local/cfg", params={"rev": "0-1"})
    assert resp.status == 200
    assert (await resp.json())["ok"] is True
    resp = await client.get(f"/{db}/_local/cfg")
    assert resp.status == 404


async def test_local_invalid_ids(client, db):
    # chttpd_db: a bare `_local` (or `_local/`) is 400 "Invalid _local document id."
    for method, path in [("PUT", f"/{db}/_local"), ("GET", f"/{db}/_local"), ("GET", f"/{db}/_local/")]:
        resp = await client.request(method, path, json={"a": 1} if method == "PUT" else None)
        assert resp.status == 400, (method, path)
        assert (await resp.json())["error"] == "bad_request"


# --------------------------------------------------------------------------- document rules


@pytest.mark.parametrize("docid", ["_foo", "_users", "_designx", "_localx"])
async def test_reserved_ids_rejected(client, db, docid):
    resp = await client.put(f"/{db}/{docid}", json={"a": 1})
    assert resp.status == 400
    body = await resp.json()
    assert body == {"error": "illegal_docid", "reason": "Only reserved document ids may start with underscore."}
    resp = await client.post(f"/{db}", json={"_id": docid})
    assert resp.status == 400
    assert (await resp.json())["error"] == "illegal_docid"


@pytest.mark.parametrize("field", ["_foo", "_id_x", "_Rev", "__x"])
async def test_unknown_special_fields_rejected(client, db, field):
    resp = await client.put(f"/{db}/sf", json={field: 1, "a": 2})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "doc_validation"
    assert body["reason"] == f"Bad special document member: {field}"
    assert (await client.get(f"/{db}/sf")).status == 404


async def test_readonly_special_fields_ignored(client, db):
    # CouchDB accepts (and drops) the fields it itself adds to responses
    r = await put(client, f"/{db}/ro", {"a": 1, "_revs_info": [], "_conflicts": [], "_deleted_conflicts": [], "_local_seq": 1})
    doc = await get(client, f"/{db}/ro")
    assert doc == {"_id": "ro", "_rev": r["rev"], "a": 1}


async def test_max_document_size(client, db):
    # [couchdb] max_document_size defaults to 8000000 bytes
    big = {"data": "x" * 8_100_000}
    resp = await client.put(f"/{db}/huge", json=big)
    assert resp.status == 413
    body = await resp.json()
    assert body["error"] == "document_too_large"
    assert (await client.get(f"/{db}/huge")).status == 404
    # couch_doc:from_json_obj_validate throws for the whole request, as for a single PUT
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": "huge2", **big}]})
    assert resp.status == 413
    assert (await resp.json())["error"] == "document_too_large"
    assert (await client.get(f"/{db}/huge2")).status == 404
    # just under the limit is fine
    resp = await client.put(f"/{db}/large", json={"data": "x" * 1_000_000})
    assert resp.status == 201


# --------------------------------------------------------------------------- query options


async def _conflicted(client, db, docid="cf"):
    """1-a -> 2-live(winner)  and a replicated sibling 2-<other>, plus a deleted branch 3-..."""
    r1 = (await put(client, f"/{db}/{docid}", {"v": 1}))["rev"]
    r2 = (await put(client, f"/{db}/{docid}", {"v": 2, "_rev": r1}))["rev"]
    other = "2-" + "0" * 32  # sorts below any real hash, so r2 wins
    await put(client, f"/{db}/{docid}", {"v": "other", "_rev": other,
                                         "_revisions": {"start": 2, "ids": ["0" * 32, h(r1)]}},
              new_edits="false")
    dead = "3-" + "1" * 32
    await put(client, f"/{db}/{docid}", {"_rev": dead, "_deleted": True,
                                         "_revisions": {"start": 3, "ids": ["1" * 32, "2" * 32, h(r1)]}},
              status=200, new_edits="false")  # CouchDB answers a write of a deletion 200
    return r1, r2, other, dead


async def test_revs(client, db):
    r1 = (await put(client, f"/{db}/rv", {"v": 1}))["rev"]
    r2 = (await put(client, f"/{db}/rv", {"v": 2, "_rev": r1}))["rev"]
    doc = await get(client, f"/{db}/rv", revs="true")
    assert doc["_revisions"] == {"start": 2, "ids": [h(r2), h(r1)]}
    doc = await get(client, f"/{db}/rv", revs="true", rev=r1)
    assert doc["_revisions"] == {"start": 1, "ids": [h(r1)]}


async def test_revs_info(client, db):
    r1 = (await put(client, f"/{db}/ri", {"v": 1}))["rev"]
    r2 = (await put(client, f"/{db}/ri", {"v": 2, "_rev": r1}))["rev"]
    doc = await get(client, f"/{db}/ri", revs_info="true")
    assert doc["_revs_info"] == [
        {"rev": r2, "status": "available"},
        {"rev": r1, "status": "available"},
    ]


async def test_conflicts_and_deleted_conflicts(client, db):
    r1, r2, other, dead = await _conflicted(client, db)
    doc = await get(client, f"/{db}/cf")
    assert doc["_rev"] == r2 and doc["v"] == 2
    assert "_conflicts" not in doc
    doc = await get(client, f"/{db}/cf", conflicts="true")
    assert doc["_conflicts"] == [other]
    doc = await get(client, f"/{db}/cf", deleted_conflicts="true")
    assert doc["_deleted_conflicts"] == [dead]
    doc = await get(client, f"/{db}/cf", meta="true")
    assert doc["_conflicts"] == [other]
    assert doc["_deleted_conflicts"] == [dead]
    assert doc["_revs_info"][0] == {"rev": r2, "status": "available"}
    # the conflicting revision itself
    assert (await get(client, f"/{db}/cf", rev=other))["v"] == "other"
    # resolving: delete the losing branch
    resp = await client.delete(f"/{db}/cf", params={"rev": other})
    assert resp.status == 200
    doc = await get(client, f"/{db}/cf", conflicts="true", deleted_conflicts="true")
    assert "_conflicts" not in doc
    assert sorted(doc["_deleted_conflicts"]) == sorted([dead, (await resp.json())["rev"]])


async def test_open_revs_all(client, db):
    r1, r2, other, dead = await _conflicted(client, db)
    resp = await client.get(f"/{db}/cf", params={"open_revs": "all"}, headers={"Accept": "application/json"})
    assert resp.status == 200
    rows = await resp.json()
    assert all(list(r) == ["ok"] for r in rows)
    by_rev = {r["ok"]["_rev"]: r["ok"] for r in rows}
    assert set(by_rev) == {r2, other, dead}
    assert by_rev[r2]["v"] == 2
    assert by_rev[other]["v"] == "other"
    assert by_rev[dead]["_deleted"] is True


async def test_open_revs_list_with_missing(client, db):
    r1, r2, other, dead = await _conflicted(client, db)
    missing = "5-" + "e" * 32
    resp = await client.get(
        f"/{db}/cf", params={"open_revs": json.dumps([other, missing, r1])},
        headers={"Accept": "application/json"},
    )
    assert resp.status == 200
    rows = await resp.json()
    oks = {r["ok"]["_rev"] for r in rows if "ok" in r}
    assert oks == {other, r1}
    assert {"missing": missing} in rows


async def test_open_revs_latest(client, db):
    r1, r2, other, dead = await _conflicted(client, db)
    resp = await client.get(
        f"/{db}/cf", params={"open_revs": json.dumps([r1]), "latest": "true"},
        headers={"Accept": "application/json"},
    )
    rows = await resp.json()
    assert {r["ok"]["_rev"] for r in rows} == {r2, other, dead}


async def test_open_revs_revs(client, db):
    r1, r2, other, dead = await _conflicted(client, db)
    resp = await client.get(
        f"/{db}/cf", params={"open_revs": json.dumps([other]), "revs": "true"},
        headers={"Accept": "application/json"},
    )
    (row,) = await resp.json()
    assert row["ok"]["_revisions"] == {"start": 2, "ids": ["0" * 32, h(r1)]}


async def test_open_revs_of_missing_doc(client, db):
    resp = await client.get(f"/{db}/ghost", params={"open_revs": "all"}, headers={"Accept": "application/json"})
    assert resp.status == 404
    resp = await client.get(f"/{db}/ghost", params={"open_revs": '["1-' + "a" * 32 + '"]'},
                            headers={"Accept": "application/json"})
    assert resp.status == 200
    assert await resp.json() == [{"missing": "1-" + "a" * 32}]


async def test_open_revs_bad_json(client, db):
    await put(client, f"/{db}/obj", {"a": 1})
    resp = await client.get(f"/{db}/obj", params={"open_revs": "[not json"}, headers={"Accept": "application/json"})
    assert resp.status == 400
    assert await resp.json() == {"error": "bad_request", "reason": "invalid UTF-8 JSON"}


async def test_local_seq(client, db):
    await put(client, f"/{db}/ls0", {"v": 0})
    await put(client, f"/{db}/ls", {"v": 1})
    first = await get(client, f"/{db}/ls0", local_seq="true")
    doc = await get(client, f"/{db}/ls", local_seq="true")
    assert "_local_seq" not in await get(client, f"/{db}/ls")

    def num(seq):
        return int(str(seq).split("-", 1)[0])

    assert num(doc["_local_seq"]) > num(first["_local_seq"]) >= 1


# --------------------------------------------------------------------------- new_edits=false


async def test_new_edits_false_put(client, db):
    rev = "3-" + "c" * 32
    body = await put(
        client, f"/{db}/rep",
        {"_rev": rev, "v": 1, "_revisions": {"start": 3, "ids": ["c" * 32, "b" * 32, "a" * 32]}},
        new_edits="false",
    )
    assert body["ok"] is True and body["id"] == "rep" and body["rev"] == rev
    doc = await get(client, f"/{db}/rep", revs="true")
    assert doc["_rev"] == rev
    assert doc["_revisions"] == {"start": 3, "ids": ["c" * 32, "b" * 32, "a" * 32]}
    # replaying the same revision is a no-op, not a conflict
    await put(client, f"/{db}/rep", {"_rev": rev, "v": 1}, new_edits="false")
    # without _rev it is an error
    body = await put(client, f"/{db}/rep2", {"v": 1}, status=400, new_edits="false")
    assert body["error"] == "bad_request"
    # a normal edit continues from the replicated revision
    nxt = (await put(client, f"/{db}/rep", {"v": 2, "_rev": rev}))["rev"]
    assert nxt.startswith("4-")


async def test_new_edits_false_branch_on_known_ancestor(client, db):
    r1 = (await put(client, f"/{db}/br", {"v": 1}))["rev"]
    r2 = (await put(client, f"/{db}/br", {"v": 2, "_rev": r1}))["rev"]
    high = "2-" + "f" * 32  # beats r2 by rev string
    await put(client, f"/{db}/br", {"v": "high", "_rev": high,
                                    "_revisions": {"start": 2, "ids": ["f" * 32, h(r1)]}},
              new_edits="false")
    doc = await get(client, f"/{db}/br", conflicts="true")
    assert doc["_rev"] == high and doc["v"] == "high"
    assert doc["_conflicts"] == [r2]


# --------------------------------------------------------------------------- more details


async def test_url_id_wins_over_body_id(client, db):
    body = await put(client, f"/{db}/from-url", {"_id": "from-body", "v": 1})
    assert body["id"] == "from-url"
    assert (await client.get(f"/{db}/from-body")).status == 404
    assert (await get(client, f"/{db}/from-url"))["_id"] == "from-url"


async def test_revs_info_statuses(client, db):
    r1 = (await put(client, f"/{db}/st", {"v": 1, "pad": "p" * 5000}))["rev"]
    r2 = (await put(client, f"/{db}/st", {"v": 2, "_rev": r1}))["rev"]
    resp = await client.delete(f"/{db}/st", params={"rev": r2})
    r3 = (await resp.json())["rev"]
    doc = await get(client, f"/{db}/st", rev=r3, revs_info="true")
    assert doc["_revs_info"] == [
        {"rev": r3, "status": "deleted"},
        {"rev": r2, "status": "available"},
        {"rev": r1, "status": "available"},
    ]
    # after compaction the bodies of non-leaf revisions are gone: "missing"
    assert (await client.post(f"/{db}/_compact", json={})).status == 202
    for _ in range(200):
        if not (await get(client, f"/{db}"))["compact_running"]:
            break
        await asyncio.sleep(0.05)
    doc = await get(client, f"/{db}/st", rev=r3, revs_info="true")
    assert doc["_revs_info"] == [
        {"rev": r3, "status": "deleted"},
        {"rev": r2, "status": "missing"},
        {"rev": r1, "status": "missing"},
    ]


async def test_revs_limit_applies_to_replicated_histories(client, db):
    resp = await client.put(f"/{db}/_revs_limit", data=b"4", headers={"Content-Type": "application/json"})
    assert resp.status == 200
    ids = [f"{i:032x}" for i in range(10, 0, -1)]  # generations 10..1
    await put(client, f"/{db}/long", {"_rev": f"10-{ids[0]}", "_revisions": {"start": 10, "ids": ids}},
              new_edits="false")
    doc = await get(client, f"/{db}/long", revs="true")
    assert doc["_revisions"] == {"start": 10, "ids": ids[:4]}
    body = await get(client, f"/{db}/long", status=404, rev=f"5-{ids[5]}")
    assert body["reason"] == "missing"


async def test_head_if_none_match(client, db):
    rev = (await put(client, f"/{db}/hn", {"a": 1}))["rev"]
    resp = await client.head(f"/{db}/hn", headers={"If-None-Match": f'"{rev}"'})
    assert resp.status == 304


async def test_deleted_doc_with_body_rev_then_recreate_via_post(client, db):
    r1 = (await put(client, f"/{db}/pp", {"v": 1}))["rev"]
    await client.delete(f"/{db}/pp", params={"rev": r1})
    resp = await client.post(f"/{db}", json={"_id": "pp", "v": 2})
    assert resp.status == 201
    assert (await resp.json())["rev"].startswith("3-")


async def test_no_stale_304_with_meta_options(client, db):
    # CouchDB sends an ETag (and so answers If-None-Match) only when the document carries no meta
    # members: with _conflicts, _revs_info etc. the body can change while the winning rev stays
    # the same (chttpd_db send_doc). `conflicts=true` without conflicts adds none: ETag kept.
    rev = (await put(client, f"/{db}/m", {"v": 1}))["rev"]
    resp = await client.get(f"/{db}/m", params={"conflicts": "true"})
    assert resp.status == 200
    assert resp.headers["ETag"] == f'"{rev}"'
    resp = await client.get(f"/{db}/m", params={"revs_info": "true"})
    assert "ETag" not in resp.headers
    other = "1-" + "0" * 32
    await put(client, f"/{db}/m", {"_rev": other, "v": "o"}, new_edits="false")
    resp = await client.get(f"/{db}/m", params={"conflicts": "true"}, headers={"If-None-Match": f'"{rev}"'})
    assert resp.status == 200
    assert (await resp.json())["_conflicts"] == [other]
    # a plain read still has its ETag and 304
    resp = await client.get(f"/{db}/m", headers={"If-None-Match": f'"{rev}"'})
    assert resp.status == 304
