"""A document body wrong in several ways: the first bad special member in the body's order is the
one reported, as CouchDB 3.4.3 reads it (couch_doc:transfer_fields); checked against it."""

from __future__ import annotations

from .model import Req
from .parity import parity

REV = {"error": "bad_request", "reason": "Invalid rev format"}


def member(name: str) -> dict:
    return {"error": "doc_validation", "reason": f"Bad special document member: {name}"}


async def test_first_bad_member_in_body_order(server, couchdb):
    cases = [({"_rev": "bad", "_foo": 1}, REV), ({"_foo": 1, "_rev": "bad"}, member("_foo")),
             ({"_rev": 1, "_foo": 1}, REV), ({"_attachments": 1, "_rev": "bad"}, member("_attachments")),
             ({"_rev": "bad", "_attachments": 1}, REV), ({"_deleted": 1, "_rev": "bad"}, member("_deleted")),
             ({"_deleted": None}, member("_deleted")), ({"_deleted": "true"}, member("_deleted")),
             ({"_revisions": {"start": 1, "ids": ["a"]}, "_rev": "bad", "_foo": 1}, member("_foo"))]
    for body, answer in cases:
        for req in (Req("PUT", "/{db}/v", body=body, endpoint="PUT /{db}/{doc}"),
                    Req("POST", "/{db}/_bulk_docs", body={"docs": [{"_id": "q", **body}]}, endpoint="POST /{db}/_bulk_docs")):
            got = await parity(server, couchdb, [req])
            assert got.status == 400 and got.body == answer, (req.method, body)


async def test_revisions_shape_reasons(server, couchdb):
    for revisions, reason in [(1, "Bad special document member: _revisions"),
                              ({"start": "x", "ids": ["a"]}, "_revisions.start isn't an integer."),
                              ({"start": True, "ids": ["a"]}, "_revisions.start isn't an integer."),
                              ({"start": 1, "ids": "a"}, "_revisions.ids isn't a array."),
                              ({"start": 1, "ids": [1]}, "RevId isn't a string")]:
        got = await parity(server, couchdb, [Req("PUT", "/{db}/w", body={"_revisions": revisions}, endpoint="PUT /{db}/{doc}")])
        assert got.status == 400 and got.body == {"error": "doc_validation", "reason": reason}, revisions


async def test_revisions_out_of_range_refused(server, couchdb):
    # documented difference `revisions-out-of-range`: CouchDB takes these histories (a new
    # document, or a conflict while its database handle has not loaded its validators)
    from .parity import both
    for revisions in ({"start": 1, "ids": ["x", "y"]}, {"start": 1, "ids": []}, {"start": 0, "ids": ["x"]}):
        req = Req("PUT", "/{db}/n", body={"_revisions": revisions}, endpoint="PUT /{db}/{doc}")
        mine, theirs = await both(server, couchdb, [req])
        assert mine.status == 400 and mine.body == {"error": "bad_request", "reason": "Invalid _revisions"}
        assert theirs.status in (201, 409), theirs.body  # 409 until its handle loads validators
