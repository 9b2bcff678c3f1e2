"""Server-level endpoints through a real couchpy server: /, /_up, /_all_dbs, /_dbs_info, /_uuids.

Expected shapes and statuses follow CouchDB 3.x (docs.couchdb.org, api/server/common, and
chttpd_misc.erl / couch_httpd_misc_handlers.erl for the exact error bodies).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest


def _name(prefix: str = "srv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_welcome(client):
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.json()
    assert body["couchdb"] == "Welcome"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["vendor"], dict) and isinstance(body["vendor"]["name"], str)
    # CouchDB 3.x also reports a node uuid and a features list
    if "uuid" in body:
        assert re.fullmatch(r"[0-9a-f]{32}", body["uuid"])
    if "features" in body:
        assert isinstance(body["features"], list)


async def test_welcome_head_and_wrong_method(client):
    resp = await client.head("/")
    assert resp.status == 200
    resp = await client.delete("/")
    assert resp.status == 405
    body = await resp.json()
    assert body["error"] == "method_not_allowed"


async def test_up(client):
    resp = await client.get("/_up")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"


async def test_all_dbs_lists_created_databases_sorted(client):
    names = sorted(_name("alldbs") for _ in range(4))
    for n in names:
        assert (await client.put(f"/{n}")).status == 201
    resp = await client.get("/_all_dbs")
    assert resp.status == 200
    all_dbs = await resp.json()
    assert isinstance(all_dbs, list)
    assert all_dbs == sorted(all_dbs)
    for n in names:
        assert n in all_dbs
    for n in names:
        assert (await client.delete(f"/{n}")).status == 200
    all_dbs = await (await client.get("/_all_dbs")).json()
    for n in names:
        assert n not in all_dbs


async def test_all_dbs_params(client):
    prefix = f"adp{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{c}" for c in "abcde"]
    for n in names:
        assert (await client.put(f"/{n}")).status == 201
    try:
        async def q(**params):
            resp = await client.get(
                "/_all_dbs", params={k: json.dumps(v) if k.endswith("key") else str(v).lower()
                                     for k, v in params.items()}
            )
            assert resp.status == 200, await resp.text()
            return await resp.json()

        assert await q(startkey=names[1], endkey=names[3]) == names[1:4]
        assert await q(start_key=names[1], end_key=names[3]) == names[1:4]
        assert await q(startkey=names[0], endkey=names[4], limit=2) == names[:2]
        assert await q(startkey=names[0], endkey=names[4], skip=2) == names[2:]
        assert await q(startkey=names[0], endkey=names[4], skip=1, limit=2) == names[1:3]
        assert await q(startkey=names[3], endkey=names[1], descending=True) == names[3:0:-1]
        assert await q(startkey=names[4], endkey=names[0], descending=True, limit=1) == [names[4]]
        full = await q(descending=True)
        assert full == sorted(full, reverse=True)
        assert await q(startkey=names[0], endkey=names[4], limit=0) == []
    finally:
        for n in names:
            await client.delete(f"/{n}")


async def test_all_dbs_bad_params(client):
    resp = await client.get("/_all_dbs", params={"limit": "-1"})
    assert resp.status == 400
    assert (await resp.json())["error"] in ("bad_request", "query_parse_error")
    resp = await client.get("/_all_dbs", params={"startkey": "not-json"})
    assert resp.status == 400


async def test_dbs_info_post(client):
    a, b = _name("dbsinfo"), _name("dbsinfo")
    await client.put(f"/{a}")
    await client.put(f"/{b}")
    await client.put(f"/{a}/doc1", json={"x": 1})
    missing = _name("nosuch")
    resp = await client.post("/_dbs_info", json={"keys": [a, missing, b]})
    assert resp.status == 200
    rows = await resp.json()
    assert [r["key"] for r in rows] == [a, missing, b]
    assert rows[0]["info"]["db_name"] == a
    assert rows[0]["info"]["doc_count"] == 1
    assert rows[2]["info"]["db_name"] == b
    assert rows[2]["info"]["doc_count"] == 0
    assert rows[1].get("error") == "not_found"
    assert "info" not in rows[1]
    await client.delete(f"/{a}")
    await client.delete(f"/{b}")


async def test_dbs_info_post_requires_keys(client):
    resp = await client.post("/_dbs_info", json={"nokeys": []})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_dbs_info_get(client):
    prefix = f"dig{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{c}" for c in "abc"]
    for n in names:
        await client.put(f"/{n}")
    try:
        resp = await client.get(
            "/_dbs_info",
            params={"startkey": json.dumps(names[0]), "endkey": json.dumps(names[2]), "limit": "2"},
        )
        assert resp.status == 200
        rows = await resp.json()
        assert [r["key"] for r in rows] == names[:2]
        for r in rows:
            assert r["info"]["db_name"] == r["key"]
            assert "doc_count" in r["info"]
    finally:
        for n in names:
            await client.delete(f"/{n}")


async def test_uuids_default_one(client):
    resp = await client.get("/_uuids")
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["uuids"]
    assert len(body["uuids"]) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", body["uuids"][0])
    # CouchDB sends cache-busting headers: uuids must never be cached
    assert "no-cache" in resp.headers.get("Cache-Control", "")


async def test_uuids_count_unique(client):
    resp = await client.get("/_uuids", params={"count": "50"})
    assert resp.status == 200
    uuids = (await resp.json())["uuids"]
    assert len(uuids) == 50
    assert len(set(uuids)) == 50
    more = (await (await client.get("/_uuids", params={"count": "50"})).json())["uuids"]
    assert not set(more) & set(uuids)


@pytest.mark.parametrize("count", ["1001", "-1", "abc"])
async def test_uuids_bad_count(client, count):
    # couch_httpd_misc_handlers: over [uuids] max_count (1000) or not a non-negative integer
    resp = await client.get("/_uuids", params={"count": count})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request"


async def test_uuids_wrong_method(client):
    resp = await client.post("/_uuids", json={})
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET"
    assert await resp.json() == {"error": "method_not_allowed", "reason": "Only GET allowed"}


async def test_uuids_count_zero(client):
    resp = await client.get("/_uuids", params={"count": "0"})
    assert resp.status == 200
    assert await resp.json() == {"uuids": []}


async def test_dbs_info_post_key_limit(client):
    # [chttpd] max_db_number_for_dbs_info_req defaults to 100 (chttpd_misc)
    resp = await client.post("/_dbs_info", json={"keys": [f"nosuch-{i}" for i in range(100)]})
    assert resp.status == 200
    assert len(await resp.json()) == 100
    resp = await client.post("/_dbs_info", json={"keys": [f"nosuch-{i}" for i in range(101)]})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
