"""One worker against two (`couchpy serve --workers N`), side by side, interleaved.

    python -m benchmarks.workers --client ../shared/bench/couchbench.py --rounds 3 \
        --only insert_single,read_random,all_docs,view_query --out DIR

Each round runs the neutral client against a fresh couchpy with each worker count in turn
(1, 2, 1, 2, ...), so a change in the machine's load moves both setups alike. Every run's JSON
goes to DIR with the load average at its start and end (load.txt), and a table of each
workload's figures per round and the median ratio of N workers to one is printed and written
as summary.md. Before each measured run, a short `root_get` run (not recorded) lets every
worker check the admin's password once. The server's pid is not given to the client: with workers, the supervisor is
not where the work is done, and the figures of both setups are measured the same way.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.servers import CouchpyServer, temp_dir

THROUGHPUT = "throughput"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_one(client: Path, workers: int, only: str, scale: str, concurrency: int, out: Path) -> dict:
    with temp_dir("couchpy-workers-") as tmp, CouchpyServer(Path(tmp) / "data", workers=workers) as srv:
        # warm-up, not recorded: each worker checks the admin's password (PBKDF2, 600,000
        # iterations) once, on its first connections, which would weigh on a short run
        subprocess.run([sys.executable, str(client), "--url", srv.url, "--scale", "small", "--only", "root_get",
                        "--concurrency", str(concurrency)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, str(client), "--url", srv.url, "--scale", scale, "--only", only,
                        "--concurrency", str(concurrency), "--json", str(out)],
                       check=True, stdout=open(out.with_suffix(".txt"), "w"), stderr=subprocess.STDOUT)
    return json.loads(out.read_text())


def figures(run: dict) -> dict[str, float]:
    """workload -> throughput, from couchbench's JSON"""
    results = run.get("results", run)
    return {name: r[THROUGHPUT] for name, r in results.items() if isinstance(r, dict) and THROUGHPUT in r}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", type=Path, default=Path(os.environ.get("COUCHBENCH", "../shared/bench/couchbench.py")))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="worker counts compared, the first is the base")
    ap.add_argument("--only", default="insert_single,read_random,all_docs,view_query")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[int, list[float]]] = {}
    with open(args.out / "load.txt", "a") as load:
        for rnd in range(1, args.rounds + 1):
            for w in counts:
                print(f"workers={w} round={rnd} start {time.strftime('%H:%M:%S')} load: {_load()}", file=load, flush=True)
                run = run_one(args.client, w, args.only, args.scale, args.concurrency,
                              args.out / f"workers{w}-round{rnd}.json")
                print(f"workers={w} round={rnd} end {time.strftime('%H:%M:%S')} load: {_load()}", file=load, flush=True)
                for name, value in figures(run).items():
                    table.setdefault(name, {}).setdefault(w, []).append(value)
    base = counts[0]
    lines = ["| workload | " + " | ".join(f"{w} worker{'s' if w > 1 else ''}, rounds" for w in counts)
             + " | " + " | ".join(f"{w}/{base} median" for w in counts[1:]) + " |",
             "|---" * (1 + len(counts) + len(counts) - 1) + "|"]
    for name, per in table.items():
        cells = [" / ".join(f"{v:,.0f}" for v in per.get(w, [])) for w in counts]
        ratios = [f"{statistics.median(a / b for a, b in zip(per[w], per[base])):.2f}x"
                  for w in counts[1:] if per.get(w) and per.get(base)]
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    text = "\n".join(lines)
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
