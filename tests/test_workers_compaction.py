"""Database compaction with `couchpy serve --workers 2`: worker 0 compacts (`POST /{db}/_compact`
through either worker is forwarded there) while clients write through both workers and a
continuous feed on worker 1 reads. The old environment is marked retired when the new one is in
place, and worker 1 moves to the new one (couchpy.storage `follow`): no acknowledged write is
lost, each is read back with its revision through both workers, and the feed keeps running.

Everything is bounded: the writers stop after a fixed count or once the compactions are done,
and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.test_workers import WorkersServer, _pinned_session, _put_db, _session

DB = "cdb"
WRITERS = 4
MAX_WRITES = 3000  # per writer
COMPACTIONS = 3
DEADLINE = 90.0
FEED_DEADLINE = 15.0


def _main(srv: WorkersServer) -> Path:
    """The database's live environment directory."""
    (directory,) = (srv.data_dir / "dbs").glob(f"{DB}.*")
    return directory / "main"


def _ino(main: Path) -> int:
    try:
        return os.stat(main / "data.mdb").st_ino
    except FileNotFoundError:
        return -1  # between the two renames


async def _garbage(s: aiohttp.ClientSession, prefix: str = "pre") -> None:
    """500 documents with 8 revisions each of ~1 KB: most of the file is old revisions."""
    revs: dict[str, str] = {}
    for gen in range(8):
        docs = [{"_id": f"{prefix}{i:03}", "gen": gen, "pad": "p" * 1000,
                 **({"_rev": revs[f"{prefix}{i:03}"]} if gen else {})} for i in range(500)]
        async with s.post(f"/{DB}/_bulk_docs", json={"docs": docs}) as r:
            assert r.status == 201, await r.text()
            for row in await r.json():
                revs[row["id"]] = row["rev"]


async def _compact_and_wait(s: aiohttp.ClientSession, main: Path) -> str:
    """One compaction through whichever worker takes the request; done when another data file is
    at `main` and the replaced one is removed. The worker that took the request."""
    before = _ino(main)
    async with s.post(f"/{DB}/_compact", json={}) as r:
        assert r.status == 202, await r.text()
        took = r.headers["X-Couchpy-Worker"]
    deadline = time.monotonic() + DEADLINE
    while not (_ino(main) not in (-1, before) and not main.with_name("main.old").exists()):
        assert time.monotonic() < deadline, "the compaction did not finish"
        await asyncio.sleep(0.05)
    return took


class Writes:
    """What the server acknowledged (doc id -> rev), and every status it answered."""

    def __init__(self) -> None:
        self.acked: dict[str, str] = {}
        self.statuses: dict[int, int] = {}
        self.workers: set[str] = set()
        self.stop = asyncio.Event()

    async def writer(self, s: aiohttp.ClientSession, w: int) -> None:
        """Create and then update its own documents through new connections (both workers)."""
        for i in range(MAX_WRITES):
            if self.stop.is_set():
                return
            docid = f"w{w}-{i % 50}"
            body = {"w": w, "i": i, **({"_rev": self.acked[docid]} if docid in self.acked else {})}
            async with s.put(f"/{DB}/{docid}", json=body) as r:
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                self.workers.add(r.headers.get("X-Couchpy-Worker", "?"))
                if r.status == 201:
                    self.acked[docid] = (await r.json())["rev"]


async def _feed(srv: WorkersServer, seen: dict[str, str], started: asyncio.Event) -> str:
    """A continuous feed served by worker 1 until cancelled: id -> the last rev it listed."""
    async with await _pinned_session(srv, 1) as s:
        async with s.get(f"/{DB}/_changes", params={"feed": "continuous", "since": "now", "heartbeat": "1000"},
                         timeout=aiohttp.ClientTimeout(total=None)) as r:
            assert r.status == 200
            started.set()
            async for line in r.content:
                line = line.strip()
                if line:
                    row = json.loads(line)
                    if "id" in row:
                        seen[row["id"]] = row["changes"][0]["rev"]
    return "ended"


async def _read_back(srv: WorkersServer, acked: dict[str, str]) -> None:
    """Every acknowledged write, with its revision, through each worker."""
    keys = sorted(acked)
    for worker in (0, 1):
        async with await _pinned_session(srv, worker) as s:
            async with s.post(f"/{DB}/_all_docs", json={"keys": keys}) as r:
                assert r.status == 200
                rows = (await r.json())["rows"]
            got = {row["key"]: row.get("value", {}).get("rev") for row in rows}
            lost = {k: (v, got.get(k)) for k, v in acked.items() if got.get(k) != v}
            assert not lost, f"worker {worker}: {len(lost)} acknowledged writes not read back, e.g. {list(lost.items())[:3]}"
            for docid in keys[:: max(1, len(keys) // 20)]:  # and the documents themselves
                async with s.get(f"/{DB}/{docid}") as r:
                    assert r.status == 200 and (await r.json())["_rev"] == acked[docid], docid


async def test_compaction_while_both_workers_write_and_a_feed_reads(tmp_path):
    srv = WorkersServer(tmp_path, args=["--workers", "2"])
    srv.start()
    try:
        await _compact_under_load(srv)
    finally:
        srv.stop()


async def _compact_under_load(srv: WorkersServer) -> None:
    writes = Writes()
    feed_seen: dict[str, str] = {}
    async with _session(srv) as s:
        await _put_db(s, DB)
        await _garbage(s)
        main = _main(srv)
        size_before = (main / "data.mdb").stat().st_size
        started = asyncio.Event()
        feed = asyncio.create_task(_feed(srv, feed_seen, started))
        await asyncio.wait_for(started.wait(), FEED_DEADLINE)
        writers = [asyncio.create_task(writes.writer(s, w)) for w in range(WRITERS)]
        try:
            await asyncio.sleep(0.5)
            for k in range(COMPACTIONS):
                # asked through worker 1 (forwarded to worker 0) and through worker 0 in turn
                async with await _pinned_session(srv, (k + 1) % 2) as pinned:
                    assert await _compact_and_wait(pinned, main) == str((k + 1) % 2)
                await asyncio.sleep(0.3)  # writes between compactions, on the new environment
        finally:
            writes.stop.set()
            await asyncio.gather(*writers)
        print("STATS", writes.statuses, len(writes.acked), size_before)
        await _read_back(srv, writes.acked)
        assert not any(status >= 500 for status in writes.statuses), writes.statuses
        assert set(writes.statuses) == {201}, writes.statuses
        assert writes.workers == {"0", "1"} and len(writes.acked) == WRITERS * 50
        # once more with nobody writing: worker 1 then learns of the swap only by reading
        async with await _pinned_session(srv, 0) as pinned:
            await _compact_and_wait(pinned, main)
        after: dict[str, str] = {}
        for worker in (0, 1):  # a write through each worker in turn, read back through the other
            async with await _pinned_session(srv, worker) as pinned, \
                    await _pinned_session(srv, 1 - worker) as other:
                for i in range(5):
                    docid = f"after{worker}-{i}"
                    async with pinned.put(f"/{DB}/{docid}", json={}) as r:
                        assert r.status == 201
                        after[docid] = (await r.json())["rev"]
                    async with other.get(f"/{DB}/{docid}") as r:
                        assert r.status == 200, f"worker {1 - worker} did not find {docid} written through worker {worker}"
                        assert (await r.json())["_rev"] == after[docid]
        deadline = time.monotonic() + FEED_DEADLINE
        while not after.items() <= feed_seen.items() and time.monotonic() < deadline and not feed.done():
            await asyncio.sleep(0.05)
        feed.cancel()
        missed = {k for k, v in after.items() if feed_seen.get(k) != v}
        assert not missed, f"worker 1's feed missed writes made after the compactions: {sorted(missed)}"
        # the feed also listed the last revision of every document written during the compactions
        stale = {k for k, v in writes.acked.items() if feed_seen.get(k) != v}
        assert not stale, f"the feed's last revision differs for {len(stale)} documents, e.g. {sorted(stale)[:3]}"
        await _read_back(srv, {**writes.acked, **after})
    size_after = (main / "data.mdb").stat().st_size
    assert size_after < size_before * 0.6, (size_before, size_after)


def _worker0(srv: WorkersServer) -> int | None:
    for pid in srv.worker_pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--worker-index" in argv and argv[argv.index(b"--worker-index") + 1] == b"0":
            return pid
    return None


async def _await_worker0(srv: WorkersServer, old: int) -> None:
    """Until the supervisor's new worker 0 answers."""
    deadline = time.monotonic() + DEADLINE
    while True:
        pid = _worker0(srv)
        if pid not in (None, old):
            try:
                async with await _pinned_session(srv, 0) as s:
                    async with s.get(f"/{DB}") as r:
                        if r.status == 200:
                            return
            except (aiohttp.ClientError, AssertionError):
                pass
        assert time.monotonic() < deadline, "worker 0 was not restarted"
        await asyncio.sleep(0.1)


async def _kill_mid_compaction(srv: WorkersServer, main: Path, when: str, delay: float) -> None:
    """Ask worker 1 for a compaction and SIGKILL worker 0 `delay` s after the copy appears
    (`when="copy"`) or as soon as the replaced environment is beside the new one (`"old"`)."""
    victim = _worker0(srv)
    assert victim is not None
    async with await _pinned_session(srv, 1) as w1:
        async with w1.post(f"/{DB}/_compact", json={}) as r:
            assert r.status == 202, await r.text()
    mark = main.with_name("main.compact" if when == "copy" else "main.old")
    deadline = time.monotonic() + DEADLINE
    while not mark.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    await asyncio.sleep(delay)
    os.kill(victim, signal.SIGKILL)
    await _await_worker0(srv, victim)


class CrashWrites(Writes):
    """As Writes; a document whose write the killed worker cut (it may or may not be committed)
    is written no more, and is checked apart (`cut`: its last acknowledged revision or None)."""

    def __init__(self) -> None:
        super().__init__()
        self.cut: dict[str, str | None] = {}

    async def writer(self, s: aiohttp.ClientSession, w: int) -> None:
        for i in range(MAX_WRITES):
            if self.stop.is_set():
                return
            docid = f"w{w}-{i % 50}"
            if docid in self.cut:
                continue
            body = {"w": w, "i": i, "pad": "q" * 500, **({"_rev": self.acked[docid]} if docid in self.acked else {})}
            try:
                async with s.put(f"/{DB}/{docid}", json=body) as r:
                    self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                    if r.status == 201:
                        self.acked[docid] = (await r.json())["rev"]
                    elif r.status == 409:
                        # only this writer writes the document: the client sent the request again
                        # after the killed worker had committed it (aiohttp retries a PUT whose
                        # connection was cut)
                        self.cut[docid] = self.acked.pop(docid, None)
            except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
                self.cut[docid] = self.acked.pop(docid, None)
                await asyncio.sleep(0.01)


def _gen(rev: str | None) -> int:
    return int(rev.split("-")[0]) if rev else 0


async def _read_back_cut(srv: WorkersServer, cut: dict[str, str | None]) -> None:
    """A document whose last write was cut holds its last acknowledged revision or the one after."""
    for worker in (0, 1):
        async with await _pinned_session(srv, worker) as s:
            async with s.post(f"/{DB}/_all_docs", json={"keys": sorted(cut)}) as r:
                rows = (await r.json())["rows"]
        for row in rows:
            got = row.get("value", {}).get("rev")
            acked = cut[row["key"]]
            assert got == acked or _gen(got) == _gen(acked) + 1, (worker, row["key"], acked, got)


async def test_worker0_killed_mid_compaction_loses_no_acknowledged_write(tmp_path):
    srv = WorkersServer(tmp_path, args=["--workers", "2"])
    srv.start()
    try:
        await _crash_under_load(srv)
    finally:
        srv.stop()


async def _crash_under_load(srv: WorkersServer) -> None:
    writes = CrashWrites()
    async with _session(srv) as s:
        await _put_db(s, DB)
        await _garbage(s)
        main = _main(srv)
        writers = [asyncio.create_task(writes.writer(s, w)) for w in range(WRITERS)]
        try:
            for k, (when, delay) in enumerate([("old", 0.0), ("copy", 0.0), ("copy", 0.05), ("old", 0.0),
                                               ("copy", 0.2), ("old", 0.0)]):
                await _kill_mid_compaction(srv, main, when, delay)
                await _garbage(s, f"g{k}-")  # something for the next compaction to copy
        finally:
            writes.stop.set()
            await asyncio.gather(*writers)
        assert not any(status >= 500 for status in writes.statuses), writes.statuses
        assert writes.statuses.get(409, 0) <= len(writes.cut), writes.statuses
        assert len(writes.acked) + len(writes.cut) == WRITERS * 50 and len(writes.acked) > WRITERS * 25
        await _read_back(srv, writes.acked)
        await _read_back_cut(srv, writes.cut)
        # and an uninterrupted compaction afterwards keeps them too, leaving nothing beside `main`
        async with await _pinned_session(srv, 1) as w1:
            await _compact_and_wait(w1, main)
        await _read_back(srv, writes.acked)
        await _read_back_cut(srv, writes.cut)
        assert sorted(p.name for p in main.parent.iterdir() if p.name.startswith("main")) == ["main"]


async def test_every_worker_says_a_compaction_is_running(tmp_path):
    """PouchDB's `compact()` posts `_compact` and then asks `GET /{db}` until `compact_running` is
    false; with two workers the poll may reach the worker that is not compacting, which must say
    so too, or the client reads the compacted-away revisions before they are gone."""
    srv = WorkersServer(tmp_path, args=["--workers", "2"])
    srv.start()
    try:
        async with _session(srv) as s:
            await _put_db(s, DB)
            docs = [{"_id": f"d{i:05}", "text": "x" * 200} for i in range(20000)]
            for start in range(0, len(docs), 5000):
                async with s.post(f"/{DB}/_bulk_docs", json={"docs": docs[start:start + 5000]}) as r:
                    assert r.status == 201
            async with s.post(f"/{DB}/_compact", json={}) as r:
                assert r.status == 202, await r.text()
            said: dict[str, bool] = {}
            for _ in range(100):  # new connections until each worker answered once (bounded)
                async with s.get(f"/{DB}") as r:
                    said.setdefault(r.headers["X-Couchpy-Worker"], (await r.json())["compact_running"])
                if len(said) == 2:
                    break
            assert said == {"0": True, "1": True}
            deadline = time.monotonic() + DEADLINE
            while True:  # and it ends
                async with s.get(f"/{DB}") as r:
                    if not (await r.json())["compact_running"]:
                        break
                assert time.monotonic() < deadline, "compaction never ended"
                await asyncio.sleep(0.05)
    finally:
        srv.stop()
