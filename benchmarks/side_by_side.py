"""couchpy vs Apache CouchDB, pouchdb-server and the bare-aiohttp ceiling, one neutral client, one run.

Runs a benchmark client that is not part of this project (`--client PATH`, or `$COUCHBENCH`:
couchbench.py, which takes `--url --server-pid --scale --only --json`) against each server in
turn, with the same options, and writes each run's JSON to the results directory, then prints
(and writes as summary.md / summary.json) a table of couchpy's ratios to the others next to the
project's goals. couchpy, pouchdb-server (npm, tests/node) and the ceiling
(benchmarks/ceiling_server.py) are started here, each on a free loopback port with a fresh data
directory; CouchDB is one you run (`--couchdb URL [--couchdb-pid PID]`, e.g. the official
3.4.3 release or Docker image), and its benchmark databases are deleted by the client.

    python -m benchmarks.side_by_side --client ../couchbench.py --scale small \
        --couchdb http://admin:pw@127.0.0.1:5984 --couchdb-pid 1234
    python -m benchmarks.side_by_side --client C --servers couchpy --compare DIR/pouchdb-server.json
    python -m benchmarks.side_by_side --summarize benchmarks/results/X   # table from saved runs

The ceiling server only answers `GET /`, so it runs `root_get` only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.servers import REPO, CeilingServer, CouchpyServer, PouchdbServer, temp_dir

# workload -> (metric key, "higher"/"lower" is better, target ratio couchpy/pouchdb or None)
COMPARED: dict[str, tuple[str, str, float | None]] = {
    "root_get": ("throughput", "higher", None),
    "insert_single": ("throughput", "higher", 3.0),
    "update_single": ("throughput", "higher", 3.0),
    "insert_bulk": ("throughput", "higher", 4.0),
    "read_random": ("throughput", "higher", 4.0),
    "all_docs": ("throughput", "higher", 4.0),
    "changes": ("throughput", "higher", 5.0),
    "changes_latency": ("median_ms", "lower", None),
    "view_build": ("throughput", "higher", None),
    "view_query": ("throughput", "higher", None),
    "replicate": ("throughput", "higher", None),
    "attachments": ("throughput", "higher", None),
    "find": ("throughput", "higher", None),
    "idle_feeds": ("rss_per_feed_kib", "lower", None),
}
# Absolute goals (couchpy alone).
ABSOLUTE = {
    "changes_latency": "median <= 3 ms",
    "idle_feeds": "2000 feeds < 20 KiB RSS each; one write reaches all, p99 < 250 ms",
}
SERVERS = ("ceiling", "pouchdb", "couchdb", "couchpy")
FILES = {"ceiling": "ceiling.json", "pouchdb": "pouchdb-server.json", "couchdb": "couchdb.json",
         "couchpy": "couchpy.json"}


def find_client(explicit: str | None) -> Path:
    for c in (explicit, os.environ.get("COUCHBENCH")):
        if c and Path(c).is_file():
            return Path(c)
    raise SystemExit("the benchmark client was not found: pass --client PATH (couchbench.py) or set "
                     "COUCHBENCH; `python -m benchmarks.run` is the project's own suite and needs neither")


class _Running:
    """A server started by someone else (CouchDB): nothing to start or stop."""

    def __init__(self, url: str, pid: int | None):
        self.url, self.pid = url, pid

    def __enter__(self) -> "_Running":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run_couchbench(couchbench: Path, url: str, pid: int | None, out: Path, scale: str,
                   only: str | None, log: Path) -> int:
    cmd = [sys.executable, str(couchbench), "--url", url, "--scale", scale, "--json", str(out)]
    if pid:
        cmd += ["--server-pid", str(pid)]
    if only:
        cmd += ["--only", only]
    print(f"\n=== {out.stem}: couchbench --scale {scale}" + (f" --only {only}" if only else ""),
          flush=True)
    with open(log, "w") as f:
        # Tee couchbench's own per-workload lines to the console and to a log file.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            f.write(line)
        return proc.wait()


def load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def metric(run: dict[str, Any] | None, workload: str) -> tuple[Any, str]:
    """(value, status) of the compared metric of one workload in one run."""
    if not run or workload not in run["results"]:
        return None, "-"
    m = run["results"][workload]
    return m.get(COMPARED[workload][0]), m.get("status", "?")


def cpu_per_item(run: dict[str, Any] | None, workload: str) -> float | None:
    """Server CPU microseconds per item (request, doc or row), from srv cpu% and throughput.

    Less sensitive to other load on the machine than throughput: a server starved of CPU goes
    slower but spends about the same CPU per item. Approximate (cpu% covers the whole
    workload, including its checks)."""
    if not run or workload not in run["results"]:
        return None
    m = run["results"][workload]
    cpu, rate = m.get("server_cpu_pct"), m.get("throughput")
    if not cpu or not rate:
        return None
    return cpu / 100 / rate * 1e6


def _ratio(better: str, couchpy: Any, other: Any) -> float | None:
    if isinstance(other, (int, float)) and isinstance(couchpy, (int, float)) and other and couchpy:
        return couchpy / other if better == "higher" else other / couchpy
    return None


def summarize(couchpy: dict[str, Any] | None, pouchdb: dict[str, Any] | None,
              ceiling: dict[str, Any] | None, couchdb: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Markdown table + machine-readable summary of the runs (all from one results directory)."""
    rows, data = [], {}
    head = ("| workload | metric | pouchdb-server | CouchDB | couchpy | couchpy/pouchdb | couchpy/CouchDB "
            "| goal | ceiling | srv CPU µs/item pouchdb / CouchDB / couchpy |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    for w, (key, better, target) in COMPARED.items():
        pv, ps = metric(pouchdb, w)
        dv, ds = metric(couchdb, w)
        cv, cs = metric(couchpy, w)
        if pv is None and cv is None and dv is None:
            continue
        ratio, ratio_db = _ratio(better, cv, pv), _ratio(better, cv, dv)
        verdict = ""
        if target is not None and ratio is not None:
            verdict = f"vs pouchdb >= {target:g}x: " + ("met" if ratio >= target and cs == "ok" else "NOT met")
        elif w in ABSOLUTE:
            verdict = ABSOLUTE[w] + (": " + absolute_verdict(w, couchpy) if couchpy else "")
        ceil = metric(ceiling, w)[0] if w == "root_get" else None
        unit = (couchpy or couchdb or pouchdb or {}).get("results", {}).get(w, {}).get("unit", "")
        label = key if key != "throughput" else unit
        pcpu, dcpu, ccpu = cpu_per_item(pouchdb, w), cpu_per_item(couchdb, w), cpu_per_item(couchpy, w)
        rows.append(f"| {w} | {label} | {_fmt(pv)} ({ps}) | {_fmt(dv)} ({ds}) | {_fmt(cv)} ({cs}) | "
                    f"{'-' if ratio is None else f'{ratio:.2f}x'} | "
                    f"{'-' if ratio_db is None else f'{ratio_db:.2f}x'} | {verdict} | {_fmt(ceil)} "
                    f"| {_fmt(pcpu)} / {_fmt(dcpu)} / {_fmt(ccpu)} |")
        data[w] = {"metric": key, "better": better, "pouchdb": pv, "pouchdb_status": ps,
                   "couchdb": dv, "couchdb_status": ds, "couchpy": cv, "couchpy_status": cs,
                   "ratio": ratio, "ratio_couchdb": ratio_db, "target": target,
                   "verdict": verdict, "ceiling": ceil,
                   "srv_cpu_us_per_item": {"pouchdb": pcpu, "couchdb": dcpu, "couchpy": ccpu}}
    extra = []
    named = (("pouchdb-server", pouchdb), ("CouchDB", couchdb), ("couchpy", couchpy))
    for name, run in named:
        feeds = (run or {}).get("results", {}).get("idle_feeds")
        if feeds and feeds.get("status") != "failed":
            extra.append(f"- idle_feeds {name}: {feeds.get('count')} opened, "
                         f"{feeds.get('feeds_open_after_hold')} kept, "
                         f"{_fmt(feeds.get('rss_per_feed_kib'))} KiB/feed, fan-out received "
                         f"{feeds.get('fanout_received')} (p50 {_fmt(feeds.get('p50_ms'))} ms, "
                         f"p99 {_fmt(feeds.get('p99_ms'))} ms), GET / during hold "
                         f"{_fmt(feeds.get('probe_get_ms'))} ms")
        lat = (run or {}).get("results", {}).get("changes_latency")
        if lat and lat.get("status") != "failed":
            extra.append(f"- changes_latency {name}: median {_fmt(lat.get('median_ms'))} ms, "
                         f"p99 {_fmt(lat.get('p99_ms'))} ms")
    for name, run in (*named, ("ceiling", ceiling)):
        if run:
            m = run["meta"]
            extra.append(f"- {name}: run {m.get('run_id')}, {m.get('duration_s')} s, "
                         f"load average at end {', '.join(f'{x:.2f}' for x in m.get('loadavg_end', []))}")
    return head + "\n" + "\n".join(rows) + ("\n\n" + "\n".join(extra) if extra else ""), data


def absolute_verdict(workload: str, couchpy: dict[str, Any]) -> str:
    m = couchpy["results"].get(workload)
    if not m or m.get("status") == "failed":
        return "NOT met (failed)"
    if workload == "changes_latency":
        med = m.get("median_ms")
        return "met" if med is not None and med <= 3.0 else "NOT met"
    if workload == "idle_feeds":
        rss, p99 = m.get("rss_per_feed_kib"), m.get("p99_ms")  # 0.0 is a figure, None is not
        ok = (m.get("count") == m.get("feeds_requested") == m.get("feeds_open_after_hold")
              == m.get("fanout_received") and rss is not None and rss < 20
              and p99 is not None and p99 < 250)
        return "met" if ok else "NOT met"
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=("small", "medium"), default="medium")
    ap.add_argument("--servers", default="ceiling,pouchdb,couchdb,couchpy",
                    help="comma-separated subset of ceiling,pouchdb,couchdb,couchpy (run in that order; "
                         "couchdb only with --couchdb)")
    ap.add_argument("--only", help="couchbench --only for the real servers (default: all)")
    ap.add_argument("--results", type=Path, help="results directory "
                    "(default benchmarks/results/<UTC timestamp>-<scale>)")
    ap.add_argument("--client", "--couchbench", dest="client",
                    help="path of the benchmark client, couchbench.py (default: $COUCHBENCH)")
    ap.add_argument("--couchdb", metavar="URL", help="a running Apache CouchDB to include, with credentials")
    ap.add_argument("--couchdb-pid", type=int, help="its PID, to sample its RSS and CPU")
    ap.add_argument("--compare", type=Path, help="an earlier pouchdb-server.json to compare with "
                    "when pouchdb is not in --servers")
    ap.add_argument("--summarize", type=Path, metavar="DIR",
                    help="only print the table of the runs saved in DIR")
    args = ap.parse_args(argv)

    if args.summarize:
        d = args.summarize
        table, _ = summarize(load(d / FILES["couchpy"]), load(d / FILES["pouchdb"]),
                             load(d / FILES["ceiling"]), load(d / FILES["couchdb"]))
        print(table)
        return 0

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = set(servers) - set(SERVERS)
    if bad:
        ap.error(f"unknown server(s): {', '.join(sorted(bad))}")
    if not args.couchdb and "couchdb" in servers:
        servers.remove("couchdb")
        print("CouchDB not included: pass --couchdb URL to compare with it", flush=True)
    couchbench = find_client(args.client)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results = args.results or REPO / "benchmarks" / "results" / f"{stamp}-{args.scale}"
    results.mkdir(parents=True, exist_ok=True)
    print(f"results -> {results}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    status = 0
    for name in SERVERS:
        if name not in servers:
            continue
        out = results / FILES[name]
        with temp_dir(f"bench-{name}-") as tmp:
            if name == "ceiling":
                server: Any = CeilingServer(Path(tmp))
                only: str | None = "root_get"
            elif name == "pouchdb":
                server, only = PouchdbServer(Path(tmp)), args.only
            elif name == "couchdb":
                server, only = _Running(args.couchdb, args.couchdb_pid), args.only
            else:
                server, only = CouchpyServer(Path(tmp)), args.only
            try:
                with server:
                    rc = run_couchbench(couchbench, server.url, server.pid, out, args.scale,
                                        only, results / f"{out.stem}.log")
            except RuntimeError as e:
                print(f"{name}: could not start: {e}", file=sys.stderr, flush=True)
                rc = 2
            print(f"=== {out.stem}: couchbench exit status {rc}", flush=True)
            status = max(status, rc)
    pouchdb_run = load(results / FILES["pouchdb"])
    if pouchdb_run is None and args.compare:
        pouchdb_run = load(args.compare)
    table, data = summarize(load(results / FILES["couchpy"]), pouchdb_run,
                            load(results / FILES["ceiling"]), load(results / FILES["couchdb"]))
    (results / "summary.md").write_text(table + "\n")
    (results / "summary.json").write_text(json.dumps(data, indent=2) + "\n")
    print("\n" + table)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f} (read figures from a shared machine as ranges)")
    return status


if __name__ == "__main__":
    sys.exit(main())
