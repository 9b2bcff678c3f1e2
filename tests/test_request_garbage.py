"""A request leaves no classes behind.

aiohttp's `request.content_type` parses each Content-Type value it has not cached (its last 56)
with the `email` package, whose header registry builds new classes on every parse: about 7 KB of
cyclic garbage a parse, which only the cyclic collector frees, and which the server collects
rarely (couchpy_cli.tune_gc). Every multipart/related write has a boundary of its own, so every
document a replicator pushed with its attachments left that garbage: in the soak, 95% of the
objects the collector freed (docs/reliability.md, "Soak"). The server runs in this process, so the
garbage the requests leave is counted here, with the collector paused.
"""

from __future__ import annotations

import gc
import json
import uuid

import aiohttp
import pytest
from aiohttp import web

from couchpy.node import Node
from couchpy_cli import prepare_config
from http_api.app import make_app

from .serverproc import free_port

WRITES = 60


@pytest.fixture
async def session(tmp_path):
    (tmp_path / "couchpy.ini").write_text("[admins]\nadmin = secret\n[chttpd_auth]\niterations = 1000\n")
    config, _ = prepare_config(tmp_path, None)
    node = Node(tmp_path, config)
    node.ensure_system_dbs()
    runner = web.AppRunner(make_app(node), access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", auth=aiohttp.BasicAuth("admin", "secret")) as s:
            assert (await s.put("/d")).status == 201
            yield s
    finally:
        await runner.cleanup()
        await node.aclose()


def related(doc: dict, body: bytes) -> tuple[bytes, str]:
    """A multipart/related document write with one attachment, under a boundary of its own."""
    boundary = "b" + uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), json.dumps(doc).encode(),
             f"\r\n--{boundary}\r\n\r\n".encode(), body, f"\r\n--{boundary}--".encode()]
    return b"".join(parts), f'multipart/related; boundary="{boundary}"'


def classes_in_garbage() -> int:
    """Collect now; how many of the unreachable objects were classes."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sum(isinstance(o, type) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_multipart_writes_leave_no_classes(session):
    async def write(i: int) -> None:
        doc = {"n": i, "_attachments": {"a.txt": {"follows": True, "content_type": "text/plain", "length": 5}}}
        data, ctype = related(doc, b"hello")
        async with session.put(f"/d/doc{i}", data=data, headers={"Content-Type": ctype}) as r:
            assert r.status == 201, await r.text()

    await write(-1)  # the first write of its kind builds what later ones reuse
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        classes_in_garbage()
        for i in range(WRITES):
            await write(i)
        left = classes_in_garbage()
    finally:
        if was_enabled:
            gc.enable()
    # two classes a write with the parse in the path (120 here); none without it
    assert left < WRITES // 10, left
    async with session.get("/d/doc7/a.txt") as r:
        assert await r.read() == b"hello"
