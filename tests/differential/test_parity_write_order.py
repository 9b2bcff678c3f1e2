"""A document write wrong in several ways names the fault CouchDB 3.4.3 names (chttpd_db,
couch_doc:from_json_obj_validate): first the query string's `rev`, then the body, a JSON object,
its special members in the body's order (`_id`, `_rev`, `_attachments` with each inline
attachment's data, ...), then its attachments' names, then the revisions given in the query
string, the If-Match header and the body against each other, then `new_edits=false`'s revision
rule. `_bulk_docs` reads its documents one after the other, each with the revision rule before
its attachments' names. Checked against the real CouchDB."""

from __future__ import annotations

from .model import UNKNOWN_REV, Req
from .parity import parity

NO_DATA = {"t.txt": {"content_type": "text/plain"}}
BAD_NAME = {"_t": {"data": "aGk="}}
J = (("Content-Type", "application/json"),)
TEXT = (("Content-Type", "text/plain"),)


def bad(reason: str, error: str = "bad_request") -> dict:
    return {"error": error, "reason": reason}


REV = bad("Invalid rev format")
DATA = bad("Invalid attachment data for t.txt")
NAME = bad("Attachment name '_t' starts with prohibited character '_'")
DIFFERENT = bad("Document rev from request body and query string have different values")
NEEDS_REV = bad("When `new_edits: false`, the document needs `_rev` or `_revisions` specified")
NOT_OBJECT = bad("Document must be a JSON object")


def put(body, query=(), headers=J, path="/{db}/d") -> Req:
    return Req("PUT", path, query=tuple(query), body=body, headers=headers, endpoint="PUT /{db}/{doc}")


def post(body, query=()) -> Req:
    return Req("POST", "/{db}", query=tuple(query), body=body, headers=J, endpoint="POST /{db}")


def bulk(docs, **members) -> Req:
    return Req("POST", "/{db}/_bulk_docs", body={"docs": docs, **members}, endpoint="POST /{db}/_bulk_docs")


async def check(server, couchdb, cases):
    for req, answer in cases:
        got = await parity(server, couchdb, [req])
        assert (got.status, got.body) == (400, answer), req.describe()


async def test_query_rev_before_the_body(server, couchdb):
    await check(server, couchdb, [
        (put(b"{bad", [("rev", "bad")]), REV),
        (put(b"[1]", [("rev", "bad")]), REV),
        (put(b"[1]"), NOT_OBJECT),
        (put(b""), bad("invalid UTF-8 JSON")),
        (Req("POST", "/{db}", body=b"", headers=J, endpoint="POST /{db}"), bad("invalid UTF-8 JSON")),
        (Req("POST", "/{db}", body=b"[1]", headers=J, endpoint="POST /{db}"), NOT_OBJECT),
        # the body is read before the revisions are compared, whatever its Content-Type
        (put({"_rev": "bad"}, [("rev", UNKNOWN_REV)], TEXT), REV),
        (put({"_rev": "2-a", "_attachments": NO_DATA}, [("rev", UNKNOWN_REV)]), DATA),
        (put({"_rev": "2-a", "_attachments": BAD_NAME}, [("rev", UNKNOWN_REV)]), NAME),
        (put({"_foo": 1}, headers=(*J, ("If-Match", "bad"))), bad("Bad special document member: _foo", "doc_validation")),
        # the body's revision is its `_revisions`' newest when it has one
        (put({"_revisions": {"start": 1, "ids": ["a"]}}, [("rev", UNKNOWN_REV)]), DIFFERENT),
        (put({"_rev": "1-a", "_revisions": {"start": 2, "ids": ["b", "a"]}}, [("rev", "1-a")]), DIFFERENT),
    ])


async def test_members_in_body_order(server, couchdb):
    illegal = bad("Document id must be a string", "illegal_docid")
    await check(server, couchdb, [
        (put({"_attachments": NO_DATA, "_rev": "bad"}), DATA),
        (put({"_rev": "bad", "_attachments": NO_DATA}), REV),
        (put({"_attachments": NO_DATA, "_foo": 1}), DATA),
        (put({"_attachments": {"t": {"data": "!!"}}, "_foo": 1}), bad("Invalid attachment data for t")),
        (put({"_attachments": BAD_NAME, "_foo": 1}), bad("Bad special document member: _foo", "doc_validation")),
        # a PUT's body `_id` is checked too, in its place, though the path names the document
        (put({"_id": 1}), illegal),
        (put({"_id": "_bad"}), bad("Only reserved document ids may start with underscore.", "illegal_docid")),
        (put({"_id": 1, "_rev": "bad"}), illegal),
        (put({"_rev": "bad", "_id": 1}), REV),
        (post({"_rev": "bad", "_id": 1}), REV),
        (post({"_attachments": NO_DATA, "_id": 1}), DATA),
        (post({"_attachments": NO_DATA, "_id": "x", "_rev": "bad"}, [("batch", "ok")]), DATA),
        (put({"_attachments": NO_DATA, "_rev": "bad"}, path="/{db}/_local/x"), DATA),
        (put({"views": 1, "_attachments": NO_DATA}, path="/{db}/_design/x"), DATA),
    ])


async def test_replicated_writes(server, couchdb):
    await check(server, couchdb, [
        (put({"_attachments": NO_DATA}, [("new_edits", "false")]), DATA),
        (put({"_attachments": BAD_NAME}, [("new_edits", "false")]), NAME),
        (bulk([{"_attachments": NO_DATA, "_rev": "bad"}]), DATA),
        (bulk([{"_attachments": NO_DATA, "_id": 1}]), DATA),
        (bulk([{"_attachments": NO_DATA, "_foo": 1}], new_edits=False), DATA),
        (bulk([{"_attachments": NO_DATA}], new_edits=False), DATA),
        # in _bulk_docs the revision rule comes before the names, one document after the other
        (bulk([{"_id": "a", "_attachments": BAD_NAME}], new_edits=False), NEEDS_REV),
        (bulk([{"_id": "a", "b": 1}, {"_id": "b", "_foo": 1}], new_edits=False), NEEDS_REV),
    ])
