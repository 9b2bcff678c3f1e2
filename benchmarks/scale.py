"""One node at scale: many databases, many replications, many idle feeds.

    python -m benchmarks.scale dbs --count 10000 [--server couchpy|couchdb]
    python -m benchmarks.scale replications --count 1000 --max-jobs 200 --interval 5 --max-churn 100
    python -m benchmarks.scale feeds --count 18000 --kind continuous|longpoll|eventsource
    python -m benchmarks.scale feeds --count 100000 --workers 7 --server ceiling

Each run starts its own server with a fresh data directory on a free loopback port: couchpy
(`couchpy serve`) or Apache CouchDB 3.4.3 (`../shared/peers/couchdb/couchdb.sh`), or for `feeds`
the bare fan-out ceiling (benchmarks/feeds_ceiling.py: no couchpy, the floor of what a fan-out
costs on the machine), and prints (and with `--out FILE` saves) one JSON result. Every phase is
bounded by `--time-limit` seconds and reports how far it got; every answer is checked.

- `dbs`: N databases created with one document each (16 clients), then that document read back
  from each; creation and read rates, the server's RSS (and its anonymous part, the heap) and
  open file descriptors after each phase.
- `replications`: N source databases with one document, and N continuous replications from
  `_replicator` documents (source -> its own target, `create_target`), with the scheduler's
  `max_jobs`, `interval` and `max_churn` set; how long until every target holds the first
  document, then, after a second document is written to every source, until every target holds
  that one too (with N > max_jobs only rotation gets it there); `_scheduler/docs` pages timed
  meanwhile; RSS and descriptors before, at the peak and after every `_replicator` document is
  deleted (a leak shows as descriptors left behind).
- `feeds`: N idle feeds on one database, held by client processes (benchmarks/scale_feeds.py),
  each from its own source address in 127.0.0.0/8; RSS per feed; then writes, each timed from
  the write until every feed shows it (fan-out p50/p99/max); meanwhile a probe reads a document
  every 50 ms (probe p50/p99 per phase). Descriptors after the feeds are closed.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import feeds_ceiling
from benchmarks.measure import pct, process_tree, run_loop, server_usage
from benchmarks.scale_feeds import client_main, raise_nofile
from tests.couchdb_peer import CouchdbPeer
from tests.serverproc import CouchpyServer, free_port, open_fds

FEEDS_PER_CLIENT = 15000
PROBE_EVERY_S = 0.05


@dataclass
class Target:
    name: str
    base: str
    user: str
    password: str
    pid: int

    @property
    def auth(self) -> aiohttp.BasicAuth:
        return aiohttp.BasicAuth(self.user, self.password)

    def url(self, path: str) -> str:
        """`path` on this server with credentials, as a replication endpoint."""
        return self.base.replace("://", f"://{self.user}:{self.password}@", 1) + path

    def usage(self) -> dict[str, Any]:
        """Summed over the server's processes (with `--workers`, the supervisor and its workers)."""
        rss_kib, cpu_s = server_usage(self.pid)
        pids = process_tree(self.pid) if self.pid else []
        counts = [open_fds(p) for p in pids]
        anon = [anon_mb(p) for p in pids]
        return {"rss_mb": None if rss_kib is None else round(rss_kib / 1024, 1),
                "anon_mb": round(sum(a for a in anon if a is not None), 1) if pids else None,
                "fds": sum(f or 0 for f, _ in counts), "sockets": sum(k or 0 for _, k in counts),
                "processes": len(pids), "cpu_s": None if cpu_s is None else round(cpu_s, 1)}


def anon_mb(pid: int) -> float | None:
    """A process's anonymous resident memory (its heap: what the LRU must bound; LMDB's pages
    are file-backed and the kernel reclaims them)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return round(next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) / 1024, 1)
    except (OSError, StopIteration, ValueError):
        return None


@contextlib.contextmanager
def start_server(kind: str, root: Path, config: dict[str, dict[str, str]], workers: int = 1) -> Iterator[Target]:
    """A fresh server; couchpy reads `config` from its ini, CouchDB gets it through `_config`
    (see `apply_config`). `workers`: couchpy's `--workers` (server processes on one port), or the
    ceiling's."""
    if kind == "ceiling":
        port = free_port()
        with feeds_ceiling.running(port, workers) as proc:
            yield Target("ceiling", f"http://127.0.0.1:{port}", "admin", "ceiling", proc.pid)
    elif kind == "couchpy":
        srv = CouchpyServer(root, config=config, name="couchpy",
                            args=["--workers", str(workers)] if workers > 1 else [])
        srv.start(timeout=60)
        try:
            yield Target("couchpy", srv.base, srv.user, srv.password, srv.pid or 0)
        finally:
            srv.stop()
    else:
        with CouchdbPeer(root / "couchdb") as peer:
            yield Target("couchdb", peer.base, peer.user, peer.password, int(peer.pid or 0))


async def apply_config(s: aiohttp.ClientSession, t: Target, config: dict[str, dict[str, str]]) -> None:
    if t.name != "couchdb":
        return
    for section, values in config.items():
        for key, value in values.items():
            async with s.put(f"/_node/_local/_config/{section}/{key}", json=value) as r:
                assert r.status == 200, (section, key, r.status, await r.text())


async def expect(s: aiohttp.ClientSession, method: str, path: str, statuses: tuple[int, ...],
                 body: Any = None) -> Any:
    async with s.request(method, path, json=body) as r:
        payload = await r.read()
        if r.status not in statuses:
            raise RuntimeError(f"{method} {path}: {r.status} {payload[:200]!r}")
        return json.loads(payload) if payload else None


def session(t: Target, limit: int = 64) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=t.base, auth=t.auth,
                                 connector=aiohttp.TCPConnector(limit=limit),
                                 timeout=aiohttp.ClientTimeout(total=120))


# ------------------------------------------------------------------ dbs


async def bench_dbs(t: Target, args: argparse.Namespace) -> dict[str, Any]:
    n = args.count
    out: dict[str, Any] = {"count": n, "start": t.usage()}
    async with session(t) as s:

        async def create(i: int) -> None:
            await expect(s, "PUT", f"/scale-{i}", (201,))
            await expect(s, "PUT", f"/scale-{i}/doc", (201,), {"i": i})

        res = await run_loop(n, 16, create, args.time_limit)
        out["create"] = res.metrics("databases")
        out["after_create"] = t.usage()
        created = res.done

        async def read(i: int) -> None:
            doc = await expect(s, "GET", f"/scale-{i}/doc", (200,))
            assert doc["i"] == i, doc

        res = await run_loop(created, 16, read, args.time_limit)
        out["read"] = res.metrics("reads")
        out["after_read"] = t.usage()
    return out


# ------------------------------------------------------------------ replications


async def wait_all_have(s: aiohttp.ClientSession, n: int, docid: str, deadline: float,
                        t0: float) -> dict[str, Any]:
    """Poll every target until each holds `docid`; when the 50/90/100% marks were passed."""
    left = set(range(n))
    marks: dict[str, float] = {}
    passes = 0
    sem = asyncio.Semaphore(16)

    async def check(i: int) -> None:
        async with sem:
            async with s.get(f"/tgt-{i}/{docid}") as r:
                await r.read()
                if r.status == 200:
                    left.discard(i)

    while left and time.monotonic() < deadline:
        passes += 1
        await asyncio.gather(*(check(i) for i in sorted(left)))
        done = n - len(left)
        for label, frac in (("p50", 0.5), ("p90", 0.9), ("all", 1.0)):
            if label not in marks and done >= math.ceil(frac * n):
                marks[label] = round(time.monotonic() - t0, 1)
        if left:
            await asyncio.sleep(1)
    return {"reached": n - len(left), "of": n, "seconds_to": marks, "poll_passes": passes}


async def scheduler_pages(s: aiohttp.ClientSession, n: int, stop: asyncio.Event,
                          latencies: list[float], welcome: list[float]) -> None:
    """`_scheduler/docs` pages timed, each followed by a `GET /` timed the same way: what the
    server takes to answer anything meanwhile, beside what a page takes."""
    k = 0
    while not stop.is_set():
        skip = (k * 100) % max(n, 1)
        t0 = time.perf_counter()
        page = await expect(s, "GET", f"/_scheduler/docs?limit=100&skip={skip}", (200,))
        latencies.append(time.perf_counter() - t0)
        assert len(page["docs"]) == min(100, max(0, page["total_rows"] - skip)), (skip, page["total_rows"])
        t0 = time.perf_counter()
        await expect(s, "GET", "/", (200,))
        welcome.append(time.perf_counter() - t0)
        k += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def scheduler_states(s: aiohttp.ClientSession) -> dict[str, int]:
    states: dict[str, int] = {}
    skip = 0
    while True:
        page = await expect(s, "GET", f"/_scheduler/docs/_replicator?limit=1000&skip={skip}", (200,))
        for d in page["docs"]:
            states[d["state"]] = states.get(d["state"], 0) + 1
        skip += len(page["docs"])
        if not page["docs"] or skip >= page["total_rows"]:
            return states


async def bench_replications(t: Target, args: argparse.Namespace) -> dict[str, Any]:
    n = args.count
    out: dict[str, Any] = {"count": n, "max_jobs": args.max_jobs, "interval_s": args.interval,
                           "max_churn": args.max_churn}
    async with session(t) as s:
        await apply_config(s, t, scheduler_config(args))
        await expect(s, "PUT", "/_replicator", (201, 412))

        async def source(i: int) -> None:
            await expect(s, "PUT", f"/src-{i}", (201,))
            await expect(s, "PUT", f"/src-{i}/a", (201,), {"i": i})

        res = await run_loop(n, 16, source, args.time_limit)
        assert res.done == n, res.metrics("sources")
        out["sources_created_per_s"] = res.metrics("databases")["throughput"]
        out["before"] = t.usage()

        async def repdoc(i: int) -> None:
            await expect(s, "PUT", f"/_replicator/rep-{i}", (201,), {
                "source": t.url(f"/src-{i}"), "target": t.url(f"/tgt-{i}"),
                "continuous": True, "create_target": True})

        t0 = time.monotonic()
        res = await run_loop(n, 16, repdoc, args.time_limit)
        assert res.done == n, res.metrics("replicator docs")
        out["replicator_docs_per_s"] = res.metrics("documents")["throughput"]
        deadline = t0 + args.time_limit
        stop, pages, welcome = asyncio.Event(), [], []
        pager_s = session(t, limit=2)  # its own connections: no wait behind the other clients
        pager = asyncio.create_task(scheduler_pages(pager_s, n, stop, pages, welcome))
        try:
            out["first_doc"] = await wait_all_have(s, n, "a", deadline, t0)
            out["peak"] = t.usage()
            out["states"] = await scheduler_states(s)

            async def second(i: int) -> None:
                await expect(s, "PUT", f"/src-{i}/b", (201,), {"i": i})

            t1 = time.monotonic()
            await run_loop(n, 16, second, args.time_limit)
            out["second_doc"] = await wait_all_have(s, n, "b", t1 + args.time_limit, t1)
            out["peak_after_second"] = t.usage()
        finally:
            stop.set()
            await pager
            await pager_s.close()
        pages.sort()
        welcome.sort()
        out["scheduler_docs_page"] = {"count": len(pages), "p50_ms": pct(pages, 50), "p99_ms": pct(pages, 99)}
        out["welcome_meanwhile"] = {"count": len(welcome), "p50_ms": pct(welcome, 50), "p99_ms": pct(welcome, 99)}

        async def delete(i: int) -> None:
            doc = await expect(s, "GET", f"/_replicator/rep-{i}", (200,))
            await expect(s, "DELETE", f"/_replicator/rep-{i}?rev={doc['_rev']}", (200,))

        await run_loop(n, 16, delete, args.time_limit)
        t2 = time.monotonic()
        while time.monotonic() - t2 < 120:
            jobs = await expect(s, "GET", "/_scheduler/jobs?limit=1", (200,))
            if jobs["total_rows"] == 0:
                break
            await asyncio.sleep(1)
        out["jobs_left_after_delete"] = jobs["total_rows"]
        await asyncio.sleep(5)  # connections the jobs used close (idle keep-alive timeouts)
        out["after_delete"] = t.usage()
    return out


def scheduler_config(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    return {"replicator": {"max_jobs": str(args.max_jobs), "interval": str(int(args.interval * 1000)),
                           "max_churn": str(args.max_churn)}}


# ------------------------------------------------------------------ feeds


def feed_path(kind: str) -> str:
    if kind == "longpoll":
        return "/feeds/_changes?feed=longpoll&since=now&timeout=3600000"
    return f"/feeds/_changes?feed={kind}&since=now&heartbeat=3600000"


class Clients:
    """The client processes and their pipes."""

    def __init__(self, t: Target, n: int, per_client: int):
        host, port = t.base.split("//", 1)[1].rsplit(":", 1)
        self.procs, self.conns, self.shares = [], [], []
        ctx = multiprocessing.get_context("spawn")
        k = max(1, math.ceil(n / per_client))
        for p in range(k):
            parent, child = ctx.Pipe()
            source = f"127.0.{1 + p // 250}.{1 + p % 250}"  # a source address (and port range) each
            proc = ctx.Process(target=client_main, args=(child, host, int(port), source, (t.user, t.password)),
                               daemon=True)
            proc.start()
            self.procs.append(proc)
            self.conns.append(parent)
            self.shares.append(n // k + (1 if p < n % k else 0))

    async def ask(self, msgs: list[tuple], timeout: float) -> list[tuple]:
        loop = asyncio.get_running_loop()

        def roundtrip(conn, msg):
            conn.send(msg)
            if not conn.poll(timeout):
                raise TimeoutError(f"client did not answer {msg[0]} within {timeout}s")
            return conn.recv()

        return await asyncio.gather(*(loop.run_in_executor(None, roundtrip, c, m)
                                      for c, m in zip(self.conns, msgs)))

    def cpu_s(self) -> float:
        """CPU seconds used so far by the client processes (they share the server's cores)."""
        return sum(server_usage(proc.pid)[1] or 0.0 for proc in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


async def probe_loop(s: aiohttp.ClientSession, phase: list[str], samples: dict[str, list[float]],
                     errors: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            doc = await expect(s, "GET", "/feeds/probe", (200,))
            assert doc["probe"] is True
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError) as e:
            # a server too busy to answer at all: counted, and the run goes on
            errors[f"{phase[0]}: {type(e).__name__}"] = errors.get(f"{phase[0]}: {type(e).__name__}", 0) + 1
            continue
        samples.setdefault(phase[0], []).append(time.perf_counter() - t0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY_S)


async def bench_feeds(t: Target, args: argparse.Namespace) -> dict[str, Any]:
    n, writes = args.count, args.writes  # a longpoll client asks again after each answer
    out: dict[str, Any] = {"count": n, "kind": args.kind}
    async with session(t) as s, session(t, limit=2) as probe_s:
        await expect(s, "PUT", "/feeds", (201,))
        await expect(s, "PUT", "/feeds/probe", (201,), {"probe": True})
        for _ in range(20):  # warm up the paths the probe and the writes take
            await expect(s, "GET", "/feeds/probe", (200,))
        await asyncio.sleep(2)
        base = t.usage()
        out["before"] = base
        phase, samples, probe_errors, stop = ["idle"], {}, {}, asyncio.Event()
        prober = asyncio.create_task(probe_loop(probe_s, phase, samples, probe_errors, stop))
        clients = Clients(t, n, args.per_client)
        try:
            phase[0] = "opening"
            t0 = time.monotonic()
            answers = await clients.ask([("open", feed_path(args.kind), k, args.time_limit)
                                         for k in clients.shares], args.time_limit + 180)
            out["open_s"] = round(time.monotonic() - t0, 1)
            out["opened"] = sum(a[1] for a in answers)
            out["open_errors"] = [e for a in answers for e in a[2]][:10]
            phase[0] = "holding"
            await asyncio.sleep(args.hold)
            held = t.usage()
            out["held"] = held
            if base["rss_mb"] is not None and held["rss_mb"] is not None and out["opened"]:
                out["rss_per_feed_kib"] = round((held["rss_mb"] - base["rss_mb"]) * 1024 / out["opened"], 2)
            rounds = []
            for w in range(writes):
                phase[0] = "fan-out"
                needle = f"w-{w}-{time.time_ns()}"
                await clients.ask([("arm", needle.encode())] * len(clients.conns), 60)
                cpu0, client_cpu0 = server_usage(t.pid)[1], clients.cpu_s()
                t_write = time.time()
                await expect(s, "PUT", f"/feeds/{needle}", (201,), {"w": w})
                answers = await clients.ask([("collect", args.fanout_timeout)] * len(clients.conns),
                                            args.fanout_timeout + 60)
                # the server's CPU from the write until every feed saw it (the write itself and
                # the probes included, both small beside thousands of feeds)
                cpu1, client_cpu1 = server_usage(t.pid)[1], clients.cpu_s()
                lat = sorted(x - t_write for a in answers for x in a[1])
                still_open = sum(a[2] for a in answers)
                cpu_us = None if cpu0 is None or cpu1 is None or not lat else round((cpu1 - cpu0) * 1e6 / len(lat), 1)
                rounds.append({"reached": len(lat), "open": still_open, "p50_ms": pct(lat, 50),
                               "p99_ms": pct(lat, 99), "max_ms": pct(lat, 100),
                               "cpu_us_per_feed": cpu_us,
                               "client_cpu_us_per_feed": round((client_cpu1 - client_cpu0) * 1e6 / len(lat), 1)
                               if lat else None,
                               "load1": round(os.getloadavg()[0], 2)})
                phase[0] = "holding"
                await asyncio.sleep(2)
            out["fanout"] = rounds
            phase[0] = "closing"
            await clients.ask([("close",)] * len(clients.conns), 120)
        finally:
            clients.stop()
        phase[0] = "after"
        await asyncio.sleep(5)
        stop.set()
        await prober
        out["after_close"] = t.usage()
        out["probe"] = {k: {"count": len(v), "p50_ms": pct(sorted(v), 50), "p99_ms": pct(sorted(v), 99),
                            "max_ms": pct(sorted(v), 100)} for k, v in samples.items()}
        out["probe_errors"] = probe_errors
    return out


# ------------------------------------------------------------------ main


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="suite", required=True)
    for name in ("dbs", "replications", "feeds"):
        p = sub.add_parser(name)
        p.add_argument("--server", default="couchpy",
                       choices=("couchpy", "couchdb", "ceiling") if name == "feeds" else ("couchpy", "couchdb"))
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--time-limit", type=float, default=900, help="seconds per phase")
        p.add_argument("--out", help="also write the JSON result to this file")
        p.add_argument("--max-dbs-open", type=int, default=500)
        p.add_argument("--workers", type=int, default=1,
                       help="couchpy's (or the ceiling's) --workers: server processes sharing the port "
                            "(each has its own open-file limit, so N workers hold N times the feeds one may)")
        if name == "replications":
            p.add_argument("--max-jobs", type=int, default=500)
            p.add_argument("--interval", type=float, default=10.0, help="seconds")
            p.add_argument("--max-churn", type=int, default=200)
        if name == "feeds":
            p.add_argument("--kind", choices=("continuous", "longpoll", "eventsource"), default="continuous")
            p.add_argument("--per-client", type=int, default=FEEDS_PER_CLIENT)
            p.add_argument("--hold", type=float, default=10.0, help="seconds idle before the writes")
            p.add_argument("--writes", type=int, default=5)
            p.add_argument("--fanout-timeout", type=float, default=60.0)
    return ap


async def run(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, dict[str, str]] = {"couchdb": {"max_dbs_open": str(args.max_dbs_open)}}
    if args.suite == "replications":
        config.update(scheduler_config(args))
    load_start = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: what it ran meanwhile
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp, start_server(args.server, Path(tmp), config, args.workers) as t:
        async with session(t) as s:
            await apply_config(s, t, {"couchdb": config["couchdb"]})
        bench = {"dbs": bench_dbs, "replications": bench_replications, "feeds": bench_feeds}[args.suite]
        result = await bench(t, args)
    result.update(suite=args.suite, server=args.server, workers=args.workers, cores=os.cpu_count(),
                  nofile_limit=raise_nofile(), load_average_1m=round(os.getloadavg()[0], 2),
                  load_average_start=load_start, load_average_end=[round(x, 2) for x in os.getloadavg()],
                  when=time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()))
    return result


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    raise_nofile()
    # a SIGTERM (from `timeout`) unwinds like an error, so the server and clients are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
