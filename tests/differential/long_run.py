"""Long differential run: many random request sequences, a summary of the difference classes.

    python -m tests.differential.long_run --sequences 10000 [--seed N] [--minutes M] [--out summary.json]
        [--couchpy URL --couchdb URL]   # servers already running (URLs with admin credentials)
        [--workers N]                   # the couchpy server it starts runs N workers (default 1)

Without URLs it starts a couchpy server and a CouchDB 3.4.3 peer of its own. Every sequence runs
on fresh databases; the first unexplained difference of each sequence is counted under its class
(later answers of that sequence may be its cascade), with the shortest example seen. Exits 1 when
an unexplained class was found.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.couchdb_peer import CouchdbPeer
from tests.serverproc import CouchpyServer

from .client import Target
from .runner import compare, report
from .strategies import sequences


class OutOfTime(Exception):
    """The time budget of a run is spent."""


def run(n: int, seed_value: int, couchpy: Target, couchdb: Target, progress: bool = True,
        minutes: float | None = None) -> dict:
    classes: Counter[str] = Counter()
    examples: dict[str, tuple[int, str]] = {}
    explained: Counter[str] = Counter()
    totals = {"sequences": 0, "requests": 0, "sequences_with_unexplained": 0}
    started = time.monotonic()

    @seed(seed_value)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(sequences())
    def one(reqs):
        if minutes is not None and time.monotonic() - started > minutes * 60:
            raise OutOfTime  # ends the run (drawing the remaining examples would take long too)
        out = compare(reqs, couchpy, couchdb)
        totals["sequences"] += 1
        totals["requests"] += out.compared
        for _, _, k in out.explained:
            explained[k.name] += 1
        if out.unexplained is not None:
            totals["sequences_with_unexplained"] += 1
            klass = out.unexplained[1].klass
            classes[klass] += 1
            text = report(reqs, out)
            if klass not in examples or out.unexplained[0] < examples[klass][0]:
                examples[klass] = (out.unexplained[0], text)
        if progress and totals["sequences"] % 100 == 0:
            print(f"{totals['sequences']} sequences, {totals['requests']} requests, "
                  f"{len(classes)} classes, {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)

    try:
        one()
    except OutOfTime:
        pass
    return {
        "seed": seed_value, **totals, "seconds": round(time.monotonic() - started, 1),
        "unexplained_classes": len(classes),
        "classes": [{"class": k, "sequences": c, "example": examples[k][1]} for k, c in classes.most_common()],
        "explained": dict(explained.most_common()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=None, help="stop running sequences after this long")
    ap.add_argument("--couchpy", help="URL of a running couchpy (with admin credentials)")
    ap.add_argument("--couchdb", help="URL of a running CouchDB 3.4.3 (with admin credentials)")
    ap.add_argument("--workers", type=int, default=1, help="workers of the couchpy server it starts")
    ap.add_argument("--out", type=Path, default=Path("differential-summary.json"))
    args = ap.parse_args(argv)
    seed_value = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed_value}", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cp_url = args.couchpy or stack.enter_context(
            CouchpyServer(tmp / "couchpy", args=["--workers", str(args.workers)])).url
        db_url = args.couchdb or stack.enter_context(CouchdbPeer(tmp / "couchdb")).url
        summary = run(args.sequences, seed_value, Target(cp_url, False), Target(db_url, True),
                      minutes=args.minutes)
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"{summary['sequences']} sequences, {summary['requests']} requests compared, "
          f"{summary['sequences_with_unexplained']} with an unexplained difference, "
          f"{summary['unexplained_classes']} classes, {summary['seconds']}s; summary in {args.out}")
    for c in summary["classes"]:
        print(f"{c['sequences']:6d}  {c['class']}")
    return 1 if summary["classes"] else 0


if __name__ == "__main__":
    sys.exit(main())
