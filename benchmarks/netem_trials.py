"""The long series of replication trials over a bad network (tests/test_replication_netem.py at
full size), with its figures.

    python -m benchmarks.netem_trials --trials 10 --rounds 12 [--nodes 3] [--seed N] [--json out.json]

Each trial starts couchpy nodes in network namespaces of their own (root needed), replicates
between them while frames are lost, delayed and reordered, links cut and nodes SIGKILLed (one right
after a checkpoint lands), then checks identical revision trees, every acknowledged write, no
revision from nowhere and nothing left to copy (tests/netemtrial.py). A failure raises with the
trial's seed (NETEM_SEED replays it in the test).
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

from tests.netemtrial import trial
from tests.netns import Netns


async def one(seed: int, nodes: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="netem-") as tmp, Netns(nodes, seed=seed) as net:
        servers = net.start_all(Path(tmp))
        return asdict(await trial(net, servers, seed, rounds, converge_timeout=120))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=12, help="fault rounds per trial")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=random.randrange(1 << 32))
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args(argv)
    print(f"seed {args.seed}", flush=True)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    runs = []
    for k in range(args.trials):
        seed = rng.randrange(1 << 32)
        try:
            runs.append(asyncio.run(one(seed, args.nodes, args.rounds)))
        except BaseException:
            print(f"trial {k} failed: NETEM_SEED={seed}", flush=True)
            raise
        print(json.dumps(runs[-1]), flush=True)
    keys = [k for k, v in runs[0].items() if isinstance(v, int) and k not in ("seed", "nodes")]
    totals = {k: sum(r[k] for r in runs) for k in keys}
    conv = [r["converge_s"] for r in runs]
    summary = {"seed": args.seed, "trials": len(runs), "nodes": args.nodes, "rounds": args.rounds, **totals,
               "converge_s_max": max(conv), "converge_s_mean": round(sum(conv) / len(conv), 1),
               "duration_s": round(time.monotonic() - t0, 1)}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "trials": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
