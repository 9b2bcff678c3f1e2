"""Error statuses and bodies for bad input, as CouchDB 3.4.3 answers them (checked against it)."""

from __future__ import annotations

from .model import Req
from .parity import both, parity

A = Req("PUT", "/{db}/a", body={"x": 1}, endpoint="PUT /{db}/{doc}")


def get(path: str, **query: str) -> Req:
    return Req("GET", path, tuple(query.items()), endpoint="GET " + path)


async def test_bad_json_in_query_is_bad_request(server, couchdb):
    for path, name in [("/{db}/_all_docs", "startkey"), ("/{db}/_all_docs", "keys"), ("/{db}/a", "atts_since"),
                       ("/{db}/a", "open_revs"), ("/{db}/_changes", "doc_ids")]:
        query = {name: "x"} if name != "doc_ids" else {"filter": "_doc_ids", "doc_ids": "x"}
        got = await parity(server, couchdb, [A, get(path, **query)])
        assert got.status == 400 and got.body == {"error": "bad_request", "reason": "invalid UTF-8 JSON"}, path


async def test_revs_diff_revisions_are_parsed(server, couchdb):
    bad = Req("POST", "/{db}/_revs_diff", body={"a": ["bad"]}, endpoint="POST /{db}/_revs_diff")
    got = await parity(server, couchdb, [A, bad])
    assert got.status == 400 and got.body == {"error": "bad_request", "reason": "Invalid rev format"}


async def test_revs_diff_non_string_revision_is_a_client_error(server, couchdb):
    # known difference couchdb-5xx: CouchDB crashes (500 function_clause), couchpy names the problem
    for revs in ([None], [1]):
        req = Req("POST", "/{db}/_revs_diff", body={"a": revs}, endpoint="POST /{db}/_revs_diff")
        mine, theirs = await both(server, couchdb, [A, req])
        assert theirs.status == 500
        assert mine.status == 400 and mine.body == {"error": "bad_request", "reason": "Invalid rev format"}


async def test_deleting_index_that_is_not_there(server, couchdb):
    for path in ("/{db}/_index/_design/i/json/x", "/{db}/_index/_design/i/text/x", "/{db}/_index/i/json/x"):
        got = await parity(server, couchdb, [A, Req("DELETE", path, endpoint="DELETE /{db}/_index")])
        assert got.status == 404 and got.body == {"error": "not_found", "reason": "missing"}


async def test_changes_seq_interval_must_be_positive(server, couchdb):
    for value in ("0", "-1", "x", ""):
        got = await parity(server, couchdb, [A, get("/{db}/_changes", seq_interval=value)])
        assert got.status == 400 and got.body == {"error": "bad_request", "reason": "invalid_seq_interval"}
    got = await parity(server, couchdb, [A, get("/{db}/_changes", seq_interval="2")])
    assert got.status == 200


async def test_delete_looks_for_the_document_first(server, couchdb):
    req = Req("DELETE", "/{db}/nope", (("rev", "bad"),), headers=(("If-Match", "1-abc"),), endpoint="DELETE /{db}/{doc}")
    got = await parity(server, couchdb, [A, req])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "missing"}
    req = Req("DELETE", "/{db}/a", (("rev", "bad"),), headers=(("If-Match", "$rev:a"),), endpoint="DELETE /{db}/{doc}")
    got = await parity(server, couchdb, [A, req])
    assert got.status == 400 and got.body == {"error": "bad_request", "reason": "Invalid rev format"}


async def test_put_query_rev_is_parsed_before_compared(server, couchdb):
    req = Req("PUT", "/{db}/a", (("rev", "bad"),), {"_rev": "$rev:a"}, endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [A, req])
    assert got.status == 400 and got.body == {"error": "bad_request", "reason": "Invalid rev format"}


async def test_index_listing_ranges(server, couchdb):
    # known difference couchdb-5xx: CouchDB answers 500 invalid_list_index_params, couchpy a 400
    for query in ({"limit": "0"}, {"skip": "-1"}, {"limit": "x"}):
        mine, theirs = await both(server, couchdb, [A, get("/{db}/_index", **query)])
        assert theirs.status == 500 and theirs.body["error"] == "invalid_list_index_params"
        assert mine.status == 400 and mine.body == {"error": "invalid_list_index_params",
                                                     "reason": "Index parameter ranges: limit > 1, skip > 0"}
    got = await parity(server, couchdb, [A, get("/{db}/_index", limit="1", skip="0")])
    assert got.status == 200 and got.body["total_rows"] == 1


async def test_malformed_since_reason(server, couchdb):
    got = await parity(server, couchdb, [A, get("/{db}/_changes", since="abc")])
    assert got.status == 400
    assert got.body == {"error": "bad_request", "reason": "Malformed sequence supplied in 'since' parameter."}


async def test_filter_without_design_name(server, couchdb):
    got = await parity(server, couchdb, [A, get("/{db}/_changes", filter="nope")])
    assert got.status == 400
    assert got.body == {"error": "bad_request", "reason": "`filter` must be of the form `designname/filtername`"}


async def test_document_read_parses_json_parameters_first(server, couchdb):
    for path, query in [("/{db}/nope", {"open_revs": "x"}), ("/{db}/_local/nope", {"atts_since": "[1,"})]:
        for method in ("GET", "HEAD"):
            req = Req(method, path, tuple(query.items()), endpoint=f"{method} /{{db}}/{{doc}}")
            got = await parity(server, couchdb, [A, req])
            assert got.status == 400, (method, path)


DDOC = Req("PUT", "/{db}/_design/d", body={"views": {"v": {"map": "function(doc) { emit(doc.x, 1); }"}}},
           endpoint="PUT /{db}/_design/{ddoc}")


async def test_view_errors_in_couchdb_order(server, couchdb):
    # design document first, then the parameters, then the view
    got = await parity(server, couchdb, [A, get("/{db}/_design/nope/_view/v", limit="x")])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "missing"}
    got = await parity(server, couchdb, [A, DDOC, get("/{db}/_design/d/_view/nope", limit="x")])
    assert got.status == 400 and got.body == {"error": "query_parse_error", "reason": 'Invalid value for integer: "x"'}
    got = await parity(server, couchdb, [A, DDOC, get("/{db}/_design/d/_view/nope")])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "missing_named_view"}
    post = Req("POST", "/{db}/_design/nope/_view/v", body={"keys": None}, endpoint="POST view")
    got = await parity(server, couchdb, [A, post])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "missing"}


async def test_missing_view_before_unknown_language(server, couchdb):
    ddoc = Req("PUT", "/{db}/_design/d", body={"language": "cobol", "views": {"v": {"map": "x"}}},
               endpoint="PUT /{db}/_design/{ddoc}")
    got = await parity(server, couchdb, [A, ddoc, get("/{db}/_design/d/_view/nope")])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "missing_named_view"}


async def test_numeric_since_is_accepted(server, couchdb):
    # known difference changes-since-numbers
    mine, theirs = await both(server, couchdb, [A, get("/{db}/_changes", since="1")])
    assert theirs.status == 400 and mine.status == 200 and mine.body["results"] == []


async def test_attachment_write_on_a_revision_not_there(server, couchdb):
    for docid in ("a", "nodoc"):
        for method in ("PUT", "DELETE"):
            req = Req(method, f"/{{db}}/{docid}/t.txt", (("rev", "1-abc"),),
                      b"hi" if method == "PUT" else None,
                      (("Content-Type", "text/plain"),) if method == "PUT" else (),
                      endpoint=f"{method} /{{db}}/{{doc}}/{{att}}")
            got = await parity(server, couchdb, [A, req])
            assert got.status == 409 and got.body == {"error": "not_found", "reason": "missing_rev"}, (method, docid)
