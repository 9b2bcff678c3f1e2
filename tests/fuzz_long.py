"""The long Schemathesis run: rounds over every operation of the OpenAPI document, each round with
a new seed, until a number of requests, of rounds or of minutes is reached, whichever comes first.

    python -m tests.fuzz_long --minutes 60 --examples 20            # its own fresh server
    python -m tests.fuzz_long --url http://127.0.0.1:5984 --user admin --password ...
    python -m tests.fuzz_long --workers 2 --minutes 60              # two fuzzing processes

Generating the requests costs the fuzzer far more CPU than answering them costs the server, so
`--workers` fuzzing processes share one server: worker w's round r uses seed
`seed + r * workers + w`, so no two rounds of a run share a seed. Each worker builds each
operation's strategy once and keeps one HTTP session for all its rounds. The server it starts
itself keeps its data directory on tmpfs (`--tmp`, /dev/shm when there is one): the code under
test is the same, without a disk's fsync between requests.

Prints each round's figures and, at the end, the totals and every distinct failure (with a curl
command that reproduces one example of it); the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time

from tests import fuzzapi
from tests.serverproc import CouchpyServer


def worker(index: int, workers: int, base: str, auth: tuple[str, str], examples: int, first_seed: int,
           max_rounds: int, deadline_wall: float, sent, results) -> None:
    """Rounds until the deadline, `max_rounds` rounds of the run or the run's request budget
    (`sent`, shared by the workers, counts down) is spent; each round's report goes to `results`."""
    deadline = time.monotonic() + (deadline_wall - time.time())
    fuzzer = fuzzapi.Fuzzer(base, auth)
    try:
        r = 0
        while time.monotonic() < deadline and sent.value > 0 and r * workers + index < max_rounds:
            round_seed = first_seed + r * workers + index
            rep = fuzzapi.fuzz(base, auth, examples, round_seed, deadline=deadline, fuzzer=fuzzer)
            with sent.get_lock():
                sent.value -= rep.requests
            results.put((index, round_seed, rep))
            r += 1
    finally:
        fuzzer.close()
        results.put((index, None, None))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (default: start a fresh one)")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password")
    ap.add_argument("--examples", type=int, default=20, help="per operation, mode and round")
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=1_000_000, help="stop after about this many requests")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop after this long")
    ap.add_argument("--seed", type=int, default=random.randrange(2**32))
    ap.add_argument("--workers", type=int, default=1, help="fuzzing processes against the one server")
    ap.add_argument("--tmp", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="where the server started here keeps its data directory")
    ap.add_argument("--json", help="write the totals here")
    args = ap.parse_args(argv)

    server = None
    if args.url:
        base, auth = args.url.rstrip("/"), (args.user, args.password or "")
    else:
        server = CouchpyServer(tempfile.mkdtemp(prefix="fuzz-long-", dir=args.tmp), name="fuzz")
        server.start()
        base, auth = server.base, (server.user, server.password)
    print(f"seed {args.seed}, {args.workers} workers, server {base}", flush=True)
    t0 = time.monotonic()
    total = fuzzapi.Report()
    rounds = 0
    ctx = multiprocessing.get_context("spawn")
    sent = ctx.Value("q", args.requests)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(w, args.workers, base, auth, args.examples, args.seed, args.rounds,
                                              time.time() + args.minutes * 60, sent, results), daemon=True)
             for w in range(args.workers)]
    try:
        for p in procs:
            p.start()
        running = len(procs)
        while running:
            index, round_seed, rep = results.get()
            if rep is None:
                running -= 1
                continue
            new = {k: v for k, v in rep.failures.items() if k not in total.failures}
            total.add(rep)
            rounds += 1
            print(f"round {rounds} (worker {index}, seed {round_seed}): {rep.requests} requests in "
                  f"{rep.seconds:.0f} s, {len(rep.failures)} failures; total {total.requests} in "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
            for kind, curl in new.items():  # as soon as they are known: a long run may be cut short
                print(f"  new failure: {kind}\n    {curl}", flush=True)
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
        if server is not None:
            server.stop()
            shutil.rmtree(server.data_dir.parent, ignore_errors=True)  # on tmpfs: memory
    wall = time.monotonic() - t0
    summary = {"seed": args.seed, "workers": args.workers, "examples": args.examples, "rounds": rounds,
               "requests": total.requests, "seconds": round(wall), "requests_per_second": round(total.requests / wall, 1),
               "statuses": dict(sorted(total.statuses.items())), "failures": total.failures}
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
