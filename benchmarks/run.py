"""Run the project's benchmark suite against a server (see benchmarks/workloads.py).

    python -m benchmarks.run --start                      # starts couchpy in a temp dir itself
    python -m benchmarks.run --url http://admin:pw@127.0.0.1:5984 --server-pid PID
    python -m benchmarks.run --start --scale small --only insert_single,changes --json out.json

`--server-pid` (implied by --start) lets it sample the server's RSS and CPU from /proc;
idle_feeds needs it for its per-feed memory figure. `--pouchdb` starts pouchdb-server 4.2.0
(from tests/node) instead, for a quick comparison with the same client.
Exit status: 0 when every workload ran clean, 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.servers import CouchpyServer, PouchdbServer
from benchmarks.workloads import SCALES, WORKLOADS, Bench, run_workloads


async def _run(url: str, args: argparse.Namespace, pid: int | None,
               names: list[str]) -> dict[str, Any]:
    async with Bench(url, args.scale, args.concurrency, pid) as bench:
        return await run_workloads(bench, names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="server URL, may carry user:pass@")
    where.add_argument("--start", action="store_true", help="start couchpy in a temp data dir")
    where.add_argument("--pouchdb", action="store_true", help="start pouchdb-server 4.2.0")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--scale", choices=sorted(SCALES), default="medium")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    names = WORKLOADS if not args.only else [w for w in WORKLOADS if w in args.only.split(",")]
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="couchpy-bench-") as tmp:
        if args.url:
            results = asyncio.run(_run(args.url, args, args.server_pid, names))
            target = "url"
        else:
            server: Any = (CouchpyServer(Path(tmp)) if args.start else PouchdbServer(Path(tmp)))
            with server:
                print(f"{server.name} pid {server.pid} at {server.base}", flush=True)
                results = asyncio.run(_run(server.url, args, server.pid, names))
            target = server.name
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} shared CPUs "
          "(client and server share them: read as ranges)")
    if args.json:
        meta = {"target": target, "scale": args.scale, "concurrency": args.concurrency,
                "started_unix": started, "duration_s": round(time.time() - started, 1),
                "loadavg_end": os.getloadavg()}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0 if all(m["status"] == "ok" for m in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
