"""A 200 MB attachment streams through the server in bounded memory: uploaded standalone and as
a multipart/related document (the replicator's form), downloaded both ways, each checked byte for
byte (by MD5), while the server's peak resident set (VmHWM from /proc/<pid>/status) grows by
less than 64 MB over what the idle server held (about 30 MB is measured: a fraction of the 200 MB
that passes through). Bounded in time."""

from __future__ import annotations

import hashlib
import json
import time

import aiohttp
import pytest

SIZE = 200 * 1024 * 1024
PIECE = 1024 * 1024
GROWTH_LIMIT_KB = 64 * 1024  # peak over the idle server's resident set


def _proc_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


BLOCK = __import__("os").urandom(PIECE)


def _pieces():
    # Incompressible but cheap to make: one random block, varied per piece.
    block = BLOCK
    for i in range(SIZE // PIECE):
        yield i.to_bytes(8, "big") + block[8:]


@pytest.mark.slow
async def test_200mb_upload_download_bounded_rss(new_server):
    srv = new_server()
    pid = srv.pid
    expected = hashlib.md5()
    for p in _pieces():
        expected.update(p)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth, timeout=timeout) as client:
        assert (await client.put("/big")).status == 201
        base_rss = _proc_kb(pid, "VmRSS")

        async def body():
            for p in _pieces():
                yield p

        t0 = time.monotonic()
        async with client.put("/big/doc/blob.bin", data=body(),
                              headers={"Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, await r.text()
        t_up = time.monotonic() - t0
        after_up = _proc_kb(pid, "VmHWM")

        got, n = hashlib.md5(), 0
        t0 = time.monotonic()
        async with client.get("/big/doc/blob.bin") as r:
            assert r.status == 200
            assert int(r.headers["Content-Length"]) == SIZE
            async for chunk in r.content.iter_chunked(PIECE):
                got.update(chunk)
                n += len(chunk)
        t_down = time.monotonic() - t0
        # The same body as the part of a multipart/related document reply (replication's form).
        mgot, mn = hashlib.md5(), 0
        async with client.get("/big/doc", params={"attachments": "true"},
                              headers={"Accept": "multipart/related"}) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("multipart/related")
            reader = aiohttp.MultipartReader(r.headers, r.content)
            doc = json.loads(await (await reader.next()).read())
            assert doc["_attachments"]["blob.bin"]["follows"] is True
            part = await reader.next()
            while chunk := await part.read_chunk(PIECE):
                mgot.update(chunk)
                mn += len(chunk)
        peak = _proc_kb(pid, "VmHWM")
        async with client.get("/big/doc") as r:
            stub = (await r.json())["_attachments"]["blob.bin"]
    print(f"\nupload {SIZE / t_up / 1e6:.0f} MB/s, download {SIZE / t_down / 1e6:.0f} MB/s, "
          f"RSS base {base_rss // 1024} MB, peak after upload {after_up // 1024} MB, peak {peak // 1024} MB")
    assert n == SIZE and got.digest() == expected.digest()
    assert mn == SIZE and mgot.digest() == expected.digest()
    assert stub["length"] == SIZE
    assert peak - base_rss < GROWTH_LIMIT_KB, f"server peak RSS {peak} kB over {base_rss} kB idle"
    assert t_up < 120 and t_down < 120


@pytest.mark.slow
async def test_200mb_multipart_put_bounded_rss(new_server):
    srv = new_server()
    pid = srv.pid
    expected = hashlib.md5()
    for p in _pieces():
        expected.update(p)
    digest = "md5-" + __import__("base64").b64encode(expected.digest()).decode()
    boundary = "b0undary" + "x" * 20
    doc = {"_id": "mp", "_rev": "1-" + "a" * 32, "_revisions": {"start": 1, "ids": ["a" * 32]},
           "_attachments": {"blob.bin": {"follows": True, "content_type": "application/octet-stream",
                                         "length": SIZE, "digest": digest, "revpos": 1}}}

    async def body():
        yield (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(doc)}"
               f"\r\n--{boundary}\r\n\r\n").encode()  # the body part without headers
        for p in _pieces():
            yield p
        yield f"\r\n--{boundary}--".encode()

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth, timeout=timeout) as client:
        assert (await client.put("/bigmp")).status == 201
        base_rss = _proc_kb(pid, "VmRSS")
        t0 = time.monotonic()
        async with client.put("/bigmp/mp", data=body(), params={"new_edits": "false"},
                              headers={"Content-Type": f'multipart/related; boundary="{boundary}"'}) as r:
            assert r.status == 201, await r.text()
        t_up = time.monotonic() - t0
        peak = _proc_kb(pid, "VmHWM")
        async with client.get("/bigmp/mp") as r:
            stub = (await r.json())["_attachments"]["blob.bin"]
        got = hashlib.md5()
        async with client.get("/bigmp/mp/blob.bin") as r:
            async for chunk in r.content.iter_chunked(PIECE):
                got.update(chunk)
    print(f"\nmultipart upload {SIZE / t_up / 1e6:.0f} MB/s, peak RSS {peak // 1024} MB")
    assert stub == {"content_type": "application/octet-stream", "revpos": 1, "digest": digest,
                    "length": SIZE, "stub": True}
    assert got.digest() == expected.digest()
    assert peak - base_rss < GROWTH_LIMIT_KB, f"server peak RSS {peak} kB over {base_rss} kB idle"
    assert t_up < 120
