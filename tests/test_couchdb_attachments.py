"""Attachments on couchpy and on a real CouchDB 3.4.3 given the same input: the same digests
(identity and gzip-stored; inline, standalone, multipart, replicated with new_edits=false) and
GET/HEAD answers a client cannot tell apart (status and the headers clients read)."""

from __future__ import annotations

import base64
import hashlib
import json

import aiohttp
import pytest

from tests.attdigest import gzip_as_couchdb
from tests.interop import name, ok, req

HEADERS = ("ETag", "Content-Type", "Content-Length", "Content-Encoding", "Content-MD5", "Accept-Ranges",
           "Cache-Control", "Content-Range")
TEXT = b"hello " * 9 + b"hello"
BIN = bytes(range(256)) * 3


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def both(server, couchdb, fn):
    """Run fn(peer, db) on a fresh database of each server; returns (couchpy's, CouchDB's)."""
    out = []
    for peer in (server, couchdb):
        db = name("att")
        await ok(await req(peer, "PUT", f"/{db}"), 201)
        out.append(await fn(peer, db))
    return out


def related(doc: dict, bodies: list[bytes]) -> tuple[str, bytes]:
    bnd = "BOUNDARY42"
    out = b"--" + bnd.encode() + b"\r\nContent-Type: application/json\r\n\r\n" + json.dumps(doc).encode()
    for body in bodies:
        out += b"\r\n--" + bnd.encode() + b"\r\n\r\n" + body
    return f'multipart/related; boundary="{bnd}"', out + b"\r\n--" + bnd.encode() + b"--"


async def write_all_ways(peer, db) -> dict:
    """The same attachments written every way a client or a replicator writes them."""
    await ok(await req(peer, "PUT", f"/{db}/inline", {"_attachments": {
        "t.txt": {"content_type": "text/plain", "data": b64(TEXT)},
        "e.txt": {"content_type": "text/plain", "data": ""},
        "b.bin": {"content_type": "application/octet-stream", "data": b64(BIN)},
        "j.json": {"content_type": "application/json; charset=utf-8", "data": b64(b'{"a": 1}')}}}), 201)
    await ok(await req(peer, "PUT", f"/{db}/standalone/t.txt", None, raw=True, data_=TEXT,
                       headers={"Content-Type": "text/plain",
                                "Content-MD5": b64(hashlib.md5(TEXT).digest())}), 201)
    ctype, body = related({"_attachments": {
        "t.txt": {"follows": True, "content_type": "text/plain", "length": len(TEXT)},
        "b.bin": {"follows": True, "content_type": "application/octet-stream", "length": len(BIN)}}},
        [TEXT, BIN])
    await ok(await req(peer, "PUT", f"/{db}/multipart", None, raw=True, data_=body,
                       headers={"Content-Type": ctype}), 201)
    # as a replicator sends a gzip-stored body: encoded bytes, CouchDB's digest of them
    gz = gzip_as_couchdb(TEXT)
    ctype, body = related({"_rev": "1-" + "a" * 32, "_revisions": {"start": 1, "ids": ["a" * 32]},
                           "_attachments": {"t.txt": {
                               "follows": True, "content_type": "text/plain", "revpos": 1,
                               "digest": "md5-" + b64(hashlib.md5(gz).digest()), "length": len(TEXT),
                               "encoding": "gzip", "encoded_length": len(gz)}}}, [gz])
    await ok(await req(peer, "PUT", f"/{db}/replicated", None, raw=True, data_=body,
                       headers={"Content-Type": ctype}, new_edits="false"), 201)
    out = {}
    for docid in ("inline", "standalone", "multipart", "replicated"):
        st, doc = await req(peer, "GET", f"/{db}/{docid}", att_encoding_info="true")
        out[docid] = {k: v for k, v in doc["_attachments"].items()}
    return out


async def test_digests_identical_every_way_written(server, couchdb):
    mine, theirs = await both(server, couchdb, write_all_ways)
    assert mine == theirs
    assert theirs["inline"]["t.txt"]["digest"] == "md5-t6qPHzaShJHFi1MnI1x4UA=="


async def test_content_md5_header_is_ignored_as_couchdb_does(server, couchdb):
    """CouchDB 3.4.3 stores a standalone attachment whatever its Content-MD5 header says (a
    wrong or malformed one included); so does couchpy."""
    async def put(peer, db):
        out = []
        for md5 in (b64(hashlib.md5(b"x").digest()), "not base64!"):
            st, body = await req(peer, "PUT", f"/{db}/d-{len(out)}/t.txt", None, raw=True, data_=TEXT,
                                 headers={"Content-Type": "text/plain", "Content-MD5": md5})
            st2, doc = await req(peer, "GET", f"/{db}/d-{len(out)}")
            out.append((st, st2, doc["_attachments"]))
        return out

    mine, theirs = await both(server, couchdb, put)
    assert mine == theirs
    assert [x[0] for x in theirs] == [201, 201]


READS = [
    ("GET", "t.txt", {}),
    ("GET", "t.txt", {"Accept-Encoding": "gzip"}),
    ("HEAD", "t.txt", {}),
    ("GET", "b.bin", {}),
    ("GET", "b.bin", {"Accept-Encoding": "gzip"}),
    ("HEAD", "b.bin", {}),
    ("GET", "b.bin", {"Range": "bytes=10-19"}),
    ("GET", "e.txt", {}),
]


@pytest.mark.parametrize("method,att,headers", READS)
async def test_attachment_reads_look_the_same(server, couchdb, method, att, headers):
    async def read(peer, db):
        await write_all_ways(peer, db)
        hdrs = {"Accept-Encoding": "identity", **headers}
        st, body = await req(peer, method, f"/{db}/inline/{att}", raw=True, headers=hdrs)
        return st, body, await _headers(peer, method, f"/{db}/inline/{att}", hdrs)

    mine, theirs = await both(server, couchdb, read)
    assert mine[0] == theirs[0]
    assert mine[1] == theirs[1]
    assert mine[2] == theirs[2]


async def test_document_get_and_not_modified_look_the_same(server, couchdb):
    async def read(peer, db):
        await write_all_ways(peer, db)
        hdrs = await _headers(peer, "GET", f"/{db}/inline", {})
        etag = hdrs["ETag"]
        not_modified = await _headers(peer, "GET", f"/{db}/inline/t.txt", {"If-None-Match": '"t6qPHzaShJHFi1MnI1x4UA=="'})
        # aiohttp never sends a Content-Length with a 304 (which has no body); CouchDB sends 0
        not_modified.pop("Content-Length", None)
        return {k: v for k, v in hdrs.items() if k != "ETag"}, etag.startswith('"1-'), not_modified

    mine, theirs = await both(server, couchdb, read)
    assert mine == theirs


async def _headers(peer, method, path, headers) -> dict:
    async with aiohttp.ClientSession(auth=peer.auth, auto_decompress=False) as s:
        async with s.request(method, peer.base + path, headers=headers) as r:
            await r.read()
            return {"status": r.status, **{k: r.headers[k] for k in HEADERS if k in r.headers}}
