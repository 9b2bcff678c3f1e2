"""Every acknowledged write follows its own durable commit, seen from the system calls.

A SIGKILL cannot tell a committed-but-unsynced write from a synced one (the page cache survives
the process), so this test watches the server with `strace` instead: between reading a request
and writing its 201, the server must have fdatasync'ed the database's data file and then written
the LMDB meta page (tests/synctrace.py). Documents, bulk rows, attachments and `_local`
checkpoints are written by concurrent clients so that group commits are exercised.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
import uuid

import aiohttp
import pytest

from tests import synctrace
from tests.serverproc import CouchpyServer

WRITERS = 8
WRITES_PER_WRITER = 12
SYSCALLS = "read,recvfrom,recvmsg,readv,write,writev,sendto,sendmsg,fdatasync,fsync,pwrite64"


def _attach_strace(pid: int, log_path) -> subprocess.Popen:
    strace = shutil.which("strace")
    assert strace, "strace is required (apt-get install strace)"
    proc = subprocess.Popen([strace, "-f", "-tt", "-yy", "-s", "512", "-e", f"trace={SYSCALLS}",
                             "-o", str(log_path), "-p", str(pid)],
                            stderr=subprocess.PIPE, text=True)
    # strace reports each thread it attaches to; the main thread first
    deadline = time.monotonic() + 10
    line = proc.stderr.readline()
    assert "attached" in line, line
    while time.monotonic() < deadline and not log_path.exists():
        time.sleep(0.05)
    time.sleep(0.3)  # the other threads
    return proc


async def _write(session: aiohttp.ClientSession, base: str, kind: str, token: str) -> None:
    if kind == "doc":
        r = await session.put(f"{base}/{token}", json={"v": token})
    elif kind == "bulk":
        r = await session.post(f"{base}/_bulk_docs", json={"docs": [{"_id": token}]})
    elif kind == "att":
        r = await session.put(f"{base}/{token}/a", data=token.encode() * 100,
                              headers={"Content-Type": "application/octet-stream"})
    else:
        r = await session.put(f"{base}/_local/{token}", json={"v": token})
    async with r:
        body = await r.json()
        assert r.status == 201, (kind, body)
        assert token in str(body), body


async def test_each_acknowledgement_follows_an_fdatasync_and_commit(tmp_path):
    srv = CouchpyServer(tmp_path)
    srv.start()
    base = f"{srv.base}/durable"
    log = tmp_path / "strace.log"
    tokens: list[str] = []
    tracer = None
    try:
        async with aiohttp.ClientSession(auth=srv.auth) as s:
            async with s.put(base) as r:
                assert r.status == 201
            tracer = _attach_strace(srv.pid, log)

            async def client(w: int) -> None:
                for n in range(WRITES_PER_WRITER):
                    token = uuid.uuid4().hex
                    tokens.append(token)
                    await _write(s, base, ("doc", "bulk", "att", "local")[(w + n) % 4], token)

            await asyncio.wait_for(asyncio.gather(*(client(w) for w in range(WRITERS))), 120)
        tracer.send_signal(signal.SIGINT)  # detach; the server keeps running
        tracer.wait(10)
    finally:
        if tracer and tracer.poll() is None:
            tracer.kill()
        srv.stop()
    evs = synctrace.events(log.read_text(errors="replace").splitlines())
    syncs = synctrace.count(evs, "fdatasync", "/main/data.mdb")
    print(f"{len(tokens)} acknowledged writes, {syncs} fdatasync calls on the database's data file")
    assert syncs >= 1
    assert synctrace.unsynced_acks(evs, tokens, "/main/data.mdb") == []
