"""The long Schemathesis run: rounds over every operation of the OpenAPI document, each round with
a new seed, until a number of requests, of rounds or of minutes is reached, whichever comes first.

    python -m tests.fuzz_long --minutes 60 --examples 20            # its own fresh server
    python -m tests.fuzz_long --url http://127.0.0.1:5984 --user admin --password ...

Prints each round's figures and, at the end, the totals and every distinct failure (with a curl
command that reproduces one example of it); the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time

from tests import fuzzapi
from tests.serverproc import CouchpyServer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (default: start a fresh one)")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password")
    ap.add_argument("--examples", type=int, default=20, help="per operation, mode and round")
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=1_000_000, help="stop after this many requests")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop after this long")
    ap.add_argument("--seed", type=int, default=random.randrange(2**32))
    ap.add_argument("--json", help="write the totals here")
    args = ap.parse_args(argv)

    server = None
    if args.url:
        base, auth = args.url.rstrip("/"), (args.user, args.password or "")
    else:
        server = CouchpyServer(tempfile.mkdtemp(prefix="fuzz-long-"), name="fuzz")
        server.start()
        base, auth = server.base, (server.user, server.password)
    deadline = time.monotonic() + args.minutes * 60
    total = fuzzapi.Report()
    rounds = 0
    print(f"seed {args.seed}, server {base}", flush=True)
    try:
        while rounds < args.rounds and total.requests < args.requests and time.monotonic() < deadline:
            rep = fuzzapi.fuzz(base, auth, args.examples, args.seed + rounds, deadline=deadline)
            total.add(rep)
            rounds += 1
            print(f"round {rounds}: {rep.requests} requests in {rep.seconds:.0f} s, "
                  f"{len(rep.failures)} failures; total {total.requests}", flush=True)
    finally:
        if server is not None:
            server.stop()
    summary = {"seed": args.seed, "rounds": rounds, "requests": total.requests,
               "seconds": round(total.seconds), "statuses": dict(sorted(total.statuses.items())),
               "failures": total.failures}
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
