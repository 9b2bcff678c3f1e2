"""An inline attachment's base64 is decoded once per write, whatever route the write takes.

A write is checked twice before its bytes are stored (in the HTTP handler, for CouchDB's order of
errors, and in Database._prepare, for library callers and the routes that do not check first),
and each check reads the inline data; decoding it at every step costs a large attachment's
decoding time two or three times over. The server runs in this process, so that every call of
`decode_base64` it makes is counted, wherever that function was imported.
"""

from __future__ import annotations

import base64
import sys

import aiohttp
import pytest

from couchpy.attachments import codec

from . import inprocess

DATA = bytes(range(256)) * 64
INLINE = {"a.bin": {"content_type": "application/octet-stream", "data": base64.b64encode(DATA).decode()}}


@pytest.fixture
async def session(tmp_path):
    async with inprocess.serve(tmp_path) as srv, aiohttp.ClientSession(srv.base, auth=srv.auth) as s:
        assert (await s.put("/d")).status == 201
        yield s


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The attachment names `decode_base64` is called for, in every module holding it."""
    calls: list[str] = []
    original = codec.decode_base64

    def counted(data, name):
        calls.append(name)
        return original(data, name)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith(("couchpy", "http_api")) \
                and getattr(module, "decode_base64", None) is original:
            monkeypatch.setattr(module, "decode_base64", counted)
    return calls


async def _stored(s: aiohttp.ClientSession, docid: str) -> bytes:
    async with s.get(f"/d/{docid}/a.bin") as r:
        assert r.status == 200, await r.text()
        return await r.read()


async def test_put_decodes_once(session, decodes):
    async with session.put("/d/put", json={"_attachments": INLINE}) as r:
        assert r.status == 201, await r.text()
    assert decodes == ["a.bin"]
    assert await _stored(session, "put") == DATA


async def test_post_decodes_once(session, decodes):
    async with session.post("/d", json={"_id": "post", "_attachments": INLINE}) as r:
        assert r.status == 201, await r.text()
    assert decodes == ["a.bin"]
    assert await _stored(session, "post") == DATA


async def test_bulk_docs_decodes_once(session, decodes):
    async with session.post("/d/_bulk_docs", json={"docs": [{"_id": "bulk", "_attachments": INLINE}]}) as r:
        assert r.status == 201, await r.text()
        assert [row.get("ok") for row in await r.json()] == [True]
    assert decodes == ["a.bin"]
    assert await _stored(session, "bulk") == DATA


async def test_local_put_decodes_once(session, decodes):
    # a _local document's attachments are checked, not stored: nothing of them is kept
    async with session.put("/d/_local/l", json={"x": 1, "_attachments": INLINE}) as r:
        assert r.status == 201, await r.text()
    assert decodes == ["a.bin"]
    async with session.get("/d/_local/l") as r:
        assert await r.json() == {"_id": "_local/l", "_rev": "0-1", "x": 1}


async def test_bad_data_still_refused(session, decodes):
    bad = {"a.bin": {"content_type": "text/plain", "data": "not base64!"}}
    for method, path, body in (("PUT", "/d/bad", {"_attachments": bad}),
                               ("POST", "/d", {"_id": "bad", "_attachments": bad}),
                               ("POST", "/d/_bulk_docs", {"docs": [{"_id": "bad", "_attachments": bad}]})):
        async with session.request(method, path, json=body) as r:
            assert (r.status, await r.json()) == (400, {"error": "bad_request",
                                                         "reason": "Invalid attachment data for a.bin"})
