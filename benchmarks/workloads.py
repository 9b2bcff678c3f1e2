"""The project's benchmark workloads, each checking the answers it times.

| workload       | what (medium scale)                                        | figure              |
|----------------|------------------------------------------------------------|---------------------|
| insert_single  | PUT /db/id x20000, ~300-byte docs, 32 concurrent clients   | docs/s, p50/p99     |
| update_single  | 5000 of them updated once with their _rev, c=32            | docs/s, 409s = 0    |
| insert_bulk    | POST _bulk_docs, 1000 docs/request, 100k docs, sequential  | docs/s              |
| read_random    | GET /db/id of random existing ids x20000, c=32             | req/s               |
| all_docs       | _all_docs?include_docs=true paged by 10000 over 100k docs  | rows/s              |
| changes        | _changes?since=0 over 100k docs, one request               | rows/s              |
| changes_latency| one continuous feed; PUT, time until the change arrives x50| median/p99 ms       |
| idle_feeds     | 2000 continuous feeds held idle, then one write            | KiB RSS per feed, fan-out p50/p99 |

Every loop is bounded in count and time. Databases are named `bench-<run>-<role>` and deleted
at the end.
"""
from __future__ import annotations

import asyncio
import base64
import random
import resource
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, unquote

import aiohttp
import orjson

from benchmarks.measure import LoopResult, pct, run_loop, server_usage

SCALES: dict[str, dict[str, int]] = {
    "small": dict(single=2000, updates=500, bulk=10_000, reads=2000, page=2000, latency=20,
                  feeds=200, hold_s=2, time_limit_s=120),
    "medium": dict(single=20_000, updates=5000, bulk=100_000, reads=20_000, page=10_000,
                   latency=50, feeds=2000, hold_s=10, time_limit_s=600),
}
WORKLOADS = ["insert_single", "update_single", "insert_bulk", "read_random", "all_docs",
             "changes", "changes_latency", "idle_feeds"]
BATCH = 1000
FANOUT_WAIT_S = 5.0


class CheckFailed(Exception):
    """The server answered, but not what CouchDB would."""


def make_doc(i: int, doc_id: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": doc_id} if doc_id else {}
    doc.update(n=i, tag=f"tag-{i % 1000:04d}", kind="bench", name=f"user-{i}",
               email=f"user-{i}@example.com", score=(i * 7919) % 10007 / 10, active=i % 3 == 0)
    doc["pad"] = "x" * max(0, 300 - len(orjson.dumps(doc)) - 10)
    return doc


class Bench:
    """One benchmark run against one server."""

    def __init__(self, url: str, scale: str, concurrency: int = 32, server_pid: int | None = None):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.base = f"http://{self.host}:{self.port}"
        self.auth_header = None
        if parts.username:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth_header = "Basic " + base64.b64encode(creds.encode()).decode()
        self.s = SCALES[scale]
        self.concurrency = concurrency
        self.pid = server_pid
        self.run_id = uuid.uuid4().hex[:8]
        self.session: aiohttp.ClientSession | None = None
        self.dbs: list[str] = []
        self.single_revs: dict[str, str] = {}
        self.bulk_db: str | None = None

    # -- plumbing
    async def __aenter__(self) -> "Bench":
        headers = {"Accept": "application/json"}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency + 8, keepalive_timeout=2.0),
            headers=headers, json_serialize=lambda o: orjson.dumps(o).decode())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for db in self.dbs:
            try:
                await self.req("DELETE", f"/{db}", expect=(200, 202, 404))
            except Exception:  # noqa: BLE001 - cleanup is best effort
                pass
        if self.session:
            await self.session.close()

    async def req(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
                  expect: tuple[int, ...] = (200,), timeout: float = 120) -> Any:
        assert self.session is not None
        if body is not None:
            data = orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        async with self.session.request(method, self.base + path, data=data, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            payload = await resp.read()
        if resp.status not in expect:
            raise CheckFailed(f"{method} {path.split('?')[0]} -> {resp.status}: {payload[:200]!r}")
        return orjson.loads(payload) if payload else None

    async def create_db(self, role: str) -> str:
        name = f"bench-{self.run_id}-{role}"
        await self.req("PUT", f"/{name}", expect=(201, 202))
        self.dbs.append(name)
        return name

    def loop(self, count: int, op: Any, concurrency: int | None = None) -> Any:
        return run_loop(count, concurrency or self.concurrency, op, self.s["time_limit_s"])

    async def doc_count(self, db: str) -> int:
        return int((await self.req("GET", f"/{db}"))["doc_count"])

    async def ensure_bulk(self) -> str:
        """The 100k-doc database (loaded untimed when insert_bulk did not run)."""
        if self.bulk_db is None:
            await self.w_insert_bulk()
        assert self.bulk_db is not None
        return self.bulk_db

    # -- workloads
    async def w_insert_single(self) -> dict[str, Any]:
        db, n = await self.create_db("single"), self.s["single"]

        async def op(i: int) -> None:
            doc_id = f"s{i:08d}"
            r = await self.req("PUT", f"/{db}/{doc_id}", make_doc(i), expect=(201, 202))
            if not (r.get("ok") and r.get("id") == doc_id and r.get("rev", "").startswith("1-")):
                raise CheckFailed(f"bad PUT answer {r}")
            self.single_revs[doc_id] = r["rev"]

        res = await self.loop(n, op)
        m = res.metrics("docs/s")
        m["doc_count_ok"] = await self.doc_count(db) == res.done
        self.single_db = db
        return m

    async def w_update_single(self) -> dict[str, Any]:
        if not self.single_revs:
            await self.w_insert_single()
        ids = sorted(self.single_revs)[: self.s["updates"]]
        conflicts = 0

        async def op(k: int) -> None:
            nonlocal conflicts
            doc_id = ids[k]
            doc = make_doc(k, doc_id) | {"_rev": self.single_revs[doc_id], "updated": True}
            r = await self.req("PUT", f"/{self.single_db}/{doc_id}", doc, expect=(201, 202, 409))
            if r.get("error") == "conflict":
                conflicts += 1
                raise CheckFailed("409 conflict on an update with the current _rev")
            if not r.get("rev", "").startswith("2-"):
                raise CheckFailed(f"bad update answer {r}")

        m = (await self.loop(len(ids), op)).metrics("docs/s")
        m["conflicts_409"] = conflicts
        return m

    async def w_insert_bulk(self) -> dict[str, Any]:
        db, n = await self.create_db("bulk"), self.s["bulk"]
        bodies = [orjson.dumps({"docs": [make_doc(i, f"b{i:08d}")
                                         for i in range(k, min(n, k + BATCH))]})
                  for k in range(0, n, BATCH)]

        async def op(k: int) -> None:
            rows = await self.req("POST", f"/{db}/_bulk_docs", data=bodies[k], expect=(201, 202))
            if len(rows) != min(BATCH, n - k * BATCH) or not all(r.get("ok") for r in rows):
                raise CheckFailed(f"_bulk_docs rows not all ok: {rows[:2]}")

        res = await self.loop(len(bodies), op, concurrency=1)
        m = res.metrics("docs/s", items=res.done * BATCH)
        m["doc_count_ok"] = await self.doc_count(db) == n
        self.bulk_db = db
        return m

    async def w_read_random(self) -> dict[str, Any]:
        db, n = await self.ensure_bulk(), self.s["bulk"]
        rng = random.Random(7)
        picks = [rng.randrange(n) for _ in range(self.s["reads"])]

        async def op(k: int) -> None:
            i = picks[k]
            doc = await self.req("GET", f"/{db}/b{i:08d}")
            if doc.get("_id") != f"b{i:08d}" or doc.get("n") != i:
                raise CheckFailed(f"wrong doc for b{i:08d}")

        return (await self.loop(len(picks), op)).metrics("req/s")

    async def w_all_docs(self) -> dict[str, Any]:
        db, n, page = await self.ensure_bulk(), self.s["bulk"], self.s["page"]
        seen, last, startkey = 0, "", None
        t0 = time.perf_counter()
        while True:
            q = f"include_docs=true&limit={page}"
            if startkey is not None:
                q += "&skip=1&startkey=" + orjson.dumps(startkey).decode()
            r = await self.req("GET", f"/{db}/_all_docs?{q}")
            rows = r["rows"]
            for row in rows:
                if row["id"] <= last or row["doc"]["_id"] != row["id"]:
                    raise CheckFailed(f"_all_docs out of order or wrong doc at {row['id']}")
                last = row["id"]
            seen += len(rows)
            if len(rows) < page or time.perf_counter() - t0 > self.s["time_limit_s"]:
                break
            startkey = rows[-1]["id"]
        elapsed = time.perf_counter() - t0
        if seen != n or r.get("total_rows") != n:
            raise CheckFailed(f"_all_docs saw {seen} rows, total_rows {r.get('total_rows')}, "
                              f"expected {n}")
        return {"throughput": round(seen / elapsed, 1), "unit": "rows/s", "count": seen,
                "elapsed_s": round(elapsed, 3)}

    async def w_changes(self) -> dict[str, Any]:
        db, n = await self.ensure_bulk(), self.s["bulk"]
        t0 = time.perf_counter()
        r = await self.req("GET", f"/{db}/_changes?since=0")
        elapsed = time.perf_counter() - t0
        ids = {c["id"] for c in r["results"]}
        if len(r["results"]) != n or len(ids) != n or "last_seq" not in r:
            raise CheckFailed(f"_changes: {len(r['results'])} rows, {len(ids)} ids, expected {n}")
        return {"throughput": round(n / elapsed, 1), "unit": "rows/s", "count": n,
                "elapsed_s": round(elapsed, 3)}

    async def open_feed(self, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        head = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: */*\r\n"
        if self.auth_header:
            head += f"Authorization: {self.auth_header}\r\n"
        writer.write((head + "\r\n").encode())
        await writer.drain()
        return reader, writer

    @staticmethod
    async def wait_for(reader: asyncio.StreamReader, needle: bytes, buf: bytearray) -> None:
        """Read until needle shows up (the feed is chunked JSON lines; a substring is enough)."""
        while needle not in buf:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError("feed closed by the server")
            buf += chunk
            if len(buf) > 1 << 20:
                del buf[: len(buf) - 4096]

    async def w_changes_latency(self) -> dict[str, Any]:
        db = await self.create_db("latency")
        reader, writer = await self.open_feed(
            f"/{db}/_changes?feed=continuous&since=now&heartbeat=10000")
        lat: list[float] = []
        buf = bytearray()
        try:
            await asyncio.sleep(0.2)
            for i in range(self.s["latency"]):
                doc_id = f"lat{i:06d}"
                t0 = time.perf_counter()
                await self.req("PUT", f"/{db}/{doc_id}", make_doc(i), expect=(201, 202))
                await asyncio.wait_for(self.wait_for(reader, f'"{doc_id}"'.encode(), buf), 5)
                lat.append(time.perf_counter() - t0)
        finally:
            writer.close()
        lat.sort()
        return {"throughput": None, "unit": "ms", "count": len(lat), "median_ms": pct(lat, 50),
                "p99_ms": pct(lat, 99)}

    async def w_idle_feeds(self) -> dict[str, Any]:
        k, hold = self.s["feeds"], self.s["hold_s"]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < k + 512:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(k + 512, hard), hard))
        db = await self.create_db("feeds")
        await asyncio.sleep(1)
        rss0, _ = server_usage(self.pid)
        gate = asyncio.Semaphore(64)
        path = f"/{db}/_changes?feed=continuous&heartbeat=30000&since=now"

        async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            async with gate:
                return await asyncio.wait_for(self.open_feed(path), 10)

        t0 = time.perf_counter()
        outcomes = await asyncio.gather(*(open_one() for _ in range(k)), return_exceptions=True)
        open_s = time.perf_counter() - t0
        feeds = [o for o in outcomes if not isinstance(o, BaseException)]
        arrived: list[float] = []

        async def watch(reader: asyncio.StreamReader) -> None:
            await self.wait_for(reader, b'"fanout"', bytearray())
            arrived.append(time.perf_counter())

        tasks = [asyncio.create_task(watch(r)) for r, _ in feeds]
        try:
            await asyncio.sleep(hold)
            rss1, _ = server_usage(self.pid)
            alive = sum(not t.done() for t in tasks)
            t_probe = time.perf_counter()
            await self.req("GET", "/", timeout=30)
            probe_ms = (time.perf_counter() - t_probe) * 1000
            t_write = time.perf_counter()
            await self.req("PUT", f"/{db}/fanout", make_doc(0), expect=(201, 202), timeout=60)
            pending = [t for t in tasks if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=FANOUT_WAIT_S)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _, w in feeds:
                w.close()
        lat = sorted(t - t_write for t in arrived)
        per_feed = (rss1 - rss0) / len(feeds) if rss0 is not None and rss1 and feeds else None
        return {"throughput": None, "unit": "feeds", "count": len(feeds), "requested": k,
                "open_s": round(open_s, 2), "alive_after_hold": alive,
                "rss_per_feed_kib": None if per_feed is None else round(per_feed, 1),
                "probe_get_ms": round(probe_ms, 1), "fanout_received": len(lat),
                "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}


async def run_workloads(bench: Bench, names: list[str]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        cpu0, (_, srv0), wall0 = time.process_time(), server_usage(bench.pid), time.perf_counter()
        try:
            m = await getattr(bench, f"w_{name}")()
            m["status"] = "errors" if m.get("errors") or m.get("doc_count_ok") is False else "ok"
        except Exception as e:  # noqa: BLE001 - a failed workload is reported, the run goes on
            m = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:300]}
        wall = time.perf_counter() - wall0
        rss, srv1 = server_usage(bench.pid)
        m["client_cpu_pct"] = round(100 * (time.process_time() - cpu0) / wall, 1)
        if srv0 is not None and srv1 is not None:
            m["server_cpu_pct"] = round(100 * (srv1 - srv0) / wall, 1)
        m["server_rss_kib"] = rss
        results[name] = m
        print(format_line(name, m), flush=True)
    return results


def format_line(name: str, m: dict[str, Any]) -> str:
    if m["status"] == "failed":
        return f"{name:<16} FAILED {m['error']}"
    if name == "changes_latency":
        head = f"median {m['median_ms']} ms, p99 {m['p99_ms']} ms"
    elif name == "idle_feeds":
        head = (f"{m['count']}/{m['requested']} feeds, {m['alive_after_hold']} alive, "
                f"{m['rss_per_feed_kib']} KiB/feed, fan-out {m['fanout_received']} got it "
                f"p50 {m['p50_ms']} p99 {m['p99_ms']} ms, GET / {m['probe_get_ms']} ms")
    else:
        head = f"{m['throughput']:>10,.1f} {m['unit']}"
        if m.get("p50_ms") is not None:
            head += f"  p50 {m['p50_ms']} ms  p99 {m['p99_ms']} ms"
    srv = f"  srv cpu {m.get('server_cpu_pct')}%" if m.get("server_cpu_pct") is not None else ""
    return f"{name:<16} {m['status']:<7} {head}  cli cpu {m['client_cpu_pct']}%{srv}"


__all__ = ["Bench", "SCALES", "WORKLOADS", "run_workloads", "LoopResult"]
