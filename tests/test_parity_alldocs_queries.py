"""`POST /{db}/_all_docs/queries` and `_design_docs/queries` answered as Apache CouchDB 3.4.3
answers them (each query's members over the query string's parameters)."""

from __future__ import annotations

import pytest

from tests.differential.model import Req
from tests.differential.parity import parity

DOCS = Req("POST", "/{db}/_bulk_docs", body={"docs": [{"_id": i} for i in ("a", "b", "c", "_design/x", "_design/y")]},
           endpoint="POST /{db}/_bulk_docs")


def queries(path: str, body, **query: str) -> Req:
    return Req("POST", path, tuple(query.items()), body=body, endpoint="POST " + path)


@pytest.mark.parametrize("path,body,query", [
    ("/{db}/_all_docs/queries", {"queries": [{}, {"keys": ["b", "z"]}, {"startkey": "b", "limit": 1},
                                             {"descending": True, "skip": 1}]}, {}),
    ("/{db}/_all_docs/queries", {"queries": [{"include_docs": True}, {"limit": 5}]}, {"limit": "2"}),
    ("/{db}/_all_docs/queries", {"queries": [{"startkey": "b"}, {"endkey": "b"}, {}]}, {"startkey": '"a"'}),
    ("/{db}/_design_docs/queries", {"queries": [{}, {"endkey": "_design/x"}]}, {}),
    ("/{db}/_all_docs/queries", {"queries": []}, {}),
])
async def test_queries_answered_as_couchdb(server, couchdb, path, body, query):
    got = await parity(server, couchdb, [DOCS, queries(path, body, **query)])
    assert got.status == 200 and len(got.body["results"]) == len(body["queries"])


@pytest.mark.parametrize("body", [{"queries": {}}, {"queries": [{"limit": -1}]}, {}])
async def test_bad_queries_refused_as_couchdb(server, couchdb, body):
    got = await parity(server, couchdb, [DOCS, queries("/{db}/_all_docs/queries", body)])
    assert got.status == 400


async def test_a_query_that_is_not_an_object_is_a_400(client, db):
    # CouchDB 3.4.3 answers 500 function_clause (docs/interop.md, couchdb-5xx)
    async with client.post(f"/{db}/_all_docs/queries", json={"queries": [1]}) as r:
        assert (r.status, await r.json()) == (400, {"error": "bad_request", "reason": "Each query must be a JSON object."})


async def test_a_view_multi_query_without_queries(server, couchdb):
    ddoc = Req("PUT", "/{db}/_design/d", body={"views": {"v": {"map": "function(doc) { emit(doc._id, 1); }"}}},
               endpoint="PUT /{db}/_design/{ddoc}")
    got = await parity(server, couchdb, [ddoc, queries("/{db}/_design/d/_view/v/queries", {})])
    assert got.body == {"error": "bad_request", "reason": "POST body must include `queries` parameter."}
