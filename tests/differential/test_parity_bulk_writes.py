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


async def test_attachments_member_read_as_couchdb_reads_it(server, couchdb):
    def put(docid: str, atts) -> Req:
        endpoint = "PUT /{db}/_local/{doc}" if docid.startswith("_local/") else "PUT /{db}/{doc}"
        return Req("PUT", f"/{{db}}/{docid}", body={"_attachments": atts}, endpoint=endpoint)

    for docid in ("n", "_local/n"):
        for atts in (1, None, []):
            got = await parity(server, couchdb, [put(docid, atts)])
            assert got.status == 400 and got.body == {"error": "doc_validation",
                                                      "reason": "Bad special document member: _attachments"}
        # an entry that is not an object is passed by
        got = await parity(server, couchdb, [put(docid, {"t.txt": 1})])
        assert got.status == 201
        # a _local document's attachments are read too, though not stored
        for atts, reason in [({"t.txt": {"content_type": "text/plain"}}, "Invalid attachment data for t.txt"),
                             ({"t.txt": {"data": "!!"}}, "Invalid attachment data for t.txt"),
                             ({"_t": {"data": "aGk="}}, "Attachment name '_t' starts with prohibited character '_'")]:
            got = await parity(server, couchdb, [put(docid, atts)])
            assert got.status == 400 and got.body == {"error": "bad_request", "reason": reason}, (docid, atts)
    got = await parity(server, couchdb, [put("n", {"t.txt": 1}), Req("GET", "/{db}/n", endpoint="GET /{db}/{doc}")])
    assert "_attachments" not in got.body


async def test_bad_attachment_name_refuses_the_whole_request(server, couchdb):
    req = bulk({"docs": [{"_id": "z1"}, {"_id": "z3", "_attachments": {"_t": {"data": "aGk="}}}]})
    got = await parity(server, couchdb, [req])
    assert got.status == 400 and got.body["reason"] == "Attachment name '_t' starts with prohibited character '_'"
    got = await parity(server, couchdb, [req, Req("GET", "/{db}/z1", endpoint="GET /{db}/{doc}")])
    assert got.status == 404


async def test_replicated_stubs_refuse_the_whole_request(server, couchdb):
    setup = bulk({"new_edits": False, "docs": [
        {"_id": "a", "_rev": "1-aaaa", "_attachments": {"t.txt": {"data": "aGk=", "content_type": "text/plain"}}},
        {"_id": "b", "_rev": "1-bbbb"}]})
    cases = [({"_id": "r1", "_rev": "1-cccc", "_attachments": {"t.txt": {"stub": True}}}, "r1", "t.txt"),
             ({"_id": "a", "_revisions": {"start": 2, "ids": ["zz", "aaaa"]}, "_attachments": {"u.txt": {"stub": True}}},
              "a", "u.txt"),
             ({"_id": "b", "_revisions": {"start": 2, "ids": ["yy", "bbbb"]}, "_attachments": {"t.txt": {"stub": True}}},
              "b", "t.txt"),
             ({"_id": "a", "_revisions": {"start": 3, "ids": ["q", "p"]}, "_attachments": {"t.txt": {"stub": True}}},
              "a", "t.txt"),
             ({"_id": "a", "_revisions": {"start": 2, "ids": ["w", "aaaa"]},
               "_attachments": {"t.txt": {"stub": True, "revpos": 5}}}, "a", "t.txt")]
    for doc, docid, name in cases:
        req = bulk({"new_edits": False, "docs": [{"_id": "zz", "_rev": "1-z"}, doc]})
        got = await parity(server, couchdb, [setup, req])
        assert got.status == 412 and got.body == {"error": "missing_stub",
                                                  "reason": f"Invalid attachment stub in {docid} for {name}"}, doc
    # a stub naming the attachment of the revision before, or of a revision already there, is fine
    for doc in ({"_id": "a", "_revisions": {"start": 2, "ids": ["yy", "aaaa"]}, "_attachments": {"t.txt": {"stub": True}}},
                {"_id": "a", "_rev": "1-aaaa", "_attachments": {"u.txt": {"stub": True}}}):
        got = await parity(server, couchdb, [setup, bulk({"new_edits": False, "docs": [doc]})])
        assert got.status == 201 and got.body == []


async def test_attachment_delete_of_a_deleted_document_without_rev(server, couchdb):
    put = Req("PUT", "/{db}/a", body={}, endpoint="PUT /{db}/{doc}")
    delete = Req("DELETE", "/{db}/a", (("rev", "$rev:a"),), endpoint="DELETE /{db}/{doc}")
    att = Req("DELETE", "/{db}/a/t.txt", endpoint="DELETE /{db}/{doc}/{att}")
    got = await parity(server, couchdb, [put, delete, att])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "deleted"}
    got = await parity(server, couchdb, [put, att])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "Document is missing attachment"}


def _stubbed(docid: str, name: str, **members) -> dict:
    return {"_id": docid, **members, "_attachments": {name: {"stub": True}}}


async def test_first_missing_stub_in_document_id_order(server, couchdb):
    # CouchDB merges stubs bucket by bucket, the buckets sorted by document id
    a = Req("PUT", "/{db}/a", body={"x": 1}, endpoint="PUT /{db}/{doc}")
    for body in [{"docs": [_stubbed("b", "g"), _stubbed("a2", "h")]},
                 {"docs": [_stubbed("c", "g"), _stubbed("a", "h", _rev="$rev:a")]},
                 {"new_edits": False, "docs": [_stubbed("b", "g", _rev="1-" + "a" * 32),
                                               _stubbed("a2", "h", _rev="1-" + "b" * 32)]}]:
        got = await parity(server, couchdb, [a, bulk(body)])
        first = min(body["docs"], key=lambda d: d["_id"])
        name = next(iter(first["_attachments"]))
        assert got.status == 412 and got.body == {"error": "missing_stub",
                                                  "reason": f"Invalid attachment stub in {first['_id']} for {name}"}


async def test_stubs_on_a_missing_document_before_its_conflict(server, couchdb):
    put = Req("PUT", "/{db}/q", body=_stubbed("q", "g", _rev="1-" + "a" * 32), endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [put])
    assert got.status == 412 and got.body == {"error": "missing_stub", "reason": "Invalid attachment stub in q for g"}
    # an existing document edited from a revision it does not have: the conflict
    z = Req("PUT", "/{db}/q", body={"x": 1}, endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [z, put])
    assert got.status == 409 and got.body["error"] == "conflict"


async def test_batch_write_with_stubs_is_accepted_first(server, couchdb):
    put = Req("PUT", "/{db}/q", (("batch", "ok"),), _stubbed("q", "g"), endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [put])
    assert got.status == 202 and got.body == {"ok": True, "id": "q"}


async def test_docs_read_before_new_edits(server, couchdb):
    for body, reason in [({"docs": "x"}, "`docs` parameter must be an array."),
                         ({"docs": None, "new_edits": "x"}, "`docs` parameter must be an array."),
                         ({"new_edits": "x"}, "POST body must include `docs` parameter."),
                         ({"docs": [1], "new_edits": "x"}, "Document must be a JSON object"),
                         ({"docs": [{"_id": "a", "_rev": "bad"}], "new_edits": 1}, "Invalid rev format"),
                         ({"docs": [], "new_edits": "x"}, "`new_edits` parameter must be a boolean.")]:
        got = await parity(server, couchdb, [bulk(body)])
        assert got.status == 400 and got.body == {"error": "bad_request", "reason": reason}, body
    got = await parity(server, couchdb, [bulk({"docs": [{"_id": "a", "_foo": 1}], "new_edits": "x"})])
    assert got.body == {"error": "doc_validation", "reason": "Bad special document member: _foo"}
