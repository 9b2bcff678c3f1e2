"""The long series of SIGKILL trials (tests/test_crash.py at full size), with its figures.

    python -m benchmarks.crash_trials --trials 100 --big-mb 50 [--seed N] [--json out.json]

Each trial kills couchpy under concurrent writers (documents, bulk writes, attachments, `_local`
checkpoints, a large streamed attachment, `_security`, `_users`, a continuous replication) and index
readers, restarts it and checks every acknowledged write, both indexes (also against a fresh
rebuild) and the replication checkpoint; any loss raises with the seed that replays it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.test_crash import WRITERS, run_trials


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--big-mb", type=int, default=50, help="size of the streamed attachment")
    ap.add_argument("--writers", type=int, default=WRITERS)
    ap.add_argument("--seed", type=int, default=random.randrange(1 << 32))
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args(argv)
    print(f"seed {args.seed}", flush=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-trials-") as tmp:
        figures = asyncio.run(run_trials(Path(tmp), args.trials, args.seed, args.writers, args.big_mb << 20))
    figures.update(seed=args.seed, big_attachment_mb=args.big_mb, writers=args.writers,
                   duration_s=round(time.monotonic() - t0, 1))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
