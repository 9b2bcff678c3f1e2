"""`_bulk_docs` edge cases as CouchDB 3.4.3 answers them (each sent to both servers)."""

from __future__ import annotations

from .model import Req
from .parity import parity

INFO = Req("GET", "/{db}", endpoint="GET /{db}")
CHANGES = Req("GET", "/{db}/_changes", endpoint="GET /{db}/_changes")


def bulk(body: dict) -> Req:
    return Req("POST", "/{db}/_bulk_docs", body=body, endpoint="POST /{db}/_bulk_docs")


async def test_edits_of_one_document_share_one_sequence(server, couchdb):
    replicated = bulk({"new_edits": False, "docs": [
        {"_id": "b", "_rev": "1-" + "b" * 32}, {"_id": "a", "_rev": "2-" + "c" * 32, "x": 1},
        {"_id": "a", "_rev": "3-" + "d" * 32}, {"_id": "a", "_rev": "1-" + "e" * 32}]})
    got = await parity(server, couchdb, [replicated, INFO])
    assert got.body["update_seq"].startswith("2-")
    got = await parity(server, couchdb, [replicated, CHANGES])
    assert [(r["id"], r["seq"].split("-")[0]) for r in got.body["results"]] == [("a", "1"), ("b", "2")]
    # interactive edits of two leaves of one document: one sequence too
    leaves = bulk({"docs": [{"_id": "a", "_rev": "3-" + "d" * 32, "v": 1}, {"_id": "a", "_rev": "1-" + "e" * 32, "v": 2},
                            {"_id": "c"}]})
    got = await parity(server, couchdb, [replicated, leaves])
    assert [row.get("ok") for row in got.body] == [True, True, True]
    got = await parity(server, couchdb, [replicated, leaves, INFO])
    assert got.body["update_seq"].startswith("4-")
    got = await parity(server, couchdb, [replicated, leaves, CHANGES])
    assert [(r["id"], r["seq"].split("-")[0]) for r in got.body["results"]] == [("b", "2"), ("a", "3"), ("c", "4")]
    # a later request is a new sequence
    again = Req("PUT", "/{db}/b", body={"_rev": "1-" + "b" * 32}, endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [replicated, again, CHANGES])
    assert [(r["id"], r["seq"].split("-")[0]) for r in got.body["results"]] == [("a", "1"), ("b", "3")]
