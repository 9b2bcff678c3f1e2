"""Power loss: what the disk may hold after a power cut keeps every acknowledged write.

A SIGKILL leaves the page cache in place, so it cannot show a write acknowledged before it was on
the disk. Here the server runs under `strace`, which records every write and sync of its data
files and every response it sends (tests/writejournal.py reads that log like a block-level write
journal). For cut points all along the run, the data files are rebuilt as a power cut there may
leave them: what was synced, plus a random choice of the unsynced writes lost, kept or torn at a
sector boundary. Each such image is opened by the engine, which must read it without error and
find every write acknowledged before the cut with its exact revision and content (or a later
revision of ours whose write was in flight).

What it does not prove: that the filesystem's own metadata (file creation, renames, sizes) and
the disk's write cache honour `fsync`; the journal is the process's view of its writes.
POWER_LOSS_CUTS sets the number of cut points (several random images each).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

import couchpy
from couchpy.attachments.hooks import inline_data
from couchpy.errors import NotFound
from tests import writejournal
from tests.serverproc import CouchpyServer

WRITERS = 6
WRITES_PER_WRITER = 16
CUTS = int(os.environ.get("POWER_LOSS_CUTS", "12"))
IMAGES_PER_CUT = 2
DB = "powerloss"
SYSCALLS = "openat,close,lseek,write,writev,pwrite64,pwritev,fsync,fdatasync,sendto,sendmsg"


class TracedServer(CouchpyServer):
    """The real server, every write it makes recorded by strace."""

    trace_log: Path | None = None

    def command(self) -> list[str]:
        argv = super().command()
        if self.trace_log is None:
            return argv
        strace = shutil.which("strace")
        assert strace, "strace is required (apt-get install strace)"
        return [strace, "-f", "-yy", "-xx", "-v", "-s", str(4 << 20), "-e", f"trace={SYSCALLS}",
                "-o", str(self.trace_log), *argv]

    def kill(self) -> None:
        """SIGKILL the server under strace first: strace killed alone detaches and leaves it
        running (strace 6.1 has no --kill-on-exit)."""
        if self.proc is not None and self.proc.poll() is None and self.trace_log is not None:
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            for pid in children.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        super().kill()


class Acks:
    """Per document, every revision the server gave it, in order, with the content sent."""

    def __init__(self) -> None:
        self.revs: dict[str, list[tuple[str, object]]] = {}


async def _writer(s: aiohttp.ClientSession, base: str, w: int, acks: Acks, rng: random.Random) -> None:
    revs: dict[str, str] = {}
    for n in range(WRITES_PER_WRITER):
        kind = ("doc", "bulk", "att", "local")[(w + n) % 4]
        docid = f"{kind}-w{w}-{n % 2}"
        if kind == "local":
            docid = "_local/" + docid
        body = {"w": w, "n": n, "pad": "z" * rng.randint(0, 3000)}
        params = {"rev": revs[docid]} if docid in revs else {}
        if kind == "att":
            content: object = rng.randbytes(rng.randint(1, 12 << 10))
            r = await s.put(f"{base}/{docid}/blob", data=content, params=params,
                            headers={"Content-Type": "application/octet-stream"})
        elif kind == "bulk":
            content = body
            doc = dict(body, _id=docid, **({"_rev": revs[docid]} if docid in revs else {}))
            r = await s.post(f"{base}/_bulk_docs", json={"docs": [doc]})
        else:
            content = body
            r = await s.put(f"{base}/{docid}", json=dict(body, **({"_rev": revs[docid]} if docid in revs else {})))
        async with r:
            reply = await r.json()
            assert r.status == 201, (docid, reply)
        row = reply[0] if isinstance(reply, list) else reply
        revs[docid] = row["rev"]
        acks.revs.setdefault(docid, []).append((row["rev"], content))


def _acknowledged(acks: Acks, sent: bytes) -> dict[str, int]:
    """For each document, the position in its history of the last revision acknowledged in `sent`."""
    out = {}
    for docid, history in acks.revs.items():
        for i, (rev, _) in enumerate(history):
            if f'"id":"{docid}","rev":"{rev}"'.encode() in sent:
                out[docid] = i
    return out


def _check_image(root: Path, acks: Acks, acked: dict[str, int]) -> list[str]:
    """Open the image with the engine; every acknowledged write must be there."""
    problems = []
    node = couchpy.open(root)
    try:
        db = node.get_db(DB)
        for docid, i in acked.items():
            history = acks.revs[docid]
            try:
                doc = db.get(docid)
            except NotFound:
                problems.append(f"{docid}: missing (acknowledged {history[i][0]})")
                continue
            revs = [rev for rev, _ in history]
            if doc["_rev"] not in revs[i:]:
                problems.append(f"{docid}: revision {doc['_rev']}, acknowledged {revs[i]}")
                continue
            content = history[revs.index(doc["_rev"])][1]
            if isinstance(content, bytes):
                data = inline_data(db, doc)["_attachments"]["blob"]["data"]
                if base64.b64decode(data) != content:
                    problems.append(f"{docid}@{doc['_rev']}: attachment differs")
            elif {k: v for k, v in doc.items() if not k.startswith("_")} != content:
                problems.append(f"{docid}@{doc['_rev']}: body differs")
        # the whole database reads back: every change's document, and the counts
        infos = list(db.changes_since(0))
        for info in infos:
            db.get(info.id)
        if db.info()["doc_count"] != len(infos):
            problems.append(f"doc_count {db.info()['doc_count']} but {len(infos)} documents in the changes")
    finally:
        node.close()
    return problems


@pytest.mark.slow
async def test_power_cut_anywhere_keeps_every_acknowledged_write(tmp_path):
    srv = TracedServer(tmp_path)
    srv.log_path = tmp_path / "server.log"
    srv.start()
    async with aiohttp.ClientSession(auth=srv.auth) as s:
        async with s.put(f"{srv.base}/{DB}") as r:
            assert r.status == 201
    srv.stop()
    baseline_dir = tmp_path / "baseline"
    shutil.copytree(srv.data_dir, baseline_dir)
    data_prefix = str(srv.data_dir) + "/"

    srv.trace_log = tmp_path / "writes.strace"
    srv.start(timeout=60)
    acks = Acks()
    rng = random.Random(os.environ.get("COUCHPY_POWER_SEED", random.randrange(1 << 32)))
    seed = rng.randrange(1 << 32)
    print(f"power-loss seed {seed} (replay with COUCHPY_POWER_SEED={seed})")
    rng = random.Random(seed)
    try:
        async with aiohttp.ClientSession(auth=srv.auth, timeout=aiohttp.ClientTimeout(total=120)) as s:
            await asyncio.gather(*(_writer(s, f"{srv.base}/{DB}", w, acks, random.Random(seed + w))
                                   for w in range(WRITERS)))
    finally:
        srv.kill()
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-f", str(srv.trace_log)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "strace did not exit"
        time.sleep(0.1)

    lines = srv.trace_log.read_text(errors="replace").splitlines()
    evs = [e for e in writejournal.events(lines, data_prefix)
           if not (isinstance(e, (writejournal.Write, writejournal.Sync)) and e.path.endswith("/lock.mdb"))]
    writes = [e for e in evs if isinstance(e, writejournal.Write)]
    assert writes and any(isinstance(e, writejournal.Sync) for e in evs), "no write or sync was traced"
    baseline = {str(srv.data_dir / p.relative_to(baseline_dir)): p.read_bytes()
                for p in baseline_dir.rglob("*") if p.is_file() and p.name != "lock.mdb"}
    # cut points: anywhere in the run, and half of them just before a commit's fdatasync or its
    # meta-page write completes (the moments with the most written and not yet durable)
    first, last = writes[0].index, evs[-1].index + 1
    barriers = [e.index for e in evs
                if isinstance(e, writejournal.Sync) or (isinstance(e, writejournal.Write) and e.synchronous)]
    cuts = sorted({rng.randrange(first, last) for _ in range(CUTS // 2)} | {last}
                  | set(rng.sample(barriers, min(len(barriers), CUTS - CUTS // 2))))
    checked = unsynced = 0
    for cut in cuts:
        acked = _acknowledged(acks, writejournal.sent_before(evs, cut))
        durable = writejournal.durable_before(evs, cut)
        unsynced += sum(1 for e in writes if e.index < cut and e.index not in durable)
        for k in range(IMAGES_PER_CUT):
            root = tmp_path / f"cut-{cut}-{k}"
            shutil.copytree(baseline_dir, root)
            for path, data in writejournal.image(evs, baseline, cut, rng).items():
                target = root / Path(path).relative_to(srv.data_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            problems = _check_image(root, acks, acked)
            assert not problems, f"seed {seed}, power cut at log line {cut} (image {k}): {problems[:10]}"
            checked += len(acked)
            shutil.rmtree(root)
    total = sum(len(h) for h in acks.revs.values())
    print(f"{total} acknowledged writes, {len(writes)} file writes traced, {len(cuts)} cut points x "
          f"{IMAGES_PER_CUT} images, {checked} acknowledged records checked, "
          f"{unsynced} writes not yet synced at the cuts")
    assert checked > 0
