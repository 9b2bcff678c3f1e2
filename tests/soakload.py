"""A bounded mixed workload for soak runs, and the server's resources sampled while it runs.

Clients (one aiohttp session each, all against one couchpy server):
  - crud: create, read, update, delete documents of a fixed key space of their own;
  - attachments: standalone attachments of 1-64 KiB written and read back byte for byte;
  - views: a JavaScript map/reduce view queried (rows and the reduced count) while documents change;
  - find: `_find` over a Mango index;
  - feeds: `_changes` normal, longpoll, and a continuous feed read for a moment then dropped;
  - replication: a continuous `_replicator` job copying the database, and one-shot `_replicate`
    runs into another database.
The key spaces are fixed, so the data stays bounded however long the run is (old revisions are
compacted away from time to time). Every answer but the one CouchDB gives is an error.

Every `interval` seconds a sample records the server's anonymous RSS (its heap: LMDB's pages are
file-backed and counted apart), its whole RSS, its open file descriptors (children included: the
query-server workers) and the p99 latency of the requests answered since the previous sample.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass, field

import aiohttp

from tests.serverproc import CouchpyServer

DB = "soak"
COPY = "soak-copy"
ONESHOT = "soak-oneshot"
DDOC = {"views": {"by_n": {"map": "function(doc){ if (typeof doc.n === 'number') emit(doc.n, 1); }",
                           "reduce": "_count"}}}
MANGO_INDEX = {"index": {"fields": ["n"]}, "name": "by-n", "ddoc": "mango"}


@dataclass
class Sample:
    t: float  # seconds since the start
    rss_anon_kb: int
    rss_kb: int
    fds: int
    p99_ms: float
    requests: int  # answered since the previous sample
    server_anon_kb: int = 0  # of rss_anon_kb, the server process's own (without its workers)


@dataclass
class Soak:
    server: CouchpyServer
    seed: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    samples: list[Sample] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    revs_limit: int | None = None  # set on the three databases (CouchDB's default: 1000)
    # documents the workload edits start with histories this long (0: they are created by it):
    # the heap follows the histories' length while they grow (docs/reliability.md)
    prefill_history: int = 0
    prefilled: dict[str, str] = field(default_factory=dict)  # docid -> its revision

    def error(self, what: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(what)

    async def call(self, s: aiohttp.ClientSession, method: str, path: str, expect: int | tuple[int, ...],
                   kind: str, **kw) -> tuple[int, bytes]:
        t0 = time.monotonic()
        async with s.request(method, self.server.base + path, **kw) as r:
            body = await r.read()
        self.latencies.append(time.monotonic() - t0)
        self.requests += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        ok = (expect,) if isinstance(expect, int) else expect
        if r.status not in ok:
            self.error(f"{kind}: {method} {path} -> {r.status} {body[:200]!r}")
        return r.status, body


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants (query-server workers are the server's children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def resources(pid: int) -> tuple[int, int, int, int]:
    """(RssAnon kB, VmRSS kB, open fds) of the process tree, and the RssAnon kB of `pid` alone."""
    anon = rss = fds = own = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        kb = int(line.split()[1])
                        anon += kb
                        own = kb if p == pid else own
                    elif line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{p}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return anon, rss, fds, own


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _crud(soak: Soak, s: aiohttp.ClientSession, wid: int, stop: asyncio.Event) -> None:
    rng = random.Random(f"{soak.seed}-crud-{wid}")
    revs = {k: v for k, v in soak.prefilled.items() if k.startswith(f"c{wid}-")}
    while not stop.is_set():
        docid = f"c{wid}-{rng.randrange(40)}"
        path = f"/{DB}/{docid}"
        if docid not in revs:
            st, body = await soak.call(s, "PUT", path, 201, "create", json={"n": rng.randrange(1000), "w": wid})
            if st == 201:
                revs[docid] = (json.loads(body))["rev"]
        elif rng.random() < 0.15:
            st, body = await soak.call(s, "DELETE", path, 200, "delete", params={"rev": revs[docid]})
            if st == 200:
                del revs[docid]
        else:
            st, body = await soak.call(s, "GET", path, 200, "read")
            if st == 200 and (json.loads(body))["_rev"] != revs[docid]:
                soak.error(f"read {docid}: not the acknowledged revision")
            st, body = await soak.call(s, "PUT", path, 201, "update",
                                       json={"_rev": revs[docid], "n": rng.randrange(1000), "w": wid,
                                             "pad": "x" * rng.randrange(2000)})
            if st == 201:
                revs[docid] = (json.loads(body))["rev"]


async def _attachments(soak: Soak, s: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    rng = random.Random(f"{soak.seed}-att")
    revs = {k: v for k, v in soak.prefilled.items() if k.startswith("att-")}
    while not stop.is_set():
        docid = f"att-{rng.randrange(10)}"
        data = rng.randbytes(rng.randint(1, 64 << 10))
        params = {"rev": revs[docid]} if docid in revs else {}
        st, body = await soak.call(s, "PUT", f"/{DB}/{docid}/blob", 201, "attachment-put", data=data, params=params,
                                   headers={"Content-Type": "application/octet-stream"})
        if st != 201:
            continue
        revs[docid] = (json.loads(body))["rev"]
        st, got = await soak.call(s, "GET", f"/{DB}/{docid}/blob", 200, "attachment-get")
        if st == 200 and got != data:
            soak.error(f"attachment {docid}: bytes differ")


async def _views(soak: Soak, s: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    rng = random.Random(f"{soak.seed}-views")
    while not stop.is_set():
        lo = rng.randrange(1000)
        await soak.call(s, "GET", f"/{DB}/_design/soak/_view/by_n", 200, "view",
                        params={"startkey": str(lo), "limit": "20", "reduce": "false"})
        await soak.call(s, "GET", f"/{DB}/_design/soak/_view/by_n", 200, "view-reduce")
        await asyncio.sleep(0.05)


async def _find(soak: Soak, s: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    rng = random.Random(f"{soak.seed}-find")
    while not stop.is_set():
        sel = {"selector": {"n": {"$gt": rng.randrange(1000)}}, "limit": 20, "use_index": "mango"}
        await soak.call(s, "POST", f"/{DB}/_find", 200, "find", json=sel)
        await asyncio.sleep(0.05)


async def _feeds(soak: Soak, s: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    since = "0"
    while not stop.is_set():
        st, body = await soak.call(s, "GET", f"/{DB}/_changes", 200, "changes",
                                   params={"since": since, "limit": "50", "style": "all_docs"})
        if st == 200:
            since = str((json.loads(body))["last_seq"])
        await soak.call(s, "GET", f"/{DB}/_changes", 200, "changes-longpoll",
                        params={"feed": "longpoll", "since": "now", "timeout": "500"})
        # a continuous feed read for a moment, then the client goes away mid-stream
        t0 = time.monotonic()
        async with s.get(f"{soak.server.base}/{DB}/_changes",
                         params={"feed": "continuous", "since": "now", "heartbeat": "200"}) as r:
            if r.status != 200:
                soak.error(f"continuous feed -> {r.status}")
            try:
                await asyncio.wait_for(r.content.read(1), 0.5)
            except asyncio.TimeoutError:
                pass
        soak.latencies.append(0.0)  # the feed is held open on purpose: no latency to speak of
        soak.requests += 1
        soak.counts["changes-continuous"] = soak.counts.get("changes-continuous", 0) + 1
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))


async def _oneshots(soak: Soak, s: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    srv = soak.server
    body = {"source": f"{srv.url}/{DB}", "target": f"{srv.url}/{ONESHOT}"}
    while not stop.is_set():
        await soak.call(s, "POST", "/_replicate", 200, "replicate-one-shot", json=body)
        for _ in range(20):
            if stop.is_set():
                return
            await asyncio.sleep(0.1)


async def _compactor(soak: Soak, s: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    """Old revisions are compacted away now and then, so the data stays bounded."""
    while not stop.is_set():
        for _ in range(100):
            if stop.is_set():
                return
            await asyncio.sleep(0.1)
        for db in (DB, COPY, ONESHOT):
            await soak.call(s, "POST", f"/{db}/_compact", 202, "compact", json={})


async def _sampler(soak: Soak, interval: float, stop: asyncio.Event, t0: float, on_sample) -> None:
    seen = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
        window, seen = soak.latencies[seen:], len(soak.latencies)
        anon, rss, fds, own = resources(soak.server.pid)
        sample = Sample(round(time.monotonic() - t0, 1), anon, rss, fds, round(p99(window) * 1000, 1), len(window),
                        own)
        soak.samples.append(sample)
        if on_sample:
            on_sample(sample)


async def prefill(soak: Soak, s: aiohttp.ClientSession, crud_clients: int) -> None:
    """Every document the workload edits, written with a history of `prefill_history` made-up
    revisions (a replicated write, `new_edits=false`), so the run starts where a long one ends."""
    rng = random.Random(f"{soak.seed}-prefill")
    ids = [f"c{w}-{n}" for w in range(crud_clients) for n in range(40)] + [f"att-{n}" for n in range(10)]
    for at in range(0, len(ids), 10):
        docs = []
        for docid in ids[at:at + 10]:
            hashes = [rng.randbytes(16).hex() for _ in range(soak.prefill_history)]
            docs.append({"_id": docid, "_rev": f"{soak.prefill_history}-{hashes[0]}", "n": 0,
                         "_revisions": {"start": soak.prefill_history, "ids": hashes}})
            soak.prefilled[docid] = docs[-1]["_rev"]
        await soak.call(s, "POST", f"/{DB}/_bulk_docs", 201, "setup", json={"docs": docs, "new_edits": False})


async def setup(soak: Soak, s: aiohttp.ClientSession, crud_clients: int = 3) -> None:
    srv = soak.server
    for db in (DB, COPY, ONESHOT):
        await soak.call(s, "PUT", f"/{db}", 201, "setup")
        if soak.revs_limit is not None:
            await soak.call(s, "PUT", f"/{db}/_revs_limit", 200, "setup", json=soak.revs_limit)
    if soak.prefill_history:
        await prefill(soak, s, crud_clients)
    await soak.call(s, "PUT", f"/{DB}/_design/soak", 201, "setup", json=DDOC)
    await soak.call(s, "POST", f"/{DB}/_index", 200, "setup", json=MANGO_INDEX)
    await soak.call(s, "PUT", "/_replicator/soak", 201, "setup",
                    json={"source": f"{srv.url}/{DB}", "target": f"{srv.url}/{COPY}", "continuous": True})


async def leaves(soak: Soak, s: aiohttp.ClientSession, db: str) -> dict[str, list[str]]:
    st, body = await soak.call(s, "GET", f"/{db}/_changes", 200, "verify", params={"style": "all_docs"})
    rows = (json.loads(body))["results"] if st == 200 else []
    return {r["id"]: sorted(c["rev"] for c in r["changes"]) for r in rows}


async def run(soak: Soak, duration: float, interval: float, on_sample=None, crud_clients: int = 3) -> None:
    """Run the workload for `duration` seconds, then check the continuous replication caught up."""
    async with aiohttp.ClientSession(auth=soak.server.auth) as s0:
        await setup(soak, s0, crud_clients)
        stop = asyncio.Event()
        sessions = [aiohttp.ClientSession(auth=soak.server.auth) for _ in range(crud_clients + 6)]
        try:
            t0 = time.monotonic()
            tasks = [asyncio.create_task(_crud(soak, sessions[i], i, stop)) for i in range(crud_clients)]
            tasks += [asyncio.create_task(f(soak, sessions[crud_clients + k], stop)) for k, f in
                      enumerate((_attachments, _views, _find, _feeds, _oneshots, _compactor))]
            sampler = asyncio.create_task(_sampler(soak, interval, stop, t0, on_sample))
            done, _ = await asyncio.wait(tasks, timeout=duration, return_when=asyncio.FIRST_EXCEPTION)
            stop.set()
            results = await asyncio.gather(*tasks, sampler, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    soak.error(f"client failed: {type(r).__name__}: {r}")
        finally:
            for s in sessions:
                await s.close()
        # the continuous replication catches up with the source once the writes stop
        deadline = time.monotonic() + 60
        while True:
            src, copy = await leaves(soak, s0, DB), await leaves(soak, s0, COPY)
            if src == copy:
                break
            if time.monotonic() > deadline:
                soak.error(f"continuous replication did not catch up: {len(src)} vs {len(copy)} documents")
                break
            await asyncio.sleep(0.5)
