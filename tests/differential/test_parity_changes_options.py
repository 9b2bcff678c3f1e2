"""`_changes` options as CouchDB 3.4.3 reads them: which fault of a request wrong in several ways
it names (the numeric parameters in query-string order, then the filter, then the feed type,
then `since`), and a POST's `doc_ids` (read from the body, and only with `filter=_doc_ids`)."""

from __future__ import annotations

from .model import Req
from .parity import both, parity

A = Req("PUT", "/{db}/a", body={"x": 1}, endpoint="PUT /{db}/{doc}")
B = Req("PUT", "/{db}/b", body={"x": 2}, endpoint="PUT /{db}/{doc}")
FEED = "Supported `feed` types: normal, continuous, live, longpoll, eventsource"
HEARTBEAT = "Invalid heartbeat value. Expecting a positive integer value (in milliseconds)."


def get(**query: str) -> Req:
    return Req("GET", "/{db}/_changes", tuple(query.items()), endpoint="GET /{db}/_changes")


def post(body: dict, **query: str) -> Req:
    return Req("POST", "/{db}/_changes", tuple(query.items()), body, endpoint="POST /{db}/_changes")


async def test_first_fault_named_as_couchdb_names_it(server, couchdb):
    cases = [
        ({"feed": "x", "since": "bad"}, 400, FEED),
        ({"style": "x", "since": "bad"}, 400, "Malformed sequence supplied in 'since' parameter."),
        ({"filter": "_doc_ids", "feed": "x"}, 400, "`doc_ids` filter parameter is not a list of doc ids."),
        ({"filter": "d/f", "since": "bad"}, 404, "missing"),
        ({"filter": "d/f", "style": "x"}, 404, "missing"),
        ({"filter": "_", "feed": "x"}, 400, "unknown builtin filter name"),
        ({"filter": "x", "feed": "x"}, 400, "`filter` must be of the form `designname/filtername`"),
        ({"filter": "_view", "feed": "x"}, 400, "`view` filter parameter is not provided."),
        ({"filter": "_selector", "feed": "x"}, 400, "Selector must be specified in POST payload"),
        ({"seq_interval": "0", "feed": "x"}, 400, "invalid_seq_interval"),
        ({"heartbeat": "x", "feed": "x"}, 400, HEARTBEAT),
        ({"filter": "d/f", "heartbeat": "x"}, 400, HEARTBEAT),
        ({"heartbeat": "x", "limit": "x"}, 400, HEARTBEAT),
        ({"heartbeat": ""}, 400, HEARTBEAT),
        ({"heartbeat": "0"}, 400, "The heartbeat value should be a positive integer (in milliseconds)."),
    ]
    for query, status, reason in cases:
        got = await parity(server, couchdb, [A, get(**query)])
        assert got.status == status and got.body["reason"] == reason, query


async def test_negative_timeout_is_taken(server, couchdb):
    got = await parity(server, couchdb, [A, get(timeout="-1")])
    assert got.status == 200 and len(got.body["results"]) == 1


async def test_post_doc_ids_need_the_filter(server, couchdb):
    for body in ({"doc_ids": ["a"]}, {"doc_ids": None}, {"doc_ids": "x"}):
        got = await parity(server, couchdb, [A, B, post(body)])
        assert got.status == 200 and [r["id"] for r in got.body["results"]] == ["a", "b"], body
    got = await parity(server, couchdb, [A, B, post({"doc_ids": ["b"]}, filter="_doc_ids")])
    assert [r["id"] for r in got.body["results"]] == ["b"]
    # a POST reads them from its body only
    got = await parity(server, couchdb, [A, B, post({}, filter="_doc_ids", doc_ids='["a"]')])
    assert got.status == 400 and got.body["reason"] == "`doc_ids` filter parameter is not a list of doc ids."


async def test_empty_limit_is_a_client_error(server, couchdb):
    # known difference couchdb-5xx: CouchDB crashes (500 badarg)
    mine, theirs = await both(server, couchdb, [A, get(limit="")])
    assert theirs.status == 500
    assert mine.status == 400 and mine.body["error"] == "query_parse_error"


async def test_filter_functions_checked_before_the_feed(server, couchdb):
    views = Req("PUT", "/{db}/_design/d", body={"views": {"v": {"map": "function(doc) { emit(1); }"}}},
                endpoint="PUT /{db}/_design/{ddoc}")
    filters = Req("PUT", "/{db}/_design/e", body={"filters": {"g": "function(doc) { return true; }"}},
                  endpoint="PUT /{db}/_design/{ddoc}")
    form = "`filter` must be of the form `designname/filtername`"
    for query, status, reason in [({"filter": "d/f"}, 404, "missing json key: filters"),
                                  ({"filter": "e/f"}, 404, "missing json key: f"),
                                  ({"filter": "d/"}, 400, form), ({"filter": "/f"}, 400, form),
                                  ({"filter": "_view", "view": "d/x"}, 404, "missing json key: x"),
                                  ({"filter": "_view", "view": "e/x"}, 404, "missing json key: views")]:
        # no document to filter: the function is looked for all the same
        got = await parity(server, couchdb, [views, filters, get(**query)])
        assert got.status == status and got.body["reason"] == reason, query


async def test_seq_interval_leaves_seqs_out(server, couchdb):
    # a row carries its seq only when the limit left (CouchDB's default 10^15, or the request's)
    # is a multiple of the interval
    docs = [Req("PUT", f"/{{db}}/{d}", body={"x": 1}, endpoint="PUT /{db}/{doc}") for d in "abcd"]
    for query, present in [({"seq_interval": "2"}, [True, False, True, False]),
                           ({"seq_interval": "3", "limit": "2"}, [False, False]),
                           ({"seq_interval": "2", "descending": "true"}, [True, False, True, False]),
                           ({"seq_interval": "3", "feed": "longpoll"}, [False, True, False, False]),
                           ({"seq_interval": "2", "limit": "5"}, [False, True, False, True])]:
        got = await parity(server, couchdb, [*docs, get(**query)])
        assert [r["seq"] is not None for r in got.body["results"]] == present, query
