"""Durability: a server under concurrent writers (documents, bulk writes, attachments, `_local`
checkpoints, a large attachment streamed again and again, `_security` and `_users` updates, a
continuous replication writing its checkpoints) and readers that keep a view and a Mango index
building is killed with SIGKILL at a random moment; after each restart every acknowledged write is
there with its exact revision and content (see tests/crashload.py), the view and the Mango index
answer what the documents say and the same as indexes built afresh, the user's password is the
acknowledged one, and no replication checkpoint runs ahead of what its target holds.

The randomness is seeded; the seed is printed and in every failure message. Replay one with
COUCHPY_CRASH_SEED=<seed>. CRASH_TRIALS sets the number of kills (the CI size is small;
`python -m benchmarks.crash_trials` runs the long series and prints its figures).
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import aiohttp
import pytest

from tests.crashload import (BigUpload, Load, Security, User, big_uploader, security_writer, users_writer,
                              verify, verify_big, verify_checkpoints, verify_security, verify_user, writer)
from tests.serverproc import CouchpyServer

WRITERS = 16
TRIALS = int(os.environ.get("CRASH_TRIALS", "4"))
RESTART_LIMIT = 30.0  # seconds a restart may take, recovery included
# the large attachment streamed during the trials (50 in the long run: CRASH_BIG_ATTACHMENT_MB=50)
BIG_ATTACHMENT = int(os.environ.get("CRASH_BIG_ATTACHMENT_MB", "4")) << 20
MANGO_INDEX = {"index": {"fields": ["n"]}, "name": "by-n", "ddoc": "mango"}
FIND = {"selector": {"n": {"$gte": 0}}, "fields": ["_id", "n"], "use_index": "mango", "limit": 100000}

VIEW_DDOC = {"views": {"by_writer": {"map": "function(doc){ if (doc.writer !== undefined) emit([doc.writer, doc.n], doc.pad.length); }"}}}


async def _query_view(session: aiohttp.ClientSession, base: str, load: Load, stop: asyncio.Event,
                      busy: dict[str, bool]) -> None:
    """Keep the view index building while the writers write, so kills land inside index updates
    (`busy` says which index query was outstanding at the kill)."""
    while not stop.is_set():
        try:
            busy["view"] = True
            async with session.get(f"{base}/_design/crash/_view/by_writer", params={"limit": "1"}) as r:
                text = await r.text()
                if r.status != 200 and not load.killed:
                    load.fail(f"view: HTTP {r.status} {text[:200]}")
                    return
            busy["view"], busy["mango"] = False, True
            async with session.post(f"{base}/_find", json=dict(FIND, limit=1)) as r:
                text = await r.text()
                if r.status != 200 and not load.killed:
                    load.fail(f"_find: HTTP {r.status} {text[:200]}")
                    return
            busy["mango"] = False
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            if not load.killed:
                load.fail(f"view: {type(exc).__name__} before the kill")
            return
        await asyncio.sleep(0.05)


async def _fresh_indexes_agree(s: aiohttp.ClientSession, base: str, trial: int, view: list, found: list) -> list[str]:
    """Indexes built from nothing after the restart answer exactly as the ones the kills interrupted."""
    problems = []
    ddoc = f"_design/fresh{trial}"
    async with s.put(f"{base}/{ddoc}", json=VIEW_DDOC) as r:
        rev = (await r.json())["rev"]
    async with s.get(f"{base}/{ddoc}/_view/by_writer") as r:
        fresh = [[row["key"], row["id"], row["value"]] for row in (await r.json())["rows"]]
    if fresh != view:
        problems.append(f"the view differs from a fresh rebuild ({len(view)} rows, fresh {len(fresh)})")
    async with s.delete(f"{base}/{ddoc}", params={"rev": rev}) as r:
        assert r.status == 200, await r.text()
    mango_ddoc = f"fresh-mango{trial}"
    async with s.post(f"{base}/_index", json=dict(MANGO_INDEX, name="fresh", ddoc=mango_ddoc)) as r:
        assert r.status == 200, await r.text()
    async with s.post(f"{base}/_find", json=dict(FIND, use_index=mango_ddoc)) as r:
        assert r.status == 200, await r.text()
        fresh_found = sorted((d["_id"], d["n"]) for d in (await r.json())["docs"])
    if fresh_found != found:
        problems.append(f"_find differs from a fresh Mango index ({len(found)} docs, fresh {len(fresh_found)})")
    async with s.delete(f"{base}/_index/{mango_ddoc}/json/fresh") as r:
        assert r.status == 200, await r.text()
    return problems


def _expected_find(load: Load) -> list[tuple]:
    return sorted((docid, rec.body["n"]) for docid, rec in load.records.items()
                  if rec.body is not None and not docid.startswith("_local/") and rec.rev is not None)


def _expected_view(load: Load) -> list[list]:
    rows = []
    for docid, rec in load.records.items():
        if rec.body is not None and not docid.startswith("_local/") and rec.rev is not None:
            rows.append([[rec.body["writer"], rec.body["n"]], docid, len(rec.body["pad"])])
    return sorted(rows)


async def run_trials(tmp_path, trials: int, seed: int, writers: int = WRITERS,
                     big_attachment: int = BIG_ATTACHMENT) -> dict:
    """Kill and restart a server `trials` times under load; returns figures, raises on any loss."""
    srv = CouchpyServer(tmp_path)
    srv.start()
    load = Load(base=f"{srv.base}/crash", seed=seed)
    big, sec, user = BigUpload(), Security(), User(f"crash{seed}")
    copy = f"{srv.base}/crash-copy"
    in_flight = {"view": 0, "mango": 0, "security": 0, "users": 0}
    checkpoints_checked = 0
    rng = random.Random(seed)
    restarts: list[float] = []
    checked = big_uploads = 0
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(auth=srv.auth, timeout=timeout) as s:
            async with s.put(load.base) as r:
                assert r.status == 201, await r.text()
            async with s.put(f"{load.base}/_design/crash", json=VIEW_DDOC) as r:
                assert r.status == 201, await r.text()
            async with s.post(f"{load.base}/_index", json=MANGO_INDEX) as r:
                assert r.status == 200, await r.text()
            async with s.get(f"{load.base}/_security") as r:
                sec.acked = await r.json()  # the default a new database has
            rep = {"source": f"{srv.url}/crash", "target": f"{srv.url}/crash-copy", "create_target": True,
                   "continuous": True}
            async with s.put(f"{srv.base}/_replicator/crash", json=rep) as r:
                assert r.status == 201, await r.text()
        for trial in range(trials):
            load.killed = False
            big_rev_before = big.rev
            stop = asyncio.Event()
            connector = aiohttp.TCPConnector(limit=writers + 3)
            async with aiohttp.ClientSession(auth=srv.auth, connector=connector, timeout=timeout) as s:
                tasks = [asyncio.create_task(writer(s, load, w, stop)) for w in range(writers)]
                busy = {"view": False, "mango": False}
                tasks.append(asyncio.create_task(_query_view(s, load.base, load, stop, busy)))
                tasks.append(asyncio.create_task(big_uploader(s, load, big, stop, big_attachment)))
                tasks.append(asyncio.create_task(security_writer(s, load, sec, stop)))
                tasks.append(asyncio.create_task(users_writer(s, load, user, stop)))
                await asyncio.sleep(rng.uniform(0.5, 3.0))
                load.killed = True
                srv.kill()  # SIGKILL mid-flight
                in_flight["view"] += busy["view"]
                in_flight["mango"] += busy["mango"]
                in_flight["security"] += sec.pending is not None
                in_flight["users"] += user.pending is not None
                stop.set()
                await asyncio.gather(*tasks)
            assert not load.failures, f"seed {seed} trial {trial}: {load.failures[:10]}"
            assert load.acks, f"seed {seed}: no write acknowledged before the kill"
            t0 = time.monotonic()
            srv.start(timeout=RESTART_LIMIT)
            restarts.append(time.monotonic() - t0)
            async with aiohttp.ClientSession(auth=srv.auth, timeout=timeout) as s:
                problems = (await verify(s, load) + await verify_big(s, load, big) + await verify_security(s, load, sec)
                            + await verify_user(s, load, user))
                assert not problems, f"seed {seed} trial {trial}: {problems[:10]}"
                checked += sum(1 for rec in load.records.values() if rec.rev is not None)
                async with s.get(f"{load.base}/_design/crash/_view/by_writer") as r:
                    assert r.status == 200, await r.text()
                    view = await r.json()
                got = [[row["key"], row["id"], row["value"]] for row in view["rows"]]
                assert got == _expected_view(load), f"seed {seed} trial {trial}: view differs from the documents"
                async with s.post(f"{load.base}/_find", json=FIND) as r:
                    assert r.status == 200, await r.text()
                    found = sorted((d["_id"], d["n"]) for d in (await r.json())["docs"])
                assert found == _expected_find(load), f"seed {seed} trial {trial}: _find differs from the documents"
                problems = await _fresh_indexes_agree(s, load.base, trial, got, found)
                assert not problems, f"seed {seed} trial {trial}: {problems}"
                problems, upto = await verify_checkpoints(s, load.base, copy)
                assert not problems, f"seed {seed} trial {trial}: {problems[:10]}"
                checkpoints_checked += upto > 0
                async with s.get(load.base) as r:
                    info = await r.json()
                docs = sum(1 for d, rec in load.records.items() if rec.rev is not None and not d.startswith("_local/"))
                # + the two design documents, and the big attachment's document once it exists (the
                # fresh indexes' design documents are deleted)
                assert info["doc_count"] == docs + 2 + (big.rev is not None), (seed, info)
            big_uploads += big.rev is not None and big.rev != big_rev_before
            print(f"trial {trial + 1}/{trials}: {load.acks} acknowledged so far, {checked} record checks, "
                  f"big attachment {big.acked}, restart {restarts[-1]:.2f} s", flush=True)
    finally:
        srv.stop()
    return {"trials": trials, "acks": load.acks, "records_checked": checked,
            "trials_with_a_new_big_attachment": big_uploads, "max_restart_s": max(restarts, default=0.0),
            "kills_with_a_write_in_flight": in_flight, "replication_checkpoints_checked": checkpoints_checked}


def _seed() -> int:
    seed = int(os.environ.get("COUCHPY_CRASH_SEED", random.randrange(1 << 32)))
    print(f"crash seed: {seed} (replay with COUCHPY_CRASH_SEED={seed})")
    return seed


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_write(tmp_path):
    figures = await run_trials(tmp_path, TRIALS, _seed())
    print(figures)
    assert figures["acks"] > 0
