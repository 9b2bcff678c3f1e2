"""Interleaved rounds over several servers: couchbench's workloads plus the hot-path workloads.

Each round runs every server once, in an order rotated by one each round (so that drift in the
machine's load falls on each server in turn), each started afresh (CouchDB: the one you run):

- the hot paths, in this process: longpoll wake-up (benchmarks/longpoll_wakeup.py), a JavaScript
  view's build and its refresh after each write (benchmarks/js_view_refresh.py) and, on couchpy
  only, the conflict resolver (benchmarks/conflict_resolution.py);
- then couchbench (`--client`, the neutral client of benchmarks/side_by_side.py) with `--only`.

Servers: `couchpy` (this checkout), `couchpy-base` (the checkout given by `--base`, e.g. a
`git worktree` of an older commit: the same benchmark, the older code), `pouchdb`
(pouchdb-server 4.2.0 from tests/node) and `couchdb` (`--couchdb URL --couchdb-pid PID`).
Every run's JSON and log go to the results directory with `load.txt` (load average at each
start and end) and `summary.md` (per round and median of the rounds, ratios of the medians).

    python -m benchmarks.hot_paths --client ../shared/bench/couchbench.py --rounds 3 \
        --servers couchdb,pouchdb,couchpy-base,couchpy --base ../couchpy-91c2612 \
        --couchdb http://admin:admin@127.0.0.1:5984 --couchdb-pid PID
    python -m benchmarks.hot_paths --summarize benchmarks/recorded/<run>
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.conflict_resolution import conflict_resolution
from benchmarks.js_view_refresh import js_view_refresh
from benchmarks.longpoll_wakeup import longpoll_wakeup
from benchmarks.measure import server_usage
from benchmarks.servers import REPO, CouchpyServer, PouchdbServer, temp_dir
from benchmarks.side_by_side import _Running, find_client, run_couchbench
from benchmarks.workloads import Bench

COUCHBENCH_ONLY = ("insert_single,update_single,insert_bulk,read_random,changes_latency,"
                   "view_build,view_query,idle_feeds")
SERVERS = ("couchdb", "pouchdb", "couchpy-base", "couchpy")
Metric = tuple[str, str, str, Callable[[dict[str, Any]], Any]]  # (label, unit, better, getter)


def _cb(workload: str, key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda run: ((run.get("couchbench") or {}).get("results", {}).get(workload) or {}).get(key)


def _cb_cpu(workload: str) -> Callable[[dict[str, Any]], Any]:
    def get(run: dict[str, Any]) -> Any:
        m = ((run.get("couchbench") or {}).get("results", {}).get(workload)) or {}
        cpu, rate = m.get("server_cpu_pct"), m.get("throughput")
        return cpu / 100 / rate * 1e6 if cpu and rate else None
    return get


def _hot(workload: str, *keys: str) -> Callable[[dict[str, Any]], Any]:
    def get(run: dict[str, Any]) -> Any:
        v: Any = (run.get("hot") or {}).get(workload)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v
    return get


METRICS: list[Metric] = [
    ("insert_single (PUT)", "docs/s", "higher", _cb("insert_single", "throughput")),
    ("insert_single server CPU", "µs/doc", "lower", _cb_cpu("insert_single")),
    ("update_single (PUT)", "docs/s", "higher", _cb("update_single", "throughput")),
    ("update_single server CPU", "µs/doc", "lower", _cb_cpu("update_single")),
    ("insert_bulk", "docs/s", "higher", _cb("insert_bulk", "throughput")),
    ("read_random (control)", "req/s", "higher", _cb("read_random", "throughput")),
    ("read_random server CPU", "µs/req", "lower", _cb_cpu("read_random")),
    ("changes_latency (continuous), median", "ms", "lower", _cb("changes_latency", "median_ms")),
    ("longpoll wake-up, 1 waiter, median", "ms", "lower", _hot("longpoll", "single", "median_ms")),
    ("longpoll fan-out, 200 waiters, p50", "ms", "lower", _hot("longpoll", "fanout", "p50_ms")),
    ("longpoll fan-out, 200 waiters, p99", "ms", "lower", _hot("longpoll", "fanout", "p99_ms")),
    ("idle continuous feeds (200), fan-out p99", "ms", "lower", _cb("idle_feeds", "p99_ms")),
    ("view_build (JS map, 10k docs)", "docs/s", "higher", _cb("view_build", "throughput")),
    ("view_query", "req/s", "higher", _cb("view_query", "throughput")),
    ("JS view build, 20k docs", "docs/s", "higher", _hot("js_view", "build", "docs_per_s")),
    ("JS view refresh (write + key query), 600", "per s", "higher", _hot("js_view", "refresh", "per_s")),
    ("JS view build server CPU", "µs/doc", "lower", _hot("js_view", "build", "server_cpu_us_per_doc")),
    ("JS view refresh, p99", "ms", "lower", _hot("js_view", "refresh", "p99_ms")),
    ("JS view refresh server CPU", "µs/refresh", "lower", _hot("js_view", "refresh", "server_cpu_us_per_refresh")),
    ("conflict resolution (2 leaves each, 2000 docs)", "docs/s", "higher", _hot("conflicts", "docs_per_s")),
    ("conflict resolution server CPU", "µs/doc", "lower", _hot("conflicts", "server_cpu_us_per_doc")),
]


async def run_hot(url: str, pid: int | None, couchpy: bool) -> dict[str, Any]:
    """The hot-path workloads against one server; a workload that fails is recorded as such."""
    out: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[Bench], Any]]] = [
        ("longpoll", lambda b: longpoll_wakeup(b)), ("js_view", lambda b: js_view_refresh(b))]
    if couchpy:
        steps.append(("conflicts", lambda b: conflict_resolution(b)))
    for name, step in steps:
        _, cpu0 = server_usage(pid)
        t0 = time.perf_counter()
        try:
            async with Bench(url, "small", server_pid=pid) as bench:
                res = await step(bench)
            res["status"] = "ok"
        except Exception as e:  # noqa: BLE001 - recorded; the other workloads still run
            res = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:300]}
        _, cpu1 = server_usage(pid)
        res["wall_s"] = round(time.perf_counter() - t0, 2)
        res["server_cpu_s"] = round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None
        out[name] = res
        print(f"  {name}: {json.dumps(res)}", flush=True)
    return out


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_round(args: argparse.Namespace, client: Path, results: Path, rnd: int, name: str) -> None:
    stem = f"round{rnd}-{name}"
    with temp_dir(f"bench-{name}-") as tmp, open(results / "load.txt", "a") as load:
        if name == "couchpy":
            server: Any = CouchpyServer(Path(tmp))
        elif name == "couchpy-base":
            server = CouchpyServer(Path(tmp), repo=args.base)
        elif name == "pouchdb":
            server = PouchdbServer(Path(tmp))
        else:
            server = _Running(args.couchdb, args.couchdb_pid)
        load.write(f"{name} round={rnd} start {time.strftime('%H:%M:%S', time.gmtime())} load: {_load()}\n")
        load.flush()
        print(f"\n=== {stem} (load {_load()})", flush=True)
        with server:
            hot = asyncio.run(run_hot(server.url, server.pid, name.startswith("couchpy")))
            (results / f"{stem}-hot.json").write_text(json.dumps(hot, indent=2) + "\n")
            run_couchbench(client, server.url, server.pid, results / f"{stem}.json", "small",
                           COUCHBENCH_ONLY, results / f"{stem}.log")
        load.write(f"{name} round={rnd} end {time.strftime('%H:%M:%S', time.gmtime())} load: {_load()}\n")


def _read(results: Path, rnd: int, name: str) -> dict[str, Any]:
    def load(p: Path) -> Any:
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None
    return {"couchbench": load(results / f"round{rnd}-{name}.json"),
            "hot": load(results / f"round{rnd}-{name}-hot.json")}


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"


def summarize(results: Path) -> str:
    rounds = sorted({int(p.name.split("-")[0][5:]) for p in results.glob("round*-*.json")})
    names = [n for n in SERVERS if any((results / f"round{r}-{n}-hot.json").exists() for r in rounds)]
    runs = {(r, n): _read(results, r, n) for r in rounds for n in names}
    pairs = [(a, b) for a, b in (("couchpy", "couchpy-base"), ("couchpy", "couchdb"), ("couchpy", "pouchdb"))
             if a in names and b in names]
    head = ("| metric | unit | " + " | ".join(f"{n} ({' / '.join(f'r{r}' for r in rounds)}: median)"
                                             for n in names)
            + " | " + " | ".join(f"{a}/{b}" for a, b in pairs) + " |")
    lines = [head, "|" + "---|" * (2 + len(names) + len(pairs))]
    for label, unit, better, get in METRICS:
        med: dict[str, float | None] = {}
        cells = []
        for n in names:
            vals = [get(runs[(r, n)]) for r in rounds]
            got = [v for v in vals if isinstance(v, (int, float))]
            med[n] = statistics.median(got) if got else None
            cells.append(" / ".join(_fmt(v) for v in vals) + f": **{_fmt(med[n])}**")
        if all(m is None for m in med.values()):
            continue
        ratios = []
        for a, b in pairs:
            va, vb = med[a], med[b]
            ok = va and vb
            ratios.append(f"{(va / vb if better == 'higher' else vb / va):.2f}x" if ok else "–")  # type: ignore[operator]
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines.append("\nRatios: of the medians, oriented so that above 1 means couchpy (main) is faster "
                 "or its latency lower; – : not run or failed.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", default="couchdb,pouchdb,couchpy-base,couchpy")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", type=Path, help="checkout of the older couchpy (for couchpy-base)")
    ap.add_argument("--client", help="couchbench.py (default $COUCHBENCH)")
    ap.add_argument("--couchdb")
    ap.add_argument("--couchdb-pid", type=int)
    ap.add_argument("--results", type=Path)
    ap.add_argument("--summarize", type=Path, metavar="DIR")
    args = ap.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    servers = [s for s in args.servers.split(",") if s]
    if set(servers) - set(SERVERS):
        ap.error(f"servers are among {', '.join(SERVERS)}")
    if "couchdb" in servers and not args.couchdb:
        ap.error("couchdb needs --couchdb URL")
    if "couchpy-base" in servers and not (args.base and (args.base / "couchpy").is_dir()):
        ap.error("couchpy-base needs --base CHECKOUT")
    client = find_client(args.client)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results = args.results or REPO / "benchmarks" / "results" / f"{stamp}-hot-paths"
    results.mkdir(parents=True, exist_ok=True)
    print(f"results -> {results}; load average {_load()} at start", flush=True)
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(servers)
        for name in servers[k:] + servers[:k]:
            run_round(args, client, results, rnd, name)
    table = summarize(results)
    (results / "summary.md").write_text(table + "\n")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
