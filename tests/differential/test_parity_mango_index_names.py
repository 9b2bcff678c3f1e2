"""A Mango index created without a name or design document gets the name CouchDB 3.4.3 gives
it (mango_idx:gen_name: the SHA-1 of the Erlang term of its definition and options), so its
design document sorts among the others as CouchDB's does; a JSON index's definition knows
`fields` and `partial_filter_selector` only. Checked against the real CouchDB."""

from __future__ import annotations

import hashlib

from couchpy import jsonutil

from .model import Req
from .parity import both, parity


def index(body: object) -> Req:
    return Req("POST", "/{db}/_index", body=body, endpoint="POST /{db}/_index")


async def test_auto_names_are_couchdbs(server, couchdb):
    # the normaliser names digests by order of appearance: the ids themselves are compared here
    for body in [{"index": {"fields": ["a"]}}, {"index": {"fields": ["a"]}, "name": "x"},
                 {"index": {"fields": ["a"]}, "ddoc": "m"}, {"index": {"fields": ["a"]}, "ddoc": "_design/m"},
                 {"index": {"fields": ["a"]}, "w": 3, "type": "json"}, {"index": {"fields": ["a"]}, "partitioned": False},
                 {"index": {"fields": [{"a": "desc"}, {"ü.b": "desc"}], "partial_filter_selector": {"x": {"$gt": 1.5}}}}]:
        mine, theirs = await both(server, couchdb, [index(body)])
        assert mine.status == theirs.status == 200 and mine.body == theirs.body, (body, mine.body, theirs.body)


async def test_index_design_documents_listed_alike(server, couchdb):
    # two indexes of one definition, one named: their design documents sort alike
    setup = [index({"index": {"fields": ["a"]}}), index({"index": {"fields": ["a"]}, "name": "x"}),
             index({"index": {"fields": ["b"]}, "ddoc": "m"}), index({"index": {"fields": ["b"]}, "ddoc": "m", "name": "y"})]
    for probe in (Req("GET", "/{db}/_all_docs", (("include_docs", "true"),), endpoint="GET /{db}/_all_docs"),
                  Req("GET", "/{db}/_index", endpoint="GET /{db}/_index")):
        got = await parity(server, couchdb, [*setup, probe])
        assert got.status == 200


async def test_unknown_definition_member_refused(server, couchdb):
    for body, key in [({"index": {"fields": ["a"], "selector": {"x": 1}}}, "selector"),
                      ({"index": {"fields": ["a"], "extra": 1, "other": 2}}, "extra")]:
        got = await parity(server, couchdb, [index(body)])
        assert got.status == 400 and got.body == {"error": "invalid_key", "reason": f"Invalid key {key} for this request."}


async def test_index_made_under_the_old_auto_name_still_exists(client, db):
    # couchpy used to digest the request's JSON: creating that index again finds it
    legacy = hashlib.sha1(jsonutil.dumps_sorted([{"index": {"fields": ["a"]}}, "json"])).hexdigest()
    view = {"map": {"fields": {"a": "asc"}, "partial_filter_selector": {}}, "reduce": "_count",
            "options": {"def": {"fields": ["a"]}}}
    async with client.put(f"/{db}/_design/{legacy}", json={"language": "query", "views": {legacy: view}}) as r:
        assert r.status == 201
    async with client.post(f"/{db}/_index", json={"index": {"fields": ["a"]}}) as r:
        assert (await r.json()) == {"result": "exists", "id": f"_design/{legacy}", "name": legacy}
    async with client.post(f"/{db}/_index", json={"index": {"fields": ["b"]}}) as r:
        assert (await r.json())["result"] == "created"
