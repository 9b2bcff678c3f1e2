"""One worker against two (`couchpy serve --workers N`), side by side, interleaved.

    python -m benchmarks.workers --client ../shared/bench/couchbench.py --rounds 3 \
        --only insert_single,read_random,all_docs,view_query [--wrk] --out DIR

Each round runs the neutral client against a fresh couchpy with each worker count in turn
(1, 2, 1, 2, ...), so a change in the machine's load moves both setups alike. Every run's JSON
goes to DIR with the load average at its start and end (load.txt), and a table of each
workload's figures per round and the median ratio of N workers to one is printed and written
as summary.md, with the server's CPU per item (all its processes, from /proc, measured around
each workload, which runs in a client run of its own). With the client on the same cores as
the server, the rate says as much about the machine as about the server; the CPU per item
says what each request costs the server. Before the measured runs, a short `root_get` run (not
recorded) lets every worker check the admin's password once. The server's pid is not given to
the client: with workers, the supervisor is not where the work is done. `--wrk` needs wrk
(Debian: `apt-get install wrk`).
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.measure import process_tree, server_usage
from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, CouchpyServer, temp_dir

THROUGHPUT = "throughput"
WRK_PATHS = ("/", "/wrk/doc")


def _put(srv: CouchpyServer, path: str, body: bytes) -> None:
    token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    req = urllib.request.Request(srv.base + path, data=body, method="PUT",
                                 headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the server process and its workers so far."""
    return server_usage(pid)[1] or 0.0


def _involuntary_switches(pid: int) -> int:
    """Times the server's threads were preempted (all its processes) so far."""
    total = 0
    for p in process_tree(pid):
        for task in Path(f"/proc/{p}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                status = (task / "status").read_text()
                total += int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status).group(1))
    return total


def wrk_run(srv: CouchpyServer, path: str, concurrency: int, seconds: int = 5) -> dict:
    """`GET path` from wrk (one thread: a C client that needs a fraction of a core, where the
    Python client needs most of one): requests a second, the server's CPU and preemptions per
    request."""
    token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "-H", f"Authorization: Basic {token}", srv.base + path]
    subprocess.run(cmd[:3] + ["-d1s"] + cmd[4:], check=True, capture_output=True)  # warm-up
    cpu0, sw0 = _server_cpu(srv.proc.pid), _involuntary_switches(srv.proc.pid)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    cpu, switches = _server_cpu(srv.proc.pid) - cpu0, _involuntary_switches(srv.proc.pid) - sw0
    count = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"throughput": count / seconds, "unit": "req/s", "count": count, "errors": int(errors.group(1)) if errors else 0,
            "server_cpu_us": cpu / count * 1e6, "preemptions_per_request": switches / count}


def run_one(client: Path, workers: int, only: str, scale: str, concurrency: int, out: Path,
            wrk_paths: tuple[str, ...] = ()) -> dict:
    """Each workload in a client run of its own against one fresh server, the server's CPU
    measured around each: {"results": {workload: couchbench's figures and server_cpu_us}}."""
    results: dict[str, dict] = {}
    with temp_dir("couchpy-workers-") as tmp, CouchpyServer(Path(tmp) / "data", workers=workers) as srv:
        # warm-up, not recorded: each worker checks the admin's password (PBKDF2, 600,000
        # iterations) once, on its first connections, which would weigh on a short run
        subprocess.run([sys.executable, str(client), "--url", srv.url, "--scale", "small", "--only", "root_get",
                        "--concurrency", str(concurrency)], check=True, stdout=subprocess.DEVNULL)
        with open(out.with_suffix(".txt"), "w") as log:
            for workload in only.split(","):
                part = out.with_name(f"{out.stem}-{workload}.json")
                before = _server_cpu(srv.proc.pid)
                log.flush()
                subprocess.run([sys.executable, str(client), "--url", srv.url, "--scale", scale, "--only", workload,
                                "--concurrency", str(concurrency), "--json", str(part)],
                               check=True, stdout=log, stderr=subprocess.STDOUT)
                cpu = _server_cpu(srv.proc.pid) - before
                for name, r in json.loads(part.read_text())["results"].items():
                    if isinstance(r, dict) and r.get("count"):
                        r["server_cpu_us"] = cpu / r["count"] * 1e6
                    results[name] = r
                part.unlink()
        if wrk_paths:
            _put(srv, "/wrk", b"")
            _put(srv, "/wrk/doc", b'{"name": "a document of a few fields", "n": 1, "tags": ["a", "b"]}')
        for path in wrk_paths:
            results[f"wrk GET {path}"] = wrk_run(srv, path, concurrency)
    run = {"workers": workers, "scale": scale, "concurrency": concurrency, "results": results}
    out.write_text(json.dumps(run, indent=1))
    return run


def figures(run: dict) -> dict[str, tuple[float, float | None]]:
    """workload -> (throughput, server CPU µs per item)"""
    return {name: (r[THROUGHPUT], r.get("server_cpu_us")) for name, r in run["results"].items()
            if isinstance(r, dict) and THROUGHPUT in r}


def table(per_workload: dict[str, dict[int, list[tuple[float, float | None]]]], counts: list[int]) -> str:
    base = counts[0]
    head = (["workload"] + [f"{w} worker{'s' if w > 1 else ''}: rate, rounds" for w in counts]
            + [f"{w}/{base} rate, median" for w in counts[1:]] + [f"server CPU µs/item, {w}" for w in counts])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, per in per_workload.items():
        rates = [" / ".join(f"{v[0]:,.0f}" for v in per.get(w, [])) for w in counts]
        ratios = [f"{statistics.median(a[0] / b[0] for a, b in zip(per[w], per[base])):.2f}x"
                  if per.get(w) and per.get(base) else "–" for w in counts[1:]]
        cpu = [f"{statistics.median(v[1] for v in per[w]):.0f}" if per.get(w) and all(v[1] for v in per[w])
               else "–" for w in counts]
        lines.append("| " + " | ".join([name] + rates + ratios + cpu) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", type=Path, default=Path(os.environ.get("COUCHBENCH", "../shared/bench/couchbench.py")))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="worker counts compared, the first is the base")
    ap.add_argument("--only", default="insert_single,read_random,all_docs,view_query")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--wrk", action="store_true",
                    help="after the workloads, wrk GETs / and one document (WRK_PATHS) on the same server")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    per_workload: dict[str, dict[int, list[tuple[float, float | None]]]] = {}
    with open(args.out / "load.txt", "a") as load:
        for rnd in range(1, args.rounds + 1):
            for w in counts:
                print(f"workers={w} round={rnd} start {time.strftime('%H:%M:%S')} load: {_load()}", file=load, flush=True)
                run = run_one(args.client, w, args.only, args.scale, args.concurrency,
                              args.out / f"workers{w}-round{rnd}.json", WRK_PATHS if args.wrk else ())
                print(f"workers={w} round={rnd} end {time.strftime('%H:%M:%S')} load: {_load()}", file=load, flush=True)
                for name, value in figures(run).items():
                    per_workload.setdefault(name, {}).setdefault(w, []).append(value)
    text = table(per_workload, counts)
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
