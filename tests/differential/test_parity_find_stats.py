"""`_find`'s `execution_stats` as CouchDB 3.4.3 counts them, checked against the real one.

CouchDB's cursor reads on past the last result it returns: the next result it meets ends the
scan and counts as examined (so `limit: 0` examines up to the first result), and an excluded
end of an `_id` range (`$gt`, `$lt`) is read and turned down by the selector.
"""

from __future__ import annotations

from .model import Req
from .parity import parity

DOCS = [Req("PUT", f"/{{db}}/{d}", body={"x": x}, endpoint="PUT /{db}/{doc}") for d, x in (("a", 1), ("b", 2), ("c", 3))]
DDOC = Req("PUT", "/{db}/_design/zz", body={}, endpoint="PUT /{db}/_design/{ddoc}")
INDEX = Req("POST", "/{db}/_index", body={"index": {"fields": ["x"]}}, endpoint="POST /{db}/_index")


def find(**body: object) -> Req:
    return Req("POST", "/{db}/_find", body={**body, "execution_stats": True}, endpoint="POST /{db}/_find")


def examined(answer) -> tuple[int, int, int]:
    stats = answer.body["execution_stats"]
    return stats["total_keys_examined"], stats["total_docs_examined"], stats["results_returned"]


async def test_stats_without_an_index(server, couchdb):
    # the design document sorts first: read, examined and turned down
    for query, counts in [
        (find(selector={"x": {"$gt": 0}}, limit=1), (3, 3, 1)),
        (find(selector={"x": {"$gt": 0}}, limit=0), (2, 2, 0)),
        (find(selector={"x": {"$gt": 0}}, limit=0, skip=5), (4, 4, 0)),
        (find(selector={"x": {"$gt": 1}}, limit=0), (3, 3, 0)),
        (find(selector={"x": {"$gt": 0}}, limit=2), (4, 4, 2)),
        (find(selector={"_id": {"$gt": "a"}}, limit=1), (3, 3, 1)),
        (find(selector={"_id": {"$lt": "c"}}, sort=[{"_id": "desc"}], limit=1), (3, 3, 1)),
    ]:
        got = await parity(server, couchdb, [*DOCS, DDOC, query])
        assert examined(got) == counts, (query.body, examined(got))


async def test_stats_with_an_index(server, couchdb):
    for query, counts in [
        (find(selector={"x": {"$gt": 0}}, limit=1), (2, 2, 1)),
        (find(selector={"x": {"$gt": 0}}, limit=0), (1, 1, 0)),
        (find(selector={"x": {"$gt": 0}, "y": 1}, limit=0), (3, 3, 0)),
        (find(selector={"x": {"$gt": 0}}, limit=2), (3, 3, 2)),
    ]:
        got = await parity(server, couchdb, [*DOCS, INDEX, query])
        assert examined(got) == counts, (query.body, examined(got))


async def test_stats_with_a_read_quorum(server, couchdb):
    # `r` above 1: CouchDB's shards send rows without documents, its coordinator reads them
    # (quorum reads) and passes design documents by before counting them
    def quorum(answer) -> tuple[int, int, int, int]:
        stats = answer.body["execution_stats"]
        return (stats["total_keys_examined"], stats["total_docs_examined"],
                stats["total_quorum_docs_examined"], stats["results_returned"])

    for setup, query, counts in [
        ([DDOC], find(selector={"y": 1}, skip=1, r=2), (0, 0, 0, 0)),
        ([*DOCS, DDOC], find(selector={"x": {"$gt": 0}}, r=2), (3, 0, 3, 3)),
        ([*DOCS, DDOC], find(selector={"x": {"$gt": 1}}, r=3, limit=0), (2, 0, 2, 0)),
        ([*DOCS, DDOC], find(selector={"x": {"$gt": 0}}, r=1, limit=0), (2, 2, 0, 0)),
        ([*DOCS, INDEX], find(selector={"x": {"$gt": 0}}, r=2, limit=1), (2, 0, 2, 1)),
    ]:
        got = await parity(server, couchdb, [*setup, query])
        assert quorum(got) == counts, (query.body, quorum(got))


async def test_a_design_document_counts_as_examined_only_when_the_selector_turns_it_down(server, couchdb):
    # `_design/zz` sorts before `a`: a selector that matches it sends it to CouchDB's coordinator,
    # which passes it by uncounted; one that does not match it counts it as examined
    for selector, counts in [
        ({"_id": {"$gt": ""}}, (3, 3, 3)),
        ({"_id": {"$exists": True}}, (3, 3, 3)),
        ({"_id": {"$regex": "."}}, (3, 3, 3)),
        ({"_id": {"$lte": "_design/zzz"}}, (0, 0, 0)),
        ({"_id": {"$in": ["a", "b"]}}, (4, 4, 2)),
        ({"x": {"$gt": 0}, "_id": {"$gt": ""}}, (4, 4, 3)),
        ({"$or": [{"_id": "a"}, {"x": 2}]}, (4, 4, 2)),
    ]:
        got = await parity(server, couchdb, [*DOCS, DDOC, find(selector=selector)])
        assert examined(got) == counts, (selector, examined(got))


async def test_an_id_range_no_string_falls_in_examines_nothing(server, couchdb):
    # ids are strings, compared raw (Erlang's term order): every other value sorts before them
    for selector in ({"_id": {"$lt": None}}, {"_id": {"$lte": False}}, {"_id": {"$lt": 5}},
                     {"_id": {"$lt": []}}, {"_id": {"$lte": {}}}, {"_id": 1}):
        got = await parity(server, couchdb, [*DOCS, DDOC, find(selector=selector)])
        assert examined(got) == (0, 0, 0), (selector, examined(got))
    for selector in ({"_id": {"$gt": None}}, {"_id": {"$gt": []}}, {"_id": {"$gte": {}}}):
        got = await parity(server, couchdb, [*DOCS, DDOC, find(selector=selector)])
        assert examined(got) == (3, 3, 3), (selector, examined(got))
