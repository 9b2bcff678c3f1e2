"""Rebalancing on a real cluster (tests/cluster_harness.py, loopback, no HAProxy): 3 nodes with
n = 2 hold a few databases; a 4th node is added to the shared definition and started. Until every
record matches the rendezvous placement over the 4 nodes, the test watches every node: a node whose
own record lists it as a replica holds a full copy, and every database always has at least 2 full
copies; clients keep writing meanwhile. At the end every replica holds every acknowledged document
and the nodes no longer replicas hold no copy. The new node is stopped (SIGSTOP) for a few seconds
as soon as a move is seen, so that its copies are behind while the move is under way."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from couchpy.placement import Candidate, place

from .cluster_harness import Cluster

DOCS = 1500  # enough that seeding a copy takes several of the test's looks


def _names(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """Databases that move when the 4th node joins, and ones that stay."""
    moving, staying = [], []
    for i in range(100):
        name = f"rb-{i}"
        before, after = place(name, [Candidate(n) for n in old], 2), place(name, [Candidate(n) for n in new], 2)
        (moving if sorted(before) != sorted(after) else staying).append(name)
    return moving[:3], staying[:1]


async def _json(s: aiohttp.ClientSession, method: str, url: str, **kw):
    async with s.request(method, url, **kw) as r:
        return r.status, await r.json()


async def _view(s, srv) -> tuple[dict[str, dict], dict[str, int]]:
    """A node's own records (id -> record) and its own copies (database -> doc_count)."""
    _, rows = await _json(s, "GET", f"{srv.base}/_dbs/_all_docs?include_docs=true")
    records = {r["id"]: r["doc"] for r in rows["rows"] if not r["id"].startswith("_")}
    _, infos = await _json(s, "GET", f"{srv.base}/_dbs_info")
    copies = {i["key"]: i["info"]["doc_count"] for i in infos if "info" in i}
    return records, copies


class Pause:
    """The new node stopped (SIGSTOP) for a few seconds as soon as a move is seen: its copies are
    then certainly behind while the move is under way, and no old copy may go meanwhile."""

    def __init__(self, seconds: float = 6.0):
        self.phase, self.seconds, self.until = "before", seconds, 0.0

    def stop(self, srv) -> None:
        srv.proc.send_signal(signal.SIGSTOP)
        self.phase, self.until = "stopped", time.monotonic() + self.seconds

    def cont(self, srv) -> None:
        srv.proc.send_signal(signal.SIGCONT)
        self.phase = "resumed"


async def _nothing() -> tuple[dict, dict]:
    return {}, {}


async def _write(s, base: str, db: str, doc_id: str, written: dict[str, set[str]]) -> None:
    async with s.put(f"{base}/{db}/{doc_id}", json={"during": True}) as r:
        if r.status in (201, 202):
            written[db].add(doc_id)


def test_a_node_joining_takes_its_copies_and_the_old_ones_go_only_after(tmp_path):
    with Cluster(tmp_path, nodes=3, n=2, proxy=False) as cl:
        new_names = cl.names + ["node4@127.0.0.1"]
        moving, staying = _names(cl.names, new_names)
        dbs = moving + staying
        assert len(moving) == 3 and staying

        async def go():
            async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", cl.password),
                                             timeout=aiohttp.ClientTimeout(total=30)) as s:
                written: dict[str, set[str]] = {db: set() for db in dbs}
                for db in dbs:
                    assert (await _json(s, "PUT", f"{cl.servers[0].base}/{db}"))[0] == 201
                    for start in range(0, DOCS, 500):
                        docs = [{"_id": f"d{i:04}", "v": i, "pad": "x" * 3000} for i in range(start, start + 500)]
                        status, rows = await _json(s, "POST", f"{cl.servers[0].base}/{db}/_bulk_docs",
                                                   json={"docs": docs, "w": 2})
                        assert status == 201 and all(r.get("ok") for r in rows)
                        written[db].update(d["_id"] for d in docs)

                newest = await asyncio.to_thread(cl.add_node)
                want = {db: place(db, [Candidate(n) for n in new_names], 2) for db in dbs}
                deadline = time.monotonic() + 150
                seen_moving = set()
                polls = 0
                while True:
                    polls += 1
                    if pause.phase == "before" and seen_moving:
                        pause.stop(newest)
                    elif pause.phase == "stopped" and time.monotonic() > pause.until:
                        pause.cont(newest)
                    views = await asyncio.gather(*(_view(s, srv) if not (i == 3 and pause.phase == "stopped")
                                                   else _nothing() for i, srv in enumerate(cl.servers)))
                    for db in dbs:
                        full = [n for n, (_, copies) in zip(cl.names, views, strict=True)
                                if copies.get(db, 0) >= DOCS]
                        assert len(full) >= 2, (db, full, polls)  # never fewer than n full copies
                        for name, (records, copies) in zip(cl.names, views, strict=True):
                            rec = records.get(db)
                            if rec is None:
                                continue
                            if "moving" in rec:
                                seen_moving.add(db)
                            if name in rec["nodes"]:  # a node that serves as a replica holds it all
                                assert copies.get(db, 0) >= DOCS, (db, name, rec, copies.get(db), polls)
                    # a client keeps writing to the moving databases through node 1
                    if polls % 3 == 0:
                        await asyncio.gather(*(_write(s, cl.servers[0].base, db, f"during-{polls:04}", written)
                                               for db in moving))
                    done = all(sorted(records.get(db, {}).get("nodes", [])) == sorted(want[db])
                               and not {"moving", "leaving"} & set(records.get(db, {}))
                               and (db in copies) == (name in want[db])
                               for name, (records, copies) in zip(cl.names, views, strict=True)
                               for db in dbs)
                    if done:
                        break
                    assert time.monotonic() < deadline, (views, polls)
                    await asyncio.sleep(0.2)
                assert seen_moving == set(moving) or polls < 3  # the steps were seen (unless very fast)

                # every acknowledged document on every replica (replication may still be carrying
                # the last writes: bounded wait), none left elsewhere
                deadline = time.monotonic() + 60
                for db in dbs:
                    for name, srv in zip(cl.names, cl.servers, strict=True):
                        if name not in want[db]:
                            continue
                        while True:
                            _, rows = await _json(s, "GET", f"{srv.base}/{db}/_all_docs")
                            ids = {r["id"] for r in rows["rows"]}
                            if written[db] <= ids:
                                break
                            assert time.monotonic() < deadline, (db, name, len(written[db] - ids))
                            await asyncio.sleep(0.3)
                print(f"rebalanced {len(moving)} databases after {polls} polls")
        pause = Pause()
        try:
            asyncio.run(asyncio.wait_for(go(), 300))
        finally:
            if pause.phase == "stopped":
                pause.cont(cl.servers[3])
        assert pause.phase == "resumed"


@pytest.mark.parametrize("crash", [False, True], ids=["plain", "source-killed-mid-move"])
def test_a_node_leaving_has_its_databases_copied_from_their_other_replicas(tmp_path, crash):
    """3 nodes, n = 2; the third is stopped and removed from the definition: every database it held
    gets its second copy on the node that had none, seeded from the remaining one. `crash`: the
    node holding the only remaining copies (and driving the moves) is SIGKILLed as soon as a move
    is seen, and restarted: the moves go on from their records."""
    with Cluster(tmp_path, nodes=3, n=2, proxy=False) as cl:
        gone = cl.names[2]
        dbs = [f"rl-{i}" for i in range(12) if gone in place(f"rl-{i}", [Candidate(n) for n in cl.names], 2)][:2]
        stays = cl.names[:2]
        # with a crash to plant, enough documents that the move is seen under way (300 were once
        # all copied between two looks at the records)
        ndocs = 2000 if crash else 300

        async def go():
            async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", cl.password),
                                             timeout=aiohttp.ClientTimeout(total=30)) as s:
                for db in dbs:
                    assert (await _json(s, "PUT", f"{cl.servers[0].base}/{db}"))[0] == 201
                    docs = [{"_id": f"d{i:04}"} for i in range(ndocs)]
                    status, _ = await _json(s, "POST", f"{cl.servers[0].base}/{db}/_bulk_docs",
                                            json={"docs": docs, "w": 2})
                    assert status == 201
                await asyncio.to_thread(cl.remove_node, 2)
                deadline = time.monotonic() + 150
                killed = False
                while True:
                    views = await asyncio.gather(*(_view(s, srv) for srv in cl.servers[:2]))
                    if crash and not killed and any("moving" in r for records, _ in views for r in records.values()):
                        killed = True
                        await asyncio.to_thread(cl.kill, 0)
                        await asyncio.to_thread(cl.restart, 0)
                        continue
                    for db in dbs:  # the copy that stayed is never removed
                        assert any(copies.get(db, 0) >= ndocs for _, copies in views), (db, views)
                    if all(sorted(records.get(db, {}).get("nodes", [])) == stays
                           and not {"moving", "leaving"} & set(records.get(db, {}))
                           and copies.get(db, 0) >= ndocs for records, copies in views for db in dbs):
                        break
                    assert time.monotonic() < deadline, views
                    await asyncio.sleep(0.05 if crash and not killed else 0.3)
                assert killed == crash
        asyncio.run(asyncio.wait_for(go(), 250))
