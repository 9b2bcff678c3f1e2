"""Error handling through a real couchpy server: every error has CouchDB's JSON shape and status.

Malformed JSON -> 400 bad_request; unknown paths -> 404; a known path with a wrong method -> 405
method_not_allowed; a body over [chttpd] max_http_request_size -> 413 too_large (chttpd.erl
error_info); and whatever a client sends, never a 500 (a bounded hypothesis fuzz).
"""

from __future__ import annotations

import json
import uuid

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
async def db(client):
    name = f"errors-{uuid.uuid4().hex[:12]}"
    assert (await client.put(f"/{name}")).status == 201
    await client.put(f"/{name}/doc", json={"a": 1})
    yield name
    await client.delete(f"/{name}")


async def assert_error(resp, status, error=None):
    assert resp.status == status, (resp.status, await resp.text())
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.json()
    assert set(body) == {"error", "reason"}, body
    assert isinstance(body["error"], str) and isinstance(body["reason"], str)
    if error is not None:
        assert body["error"] == error, body
    return body


JSON = {"Content-Type": "application/json"}

MALFORMED = [
    b"{",
    b'{"a":}',
    b"{'a': 1}",
    b'{"a":1,}',
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":"\xff\xfe"}',
    b'{"a":1} {"b":2}',
    b"\x00",
]


@pytest.mark.parametrize("raw", MALFORMED)
async def test_malformed_json_is_400(client, db, raw):
    for method, path in [
        ("PUT", f"/{db}/newdoc"),
        ("POST", f"/{db}"),
        ("POST", f"/{db}/_bulk_docs"),
        ("POST", f"/{db}/_all_docs"),
        ("POST", f"/{db}/_revs_diff"),
        ("POST", f"/{db}/_bulk_get"),
        ("POST", f"/{db}/_changes"),
        ("POST", "/_dbs_info"),
    ]:
        resp = await client.request(method, path, data=raw, headers=JSON)
        await assert_error(resp, 400, "bad_request")
    assert (await client.get(f"/{db}/newdoc")).status == 404


async def test_empty_body_is_400(client, db):
    resp = await client.put(f"/{db}/newdoc", data=b"", headers=JSON)
    await assert_error(resp, 400, "bad_request")
    resp = await client.post(f"/{db}/_bulk_docs", data=b"", headers=JSON)
    await assert_error(resp, 400, "bad_request")


async def test_big_integers_are_not_an_error(client, db):
    raw = b'{"n":18446744073709551616}'
    resp = await client.put(f"/{db}/bigint", data=raw, headers=JSON)
    assert resp.status == 201
    assert b"18446744073709551616" in await (await client.get(f"/{db}/bigint")).read()


@pytest.mark.parametrize("path", ["/nosuchdb-zz", "/_utils_nope/x", "/nosuchdb-zz/doc/att/more"])
async def test_unknown_paths_are_404(client, path):
    resp = await client.get(path)
    await assert_error(resp, 404, "not_found")


async def test_unknown_underscore_path(client):
    # CouchDB 3.4.3 reads `/_typo` as a database that does not exist (a PUT of it would be 400)
    resp = await client.get("/_nonexistent")
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "reason": "Database does not exist."}


async def test_missing_db_and_doc_are_404(client, db):
    await assert_error(await client.get(f"/{db}-nope"), 404, "not_found")
    await assert_error(await client.get(f"/{db}/nope"), 404, "not_found")
    await assert_error(await client.get(f"/{db}/_design/nope"), 404, "not_found")
    await assert_error(await client.get(f"/{db}/_local/nope"), 404, "not_found")
    await assert_error(await client.get(f"/{db}/doc/no-such-attachment"), 404, "not_found")


@pytest.mark.parametrize(
    "method,path",
    [
        ("DELETE", "/_all_dbs"),
        ("POST", "/_all_dbs"),
        ("PUT", "/_uuids"),
        ("POST", "/_up"),
        ("DELETE", "/_dbs_info"),
        ("PATCH", "/{db}"),
        ("PATCH", "/{db}/doc"),
        ("GET", "/{db}/_bulk_docs"),
        ("PUT", "/{db}/_bulk_docs"),
        ("GET", "/{db}/_revs_diff"),
        ("GET", "/{db}/_missing_revs"),
        ("GET", "/{db}/_bulk_get"),
        ("GET", "/{db}/_compact"),
        ("DELETE", "/{db}/_compact"),
        ("GET", "/{db}/_ensure_full_commit"),
        ("POST", "/{db}/_revs_limit"),
        ("PUT", "/{db}/_all_docs"),
        ("DELETE", "/{db}/_changes"),
    ],
)
async def test_wrong_method_is_405(client, db, method, path):
    resp = await client.request(method, path.format(db=db), json={})
    await assert_error(resp, 405, "method_not_allowed")


async def test_wrong_method_does_not_touch_anything(client, db):
    await client.request("PATCH", f"/{db}/doc", json={"a": 2})
    doc = await (await client.get(f"/{db}/doc")).json()
    assert doc["a"] == 1


async def test_body_over_max_http_request_size(new_server):
    srv = new_server(config={"chttpd": {"max_http_request_size": "20000"}})
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as client:
        assert (await client.put("/big")).status == 201
        resp = await client.put("/big/doc", json={"data": "x" * 30000})
        await assert_error(resp, 413, "too_large")
        resp = await client.post("/big/_bulk_docs", json={"docs": [{"data": "y" * 30000}]})
        await assert_error(resp, 413, "too_large")
        # a chunked body (no Content-Length) is cut off the same way

        async def chunks():
            yield b'{"data":"'
            for _ in range(10):
                yield b"z" * 5000
            yield b'"}'

        resp = await client.put("/big/chunked", data=chunks(), headers={"Content-Type": "application/json"})
        await assert_error(resp, 413, "too_large")
        # under the limit still works, and the server is fine afterwards
        resp = await client.put("/big/small", json={"data": "x" * 1000})
        assert resp.status == 201
        assert (await client.get("/big/doc")).status == 404
        assert (await client.get("/_up")).status == 200


async def test_bad_query_params_are_400(client, db):
    for path, params in [
        (f"/{db}/_all_docs", {"limit": "nope"}),
        (f"/{db}/_all_docs", {"startkey": "{"}),
        (f"/{db}/_changes", {"limit": "x"}),
        (f"/{db}/_changes", {"since": "notaseq"}),
        (f"/{db}/_changes", {"heartbeat": "x", "feed": "continuous"}),
        (f"/{db}/doc", {"open_revs": "[bad"}),
        ("/_uuids", {"count": "x"}),
    ]:
        resp = await client.get(path, params=params)
        assert resp.status == 400, (path, params, resp.status)
        body = await resp.json()
        assert set(body) == {"error", "reason"}


# --------------------------------------------------------------------------- never a 500

SEGMENTS = st.sampled_from(
    ["{db}", "doc", "_design", "_local", "_all_docs", "_changes", "_bulk_docs", "_bulk_get", "_revs_diff",
     "_missing_revs", "_compact", "_revs_limit", "_ensure_full_commit", "_design_docs", "_local_docs",
     "_uuids", "_all_dbs", "_dbs_info", "x", "%2F", "%00", "..", "_", "a%20b", "att", "é"]
)
QUERY_KEYS = st.sampled_from(
    ["rev", "revs", "open_revs", "latest", "limit", "skip", "startkey", "endkey", "key", "keys", "descending",
     "since", "feed", "style", "filter", "doc_ids", "include_docs", "conflicts", "count", "new_edits",
     "batch", "heartbeat", "timeout", "meta", "local_seq", "revs_info", "inclusive_end", "update_seq"]
)
QUERY_VALUES = st.sampled_from(
    ["true", "false", "0", "-1", "1", "99999999999999999999", "now", "all", '["1-abc"]', "[", '"a"',
     "normal", "longpoll", "{}", "null", "", "x", "1-" + "a" * 32, "NaN"]
)
BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=40),
    st.sampled_from([b"{}", b"[]", b"null", b"1", b'"s"', b'{"docs":[{}]}', b'{"docs":[1,"a",null]}',
                     b'{"keys":[1,{},null]}', b'{"_id":5}', b'{"_rev":{}}', b'{"_deleted":"yes"}',
                     b'{"_revisions":{"start":"a","ids":5}}', b'{"_attachments":{"a":{"data":"!!"}}}',
                     b'{"a":[[[[[[[[[[1]]]]]]]]]]}', b'{"doc_ids":"x"}', b'{"_id":"_design/"}',
                     b'{"docs":[{"_id":"x","_rev":"1-a"}],"new_edits":false}']),
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "COPY"]),
    segments=st.lists(SEGMENTS, min_size=1, max_size=4),
    query=st.dictionaries(QUERY_KEYS, QUERY_VALUES, max_size=3),
    body=BODIES,
    destination=st.sampled_from([None, "", "x", "_design/x", "_bad", "a?rev=1-x"]),
)
async def test_never_a_500(server, method, segments, query, body, destination):
    """Arbitrary combinations of paths, parameters and bodies get a CouchDB answer, never a 500."""
    name = "fuzz-db"
    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth,
                                     timeout=aiohttp.ClientTimeout(total=20)) as client:
        if (await client.head(f"/{name}")).status == 404:
            await client.put(f"/{name}")
            await client.put(f"/{name}/doc", json={"a": 1})
        path = "/" + "/".join(s.format(db=name) for s in segments)
        if "feed" in query:
            query["timeout"] = "50"  # never wait long on a feed
        headers = {"Content-Type": "application/json"}
        if destination is not None:
            headers["Destination"] = destination
        resp = await client.request(method, path, params=query, data=body, headers=headers)
        data = await resp.read()
        assert resp.status < 500, (method, path, query, body, resp.status, data[:300])
        if resp.status >= 400 and method != "HEAD":
            err = json.loads(data)
            assert set(err) == {"error", "reason"}, err
        assert (await client.get("/_up")).status == 200


async def test_abandoned_feeds_and_requests_leave_no_errors(server, client, db):
    """Clients that hang up mid-feed or mid-body are routine: no unhandled error is logged."""
    import asyncio

    before = server.log_path.stat().st_size
    for feed in ("continuous", "eventsource", "longpoll"):
        for _ in range(10):
            session = aiohttp.ClientSession(base_url=server.base, auth=server.auth)
            resp = await session.get(f"/{db}/_changes", params={"feed": feed, "since": "0", "heartbeat": "50"})
            await resp.content.readline()
            resp.close()  # drop the connection while the feed is live
            await session.close()
    # a client that sends half a body and goes away
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    auth = server.auth.encode()
    writer.write(f"PUT /{db}/half HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":".encode())
    await writer.drain()
    writer.close()
    for i in range(5):
        assert (await client.put(f"/{db}/after{i}", json={})).status == 201
    await asyncio.sleep(0.5)
    assert (await client.get("/_up")).status == 200
    with open(server.log_path, "rb") as f:
        f.seek(before)
        log = f.read().decode(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
    assert (await client.get(f"/{db}/half")).status == 404
