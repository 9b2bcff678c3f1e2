"""couchpy's conflict resolver: documents resolved per second once a policy is set.

`docs` documents, each written with two conflicting leaves (`_bulk_docs` with `new_edits=false`:
`tags` ["a"] on one, ["b"] on the other), then `PUT /{db}/_conflict_policy` `union` of `tags`,
timed until the node's background resolver has resolved the last document (it reads the database
in sequence order; polled every 20 ms, bounded by `time_limit_s`). Then every document is
checked: no `_conflicts` left and `tags` holding both "a" and "b". A couchpy extension, so
couchpy only (main against an older checkout, not against CouchDB).

    python -m benchmarks.conflict_resolution --url http://admin:pw@127.0.0.1:5984 [--docs 2000]
    python -m benchmarks.conflict_resolution --checkouts ../old,. --rounds 3   # A/B, interleaved

`--checkouts` starts a fresh couchpy from each checkout (a `git worktree` of each commit) in turn,
`--rounds` times, and prints one JSON line per run with the load average.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from typing import Any

from benchmarks.measure import server_usage
from benchmarks.servers import one_or_interleaved
from benchmarks.workloads import Bench, CheckFailed

BATCH = 500
POLL_S = 0.02


def _rev(seed: str) -> str:
    return "1-" + hashlib.md5(seed.encode()).hexdigest()


async def conflict_resolution(bench: Bench, *, docs: int = 2000, time_limit_s: float = 120.0) -> dict[str, Any]:
    db = await bench.create_db("conflicts")
    ids = [f"c{i:07d}" for i in range(docs)]
    for k in range(0, docs, BATCH):
        leaves = [{"_id": d, "_rev": _rev(d + side), "tags": [side], "n": i}
                  for i, d in enumerate(ids[k:k + BATCH], k) for side in ("a", "b")]
        await bench.req("POST", f"/{db}/_bulk_docs", {"docs": leaves, "new_edits": False}, expect=(201, 202))
    last = ids[-1]
    doc = await bench.req("GET", f"/{db}/{last}?conflicts=true")
    if len(doc.get("_conflicts", [])) != 1:
        raise CheckFailed(f"{last} was not written in conflict: {doc}")
    cpu0, t0 = server_usage(bench.pid)[1], time.perf_counter()
    await bench.req("PUT", f"/{db}/_conflict_policy", {"type": "union", "field": "tags"})
    while True:
        doc = await bench.req("GET", f"/{db}/{last}?conflicts=true")
        if "_conflicts" not in doc:
            break
        if time.perf_counter() - t0 > time_limit_s:
            raise CheckFailed(f"{last} not resolved within {time_limit_s} s")
        await asyncio.sleep(POLL_S)
    elapsed, cpu1 = time.perf_counter() - t0, server_usage(bench.pid)[1]
    res = await bench.req("GET", f"/{db}/_all_docs?include_docs=true&conflicts=true", timeout=120)
    left = [r["id"] for r in res["rows"] if "_conflicts" in r["doc"]]
    wrong = [r["id"] for r in res["rows"] if sorted(r["doc"].get("tags", [])) != ["a", "b"]]
    if len(res["rows"]) != docs or left or wrong:
        raise CheckFailed(f"{len(res['rows'])} docs, {len(left)} still in conflict, {len(wrong)} merged wrong")
    cpu_us = round((cpu1 - cpu0) / docs * 1e6, 1) if cpu0 is not None and cpu1 is not None else None
    return {"docs": docs, "elapsed_s": round(elapsed, 3), "docs_per_s": round(docs / elapsed, 1),
            "server_cpu_us_per_doc": cpu_us}


async def _main(url: str, docs: int, pid: int | None = None) -> dict[str, Any]:
    async with Bench(url, "small", server_pid=pid) as bench:
        return await conflict_resolution(bench, docs=docs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=2000)
    return one_or_interleaved(ap, argv, lambda url, pid, args: _main(url, args.docs, pid))


if __name__ == "__main__":
    raise SystemExit(main())
