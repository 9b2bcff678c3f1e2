"""_all_docs, _design_docs and _local_docs (GET and POST keys) through a real couchpy server.

Reference: CouchDB 3.x api/database/bulk-api (`/{db}/_all_docs`, `/{db}/_design_docs`),
api/local (`/{db}/_local_docs`), couch_mrview.erl (total_rows per namespace: all docs, design docs
only, null for local docs) and chttpd_db.erl.
"""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

IDS = ["a", "b", "c", "d", "e", "f"]


@pytest.fixture
async def db(client):
    name = f"alldocs-{uuid.uuid4().hex[:12]}"
    assert (await client.put(f"/{name}")).status == 201
    yield name
    await client.delete(f"/{name}")


@pytest.fixture
async def filled(client, db):
    """Docs a..f, design docs, a local doc; `c` deleted. Returns (db, {id: rev})."""
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": i, "n": n} for n, i in enumerate(IDS)]})
    assert resp.status == 201
    revs = {r["id"]: r["rev"] for r in await resp.json()}
    for dd in ("_design/x", "_design/y"):
        r = await client.put(f"/{db}/{dd}", json={"views": {}})
        revs[dd] = (await r.json())["rev"]
    await client.put(f"/{db}/_local/loc", json={"l": 1})
    r = await client.delete(f"/{db}/c", params={"rev": revs["c"]})
    revs["c"] = (await r.json())["rev"]
    return db, revs


async def q(client, path, status=200, **params):
    enc = {}
    for k, v in params.items():
        if k in ("key", "keys", "startkey", "endkey", "start_key", "end_key", "startkey_docid", "endkey_docid"):
            enc[k] = v if k.endswith("_docid") else json.dumps(v)
        elif isinstance(v, bool):
            enc[k] = "true" if v else "false"
        else:
            enc[k] = str(v)
    resp = await client.get(path, params=enc)
    body = await resp.json()
    assert resp.status == status, (resp.status, body)
    return body


def ids(body) -> list:
    return [r["id"] for r in body["rows"]]


async def test_basic_listing(client, filled):
    db, revs = filled
    body = await q(client, f"/{db}/_all_docs")
    # design docs sort before lowercase ids (raw collation of ids); deleted and local docs absent
    assert ids(body) == ["_design/x", "_design/y", "a", "b", "d", "e", "f"]
    assert body["total_rows"] == 7
    assert body["offset"] == 0
    for row in body["rows"]:
        assert row == {"id": row["id"], "key": row["id"], "value": {"rev": revs[row["id"]]}}


async def test_empty_db(client, db):
    body = await q(client, f"/{db}/_all_docs")
    assert body == {"total_rows": 0, "offset": 0, "rows": []}


async def test_include_docs(client, filled):
    db, revs = filled
    body = await q(client, f"/{db}/_all_docs", include_docs=True, startkey="a", endkey="b")
    assert [r["doc"] for r in body["rows"]] == [
        {"_id": "a", "_rev": revs["a"], "n": 0},
        {"_id": "b", "_rev": revs["b"], "n": 1},
    ]


async def test_key_and_ranges(client, filled):
    db, _ = filled
    assert ids(await q(client, f"/{db}/_all_docs", key="b")) == ["b"]
    assert ids(await q(client, f"/{db}/_all_docs", key="c")) == []  # deleted
    assert ids(await q(client, f"/{db}/_all_docs", key="zz")) == []
    assert ids(await q(client, f"/{db}/_all_docs", startkey="b", endkey="e")) == ["b", "d", "e"]
    assert ids(await q(client, f"/{db}/_all_docs", start_key="b", end_key="e")) == ["b", "d", "e"]
    assert ids(await q(client, f"/{db}/_all_docs", startkey="b", endkey="e", inclusive_end=False)) == ["b", "d"]
    assert ids(await q(client, f"/{db}/_all_docs", startkey="b1")) == ["d", "e", "f"]
    assert ids(await q(client, f"/{db}/_all_docs", endkey="a")) == ["_design/x", "_design/y", "a"]


async def test_descending(client, filled):
    db, _ = filled
    assert ids(await q(client, f"/{db}/_all_docs", descending=True)) == ["f", "e", "d", "b", "a", "_design/y", "_design/x"]
    assert ids(await q(client, f"/{db}/_all_docs", descending=True, startkey="e", endkey="b")) == ["e", "d", "b"]
    assert ids(await q(client, f"/{db}/_all_docs", descending=True, startkey="e", endkey="b",
                       inclusive_end=False)) == ["e", "d"]


async def test_reversed_range_holds_no_rows(client, filled):
    # unlike a view, CouchDB answers a reversed _all_docs range with no rows, not an error
    # (tests/test_alldocs_couchdb_parity.py shows it)
    db, _ = filled
    body = await q(client, f"/{db}/_all_docs", startkey="e", endkey="b")
    assert body["rows"] == []


async def test_limit_skip(client, filled):
    db, _ = filled
    body = await q(client, f"/{db}/_all_docs", startkey="a", limit=2)
    assert ids(body) == ["a", "b"]
    body = await q(client, f"/{db}/_all_docs", startkey="a", skip=1, limit=2)
    assert ids(body) == ["b", "d"]
    assert body["offset"] == 3  # two design docs and `a` precede
    body = await q(client, f"/{db}/_all_docs", limit=0)
    assert body["rows"] == [] and body["total_rows"] == 7
    body = await q(client, f"/{db}/_all_docs", skip=100)
    assert body["rows"] == []


@pytest.mark.parametrize("param,value", [("limit", "-1"), ("limit", "x"), ("skip", "-2"),
                                          ("descending", "maybe"), ("startkey", "{bad"), ("key", "nojson")])
async def test_bad_params(client, filled, param, value):
    db, _ = filled
    resp = await client.get(f"/{db}/_all_docs", params={param: value})
    assert resp.status == 400
    assert (await resp.json())["error"] in ("query_parse_error", "bad_request")


async def test_startkey_docid_endkey_docid(client, filled):
    # For _all_docs the key is the id; *_docid only matter for equal keys, so this is the same range
    db, _ = filled
    body = await q(client, f"/{db}/_all_docs", startkey="b", endkey="e", startkey_docid="b", endkey_docid="e")
    assert ids(body) == ["b", "d", "e"]


async def test_keys_get_and_post(client, filled):
    db, revs = filled
    keys = ["d", "nope", "c", "a", "d"]
    expected = [
        {"id": "d", "key": "d", "value": {"rev": revs["d"]}},
        {"key": "nope", "error": "not_found"},
        {"id": "c", "key": "c", "value": {"rev": revs["c"], "deleted": True}},
        {"id": "a", "key": "a", "value": {"rev": revs["a"]}},
        {"id": "d", "key": "d", "value": {"rev": revs["d"]}},
    ]
    body = await q(client, f"/{db}/_all_docs", keys=keys)
    assert body["rows"] == expected
    resp = await client.post(f"/{db}/_all_docs", json={"keys": keys})
    assert resp.status == 200
    assert (await resp.json())["rows"] == expected


async def test_keys_with_include_docs(client, filled):
    db, revs = filled
    resp = await client.post(f"/{db}/_all_docs", params={"include_docs": "true"}, json={"keys": ["c", "b", "zz"]})
    rows = (await resp.json())["rows"]
    assert rows[0] == {"id": "c", "key": "c", "value": {"rev": revs["c"], "deleted": True}, "doc": None}
    assert rows[1]["doc"] == {"_id": "b", "_rev": revs["b"], "n": 1}
    assert rows[2] == {"key": "zz", "error": "not_found"}


async def test_keys_must_be_array(client, filled):
    db, _ = filled
    resp = await client.post(f"/{db}/_all_docs", json={"keys": "a"})
    assert resp.status == 400
    assert await resp.json() == {"error": "bad_request", "reason": "`keys` body member must be an array."}
    resp = await client.get(f"/{db}/_all_docs", params={"keys": json.dumps({"a": 1})})
    assert resp.status == 400
    assert await resp.json() == {"error": "bad_request", "reason": "`keys` parameter must be an array."}


async def test_post_with_other_params_in_body_and_query(client, filled):
    db, _ = filled
    resp = await client.post(f"/{db}/_all_docs", params={"limit": "2"}, json={"keys": ["a", "b", "d"]})
    assert ids(await resp.json()) == ["a", "b"]
    resp = await client.post(f"/{db}/_all_docs", json={})
    assert resp.status == 200
    assert len((await resp.json())["rows"]) == 7


async def test_conflicts(client, filled):
    db, revs = filled
    other = "1-" + "0" * 32
    r = await client.put(f"/{db}/a", params={"new_edits": "false"}, json={"_rev": other, "n": "x"})
    assert r.status == 201
    body = await q(client, f"/{db}/_all_docs", include_docs=True, conflicts=True, key="a")
    (row,) = body["rows"]
    assert row["doc"]["_rev"] == revs["a"]
    assert row["doc"]["_conflicts"] == [other]
    body = await q(client, f"/{db}/_all_docs", include_docs=True, key="a")
    assert "_conflicts" not in body["rows"][0]["doc"]


async def test_update_seq(client, filled):
    db, _ = filled
    body = await q(client, f"/{db}/_all_docs", update_seq=True, limit=1)
    info = await (await client.get(f"/{db}")).json()
    assert body["update_seq"] == info["update_seq"]
    assert "update_seq" not in await q(client, f"/{db}/_all_docs", limit=1)


async def test_design_docs(client, filled):
    db, revs = filled
    body = await q(client, f"/{db}/_design_docs")
    assert ids(body) == ["_design/x", "_design/y"]
    assert body["total_rows"] == 2  # the number of design documents (couch_mrview get_total_rows)
    assert body["rows"][0]["value"] == {"rev": revs["_design/x"]}
    body = await q(client, f"/{db}/_design_docs", descending=True)
    assert ids(body) == ["_design/y", "_design/x"]
    body = await q(client, f"/{db}/_design_docs", limit=1)
    assert ids(body) == ["_design/x"]
    assert body["total_rows"] == 2
    body = await q(client, f"/{db}/_design_docs", include_docs=True, key="_design/y")
    assert body["rows"][0]["doc"]["views"] == {}
    resp = await client.post(f"/{db}/_design_docs", json={"keys": ["_design/y", "_design/nope"]})
    rows = (await resp.json())["rows"]
    assert rows[0]["id"] == "_design/y"
    assert rows[1] == {"key": "_design/nope", "error": "not_found"}


async def test_local_docs(client, filled):
    db, _ = filled
    await client.put(f"/{db}/_local/another", json={"l": 2})
    body = await q(client, f"/{db}/_local_docs")
    assert ids(body) == ["_local/another", "_local/loc"]
    assert body["rows"][0]["value"] == {"rev": "0-1"}
    assert body["total_rows"] is None  # CouchDB does not count local docs
    body = await q(client, f"/{db}/_local_docs", include_docs=True, key="_local/loc")
    assert body["rows"][0]["doc"] == {"_id": "_local/loc", "_rev": "0-1", "l": 1}
    body = await q(client, f"/{db}/_local_docs", descending=True, limit=1)
    assert ids(body) == ["_local/loc"]
    resp = await client.post(f"/{db}/_local_docs", json={"keys": ["_local/loc", "_local/none"]})
    rows = (await resp.json())["rows"]
    assert rows[0]["id"] == "_local/loc"
    assert rows[1] == {"key": "_local/none", "error": "not_found"}


async def test_wrong_method(client, db):
    for resp in (await client.put(f"/{db}/_all_docs", json={}), await client.delete(f"/{db}/_design_docs")):
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET,HEAD,POST"
        assert await resp.json() == {"error": "method_not_allowed", "reason": "Only GET,HEAD,POST allowed"}


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    docids=st.lists(st.text(alphabet="abcxyzABC019_-é", min_size=1, max_size=5).filter(lambda s: not s.startswith("_")),
                    min_size=1, max_size=12, unique=True),
    descending=st.booleans(),
    skip=st.integers(0, 4),
    limit=st.one_of(st.none(), st.integers(0, 6)),
)
async def test_listing_matches_a_sorted_model(server, docids, descending, skip, limit):
    """Bounded property: _all_docs equals a sorted (by UTF-8 bytes / code point) model of the ids."""
    import aiohttp

    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth) as client:
        name = f"alldocs-prop-{uuid.uuid4().hex[:10]}"
        await client.put(f"/{name}")
        try:
            r = await client.post(f"/{name}/_bulk_docs", json={"docs": [{"_id": i} for i in docids]})
            assert r.status == 201
            params = {"descending": str(descending).lower(), "skip": str(skip)}
            if limit is not None:
                params["limit"] = str(limit)
            body = await (await client.get(f"/{name}/_all_docs", params=params)).json()
            model = sorted(docids, reverse=descending)[skip:]
            if limit is not None:
                model = model[:limit]
            assert ids(body) == model
            assert body["total_rows"] == len(docids)
        finally:
            await client.delete(f"/{name}")


async def test_big_integers_and_field_order_in_listings(client, db):
    raw = b'{"big":18446744073709551616,"z":1,"a":2}'
    r = await client.put(f"/{db}/big", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 201
    text = await (await client.get(f"/{db}/_all_docs", params={"include_docs": "true"})).read()
    assert b'"big":18446744073709551616,"z":1,"a":2' in text
    resp = await client.post(f"/{db}/_bulk_get", json={"docs": [{"id": "big"}]})
    assert b'"big":18446744073709551616,"z":1,"a":2' in await resp.read()
    resp = await client.post(f"/{db}/_all_docs", params={"include_docs": "true"}, json={"keys": ["big"]})
    assert b'"big":18446744073709551616' in await resp.read()
