"""_all_docs key ranges as Apache CouchDB 3.4.3 answers them (PouchDB's allDocs tests rely on
these): each query runs against couchpy and the real CouchDB, and both answers are checked."""

from __future__ import annotations

from tests.parity import on_both

INCOMPATIBLE = {"error": "query_parse_error", "reason": "`keys` is incompatible with `key`, `start_key` and `end_key`"}

GETS = [
    'startkey="2"&endkey="1"',
    'startkey="2"&endkey="1"&skip=1',
    'start_key="2"&end_key="1"&inclusive_end=false',
    'startkey="1"&endkey="2"&descending=true',
    'key="1"&startkey="0"',
    'startkey="0"&key="1"',
    'key="1"&endkey="3"',
    'key="1"&startkey="2"',
    'key="1"&startkey="0"&endkey="3"',
    'key="1"&descending=true&startkey="3"',
    'key="1"&inclusive_end=false',
    'key="1"&keys=["1","2"]',
    'keys=["1","2"]&key="1"',
    'key="2"&keys=["1"]',
    'keys=["1"]&startkey="2"',
    'keys=["1"]&endkey="0"',
    'keys=["1","3"]&start_key="0"',
    'key="0"&keys=[]',
]
POSTS = [
    ("", {"keys": ["1"], "key": "1"}),
    ("", {"keys": ["1"], "startkey": "1"}),
    ("", {"key": "1", "keys": ["2", "3"]}),
    ("", {"key": "1", "startkey": "0"}),
    ('key="3"', {"keys": ["2"]}),
    ('endkey="1"', {"startkey": "0"}),
    ('startkey="1"', {"startkey": "3", "endkey": "0"}),
]


def _shape(status, body):
    if status != 200:
        return status, body
    rows = [(r["key"], r.get("id"), r.get("error")) for r in body["rows"]]
    return status, body["total_rows"], body["offset"], rows


async def test_key_ranges_and_keys(client, couch_client):
    async def scenario(call, db):
        status, _ = await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": i} for i in "0123"]})
        assert status == 201
        out = {}
        for q in GETS:
            out[q] = _shape(*await call("GET", f"/{db}/_all_docs?{q}"))
        for q, body in POSTS:
            out[(q, str(body))] = _shape(*await call("POST", f"/{db}/_all_docs?{q}", body))
        return out

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs['startkey="2"&endkey="1"'] == (200, 4, 2, [])
    assert theirs['key="1"&startkey="0"'] == (200, 4, 0, [("0", "0", None), ("1", "1", None)])
    assert theirs['key="1"&keys=["1","2"]'] == (400, INCOMPATIBLE)
    assert theirs['key="2"&keys=["1"]'] == (200, 4, None, [("1", "1", None)])
    assert theirs[('key="3"', str({"keys": ["2"]}))] == (400, INCOMPATIBLE)
    assert {q: v for q, v in ours.items() if v != theirs[q]} == {}


async def test_keys_with_attachments_inline_their_data(client, couch_client):
    async def scenario(call, db):
        att = {"t.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}
        await call("PUT", f"/{db}/a", {"_attachments": att})
        await call("PUT", f"/{db}/b", {})
        out = []
        for query in ({"include_docs": True, "attachments": True}, {"include_docs": True}):
            status, body = await call("POST", f"/{db}/_all_docs", {"keys": ["a", "b", "c"]}, **query)
            for row in body["rows"]:
                row.pop("value", None)
                if row.get("doc"):
                    del row["doc"]["_rev"]
                    for stub in row["doc"].get("_attachments", {}).values():
                        del stub["digest"]  # CouchDB digests the gzip stream it stores
            out.append((status, body["rows"]))
        return out

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs[0][1][0]["doc"]["_attachments"]["t.txt"]["data"] == "aGVsbG8="
    assert theirs[1][1][0]["doc"]["_attachments"]["t.txt"]["stub"] is True
    assert ours == theirs


async def test_local_documents_have_no_attachments(client, couch_client):
    async def scenario(call, db):
        att = {"foo.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}
        await call("PUT", f"/{db}/_local/bin_doc", {"_attachments": att})
        return [await call(method, f"/{db}/_local/{path}")
                for method, path in (("GET", "bin_doc/foo.txt"), ("GET", "bin_doc/bar.txt"),
                                     ("GET", "nodoc/foo.txt"), ("DELETE", "bin_doc/foo.txt"))]

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs[0] == (400, {"error": "bad_request", "reason": "_local documents do not accept attachments."})
    assert ours == theirs
