"""Headers clients read, as CouchDB 3.4.3 sends them, checked against the real one."""

from __future__ import annotations

from .model import Req
from .parity import parity


def put(path: str, body: object = None, **query: str) -> Req:
    return Req("PUT", path, tuple(query.items()), {} if body is None else body, endpoint="PUT " + path)


async def test_location_encodes_every_segment(server, couchdb):
    for docid in ("a", "_design/d", "_local/l", "\u00e9t\u00e9", "x%2Fy"):
        got = await parity(server, couchdb, [put("/{db}/" + docid.replace("\u00e9", "%C3%A9"))])
        assert got.status == 201
        assert got.headers["location"].split("/", 3)[3].startswith("difftest-")
    got = await parity(server, couchdb, [put("/{db}/_design/d")])
    assert got.headers["location"].endswith("/_design%2Fd")


async def test_posted_document_has_location_and_no_etag(server, couchdb):
    got = await parity(server, couchdb, [Req("POST", "/{db}", body={"_id": "p"}, endpoint="POST /{db}")])
    assert got.status == 201 and "etag" not in got.headers and got.headers["location"].endswith("/p")


async def test_written_attachment_has_location_and_no_etag(server, couchdb):
    att = Req("PUT", "/{db}/a/t.txt", (("rev", "$rev:a"),), b"hello", (("Content-Type", "text/plain"),),
              endpoint="PUT /{db}/{doc}/{att}")
    got = await parity(server, couchdb, [put("/{db}/a"), att])
    assert got.status == 201 and "etag" not in got.headers and got.headers["location"].endswith("/a/t.txt")
