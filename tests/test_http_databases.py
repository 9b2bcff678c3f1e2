"""Database endpoints through a real couchpy server: PUT/GET/HEAD/DELETE /{db}, POST /{db},
_revs_limit, _compact, _ensure_full_commit. Expected behaviour from CouchDB 3.x (api/database/common,
api/database/compact, chttpd_db.erl)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from urllib.parse import quote

import pytest


def _name(prefix: str = "db") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def db(client):
    name = _name()
    resp = await client.put(f"/{name}")
    assert resp.status == 201, await resp.text()
    yield name
    await client.delete(f"/{name}")


def _seq_num(seq) -> int:
    return int(str(seq).split("-", 1)[0])


async def test_create_get_delete(client):
    name = _name()
    resp = await client.put(f"/{name}")
    assert resp.status == 201
    assert await resp.json() == {"ok": True}
    assert resp.headers.get("Location", "").endswith(f"/{name}")

    resp = await client.head(f"/{name}")
    assert resp.status == 200
    assert await resp.read() == b""

    resp = await client.get(f"/{name}")
    assert resp.status == 200
    info = await resp.json()
    assert info["db_name"] == name

    resp = await client.delete(f"/{name}")
    assert resp.status == 200
    assert await resp.json() == {"ok": True}

    resp = await client.head(f"/{name}")
    assert resp.status == 404
    resp = await client.get(f"/{name}")
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "Database does not exist."}
    resp = await client.delete(f"/{name}")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_create_twice_is_412(client, db):
    resp = await client.put(f"/{db}")
    assert resp.status == 412
    assert await resp.json() == {
        "error": "file_exists",
        "reason": "The database could not be created, the file already exists.",
    }


@pytest.mark.parametrize(
    "name",
    ["Upper", "1abc", "a b", "a.b", "a@b", "é", "a" * 239, "abc!", "-abc", "ABC", "a*b"],
)
async def test_illegal_names(client, name):
    resp = await client.put("/" + quote(name, safe=""))
    assert resp.status == 400, name
    body = await resp.json()
    assert body["error"] == "illegal_database_name"
    assert isinstance(body["reason"], str) and body["reason"]


@pytest.mark.parametrize("suffix", ["", "_$()+-/", "0123456789", "a" * 200])
async def test_legal_names(client, suffix):
    name = ("x" + uuid.uuid4().hex[:10] + suffix)[:238]
    path = "/" + quote(name, safe="")
    resp = await client.put(path)
    assert resp.status == 201, await resp.text()
    resp = await client.get(path)
    assert resp.status == 200
    assert (await resp.json())["db_name"] == name
    all_dbs = await (await client.get("/_all_dbs")).json()
    assert name in all_dbs
    assert (await client.delete(path)).status == 200


async def test_name_of_exactly_238_chars(client):
    name = ("m" + uuid.uuid4().hex) .ljust(238, "z")
    assert len(name) == 238
    assert (await client.put(f"/{name}")).status == 201
    assert (await client.delete(f"/{name}")).status == 200
    assert (await client.put(f"/{name}z")).status == 400


async def test_info_fields(client, db):
    info = await (await client.get(f"/{db}")).json()
    for field in (
        "db_name", "doc_count", "doc_del_count", "update_seq", "purge_seq", "sizes",
        "instance_start_time", "compact_running", "props",
    ):
        assert field in info, field
    assert info["doc_count"] == 0
    assert info["doc_del_count"] == 0
    assert info["compact_running"] is False
    assert isinstance(info["props"], dict)
    assert isinstance(info["instance_start_time"], str)
    for k in ("file", "external", "active"):
        assert isinstance(info["sizes"][k], int) and info["sizes"][k] >= 0, k
    assert isinstance(info["update_seq"], str)


async def test_info_counts_follow_writes(client, db):
    before = await (await client.get(f"/{db}")).json()
    revs = {}
    for i in range(5):
        r = await client.put(f"/{db}/d{i}", json={"i": i, "pad": "x" * 100})
        assert r.status == 201
        revs[f"d{i}"] = (await r.json())["rev"]
    # local docs and design docs: design docs count, local docs do not
    assert (await client.put(f"/{db}/_local/l1", json={"a": 1})).status == 201
    assert (await client.put(f"/{db}/_design/dd", json={"views": {}})).status == 201
    r = await client.delete(f"/{db}/d0", params={"rev": revs["d0"]})
    assert r.status == 200
    info = await (await client.get(f"/{db}")).json()
    assert info["doc_count"] == 5  # d1..d4 + _design/dd
    assert info["doc_del_count"] == 1
    assert _seq_num(info["update_seq"]) > _seq_num(before["update_seq"])
    assert info["sizes"]["external"] > 0
    assert info["sizes"]["file"] > 0


async def test_delete_db_with_rev_param_is_rejected(client, db):
    # chttpd_db: a ?rev= on DELETE /{db} is most likely a document delete with an empty id
    resp = await client.delete(f"/{db}", params={"rev": "1-abc"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    assert (await client.head(f"/{db}")).status == 200


async def test_delete_removes_documents(client):
    name = _name()
    await client.put(f"/{name}")
    await client.put(f"/{name}/doc", json={"a": 1})
    await client.delete(f"/{name}")
    await client.put(f"/{name}")
    try:
        resp = await client.get(f"/{name}/doc")
        assert resp.status == 404
        info = await (await client.get(f"/{name}")).json()
        assert info["doc_count"] == 0
    finally:
        await client.delete(f"/{name}")


async def test_missing_db_endpoints_404(client):
    name = _name("nosuch")
    for method, path in [
        ("GET", f"/{name}/doc"),
        ("PUT", f"/{name}/doc"),
        ("GET", f"/{name}/_all_docs"),
        ("GET", f"/{name}/_changes"),
        ("POST", f"/{name}/_bulk_docs"),
    ]:
        kw = {"json": {"docs": []}} if method in ("PUT", "POST") else {}
        resp = await client.request(method, path, **kw)
        assert resp.status == 404, (method, path)
        body = await resp.json()
        assert body["error"] == "not_found"


async def test_post_creates_doc_with_generated_id(client, db):
    resp = await client.post(f"/{db}", json={"hello": "world"})
    assert resp.status == 201
    body = await resp.json()
    assert body["ok"] is True
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert re.fullmatch(r"1-[0-9a-f]{32}", body["rev"])
    assert resp.headers.get("Location", "").endswith(f"/{db}/{body['id']}")
    doc = await (await client.get(f"/{db}/{body['id']}")).json()
    assert doc == {"_id": body["id"], "_rev": body["rev"], "hello": "world"}
    ids = {(await (await client.post(f"/{db}", json={})).json())["id"] for _ in range(5)}
    assert len(ids) == 5 and body["id"] not in ids


async def test_post_with_id_and_conflict(client, db):
    resp = await client.post(f"/{db}", json={"_id": "given", "v": 1})
    assert resp.status == 201
    assert (await resp.json())["id"] == "given"
    resp = await client.post(f"/{db}", json={"_id": "given", "v": 2})
    assert resp.status == 409
    assert await resp.json() == {"error": "conflict", "reason": "Document update conflict."}


async def test_post_batch_ok(client, db):
    resp = await client.post(f"/{db}", params={"batch": "ok"}, json={"_id": "batched", "v": 1})
    assert resp.status == 202
    body = await resp.json()
    assert body["ok"] is True and body["id"] == "batched"
    for _ in range(100):
        r = await client.get(f"/{db}/batched")
        if r.status == 200:
            break
        await asyncio.sleep(0.05)
    assert r.status == 200
    assert (await r.json())["v"] == 1


async def test_post_non_object_body(client, db):
    for payload in (b"[1,2]", b'"str"', b"3"):
        resp = await client.post(
            f"/{db}", data=payload, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"


async def test_post_requires_json_content_type(client, db):
    resp = await client.post(f"/{db}", data=b'{"a":1}', headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    assert (await resp.json())["error"] == "bad_content_type"


async def test_revs_limit_get_put(client, db):
    resp = await client.get(f"/{db}/_revs_limit")
    assert resp.status == 200
    assert await resp.json() == 1000
    resp = await client.put(f"/{db}/_revs_limit", data=b"5", headers={"Content-Type": "application/json"})
    assert resp.status == 200
    assert await resp.json() == {"ok": True}
    assert await (await client.get(f"/{db}/_revs_limit")).json() == 5


@pytest.mark.parametrize("bad", [b'"abc"', b"0", b"-3", b"{}", b"1.5", b"not json"])
async def test_revs_limit_rejects_non_positive_integer(client, db, bad):
    resp = await client.put(f"/{db}/_revs_limit", data=bad, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    assert await (await client.get(f"/{db}/_revs_limit")).json() == 1000


async def test_revs_limit_stems_history(client, db):
    await client.put(f"/{db}/_revs_limit", data=b"3", headers={"Content-Type": "application/json"})
    rev = None
    for i in range(8):
        doc = {"i": i} if rev is None else {"i": i, "_rev": rev}
        r = await client.put(f"/{db}/stemmed", json=doc)
        assert r.status == 201
        rev = (await r.json())["rev"]
    assert rev.startswith("8-")
    doc = await (await client.get(f"/{db}/stemmed", params={"revs": "true"})).json()
    assert doc["_revisions"]["start"] == 8
    assert len(doc["_revisions"]["ids"]) == 3
    assert doc["_revisions"]["ids"][0] == rev.split("-", 1)[1]


async def test_revs_limit_wrong_method(client, db):
    resp = await client.post(f"/{db}/_revs_limit", json=5)
    assert resp.status == 405
    assert await resp.json() == {"error": "method_not_allowed", "reason": "Only PUT,GET allowed"}
    assert await (await client.get(f"/{db}/_revs_limit")).json() == 1000  # unchanged


async def _wait_compaction(client, db, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await (await client.get(f"/{db}")).json()
        if not info["compact_running"]:
            return info
        await asyncio.sleep(0.05)
    raise AssertionError("compaction did not finish")


async def test_compact(client, db):
    r = await client.put(f"/{db}/doc", json={"v": 0, "big": "x" * 20000})
    first = (await r.json())["rev"]
    rev = first
    for i in range(1, 6):
        r = await client.put(f"/{db}/doc", json={"v": i, "_rev": rev, "big": "y" * 20000})
        rev = (await r.json())["rev"]
    # old revision body readable before compaction
    r = await client.get(f"/{db}/doc", params={"rev": first})
    assert r.status == 200
    assert (await r.json())["v"] == 0

    resp = await client.post(f"/{db}/_compact", json={})
    assert resp.status == 202
    assert await resp.json() == {"ok": True}
    # the database stays usable while compaction runs
    r = await client.put(f"/{db}/during", json={"a": 1})
    assert r.status == 201
    info = await _wait_compaction(client, db)
    assert info["doc_count"] == 2

    # the current revision and its history survive; old bodies are gone
    doc = await (await client.get(f"/{db}/doc", params={"revs": "true"})).json()
    assert doc["v"] == 5 and doc["_rev"] == rev
    assert doc["_revisions"]["start"] == 6 and len(doc["_revisions"]["ids"]) == 6
    r = await client.get(f"/{db}/doc", params={"rev": first})
    assert r.status == 404
    assert await r.json() == {"error": "not_found", "reason": "missing"}
    assert (await client.get(f"/{db}/during")).status == 200
    # writes after compaction continue the same history
    r = await client.put(f"/{db}/doc", json={"v": 6, "_rev": rev})
    assert r.status == 201
    assert (await r.json())["rev"].startswith("7-")


async def test_compact_requires_json_content_type(client, db):
    resp = await client.post(f"/{db}/_compact", data=b"", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    assert (await resp.json())["error"] == "bad_content_type"


async def test_compact_wrong_method(client, db):
    resp = await client.get(f"/{db}/_compact")
    assert resp.status == 405
    assert (await resp.json())["error"] == "method_not_allowed"


async def test_ensure_full_commit(client, db):
    resp = await client.post(f"/{db}/_ensure_full_commit", json={})
    assert resp.status == 201
    body = await resp.json()
    assert body["ok"] is True
    assert isinstance(body["instance_start_time"], str)
    resp = await client.get(f"/{db}/_ensure_full_commit")
    assert resp.status == 405


async def test_ensure_full_commit_missing_db(client):
    name = _name('nosuch')
    resp = await client.post(f"/{name}/_ensure_full_commit", json={})
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "Database does not exist."}
    assert (await client.get(f"/{name}")).status == 404  # not created by the call


async def test_compaction_under_concurrent_load(client, db):
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": f"d{i:04d}", "v": 0, "pad": "x" * 500}
                                                               for i in range(300)]})
    revs = {r["id"]: r["rev"] for r in await resp.json()}
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [
        {"_id": k, "_rev": v, "v": 1, "pad": "y" * 500} for k, v in revs.items()]})
    revs = {r["id"]: r["rev"] for r in await resp.json()}
    assert (await client.post(f"/{db}/_compact", json={})).status == 202

    async def writer(i):
        r = await client.put(f"/{db}/new{i}", json={"i": i})
        assert r.status == 201
        return (await r.json())["rev"]

    async def reader(i):
        r = await client.get(f"/{db}/d{i:04d}")
        assert r.status == 200
        assert (await r.json())["_rev"] == revs[f"d{i:04d}"]

    new_revs = await asyncio.gather(*[writer(i) for i in range(40)], *[reader(i) for i in range(0, 300, 7)])
    await _wait_compaction(client, db, timeout=60)
    info = await (await client.get(f"/{db}")).json()
    assert info["doc_count"] == 340
    for i in range(40):
        doc = await (await client.get(f"/{db}/new{i}")).json()
        assert doc["_rev"] == new_revs[i]
    rows = (await (await client.get(f"/{db}/_all_docs", params={"startkey": '"d"', "endkey": '"e"'})).json())["rows"]
    assert {r["id"]: r["value"]["rev"] for r in rows} == revs
    changes = (await (await client.get(f"/{db}/_changes")).json())["results"]
    assert len(changes) == 340


async def test_counts_through_delete_recreate_and_conflicts(client, db):
    async def counts():
        info = await (await client.get(f"/{db}")).json()
        return info["doc_count"], info["doc_del_count"]

    r1 = (await (await client.put(f"/{db}/a", json={"v": 1})).json())["rev"]
    assert await counts() == (1, 0)
    r2 = (await (await client.delete(f"/{db}/a", params={"rev": r1})).json())["rev"]
    assert await counts() == (0, 1)
    r3 = (await (await client.put(f"/{db}/a", json={"v": 2})).json())["rev"]
    assert r3.startswith("3-") and r2.startswith("2-")
    assert await counts() == (1, 0)
    # a replicated conflict, then deleting it: the document stays live and counted once
    other = "1-" + "0" * 32
    r = await client.put(f"/{db}/a", params={"new_edits": "false"}, json={"_rev": other, "v": "o"})
    assert r.status == 201
    assert await counts() == (1, 0)
    assert (await client.delete(f"/{db}/a", params={"rev": other})).status == 200
    assert await counts() == (1, 0)
    # a replicated deleted document
    r = await client.put(f"/{db}/b", params={"new_edits": "false"},
                         json={"_rev": "1-" + "b" * 32, "_deleted": True})
    assert r.status == 200  # as CouchDB answers a write of a deletion
    assert await counts() == (1, 1)
