"""Attachments through a real couchpy server: inline data, stubs and revpos, missing stubs,
attachments=true / atts_since / att_encoding_info, standalone PUT/GET/HEAD/DELETE, ETag and 304,
Range requests, gzip storage of compressible types, size limits, and rejected requests leaving
stored data untouched. Expected shapes follow CouchDB 3.x (chttpd_db.erl, couch_att.erl, the
attachments*.js / attachment_ranges tests of CouchDB's suite)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.attdigest import couchdb_digest


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def digest(data: bytes) -> str:
    return "md5-" + b64(hashlib.md5(data).digest())


async def put_doc(client, db, docid, doc, **params):
    async with client.put(f"/{db}/{docid}", json=doc, params=params) as r:
        return r.status, await r.json()


async def get_json(client, path, **params):
    async with client.get(path, params=params) as r:
        return r.status, await r.json()


async def test_inline_attachment_becomes_stub(client, db):
    data = b"hello world"
    st_, res = await put_doc(client, db, "d", {"a": 1, "_attachments": {"t.txt": {"content_type": "text/plain", "data": b64(data)}}})
    assert st_ == 201, res
    status, doc = await get_json(client, f"/{db}/d")
    assert status == 200
    assert doc["_attachments"] == {
        "t.txt": {"content_type": "text/plain", "revpos": 1, "digest": couchdb_digest(data, "text/plain"), "length": len(data), "stub": True}
    }
    assert list(doc["_attachments"]["t.txt"]) == ["content_type", "revpos", "digest", "length", "stub"]


async def test_stub_keeps_and_omission_removes(client, db):
    one, two = b"one" * 10, b"\x00\x01\x02two"
    _, r1 = await put_doc(client, db, "d", {"_attachments": {
        "a.bin": {"content_type": "application/octet-stream", "data": b64(one)},
        "b.bin": {"content_type": "application/octet-stream", "data": b64(two)},
    }})
    # Update keeping a.bin by stub and dropping b.bin, adding c.bin.
    _, doc = await get_json(client, f"/{db}/d")
    atts = {"a.bin": doc["_attachments"]["a.bin"], "c.bin": {"content_type": "image/png", "data": b64(b"c")}}
    status, r2 = await put_doc(client, db, "d", {"_rev": r1["rev"], "_attachments": atts})
    assert status == 201, r2
    _, doc = await get_json(client, f"/{db}/d")
    assert set(doc["_attachments"]) == {"a.bin", "c.bin"}
    assert doc["_attachments"]["a.bin"]["revpos"] == 1
    assert doc["_attachments"]["c.bin"]["revpos"] == 2
    async with client.get(f"/{db}/d/a.bin") as r:
        assert r.status == 200 and await r.read() == one
    async with client.get(f"/{db}/d/b.bin") as r:
        assert r.status == 404
    # An update without _attachments drops them all.
    status, r3 = await put_doc(client, db, "d", {"_rev": r2["rev"], "x": 1})
    assert status == 201
    _, doc = await get_json(client, f"/{db}/d")
    assert "_attachments" not in doc


async def test_missing_stub_is_412(client, db):
    _, r1 = await put_doc(client, db, "d", {"x": 1})
    status, body = await put_doc(client, db, "d", {"_rev": r1["rev"], "_attachments": {
        "nope.txt": {"stub": True, "content_type": "text/plain", "digest": digest(b"x"), "length": 1}}})
    assert status == 412
    assert body["error"] == "missing_stub"
    # A stub whose revpos disagrees with the stored one is also missing.
    _, r2 = await put_doc(client, db, "e", {"_attachments": {"a": {"content_type": "text/plain", "data": b64(b"a")}}})
    status, body = await put_doc(client, db, "e", {"_rev": r2["rev"], "_attachments": {"a": {"stub": True, "revpos": 7}}})
    assert status == 412 and body["error"] == "missing_stub"


async def test_bad_base64_is_400_and_nothing_written(client, db):
    status, body = await put_doc(client, db, "d", {"_attachments": {"a": {"content_type": "text/plain", "data": "!!notbase64"}}})
    assert status == 400 and body["error"] == "bad_request"
    async with client.get(f"/{db}/d") as r:
        assert r.status == 404


async def test_attachments_true_and_atts_since(client, db):
    a, b = b"first body", b"second body"
    _, r1 = await put_doc(client, db, "d", {"_attachments": {"a.txt": {"content_type": "text/plain", "data": b64(a)}}})
    _, doc = await get_json(client, f"/{db}/d")
    _, r2 = await put_doc(client, db, "d", {"_rev": r1["rev"], "_attachments": {
        "a.txt": doc["_attachments"]["a.txt"], "b.txt": {"content_type": "text/plain", "data": b64(b)}}})
    status, full = await get_json(client, f"/{db}/d", attachments="true")
    assert status == 200
    assert full["_attachments"]["a.txt"] == {"content_type": "text/plain", "revpos": 1,
                                             "digest": couchdb_digest(a, "text/plain"), "data": b64(a)}
    assert base64.b64decode(full["_attachments"]["b.txt"]["data"]) == b
    # atts_since the first revision: only b.txt (revpos 2) is sent.
    status, since = await get_json(client, f"/{db}/d", atts_since=f'["{r1["rev"]}"]')
    assert status == 200
    assert since["_attachments"]["a.txt"]["stub"] is True and "data" not in since["_attachments"]["a.txt"]
    assert base64.b64decode(since["_attachments"]["b.txt"]["data"]) == b
    # atts_since an unknown revision: everything is sent.
    _, since = await get_json(client, f"/{db}/d", atts_since='["1-0123456789abcdef0123456789abcdef"]')
    assert "data" in since["_attachments"]["a.txt"]
    # Older revision by rev=, with attachments.
    _, old = await get_json(client, f"/{db}/d", rev=r1["rev"], attachments="true")
    assert set(old["_attachments"]) == {"a.txt"}


async def test_compressible_stored_gzip_served_plain_or_gzip(client, db):
    text = b"lorem ipsum dolor sit amet " * 2000
    _, r1 = await put_doc(client, db, "d", {"_attachments": {"t.txt": {"content_type": "text/plain", "data": b64(text)}}})
    _, info = await get_json(client, f"/{db}/d", att_encoding_info="true")
    e = info["_attachments"]["t.txt"]
    assert e["encoding"] == "gzip" and e["encoded_length"] < len(text) // 10 and e["length"] == len(text)
    _, plain = await get_json(client, f"/{db}/d")
    assert "encoding" not in plain["_attachments"]["t.txt"]
    async with client.get(f"/{db}/d/t.txt", headers={"Accept-Encoding": "identity"}, auto_decompress=False) as r:
        assert r.status == 200 and "Content-Encoding" not in r.headers
        assert await r.read() == text
        assert "Content-MD5" not in r.headers  # CouchDB 3.4.3 sends none
    async with client.get(f"/{db}/d/t.txt", headers={"Accept-Encoding": "gzip"}, auto_decompress=False) as r:
        assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await r.read()) == text
    # A bigger compressible body streamed in (compressed piecewise off the event loop).
    big = b"".join(b"line %d of a big text attachment\n" % i for i in range(150_000))
    async with client.put(f"/{db}/big/big.txt", data=big, headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 201
    _, info = await get_json(client, f"/{db}/big", att_encoding_info="true")
    assert info["_attachments"]["big.txt"]["encoding"] == "gzip"
    async with client.get(f"/{db}/big/big.txt", headers={"Accept-Encoding": "identity"}) as r:
        assert await r.read() == big
    # Not compressible: stored as is. (Same bytes as an existing blob would share that blob:
    # a body is stored once per database, in the encoding it was first stored in.)
    _, r2 = await put_doc(client, db, "p", {"_attachments": {"x.png": {"content_type": "image/png", "data": b64(text[1:])}}})
    _, info = await get_json(client, f"/{db}/p", att_encoding_info="true")
    assert "encoding" not in info["_attachments"]["x.png"]


async def test_standalone_put_get_head_delete(client, db):
    data = bytes(range(256)) * 40
    # Creates the document when absent.
    async with client.put(f"/{db}/doc/dir/sub/file.bin", data=data, headers={"Content-Type": "application/x-thing"}) as r:
        assert r.status == 201, await r.text()
        res = await r.json()
        assert res["ok"] is True and res["id"] == "doc" and res["rev"].startswith("1-")
        assert "ETag" not in r.headers  # CouchDB 3.4.3 sends none for a written attachment
        assert r.headers["Location"].endswith(f"/{db}/doc/dir/sub/file.bin")
    async with client.get(f"/{db}/doc/dir/sub/file.bin") as r:
        assert r.status == 200
        assert await r.read() == data
        assert r.headers["Content-Type"] == "application/x-thing"
        assert "Content-MD5" not in r.headers
        etag = r.headers["ETag"]
        assert etag == '"' + b64(hashlib.md5(data).digest()) + '"'
        assert r.headers["Accept-Ranges"] == "bytes"
    async with client.get(f"/{db}/doc/dir/sub/file.bin", headers={"If-None-Match": etag}) as r:
        assert r.status == 304 and await r.read() == b""
    async with client.head(f"/{db}/doc/dir/sub/file.bin") as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
    _, doc = await get_json(client, f"/{db}/doc")
    assert doc["_attachments"]["dir/sub/file.bin"]["digest"] == digest(data)
    # Without rev on an existing doc: conflict.
    async with client.put(f"/{db}/doc/other", data=b"x") as r:
        assert r.status == 409
    async with client.put(f"/{db}/doc/other", data=b"x", params={"rev": res["rev"]}) as r:
        assert r.status == 201
        rev2 = (await r.json())["rev"]
    _, doc = await get_json(client, f"/{db}/doc")
    assert doc["_attachments"]["other"]["revpos"] == 2 and doc["_attachments"]["dir/sub/file.bin"]["revpos"] == 1
    assert doc["_attachments"]["other"]["content_type"] == "application/octet-stream"
    # Stale rev: conflict (404 when that revision lacks the attachment, as CouchDB).
    async with client.delete(f"/{db}/doc/dir/sub/file.bin", params={"rev": res["rev"]}) as r:
        assert r.status == 409
    async with client.delete(f"/{db}/doc/other", params={"rev": res["rev"]}) as r:
        assert r.status == 404
    async with client.delete(f"/{db}/doc/other", params={"rev": rev2}) as r:
        assert r.status == 200
        rev3 = (await r.json())["rev"]
    async with client.get(f"/{db}/doc/other") as r:
        assert r.status == 404
        assert (await r.json())["error"] == "not_found"
    async with client.get(f"/{db}/doc/dir/sub/file.bin", params={"rev": rev2}) as r:
        assert r.status == 200
    # As CouchDB: deleting an absent attachment is 404 (no new revision); an unknown rev is 409
    # {"error": "not_found", "reason": "missing_rev"}.
    async with client.delete(f"/{db}/doc/missing.txt", params={"rev": rev3}) as r:
        assert r.status == 404
    async with client.put(f"/{db}/doc/x", data=b"x", params={"rev": "9-0123456789abcdef0123456789abcdef"}) as r:
        assert r.status == 409
    async with client.get(f"/{db}/nodoc/x") as r:
        assert r.status == 404


async def test_design_doc_attachment(client, db):
    async with client.put(f"/{db}/_design/app/index.html", data=b"<p>hi</p>", headers={"Content-Type": "text/html"}) as r:
        assert r.status == 201, await r.text()
    async with client.get(f"/{db}/_design/app/index.html") as r:
        assert r.status == 200 and await r.read() == b"<p>hi</p>"
        assert r.headers["Content-Type"].startswith("text/html")
    _, ddoc = await get_json(client, f"/{db}/_design/app")
    assert "index.html" in ddoc["_attachments"]


async def test_ranges_as_couchdb(client, db):
    text = b"This is a base64 encoded text"
    await put_doc(client, db, "bin_doc", {"_attachments": {"foo.txt": {"content_type": "application/octet-stream", "data": b64(text)}}})
    url = f"/{db}/bin_doc/foo.txt"

    async def get(rng):
        async with client.get(url, headers={"Range": rng}) as r:
            return r.status, r.headers, await r.read()

    s, h, body = await get("bytes=0-28")
    assert (s, body, h["Content-Range"], h["Content-Length"]) == (206, text, "bytes 0-28/29", "29")
    s, h, body = await get("bytes=0-")
    assert s == 200 and body == text and "Content-Range" not in h
    assert (await get("bytes=0-,0-,0-"))[0] == 200
    assert (await get("bytes:0-"))[0] == 200
    s, h, body = await get("bytes=2-")
    assert (s, body, h["Content-Range"]) == (206, text[2:], "bytes 2-28/29")
    s, h, body = await get("bytes=10-15")
    assert (s, body, h["Content-Length"]) == (206, b"base64", "6")
    s, h, body = await get("bytes=-3")
    assert (s, body, h["Content-Range"]) == (206, b"ext", "bytes 26-28/29")
    assert (await get("bytes=5-3"))[0] == 416
    s, h, body = await get("bytes=300-310")
    assert s == 416
    assert (await get("bytes=" + ",".join(["0-1"] * 10)))[0] == 200
    # Two ranges: multipart/byteranges.
    s, h, body = await get("bytes=0-3,10-15")
    assert s == 206 and h["Content-Type"].startswith("multipart/byteranges")
    assert b"Content-Range: bytes 0-3/29" in body and b"This" in body
    assert b"Content-Range: bytes 10-15/29" in body and b"base64" in body


async def test_max_attachment_size(new_server):
    import aiohttp

    srv = new_server(config={"couchdb": {"max_attachment_size": "1000"}})
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as client:
        assert (await client.put("/lim")).status == 201
        async with client.put("/lim/d", json={"_attachments": {"a": {"content_type": "x/y", "data": b64(b"x" * 1001)}}}) as r:
            assert r.status == 413 and (await r.json())["error"] == "attachment_too_large"
        async with client.put("/lim/d/a", data=b"y" * 2000) as r:
            assert r.status == 413 and (await r.json())["error"] == "attachment_too_large"

        async def chunked():
            for _ in range(4):
                yield b"z" * 400

        async with client.put("/lim/d/a", data=chunked()) as r:
            assert r.status == 413 and (await r.json())["error"] == "attachment_too_large"
        async with client.put("/lim/d/a", data=b"y" * 1000) as r:
            assert r.status == 201
        async with client.get("/lim/d/a") as r:
            assert await r.read() == b"y" * 1000


async def test_content_md5_request_header_ignored(client, db):
    """As CouchDB 3.4.3 (tests/test_couchdb_attachments.py checks it against the real one)."""
    async with client.put(f"/{db}/d/a.bin", data=b"payload", headers={"Content-MD5": b64(hashlib.md5(b"other").digest())}) as r:
        assert r.status == 201
    async with client.get(f"/{db}/d/a.bin") as r:
        assert await r.read() == b"payload"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=70_000), ctype=st.sampled_from(["application/octet-stream", "text/plain"]))
async def test_random_bytes_inline_and_standalone_identical(client, db, data, ctype):
    status, r = await put_doc(client, db, "inl-" + uuid.uuid4().hex,
                              {"_attachments": {"f": {"content_type": ctype, "data": b64(data)}}})
    assert status == 201, r
    docid = r["id"]
    async with client.put(f"/{db}/sa-{docid}/f", data=data, headers={"Content-Type": ctype}) as resp:
        assert resp.status == 201
    for d in (docid, f"sa-{docid}"):
        _, doc = await get_json(client, f"/{db}/{d}", attachments="true")
        e = doc["_attachments"]["f"]
        assert e["digest"] == couchdb_digest(data, ctype) and base64.b64decode(e["data"]) == data
        async with client.get(f"/{db}/{d}/f", auto_decompress=False) as resp:
            raw = await resp.read()
            # the ETag is the digest: the MD5 of the stored bytes (gzip when stored encoded)
            assert resp.headers["ETag"] == '"' + e["digest"][4:] + '"'
            assert (gzip.decompress(raw) if resp.headers.get("Content-Encoding") == "gzip" else raw) == data
        async with client.get(f"/{db}/{d}/f", headers={"Accept-Encoding": "identity"}) as resp:
            assert await resp.read() == data


async def test_put_gzip_encoded_body_and_odd_names(client, db):
    text = b"gzip me please " * 300
    async with client.put(f"/{db}/g/n%C3%A4me%20with%20space.txt", data=gzip.compress(text),
                          headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"}) as r:
        assert r.status == 201, await r.text()
    _, doc = await get_json(client, f"/{db}/g", att_encoding_info="true")
    e = doc["_attachments"]["näme with space.txt"]
    assert e["length"] == len(text) and e["encoding"] == "gzip"
    # the body arrives decoded (aiohttp decodes request bodies) and is stored gzip again: the
    # digest names the bytes stored, whatever gzip the client sent
    async with client.get(f"/{db}/g/n%C3%A4me%20with%20space.txt", headers={"Accept-Encoding": "gzip"},
                          auto_decompress=False) as r:
        assert e["digest"] == digest(await r.read()) == couchdb_digest(text, "text/plain")
    async with client.get(f"/{db}/g/n%C3%A4me%20with%20space.txt", headers={"Accept-Encoding": "identity"}) as r:
        assert await r.read() == text
    async with client.put(f"/{db}/g2/a.txt", data=b"x", headers={"Content-Encoding": "x-unknown"}) as r:
        assert r.status == 415
    # Attachments of a deleted document are gone with it.
    async with client.delete(f"/{db}/g", params={"rev": doc["_rev"]}) as r:
        assert r.status == 200
    async with client.get(f"/{db}/g/n%C3%A4me%20with%20space.txt") as r:
        assert r.status == 404


async def test_bulk_docs_and_post_carry_inline_attachments(client, db):
    docs = [{"_id": f"b{i}", "_attachments": {"a": {"content_type": "application/octet-stream", "data": b64(bytes([i]) * 10)}}}
            for i in range(3)]
    bad = {"_id": "bad", "_attachments": {"a": {"content_type": "x/y", "data": "%%%"}}}
    # as CouchDB: invalid data refuses the whole request, nothing is written
    async with client.post(f"/{db}/_bulk_docs", json={"docs": docs + [bad]}) as r:
        assert r.status == 400
        assert await r.json() == {"error": "bad_request", "reason": "Invalid attachment data for a"}
    async with client.get(f"/{db}/b0") as r:
        assert r.status == 404
    async with client.post(f"/{db}/_bulk_docs", json={"docs": docs}) as r:
        assert r.status == 201
        rows = await r.json()
    assert [row.get("ok") for row in rows] == [True] * 3
    for i in range(3):
        async with client.get(f"/{db}/b{i}/a") as r:
            assert await r.read() == bytes([i]) * 10
    async with client.post(f"/{db}", json={"_id": "posted", "_attachments": {"p": {"content_type": "x/y", "data": b64(b"post")}}}) as r:
        assert r.status == 201
        posted = await r.json()
        assert posted["ok"] is True and posted["id"] == "posted" and posted["rev"].startswith("1-")
    async with client.get(f"/{db}/posted") as r:
        assert (await r.json())["_attachments"] == {"p": {"content_type": "x/y", "revpos": 1, "length": 4,
                                                          "digest": "md5-QrkBlrSHxUBpCXpo/pirbw==", "stub": True}}
    async with client.get(f"/{db}/posted/p") as r:
        assert await r.read() == b"post"
