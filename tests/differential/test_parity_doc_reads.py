"""Document reads (GET and HEAD, `_local` documents included), as CouchDB 3.4.3 answers them,
checked against the real one."""

from __future__ import annotations

from .model import Req
from .parity import parity

A1 = Req("PUT", "/{db}/a", body={"a": 1}, endpoint="PUT /{db}/{doc}")
A2 = Req("PUT", "/{db}/a", body={"a": 2, "_rev": "$rev:a"}, endpoint="PUT /{db}/{doc}")
LOCAL = Req("PUT", "/{db}/_local/l", body={"a": 1}, endpoint="PUT /{db}/_local/{doc}")


def read(method: str, path: str, *headers: tuple[str, str], **query: str) -> Req:
    return Req(method, path, tuple(query.items()), headers=headers, endpoint=f"{method} {path}")


async def test_local_document_open_revs_are_read(server, couchdb):
    got = await parity(server, couchdb, [LOCAL, read("GET", "/{db}/_local%2Fl", open_revs='["bad"]')])
    assert got.status == 400 and got.body == {"error": "bad_request", "reason": "Invalid rev format"}
    got = await parity(server, couchdb, [read("GET", "/{db}/_local/nope", open_revs='["bad"]')])
    assert got.status == 400
    # a local document has no revisions to open
    got = await parity(server, couchdb, [LOCAL, read("GET", "/{db}/_local/l", open_revs="all")])
    assert got.status == 404 and got.body == {"error": "not_found", "reason": "missing"}
    got = await parity(server, couchdb, [LOCAL, read("GET", "/{db}/_local/l", ("Accept", "application/json"),
                                                     open_revs='["0-1"]')])
    assert got.status == 200 and got.body == [{"missing": "0-1"}]


async def test_head_is_get_without_the_body(server, couchdb):
    for query in ({"revs": "true"}, {"revs_info": "true"}, {"local_seq": "true"}, {"meta": "true"},
                  {"conflicts": "true"}, {"open_revs": "[]"}, {"attachments": "true"}):
        got = await parity(server, couchdb, [A1, A2, read("HEAD", "/{db}/a", **query)])
        assert got.status == 200 and got.body == b"", query
    # the length of the GET's body, with `_revisions` in it
    got = await parity(server, couchdb, [A1, A2, read("HEAD", "/{db}/a", revs="true")])
    assert got.headers["content-length"] == "165"
    got = await parity(server, couchdb, [A1, A2, read("HEAD", "/{db}/a", open_revs='["bad"]')])
    assert got.status == 400
    for accept in ("multipart/mixed", "application/json"):
        got = await parity(server, couchdb, [A1, A2, read("HEAD", "/{db}/a", ("Accept", accept), open_revs="all")])
        assert got.status == 200 and got.headers["content-length"] == "0"
    got = await parity(server, couchdb, [LOCAL, read("HEAD", "/{db}/_local/l", open_revs='["bad"]')])
    assert got.status == 400


async def test_conflicts_flag_keeps_the_etag_when_there_are_none(server, couchdb):
    for method in ("GET", "HEAD"):
        got = await parity(server, couchdb, [A1, read(method, "/{db}/a", conflicts="true")])
        assert "etag" in got.headers
        got = await parity(server, couchdb, [A1, read(method, "/{db}/a", revs_info="true")])
        assert "etag" not in got.headers


async def test_document_without_attachments_asked_as_multipart_is_json(server, couchdb):
    for method in ("GET", "HEAD"):
        got = await parity(server, couchdb, [A1, read(method, "/{db}/a", ("Accept", "multipart/related"),
                                                      attachments="true")])
        assert got.status == 200 and got.headers["content-type"] == "application/json"


async def test_read_parameters_checked_in_order_before_the_document(server, couchdb):
    a = Req("PUT", "/{db}/a", body={"x": 1}, endpoint="PUT /{db}/{doc}")
    for path, query, reason in [
        ("/{db}/zz", (("rev", "bad"), ("open_revs", "all")), "Invalid rev format"),   # a missing document
        ("/{db}/a", (("open_revs", '["bad"]'), ("atts_since", "{")), "Invalid rev format"),
        ("/{db}/a", (("atts_since", "{"), ("open_revs", '["bad"]')), "invalid UTF-8 JSON"),
    ]:
        got = await parity(server, couchdb, [a, Req("GET", path, query, endpoint="GET /{db}/{doc}")])
        assert got.status == 400 and got.body == {"error": "bad_request", "reason": reason}, query
