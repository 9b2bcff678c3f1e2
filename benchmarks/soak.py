"""The long soak: tests/soakload.py's mixed workload (CRUD, attachments, views, _find, feeds,
replication) against one couchpy server, with its resources sampled over time.

    python -m benchmarks.soak --minutes 30 [--interval 30] [--seed N] [--json out.json]
        [--revs-limit N] [--prefill-history N]
        [--server-env NAME=VALUE ...]   # e.g. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

Prints one line per sample (anonymous RSS, RSS, fds, p99 latency, requests) and a summary; exits
non-zero on any failed request.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from tests import soakload
from tests.serverproc import CouchpyServer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--interval", type=float, default=30, help="seconds between samples")
    ap.add_argument("--seed", type=int, default=random.randrange(1 << 32))
    ap.add_argument("--json", type=Path, help="write the samples and the summary here too")
    ap.add_argument("--revs-limit", type=int, help="the databases' _revs_limit (default CouchDB's 1000): "
                    "every update lengthens a document's history until it reaches it")
    ap.add_argument("--prefill-history", type=int, default=0, metavar="N",
                    help="the documents the workload edits start with N-revision histories (as after a "
                    "long run: do they still grow the heap once full?)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="set in the server's environment only (its query-server workers inherit it)")
    args = ap.parse_args(argv)
    server_env = dict(item.split("=", 1) for item in args.server_env)
    print(f"seed {args.seed}" + "".join(f" {k}={v}" for k, v in server_env.items()), flush=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        srv = CouchpyServer(Path(tmp), name="soak")
        srv.environment = lambda env: {**env, **server_env}
        srv.start()
        soak = soakload.Soak(srv, args.seed, revs_limit=args.revs_limit,
                              prefill_history=args.prefill_history)
        try:
            asyncio.run(soakload.run(soak, args.minutes * 60, args.interval,
                                     on_sample=lambda s: print(json.dumps(asdict(s)), flush=True)))
        finally:
            srv.stop()
    summary = {"seed": args.seed, "duration_s": round(time.monotonic() - t0, 1), "requests": soak.requests,
               "errors": soak.errors, "counts": soak.counts,
               "p99_ms_overall": round(soakload.p99(soak.latencies) * 1000, 1)}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "samples": [asdict(s) for s in soak.samples]}, indent=2) + "\n")
    return 1 if soak.errors else 0


if __name__ == "__main__":
    sys.exit(main())
