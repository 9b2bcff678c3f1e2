"""Compaction survives a crash at every one of its file-system steps.

For N = 1, 2, ... the server runs under tests/killpoint.py, which SIGKILLs it just before its Nth
rename/fsync/unlink/rmdir under the databases' directory, while clients write and a compaction
runs. The server is restarted as usual and every acknowledged write must be there with exactly
its revision and body (also after a further, uninterrupted compaction). The loop ends when a
compaction completes without reaching step N, so every step, whatever their number, is covered.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.serverproc import CouchpyServer

DB = "compacted"
MAX_STEPS = 60


class KillpointServer(CouchpyServer):
    """The real server, killed by tests/killpoint.py at its `kill_at`th file-system step."""

    kill_at: int | None = None

    @property
    def kill_log(self) -> Path:
        return self.data_dir.parent / "killpoints.log"

    def command(self) -> list[str]:
        argv = super().command()
        if self.kill_at is None:
            return argv
        return [sys.executable, "-m", "tests.killpoint", *argv[3:]]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        if self.kill_at is not None:
            env = dict(env, KILLPOINT_AT=str(self.kill_at), KILLPOINT_UNDER=str(self.data_dir / "dbs") + "/",
                       KILLPOINT_LOG=str(self.kill_log))
        return env

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Expected:
    """What the server acknowledged: doc id -> (rev, body without _id/_rev, deleted)."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, dict, bool]] = {}
        self.conflicts: dict[str, dict[str, dict]] = {}  # id -> leaf rev -> body
        self.local: dict[str, dict] = {}
        self.attachments: dict[tuple[str, str], bytes] = {}


async def _bulk(s: aiohttp.ClientSession, base: str, docs: list[dict], **extra) -> list[dict]:
    async with s.post(f"{base}/{DB}/_bulk_docs", json={"docs": docs, **extra}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def _write_round(s: aiohttp.ClientSession, base: str, rnd: int, exp: Expected) -> None:
    """Documents with history (garbage for compaction), tombstones, a conflict, a _local doc and
    an attachment, all acknowledged before the compaction starts."""
    ids = [f"r{rnd}-d{i}" for i in range(20)]
    revs: dict[str, str] = {}
    for gen in range(4):
        docs = []
        for i, docid in enumerate(ids):
            body = {"round": rnd, "i": i, "gen": gen, "pad": f"{docid}-{gen}-" + "y" * (i * 7)}
            doc = {"_id": docid, **body}
            if docid in revs:
                doc["_rev"] = revs[docid]
            if gen == 3 and i % 5 == 0:
                doc = {"_id": docid, "_rev": revs[docid], "_deleted": True}
                body = {}
            docs.append(doc)
        for row, doc in zip(await _bulk(s, base, docs), docs):
            assert row.get("ok"), row
            revs[row["id"]] = row["rev"]
            body = {k: v for k, v in doc.items() if k not in ("_id", "_rev", "_deleted")}
            exp.docs[row["id"]] = (row["rev"], body, bool(doc.get("_deleted")))
    cid = f"r{rnd}-conflicted"
    leaves = {}
    for branch in ("a", "b"):
        rev = f"2-{branch * 32}"
        body = {"branch": branch, "round": rnd}
        doc = {"_id": cid, "_rev": rev, "_revisions": {"start": 2, "ids": [branch * 32, "0" * 32]}, **body}
        assert await _bulk(s, base, [doc], new_edits=False) == []
        leaves[rev] = body
    exp.conflicts[cid] = leaves
    lid = f"_local/r{rnd}"
    async with s.put(f"{base}/{DB}/{lid}", json={"round": rnd}) as r:
        assert r.status == 201, await r.text()
    exp.local[lid] = {"round": rnd}
    data = os.urandom(3000) + bytes(rnd)
    att = {"_id": f"r{rnd}-att", "_attachments": {"blob.bin": {
        "content_type": "application/octet-stream", "data": base64.b64encode(data).decode()}}}
    (row,) = await _bulk(s, base, [att])
    assert row.get("ok"), row
    exp.docs[row["id"]] = (row["rev"], {}, False)
    exp.attachments[(row["id"], "blob.bin")] = data


async def _writer(s: aiohttp.ClientSession, base: str, rnd: int, wid: int, exp: Expected, stop: asyncio.Event):
    """New documents while the compaction runs; each id is written once, so an acknowledged one
    must come back with exactly that revision, and one in flight at the kill may be missing."""
    n = 0
    while not stop.is_set():
        docid = f"r{rnd}-live-{wid}-{n}"
        body = {"writer": wid, "n": n, "round": rnd}
        try:
            async with s.put(f"{base}/{DB}/{docid}", json=body) as r:
                if r.status != 201:
                    return
                exp.docs[docid] = ((await r.json())["rev"], body, False)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            return
        n += 1


def _env_identity(srv: CouchpyServer) -> tuple[int, bool]:
    """(inode of the live environment file, whether swap leftovers exist) of the one database."""
    (dbdir,) = [d for d in (srv.data_dir / "dbs").iterdir() if d.name.startswith(DB)]
    inode = (dbdir / "main" / "data.mdb").stat().st_ino if (dbdir / "main" / "data.mdb").exists() else -1
    leftovers = (dbdir / "main.old").exists() or (dbdir / "main.compact").exists()
    return inode, leftovers


async def _compact_until_done_or_dead(srv: KillpointServer, s: aiohttp.ClientSession) -> bool:
    """POST _compact and wait; True when it completed, False when the server died on the way."""
    before, _ = _env_identity(srv)
    async with s.post(f"{srv.base}/{DB}/_compact", json={}) as r:
        assert r.status == 202, await r.text()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not srv.alive():
            return False
        try:
            inode, leftovers = _env_identity(srv)
            if inode not in (before, -1) and not leftovers:
                async with s.get(f"{srv.base}/{DB}") as r:
                    if r.status == 200 and not (await r.json())["compact_running"]:
                        return True
        except (aiohttp.ClientError, ConnectionError, OSError):
            pass
        await asyncio.sleep(0.02)
    raise AssertionError("compaction neither finished nor crashed in 60 s")


async def _check(s: aiohttp.ClientSession, base: str, exp: Expected) -> None:
    for docid, (rev, body, deleted) in exp.docs.items():
        async with s.get(f"{base}/{DB}/{docid}", params={"rev": rev}) as r:
            assert r.status == 200, (docid, rev, await r.text())
            doc = await r.json()
        got = {k: v for k, v in doc.items() if k not in ("_id", "_rev", "_deleted", "_attachments")}
        assert (doc["_rev"], got, doc.get("_deleted", False)) == (rev, body, deleted), docid
        async with s.get(f"{base}/{DB}/{docid}") as r:
            if deleted:
                assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "deleted"}), docid
            else:
                assert r.status == 200, (docid, await r.text())
                assert (await r.json())["_rev"] == rev, docid
    for (docid, name), data in exp.attachments.items():
        async with s.get(f"{base}/{DB}/{docid}/{name}") as r:
            assert r.status == 200, (docid, await r.text())
            assert await r.read() == data, docid
    for docid, leaves in exp.conflicts.items():
        async with s.get(f"{base}/{DB}/{docid}", params={"open_revs": "all"},
                         headers={"Accept": "application/json"}) as r:
            assert r.status == 200, await r.text()
            rows = await r.json()
        got = {row["ok"]["_rev"]: {k: v for k, v in row["ok"].items() if not k.startswith("_")} for row in rows}
        assert got == leaves, docid
    for docid, body in exp.local.items():
        async with s.get(f"{base}/{DB}/{docid}") as r:
            assert r.status == 200, (docid, await r.text())
            assert {k: v for k, v in (await r.json()).items() if not k.startswith("_")} == body


@pytest.mark.slow
async def test_sigkill_at_every_compaction_step_loses_no_acknowledged_write(tmp_path):
    srv = KillpointServer(tmp_path)
    exp = Expected()
    timeout = aiohttp.ClientTimeout(total=20)
    completed_at = None
    try:
        for n in range(1, MAX_STEPS + 1):
            srv.kill_at = n
            srv.start()
            async with aiohttp.ClientSession(auth=srv.auth, timeout=timeout) as s:
                if n == 1:
                    async with s.put(f"{srv.base}/{DB}") as r:
                        assert r.status == 201, await r.text()
                await _write_round(s, srv.base, n, exp)
                stop = asyncio.Event()
                writers = [asyncio.create_task(_writer(s, srv.base, n, w, exp, stop)) for w in range(3)]
                completed = await _compact_until_done_or_dead(srv, s)
                stop.set()
                await asyncio.gather(*writers)
            if completed:
                completed_at = n
                srv.stop()
            srv.kill()
            srv.kill_at = None
            srv.start()
            async with aiohttp.ClientSession(auth=srv.auth, timeout=timeout) as s:
                await _check(s, srv.base, exp)
                # The database is whole again: a compaction that runs to its end keeps it whole.
                assert await _compact_until_done_or_dead(srv, s)
                await _check(s, srv.base, exp)
            srv.stop()
            if completed:
                break
    finally:
        srv.stop()
    assert completed_at is not None, f"compaction still had steps left after {MAX_STEPS}"
    steps = srv.kill_log.read_text().splitlines()
    assert len(steps) == completed_at - 1
    # The kills did land on the swap's renames, among all the other steps.
    assert any(re.search(r" rename \S+/main \S+/main\.old$", line) for line in steps), steps
    assert any(re.search(r" rename \S+/main\.compact \S+/main$", line) for line in steps), steps
