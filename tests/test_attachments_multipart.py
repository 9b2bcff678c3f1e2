"""Multipart forms of documents with attachments, through a real server: PUT multipart/related
(including new_edits=false and digest checks), GET with Accept: multipart/related, and open_revs
with Accept: multipart/mixed as CouchDB's replicator uses them. Bodies are built and parsed here
independently of the server's own multipart code (aiohttp's reader parses the replies)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.attdigest import couchdb_digest


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def digest(data: bytes) -> str:
    return "md5-" + b64(hashlib.md5(data).digest())


def related_body(doc: dict, bodies: list[bytes], part_headers: bool = True) -> tuple[bytes, str]:
    boundary = "bnd" + uuid.uuid4().hex
    out = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode() + json.dumps(doc).encode()]
    for i, data in enumerate(bodies):
        head = f"\r\n--{boundary}\r\n"
        if part_headers:
            head += f"Content-Length: {len(data)}\r\nContent-Type: application/octet-stream\r\n"
        out.append((head + "\r\n").encode() + data)
    out.append(f"\r\n--{boundary}--".encode())
    return b"".join(out), f'multipart/related; boundary="{boundary}"'


async def put_related(client, path, doc, bodies, params=None, part_headers=True):
    body, ctype = related_body(doc, bodies, part_headers)
    async with client.put(path, data=body, headers={"Content-Type": ctype}, params=params or {}) as r:
        return r.status, await r.json()


async def read_related(resp) -> tuple[dict, list[tuple[dict, bytes]]]:
    reader = aiohttp.MultipartReader(resp.headers, resp.content)
    first = await reader.next()
    doc = json.loads(await first.read())
    parts = []
    while True:
        part = await reader.next()
        if part is None:
            break
        parts.append((dict(part.headers), bytes(await part.read(decode=False))))
    return doc, parts


async def test_put_multipart_then_read_back(client, db):
    a, b = b"\x00binary\xffbytes" * 100, b"some text " * 500
    doc = {"title": "mp", "_attachments": {
        "a.bin": {"follows": True, "content_type": "application/octet-stream", "length": len(a)},
        "b.txt": {"follows": True, "content_type": "text/plain", "length": len(b), "digest": digest(b)},
    }}
    status, res = await put_related(client, f"/{db}/mp", doc, [a, b])
    assert status == 201, res
    assert res["ok"] is True and res["id"] == "mp" and res["rev"].startswith("1-")
    async with client.get(f"/{db}/mp") as r:
        stored = await r.json()
    assert stored["title"] == "mp"
    assert stored["_attachments"]["a.bin"] == {"content_type": "application/octet-stream", "revpos": 1,
                                               "digest": digest(a), "length": len(a), "stub": True}
    for name, data in (("a.bin", a), ("b.txt", b)):
        async with client.get(f"/{db}/mp/{name}", headers={"Accept-Encoding": "identity"}) as r:
            assert await r.read() == data
    # Parts without any headers (as CouchDB's own client sends them) work too.
    status, res2 = await put_related(client, f"/{db}/mp2", doc, [a, b], part_headers=False)
    assert status == 201, res2


async def test_put_multipart_keeps_stubs_and_updates(client, db):
    a = b"A" * 1000
    status, r1 = await put_related(client, f"/{db}/d", {"_attachments": {
        "a": {"follows": True, "content_type": "application/octet-stream", "length": len(a)}}}, [a])
    assert status == 201
    c = b"C" * 10
    status, r2 = await put_related(client, f"/{db}/d", {"_rev": r1["rev"], "_attachments": {
        "a": {"stub": True, "revpos": 1},
        "c": {"follows": True, "content_type": "application/octet-stream", "length": len(c)}}}, [c])
    assert status == 201, r2
    async with client.get(f"/{db}/d") as r:
        atts = (await r.json())["_attachments"]
    assert atts["a"]["revpos"] == 1 and atts["c"]["revpos"] == 2


async def test_put_multipart_digest_mismatch_is_400_and_nothing_changes(client, db):
    a = b"real bytes"
    status, body = await put_related(client, f"/{db}/bad", {"_attachments": {
        "a": {"follows": True, "content_type": "application/octet-stream", "length": len(a),
              "digest": digest(b"other bytes")}}}, [a])
    # CouchDB 3.4.3 answers this one with a 500 (function_clause); couchpy keeps the 400 it gives a
    # standalone attachment whose Content-MD5 does not match.
    assert (status, body["error"]) == (400, "content_md5_mismatch"), body
    async with client.get(f"/{db}/bad") as r:
        assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing"})
    # Fewer bodies than `follows` entries: 400, nothing written.
    status, body = await put_related(client, f"/{db}/bad", {"_attachments": {
        "a": {"follows": True, "content_type": "x/y", "length": 1},
        "b": {"follows": True, "content_type": "x/y", "length": 1}}}, [b"1"])
    assert (status, body) == (400, {"error": "bad_request", "reason": "attachment shorter than expected"})
    async with client.get(f"/{db}/bad") as r:
        assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing"})


async def test_get_multipart_related(client, db):
    a, t = bytes(range(256)) * 8, b"compressible text " * 400
    await put_related(client, f"/{db}/d", {"x": 1, "_attachments": {
        "a.bin": {"follows": True, "content_type": "application/octet-stream", "length": len(a)},
        "t.txt": {"follows": True, "content_type": "text/plain", "length": len(t)}}}, [a, t])
    async with client.get(f"/{db}/d", params={"attachments": "true"}, headers={"Accept": "multipart/related"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("multipart/related")
        assert int(r.headers["Content-Length"]) > len(a)
        doc, parts = await read_related(r)
    assert doc["x"] == 1
    e = doc["_attachments"]["a.bin"]
    assert e["follows"] is True and e["length"] == len(a) and e["digest"] == digest(a) and "data" not in e
    et = doc["_attachments"]["t.txt"]
    assert et["encoding"] == "gzip" and et["length"] == len(t)
    assert len(parts) == 2
    (h1, body1), (h2, body2) = parts
    assert body1 == a and 'filename="a.bin"' in h1["Content-Disposition"]
    # Sent in its stored encoding, as CouchDB does over multipart.
    assert h2.get("Content-Encoding") == "gzip" and gzip.decompress(body2) == t
    assert int(h2["Content-Length"]) == et["encoded_length"] == len(body2)
    # Without attachments=true the Accept header alone does not make it multipart.
    async with client.get(f"/{db}/d", headers={"Accept": "multipart/related"}) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        assert (await r.json())["_attachments"]["a.bin"]["stub"] is True


async def test_open_revs_multipart_mixed(client, db):
    a = b"first"
    status, r1 = await put_related(client, f"/{db}/d", {"_attachments": {
        "a": {"follows": True, "content_type": "application/octet-stream", "length": len(a)}}}, [a])
    async with client.put(f"/{db}/d", json={"_rev": r1["rev"], "v": 2,
                                            "_attachments": {"a": {"stub": True}}}) as r:
        r2 = await r.json()
    missing = "9-0123456789abcdef0123456789abcdef"
    revs = json.dumps([r1["rev"], r2["rev"], missing])
    async with client.get(f"/{db}/d", params={"open_revs": revs, "revs": "true", "latest": "true",
                                              "atts_since": json.dumps([r1["rev"]])},
                          headers={"Accept": "multipart/mixed"}) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("multipart/mixed")
        reader = aiohttp.MultipartReader(r.headers, r.content)
        seen = []
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, aiohttp.MultipartReader):
                first = await part.next()
                doc = json.loads(await first.read())
                bodies = []
                while (p := await part.next()) is not None:
                    bodies.append(bytes(await p.read(decode=False)))
                seen.append(("related", doc, bodies))
            else:
                ctype = part.headers["Content-Type"]
                seen.append(("json", ctype, json.loads(await part.read())))
    kinds = [s[0] for s in seen]
    # latest=true maps r1 to r2, so r2 once, plus the missing one.
    docs = [s for s in seen if s[0] == "json" and "error" not in s[1]]
    errors = [s for s in seen if s[0] == "json" and "error" in s[1]]
    assert errors and errors[0][2] == {"missing": missing}
    assert len(docs) + kinds.count("related") == 1
    # atts_since r1: a (revpos 1) is a stub, so the revision is plain JSON.
    doc = docs[0][2]
    assert doc["_rev"] == r2["rev"] and doc["_attachments"]["a"]["stub"] is True
    assert doc["_revisions"]["start"] == 2
    # Without atts_since: the attachment body follows.
    async with client.get(f"/{db}/d", params={"open_revs": json.dumps([r2["rev"]])},
                          headers={"Accept": "multipart/mixed"}) as r:
        reader = aiohttp.MultipartReader(r.headers, r.content)
        part = await reader.next()
        assert isinstance(part, aiohttp.MultipartReader)
        doc = json.loads(await (await part.next()).read())
        body = bytes(await (await part.next()).read(decode=False))
        assert doc["_attachments"]["a"]["follows"] is True and body == a
    # JSON open_revs with attachments=true inlines data.
    async with client.get(f"/{db}/d", params={"open_revs": "all", "attachments": "true"},
                          headers={"Accept": "application/json"}) as r:
        rows = await r.json()
    assert base64.b64decode(rows[0]["ok"]["_attachments"]["a"]["data"]) == a


async def test_new_edits_false_over_multipart_replicates_a_revision(client, db):
    """What a replicator does: copy a revision with its attachment bodies via multipart."""
    src = b"replicated body " * 100
    rev_ids = ["b" * 32, "a" * 32]
    doc = {"_rev": f"2-{rev_ids[0]}", "_revisions": {"start": 2, "ids": rev_ids}, "k": "v",
           "_attachments": {"r.txt": {"follows": True, "content_type": "text/plain", "revpos": 1,
                                      "length": len(src), "digest": digest(src)}}}
    status, res = await put_related(client, f"/{db}/rep", doc, [src], params={"new_edits": "false"})
    assert status == 201, res
    async with client.get(f"/{db}/rep", params={"revs": "true"}) as r:
        got = await r.json()
    assert got["_rev"] == f"2-{rev_ids[0]}"
    assert got["_attachments"]["r.txt"]["revpos"] == 1  # kept from the source
    async with client.get(f"/{db}/rep/r.txt", headers={"Accept-Encoding": "identity"}) as r:
        assert await r.read() == src
    # Gzip-encoded body as CouchDB sends with att_encoding_info: stored encoded, digest checked.
    enc = gzip.compress(src)
    doc2 = {"_rev": "1-" + "c" * 32, "_revisions": {"start": 1, "ids": ["c" * 32]},
            "_attachments": {"z.txt": {"follows": True, "content_type": "text/plain", "revpos": 1,
                                       "length": len(src), "encoding": "gzip", "encoded_length": len(enc)}}}
    status, res = await put_related(client, f"/{db}/rep2", doc2, [enc], params={"new_edits": "false"})
    assert status == 201, res
    async with client.get(f"/{db}/rep2/z.txt", headers={"Accept-Encoding": "identity"}) as r:
        assert await r.read() == src
    async with client.get(f"/{db}/rep2") as r:
        assert (await r.json())["_attachments"]["z.txt"]["digest"] == digest(enc)  # as received


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=50_000), ctype=st.sampled_from(["application/octet-stream", "text/plain"]))
async def test_random_bytes_multipart_round_trip(client, db, data, ctype):
    docid = "mp-" + uuid.uuid4().hex
    status, res = await put_related(client, f"/{db}/{docid}", {"_attachments": {
        "f": {"follows": True, "content_type": ctype, "length": len(data)}}}, [data])
    assert status == 201, res
    async with client.get(f"/{db}/{docid}", params={"attachments": "true"}, headers={"Accept": "multipart/related"}) as r:
        doc, parts = await read_related(r)
    (headers, body), = parts
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    assert body == data and doc["_attachments"]["f"]["digest"] == couchdb_digest(data, ctype)
    async with client.get(f"/{db}/{docid}", params={"attachments": "true"}) as r:
        inline = (await r.json())["_attachments"]["f"]
    assert base64.b64decode(inline["data"]) == data and inline["digest"] == couchdb_digest(data, ctype)
    async with client.get(f"/{db}/{docid}/f", headers={"Accept-Encoding": "identity"}) as r:
        assert await r.read() == data
