"""A full disk: couchpy's data directory on a small tmpfs, filled while documents, attachments,
a view index and a compaction write. Every write that does not fit is refused with CouchDB's
error for a full disk (507 insufficient_storage), nothing acknowledged is lost, and once space is
freed the same server (no restart) accepts writes and builds the index again.

Mounting a tmpfs needs root; without it the test fails (it does not skip).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import resource
import shutil
import subprocess

import aiohttp
import pytest

from tests.serverproc import CouchpyServer

FS_SIZE = "24m"
HEADROOM = 5 << 20  # free bytes left by the filler file when the writes start
PAD = "p" * 100_000
FULL = {"error": "insufficient_storage", "reason": "No space left on the device holding the database"}
VIEW = {"views": {"n": {"map": "function(doc){ if (doc.n !== undefined) emit(doc.n, doc.pad.length); }"}}}


@contextlib.contextmanager
def _tmpfs(mnt, size: str):
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"cannot mount a tmpfs (root needed): {proc.stderr}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def small_fs(tmp_path):
    with _tmpfs(tmp_path / "fs", FS_SIZE) as mnt:
        yield mnt


@pytest.fixture
def larger_fs(tmp_path):
    with _tmpfs(tmp_path / "fs", "64m") as mnt:
        yield mnt


def _fill(mnt, leave: int):
    filler = mnt / "filler"
    free = shutil.disk_usage(mnt).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


async def test_full_disk_refuses_with_507_loses_nothing_and_recovers_without_restart(tmp_path, small_fs):
    srv = CouchpyServer(small_fs)
    srv.log_path = tmp_path / "server.log"  # the log must not need the full disk
    srv.start()
    db = f"{srv.base}/full"
    acked: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession(auth=srv.auth, timeout=aiohttp.ClientTimeout(total=60)) as s:
            async with s.put(db) as r:
                assert r.status == 201
            async with s.put(f"{db}/_design/v", json=VIEW) as r:
                assert r.status == 201
            filler = _fill(small_fs, HEADROOM)
            # documents until the disk is full
            refused = 0
            for n in range(200):
                async with s.put(f"{db}/d{n}", json={"n": n, "pad": PAD}) as r:
                    body = await r.json()
                    if r.status == 201:
                        acked[f"d{n}"] = body["rev"]
                        continue
                    assert (r.status, body) == (507, FULL)
                    refused += 1
                    if refused == 3:
                        break
            assert acked and refused == 3, (len(acked), refused)
            # bulk writes, an attachment, a new database, an index build: all refused the same way
            async with s.post(f"{db}/_bulk_docs", json={"docs": [{"_id": "b", "pad": PAD * 20}]}) as r:
                assert (r.status, await r.json()) == (507, FULL)
            async with s.put(f"{db}/att/a", data=os.urandom(3 << 20),
                             headers={"Content-Type": "application/octet-stream"}) as r:
                assert (r.status, await r.json()) == (507, FULL)
            async with s.get(f"{db}/_design/v/_view/n") as r:  # the index does not fit either
                assert (r.status, await r.json()) == (507, FULL)
            async with s.post(f"{db}/_compact", json={}) as r:
                assert r.status == 202
            await asyncio.sleep(1)
            # what was acknowledged is all there
            for docid, rev in acked.items():
                async with s.get(f"{db}/{docid}") as r:
                    assert r.status == 200, docid
                    doc = await r.json()
                assert doc["_rev"] == rev and doc["pad"] == PAD and doc["n"] == int(docid[1:])
            # space freed: the same server writes again, and the index catches up
            filler.unlink()
            async with s.put(f"{db}/after", json={"n": -1, "pad": "x"}) as r:
                assert r.status == 201, await r.text()
            async with s.put(f"{db}/att/a", data=b"attachment after", headers={"Content-Type": "text/plain"}) as r:
                assert r.status == 201, await r.text()
            async with s.get(f"{db}/att/a") as r:
                assert await r.read() == b"attachment after"
            async with s.get(f"{db}/_design/v/_view/n") as r:
                assert r.status == 200, await r.text()
                rows = (await r.json())["rows"]
            expected = sorted([(int(d[1:]), d, len(PAD)) for d in acked] + [(-1, "after", 1)])
            assert [(row["key"], row["id"], row["value"]) for row in rows] == expected
            async with s.get(db) as r:
                info = await r.json()
            assert info["doc_count"] == len(acked) + 3  # + design doc, "after", "att"
    finally:
        srv.stop()


MAP_FULL = {"error": "insufficient_storage",
            "reason": "The database's memory map cannot grow: the server's address space is exhausted"}


def _address_space(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))


async def test_memory_map_that_cannot_grow_refuses_with_507_and_recovers_without_restart(tmp_path):
    """LMDB's map grows by doubling; when the server's address space cannot hold the larger map
    (here an RLIMIT_AS set on the running server), writes are refused with 507, everything
    acknowledged stays readable, and once the limit is lifted the same server grows the map."""
    srv = CouchpyServer(tmp_path)
    srv.start()
    db = f"{srv.base}/mapfull"
    acked: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession(auth=srv.auth, timeout=aiohttp.ClientTimeout(total=60)) as s:
            async with s.put(db) as r:
                assert r.status == 201
            async with s.put(f"{db}/first", json={"n": -1}) as r:
                assert r.status == 201
                acked["first"] = (await r.json())["rev"]
            # room for the heap (and its per-thread arenas) and for one doubling of the map (64 -> 128
            # MB), not for the next (probed with the old map still there, 256 MB more would be needed)
            headroom = 192 << 20
            resource.prlimit(srv.pid, resource.RLIMIT_AS, (_address_space(srv.pid) + headroom, resource.RLIM_INFINITY))
            refused = 0
            for n in range(400):  # 400 x 10 documents of 100 KB: well past a 256 MB map
                docs = [{"_id": f"d{n}-{i}", "n": n, "pad": PAD} for i in range(10)]
                async with s.post(f"{db}/_bulk_docs", json={"docs": docs}) as r:
                    body = await r.json()
                    if r.status == 201:
                        acked.update((row["id"], row["rev"]) for row in body)
                        continue
                    assert (r.status, body) == (507, MAP_FULL)
                    refused += 1
                    if refused == 2:
                        break
            assert refused == 2 and len(acked) > 100, (len(acked), refused)
            async with s.put(f"{db}/one", json={"pad": PAD * 30}) as r:  # larger than what a bulk write left
                assert (r.status, await r.json()) == (507, MAP_FULL)
            async with s.put(f"{db}/att/a", data=os.urandom(3 << 20),
                             headers={"Content-Type": "application/octet-stream"}) as r:
                assert (r.status, await r.json()) == (507, MAP_FULL)
            async with s.get(f"{db}/_all_docs") as r:  # still served, as acknowledged
                assert r.status == 200, await r.text()
                assert {row["id"]: row["value"]["rev"] for row in (await r.json())["rows"]} == acked
            async with s.get(f"{db}/d0-0") as r:
                assert r.status == 200 and (await r.json())["pad"] == PAD
            resource.prlimit(srv.pid, resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            async with s.put(f"{db}/one", json={"pad": PAD * 30}) as r:
                assert r.status == 201, await r.text()
            async with s.put(f"{db}/att/a", data=b"after", headers={"Content-Type": "text/plain"}) as r:
                assert r.status == 201, await r.text()
            async with s.get(db) as r:
                assert (await r.json())["doc_count"] == len(acked) + 2
    finally:
        srv.stop()


async def _compaction_done(s: aiohttp.ClientSession, db: str, limit: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    await asyncio.sleep(0.2)
    while True:
        async with s.get(db) as r:
            if not (await r.json())["compact_running"]:
                return
        assert asyncio.get_running_loop().time() < deadline, "compaction still running"
        await asyncio.sleep(0.2)


async def test_disk_filling_during_compaction_index_build_and_streamed_upload(tmp_path, larger_fs):
    """A database with garbage to compact, a view whose index is as large as the documents and an
    upload streamed in 1 MB chunks, each started with less free space than it needs: the
    compaction gives up and leaves no copy behind, the index build and the upload are refused with
    507, nothing acknowledged changes; once space is freed the same server compacts, builds the
    index and takes the upload."""
    srv = CouchpyServer(larger_fs)
    srv.log_path = tmp_path / "server.log"
    srv.start()
    db = f"{srv.base}/filling"
    acked: dict[str, tuple[str, int]] = {}
    big = os.urandom(8 << 20)

    async def stream():
        for i in range(0, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]

    try:
        async with aiohttp.ClientSession(auth=srv.auth, timeout=aiohttp.ClientTimeout(total=120)) as s:
            async with s.put(db) as r:
                assert r.status == 201
            for gen in range(2):  # the first generation is garbage for the compaction
                docs = [dict({"_id": f"d{n}", "n": n * 10 + gen, "pad": PAD},
                             **({"_rev": acked[f"d{n}"][0]} if gen else {})) for n in range(60)]
                async with s.post(f"{db}/_bulk_docs", json={"docs": docs}) as r:
                    assert r.status == 201, await r.text()
                    acked.update((row["id"], (row["rev"], int(row["id"][1:]) * 10 + gen)) for row in await r.json())
            pad_view = {"views": {"pad": {"map": "function(doc){ emit(doc.n, doc.pad); }"}}}
            async with s.put(f"{db}/_design/v", json=pad_view) as r:
                assert r.status == 201
            filler = _fill(larger_fs, 3 << 20)
            compact_dir = next((srv.data_dir / "dbs").iterdir()) / "main.compact"
            async with s.post(f"{db}/_compact", json={}) as r:
                assert r.status == 202
            await _compaction_done(s, db)
            assert not compact_dir.exists(), "the failed compaction left its copy on the full disk"
            async with s.get(f"{db}/_design/v/_view/pad", params={"limit": "1"}) as r:
                assert (r.status, await r.json()) == (507, FULL)
            async with s.put(f"{db}/att/big", data=stream(), headers={"Content-Type": "application/octet-stream"}) as r:
                assert (r.status, await r.json()) == (507, FULL)
            async with s.get(f"{db}/_all_docs", params={"include_docs": "true"}) as r:
                rows = (await r.json())["rows"]
            assert {row["id"]: (row["value"]["rev"], row["doc"]["n"]) for row in rows if row["id"][0] == "d"} == acked
            assert all(row["doc"]["pad"] == PAD for row in rows if row["id"][0] == "d")

            filler.unlink()
            async with s.post(f"{db}/_compact", json={}) as r:
                assert r.status == 202
            await _compaction_done(s, db)
            assert not compact_dir.exists()
            async with s.get(f"{db}/_design/v/_view/pad") as r:
                assert r.status == 200, await r.text()
                view = [(row["id"], row["key"]) for row in (await r.json())["rows"]]
            assert view == sorted(((d, n) for d, (_, n) in acked.items()), key=lambda kv: kv[1])
            async with s.put(f"{db}/att/big", data=stream(), headers={"Content-Type": "application/octet-stream"}) as r:
                assert r.status == 201, await r.text()
            async with s.get(f"{db}/att") as r:
                stub = (await r.json())["_attachments"]["big"]
            assert stub["digest"] == "md5-" + base64.b64encode(hashlib.md5(big).digest()).decode()
            async with s.get(f"{db}/att/big") as r:
                assert await r.read() == big
            async with s.get(f"{db}/_all_docs") as r:
                revs = {row["id"]: row["value"]["rev"] for row in (await r.json())["rows"] if row["id"][0] == "d"}
            assert revs == {d: rev for d, (rev, _) in acked.items()}
    finally:
        srv.stop()
