"""Standalone attachments with a Range header, as CouchDB 3.4.3 answers them, checked against the real one."""

from __future__ import annotations

from .model import Req
from .parity import parity


def put_att(name: str, ctype: str) -> Req:
    return Req("PUT", "/{db}/a/" + name, body=b"hello world", headers=(("Content-Type", ctype),),
               endpoint="PUT /{db}/{doc}/{att}")


def ranged(method: str, name: str, spec: str, *extra: tuple[str, str]) -> Req:
    return Req(method, "/{db}/a/" + name, headers=(("Range", spec), *extra), endpoint=method + " /{db}/{doc}/{att}")


async def test_range_past_the_end_of_a_compressed_attachment_is_refused(server, couchdb):
    # text/plain is stored compressed by both: its ranges are not served, yet one past the end of
    # the length served is a 416, for GET and HEAD alike
    for method in ("GET", "HEAD"):
        for spec in ("bytes=20-30", "bytes=11-", "bytes=0-1,20-30", "bytes=-0"):
            got = await parity(server, couchdb, [put_att("t.txt", "text/plain"), ranged(method, "t.txt", spec)])
            assert got.status == 416, (method, spec, got.status)
        got = await parity(server, couchdb, [put_att("t.txt", "text/plain"), ranged(method, "t.txt", "bytes=0-2")])
        assert got.status == 200 and got.headers["accept-ranges"] == "none"
    # the gzip body served is 31 bytes long: bytes 20-30 are inside it, so the whole is sent
    got = await parity(server, couchdb, [put_att("t.txt", "text/plain"),
                                         ranged("GET", "t.txt", "bytes=20-30", ("Accept-Encoding", "gzip"))])
    assert got.status == 200 and got.headers["content-encoding"] == "gzip"


async def test_range_of_a_stored_attachment_on_head(server, couchdb):
    for spec, status in (("bytes=20-30", 416), ("bytes=5-2", 416), ("bytes=0-2", 206), ("bytes=0-1,3-4", 206)):
        got = await parity(server, couchdb, [put_att("t.bin", "application/octet-stream"),
                                             ranged("HEAD", "t.bin", spec)])
        assert got.status == status, (spec, got.status)
    # several ranges: multipart/byteranges, with no ETag
    got = await parity(server, couchdb, [put_att("t.bin", "application/octet-stream"),
                                         ranged("GET", "t.bin", "bytes=0-1,3-4")])
    assert got.status == 206 and "etag" not in got.headers
    assert got.headers["content-type"].startswith("multipart/byteranges")


async def test_deleted_attachment_answered_without_an_etag(server, couchdb):
    delete = Req("DELETE", "/{db}/a/t.bin", (("rev", "$rev:a"),), endpoint="DELETE /{db}/{doc}/{att}")
    got = await parity(server, couchdb, [put_att("t.bin", "application/octet-stream"), delete])
    assert got.status == 200 and "etag" not in got.headers


def _replicated(revpos: dict) -> Req:
    """A replicated revision (`new_edits=false`) with an inline attachment, `revpos` as given."""
    doc = {"_id": "r", "_rev": "3-" + "c" * 32, "_revisions": {"start": 3, "ids": ["c" * 32, "b" * 32, "a" * 32]},
           "_attachments": {"t.bin": {"content_type": "application/octet-stream", "data": "aGVsbG8=", **revpos}}}
    return Req("POST", "/{db}/_bulk_docs", body={"new_edits": False, "docs": [doc]}, endpoint="POST /{db}/_bulk_docs")


async def test_a_replicated_attachment_keeps_the_revpos_it_was_given_or_0(server, couchdb):
    read = Req("GET", "/{db}/r", endpoint="GET /{db}/{doc}")
    for revpos, stored in (({}, 0), ({"revpos": 2}, 2), ({"revpos": 0}, 0)):
        got = await parity(server, couchdb, [_replicated(revpos), read])
        assert got.status == 200 and got.body["_attachments"]["t.bin"]["revpos"] == stored, (revpos, got.body)
    put = Req("PUT", "/{db}/r", (("new_edits", "false"),), body=_replicated({}).body["docs"][0],
              endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [put, read])
    assert got.body["_attachments"]["t.bin"]["revpos"] == 0, got.body
    # an attachment at revpos 0 is one every atts_since already has: a stub
    since = Req("GET", "/{db}/r", (("atts_since", '["1-' + "a" * 32 + '"]'),), endpoint="GET /{db}/{doc}")
    got = await parity(server, couchdb, [_replicated({}), since])
    assert got.body["_attachments"]["t.bin"].get("stub") is True, got.body
