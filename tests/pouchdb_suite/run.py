"""Run PouchDB 9.0.0's own test suite against a fresh couchpy and compare with Apache CouchDB 3.4.3.

    python -m tests.pouchdb_suite.run                 # integration, mapreduce, find
    python -m tests.pouchdb_suite.run mapreduce find  # some parts only

The suite, its runner (`run.sh`, `compare.js`) and the recorded CouchDB 3.4.3 baseline live in
`../shared/peers/pouchdb-suite/` next to the clone (`--suite-dir` or `POUCHDB_SUITE_DIR` to point
elsewhere); `run.sh` installs the suite into its cache dir the first time. couchpy is started as
`couchpy serve` starts by default (one worker per core: on 2 cores, two server processes on one
port) on a free port with an empty data dir, each part runs against it, and every test that
passes against CouchDB 3.4.3 must pass against couchpy unless `divergences.toml` says why couchpy
is right.

Exit status: 0 no regression, 1 regressions, 2 the suite or the server could not run.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from couchpy_cli import default_workers
from tests.pouchdb_suite.verdict import Divergence, Verdict, failed_hooks, judge, parse_divergences
from tests.serverproc import ROOT, CouchpyServer, free_port

PARTS = ("integration", "mapreduce", "find")
HERE = Path(__file__).resolve().parent
BASELINE_NAME = "couchdb-3.4.3"


def baseline_part(suite_dir: Path, part: str, out: Path) -> dict:
    """The baseline's tests of one part as a result file compare.js reads; returns its counts."""
    with lzma.open(suite_dir / "baseline" / f"{BASELINE_NAME}-all.json.xz") as f:
        whole = json.load(f)
    tests = [t for t in whole["tests"] if t.get("part") == part]
    doc = {
        "stats": whole["stats"]["parts"][part],
        "tests": tests,
        "passes": [t for t in tests if t["state"] == "passed"],
        "pending": [t for t in tests if t["state"] == "pending"],
        "failures": [t for t in tests if t["state"] == "failed"],
    }
    out.write_text(json.dumps(doc))
    return counts(tests)


def counts(tests: list[dict]) -> dict[str, int]:
    c = {"passed": 0, "failed": 0, "pending": 0}
    for t in tests:
        c[t["state"]] = c.get(t["state"], 0) + 1
    return c


def fmt(c: dict[str, int]) -> str:
    return f"{c['passed']} passed, {c['failed']} failed, {c['pending']} pending"


def run_part(suite_dir: Path, url: str, part: str, results: Path, retries: int) -> tuple[int, float]:
    """run.sh for one part; its output goes to our stdout. Returns (exit status, seconds)."""
    env = dict(os.environ, RESULTS_DIR=str(results), DOWN_PORT=str(free_port()), RETRIES=str(retries))
    for knob in ("GREP", "INVERT", "BAIL", "NAME"):  # the comparison needs the baseline's selection
        env.pop(knob, None)
    started = time.monotonic()
    rc = subprocess.run(["bash", str(suite_dir / "run.sh"), url, part, "couchpy"], env=env).returncode
    return rc, time.monotonic() - started


def compare(suite_dir: Path, baseline: Path, result: Path) -> dict:
    proc = subprocess.run(["node", str(suite_dir / "compare.js"), str(baseline), str(result), "--json"],
                          capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"compare.js failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def report(part: str, verdict: Verdict) -> None:
    for label, why in verdict.regressions:
        print(f"  REGRESSION [{part}] {label} -- {why}")
    for d in verdict.accepted:
        print(f"  accepted divergence [{part}] {d.title} -- {d.reason}")
    for d in verdict.stale:
        print(f"  note [{part}] listed divergence no longer fails: {d.title}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: all)")
    ap.add_argument("--suite-dir", type=Path,
                    default=Path(os.environ.get("POUCHDB_SUITE_DIR", ROOT.parent / "shared/peers/pouchdb-suite")))
    ap.add_argument("--results", type=Path, help="where result files and logs go (default: a new temp dir)")
    ap.add_argument("--retries", type=int, default=1,
                    help="retries of a failing test (a few tests depend on timing, against CouchDB too)")
    ap.add_argument("--hook-reruns", type=int, default=1,
                    help="times a part is run again when one of its hooks failed (mocha retries tests, not hooks)")
    args = ap.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    parts = [p for p in PARTS if p in (args.parts or PARTS)]
    if not (args.suite_dir / "run.sh").is_file():
        print(f"pouchdb-suite: no suite at {args.suite_dir}", file=sys.stderr)
        return 2
    divergences: list[Divergence] = parse_divergences(tomllib.loads((HERE / "divergences.toml").read_text()))
    results = args.results or Path(tempfile.mkdtemp(prefix="pouchdb-suite-"))
    results.mkdir(parents=True, exist_ok=True)
    print(f"pouchdb-suite: results and logs in {results}", flush=True)

    lines, regressions, broken = [], 0, False
    totals = {"couchpy": {"passed": 0, "failed": 0, "pending": 0}, "base": {"passed": 0, "failed": 0, "pending": 0}}
    workers = ["--workers", str(default_workers())]  # what a user's `couchpy serve` runs
    with CouchpyServer(Path(tempfile.mkdtemp(prefix="couchpy-pouchdb-suite-")), args=workers) as srv:
        for part in parts:
            base_file = results / f"{BASELINE_NAME}-{part}.json"
            base_counts = baseline_part(args.suite_dir, part, base_file)
            result = results / f"couchpy-{part}.json"
            for attempt in range(1 + args.hook_reruns):
                rc, seconds = run_part(args.suite_dir, srv.url, part, results, args.retries)
                hooks = failed_hooks(json.loads(result.read_text())) if result.exists() else []
                if not hooks or attempt == args.hook_reruns:
                    break
                print(f"pouchdb-suite: [{part}] a hook failed ({'; '.join(hooks)}), which stops mocha from "
                      f"running the rest of its suite; running {part} again", flush=True)
                (results / f"couchpy-{part}.log").rename(results / f"couchpy-{part}.attempt{attempt + 1}.log")
            if rc not in (0, 1) or not result.exists():
                broken = True
                lines.append(f"{part}: did not finish (run.sh exit {rc}), {seconds:.0f}s")
                if not result.exists():
                    continue
            ours = counts([t for t in json.loads(result.read_text())["tests"]])
            verdict = judge(part, compare(args.suite_dir, base_file, result), divergences)
            report(part, verdict)
            regressions += len(verdict.regressions)
            for key in ours:
                totals["couchpy"][key] += ours[key]
                totals["base"][key] += base_counts[key]
            lines.append(f"{part}: couchpy {fmt(ours)}; {BASELINE_NAME} {fmt(base_counts)}; "
                         f"{len(verdict.regressions)} regressions, {len(verdict.accepted)} accepted divergences; "
                         f"{seconds:.0f}s" + (f" (run {attempt + 1} times: a hook failed)" if attempt else ""))
    for line in lines:
        print(f"pouchdb-suite {line}")
    status = "FAILED" if regressions or broken else "OK"
    print(f"pouchdb-suite {status}: couchpy {fmt(totals['couchpy'])}; {BASELINE_NAME} {fmt(totals['base'])}; "
          f"{regressions} regressions")
    return 2 if broken else 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
