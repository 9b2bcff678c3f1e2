"""Saving design documents as CouchDB 3.4.3 answers it (each sent to both servers)."""

from __future__ import annotations

from .model import Req
from .parity import parity

MAP = {"map": "function(doc) { emit(doc.x, 1); }"}


def put(docid: str, body: dict) -> Req:
    return Req("PUT", f"/{{db}}/{docid}", body=body, endpoint="PUT /{db}/_design/{ddoc}")


async def test_member_types_checked_in_couchdbs_order(server, couchdb):
    for body, reason in [
        ({"views": {"v": {"map": 1}}}, "`views.v.map` field must have string type"),
        ({"views": {"v": 1}}, "`views.v` field must have object type"),
        ({"views": {"lib": 1}}, "`views.lib` field must have object type"),
        ({"views": {"v": {"reduce": "_count"}}}, "View `v` must contain map function"),
        ({"language": 1, "views": 1}, "`language` field must have string type"),
        ({"filters": {"f": 1}}, "`filters.f` field must have string or object type"),
        ({"shows": {"s": 1}}, "`shows.s` field must have string or object type"),
        ({"rewrites": 1}, "`rewrites` field must have array or string type"),
        ({"validate_doc_update": 1}, "`validate_doc_update` field must have string type"),
        # every view's member types before any view's reduce function
        ({"views": {"v": {"reduce": "_nope", **MAP}, "w": {"map": 1}}}, "`views.w.map` field must have string type"),
        ({"views": {"v": {"reduce": "_nope", **MAP}}}, "`_nope` is not a supported reduce function."),
    ]:
        got = await parity(server, couchdb, [put("_design/d", body)])
        assert got.status == 400 and got.body == {"error": "invalid_design_doc", "reason": reason}, body


async def test_unknown_language_saved_without_its_reduce_checked(server, couchdb):
    got = await parity(server, couchdb, [put("_design/d", {"language": "cobol", "views": {"v": {**MAP, "reduce": "_nope"}}})])
    assert got.status == 201


async def test_conflict_before_validation(server, couchdb):
    bad = {"views": {"v": {"map": 1}}}
    good = put("_design/d", {"views": {"v": MAP}})
    for setup, body in [([], {**bad, "_rev": "1-" + "a" * 32}),   # a revision of a missing document
                        ([good], bad),                            # no revision of an existing one
                        ([good], {**bad, "_rev": "1-" + "a" * 32})]:
        got = await parity(server, couchdb, [*setup, put("_design/d", body)])
        assert got.status == 409 and got.body["error"] == "conflict", body
    got = await parity(server, couchdb, [good, put("_design/d", {**bad, "_rev": "$rev:_design/d"})])
    assert got.status == 400 and got.body["error"] == "invalid_design_doc"
