"""An edit naming a revision of a document that does not exist, as CouchDB 3.4.3 answers it.

CouchDB checks an edit against the current revision before writing only when the database has
validation functions (or has not loaded them since it was opened), or the request writes a design
document or attachments; otherwise the edit creates the document with the named revision as a
missing ancestor. Each case below sends the same requests to both servers.
"""

from __future__ import annotations

from .model import UNKNOWN_REV, Req
from .parity import parity

X = Req("PUT", "/{db}/x", body={"x": 1}, endpoint="PUT /{db}/{doc}")
EDIT_A = Req("PUT", "/{db}/a", (("rev", "$rev:a"),), {"y": 1}, endpoint="PUT /{db}/{doc}")
CREATE_A = Req("PUT", "/{db}/a", body={"z": 1}, endpoint="PUT /{db}/{doc}")
GET_A = Req("GET", "/{db}/a", (("revs_info", "true"),), endpoint="GET /{db}/{doc}")
CONFLICT = {"error": "conflict", "reason": "Document update conflict."}


def put_ddoc(name: str, body: dict) -> Req:
    return Req("PUT", f"/{{db}}/_design/{name}", body=body, endpoint="PUT /{db}/_design/{ddoc}")


async def test_fresh_database_refuses(server, couchdb):
    got = await parity(server, couchdb, [EDIT_A])
    assert got.status == 409 and got.body == CONFLICT


async def test_after_a_write_the_edit_creates_the_document(server, couchdb):
    got = await parity(server, couchdb, [X, EDIT_A])
    assert got.status == 201 and got.body["rev"].startswith("2-")
    got = await parity(server, couchdb, [X, EDIT_A, GET_A])
    assert got.status == 200 and [r["status"] for r in got.body["_revs_info"]] == ["available", "missing"]
    assert got.body["_revs_info"][1]["rev"] == UNKNOWN_REV
    # the created document is there: creating it again without a rev is a conflict
    got = await parity(server, couchdb, [X, EDIT_A, CREATE_A])
    assert got.status == 409 and got.body == CONFLICT


async def test_post_and_deletion_and_copy_alike(server, couchdb):
    post = Req("POST", "/{db}", body={"_id": "a", "_rev": "$rev:a", "y": 1}, endpoint="POST /{db}")
    got = await parity(server, couchdb, [X, post])
    assert got.status == 201
    delete = Req("PUT", "/{db}/a", body={"_rev": "$rev:a", "_deleted": True}, endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [X, delete, Req("GET", "/{db}/a", endpoint="GET /{db}/{doc}")])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "deleted"}
    copy = Req("COPY", "/{db}/x", headers=(("Destination", "b?rev=$rev:b"),), endpoint="COPY /{db}/{doc}")
    got = await parity(server, couchdb, [X, copy])
    assert got.status == 201


async def test_revisions_of_a_missing_document(server, couchdb):
    missing = Req("PUT", "/{db}/m", body={"_revisions": {"start": 3, "ids": ["c", "b", "a"]}},
                  endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [X, missing])
    assert got.status == 201 and got.body["rev"].startswith("4-")


async def test_checked_edits_still_conflict(server, couchdb):
    att = Req("PUT", "/{db}/a", (("rev", "$rev:a"),),
              {"_attachments": {"t.txt": {"content_type": "text/plain", "data": "aGk="}}}, endpoint="PUT /{db}/{doc}")
    vdu = put_ddoc("v", {"validate_doc_update": "function(newDoc, oldDoc) {}"})
    for reqs in ([X, att], [X, put_ddoc("q", {}), EDIT_A], [X, vdu, X, EDIT_A]):
        # attachments; a design document written since the last validated write; validators
        got = await parity(server, couchdb, reqs)
        assert got.status == 409 and got.body == CONFLICT, [r.describe() for r in reqs]
    ddoc_edit = Req("PUT", "/{db}/_design/n", (("rev", "$rev:n"),), {}, endpoint="PUT /{db}/_design/{ddoc}")
    got = await parity(server, couchdb, [X, ddoc_edit])
    assert got.status == 409


async def test_validated_writes_load_the_functions(server, couchdb):
    y = Req("PUT", "/{db}/y", body={}, endpoint="PUT /{db}/{doc}")
    # a design document forgets them until the next validated write
    got = await parity(server, couchdb, [X, put_ddoc("q", {}), y, EDIT_A])
    assert got.status == 201
    # a replicated revision loads them; a _local document or a refused write does not
    rep = Req("POST", "/{db}/_bulk_docs", body={"new_edits": False, "docs": [{"_id": "r", "_rev": "1-abc"}]},
              endpoint="POST /{db}/_bulk_docs")
    got = await parity(server, couchdb, [rep, EDIT_A])
    assert got.status == 201
    local = Req("PUT", "/{db}/_local/l", body={}, endpoint="PUT /{db}/_local/{doc}")
    bad = Req("PUT", "/{db}/_design/b", body={"views": 1}, endpoint="PUT /{db}/_design/{ddoc}")
    got = await parity(server, couchdb, [local, bad, EDIT_A])
    assert got.status == 409


async def test_bulk_docs_alike(server, couchdb):
    bulk = Req("POST", "/{db}/_bulk_docs", body={"docs": [{"_id": "x"}, {"_id": "a", "_rev": "$rev:a"}]},
               endpoint="POST /{db}/_bulk_docs")
    got = await parity(server, couchdb, [bulk])
    assert got.status == 201 and got.body[1] == {"id": "a", **CONFLICT}
    again = Req("POST", "/{db}/_bulk_docs", body={"docs": [{"_id": "a", "_rev": "$rev:a"}]},
                endpoint="POST /{db}/_bulk_docs")
    got = await parity(server, couchdb, [bulk, again])
    assert got.status == 201 and got.body[0]["ok"] is True


def bulk(body: dict) -> Req:
    return Req("POST", "/{db}/_bulk_docs", body=body, endpoint="POST /{db}/_bulk_docs")


async def test_edits_checked_before_a_missing_stub_load_the_validators(server, couchdb):
    # CouchDB validates the edits of the documents before the one (in id order) whose stubs fail
    stub = {"_attachments": {"g": {"stub": True}}}
    before = bulk({"docs": [{"_id": "b", **stub}, {"_id": "a0"}]})
    got = await parity(server, couchdb, [before, EDIT_A])
    assert got.status == 201 and got.body["rev"].startswith("2-")
    # the failing document first: nothing was validated
    after = bulk({"docs": [{"_id": "a0", **stub}, {"_id": "b"}]})
    got = await parity(server, couchdb, [after, EDIT_A])
    assert got.status == 409 and got.body == CONFLICT


async def test_replicated_revision_already_there_is_not_validated(server, couchdb):
    replicated = bulk({"new_edits": False, "docs": [{"_id": "r", "_rev": "1-" + "a" * 32}]})
    ddoc = put_ddoc("x", {})  # forgets the validators
    got = await parity(server, couchdb, [replicated, ddoc, replicated, EDIT_A])
    assert got.status == 409 and got.body == CONFLICT
    single = Req("PUT", "/{db}/r", (("new_edits", "false"),), {"_rev": "1-" + "a" * 32}, endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [replicated, ddoc, single, EDIT_A])
    assert got.status == 409 and got.body == CONFLICT
    # a revision that is new is validated
    other = bulk({"new_edits": False, "docs": [{"_id": "r", "_rev": "1-" + "b" * 32}]})
    got = await parity(server, couchdb, [replicated, ddoc, other, EDIT_A])
    assert got.status == 201
