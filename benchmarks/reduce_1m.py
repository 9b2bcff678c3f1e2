"""Latency of a `_sum` reduce over a view of 1M rows (goal: full range under 20 ms).

    python -m benchmarks.reduce_1m [--docs 1000000] [--queries 50]

Starts a couchpy server of its own (temporary data directory), loads the documents with
`_bulk_docs`, builds a JavaScript view (`emit(doc.n, doc.v)`, reduce `_sum`), then times full-range
and partial-range reduce queries over HTTP and checks every answer against the known sum.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from pathlib import Path

import aiohttp

from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, CouchpyServer, temp_dir

BATCH = 2000


async def run(n_docs: int, queries: int) -> dict:
    with temp_dir("reduce1m-") as tmp:
        with CouchpyServer(Path(tmp) / "data") as srv:
            token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
            async with aiohttp.ClientSession(base_url=srv.base, headers=headers) as s:
                await (await s.put("/r")).read()
                t0 = time.perf_counter()
                for start in range(0, n_docs, BATCH):
                    docs = [{"_id": f"{i:08d}", "n": i, "v": i % 7} for i in range(start, min(n_docs, start + BATCH))]
                    async with s.post("/r/_bulk_docs", json={"docs": docs}) as r:
                        assert r.status == 201, await r.text()
                load_s = time.perf_counter() - t0
                ddoc = {"views": {"v": {"map": "function(doc) { emit(doc.n, doc.v); }", "reduce": "_sum"}}}
                await (await s.put("/r/_design/d", json=ddoc)).read()
                t0 = time.perf_counter()
                async with s.get("/r/_design/d/_view/v", params={"reduce": "false", "limit": "1"}) as r:
                    body = await r.json()
                    assert body["total_rows"] == n_docs, body
                build_s = time.perf_counter() - t0
                expected_all = sum(i % 7 for i in range(n_docs))
                lo, hi = n_docs // 3, 2 * n_docs // 3
                expected_part = sum(i % 7 for i in range(lo, hi + 1))

                async def timed(params: dict, expected: int) -> float:
                    t = time.perf_counter()
                    async with s.get("/r/_design/d/_view/v", params=params) as r:
                        rows = (await r.json())["rows"]
                    ms = (time.perf_counter() - t) * 1000
                    assert rows[0]["value"] == expected, (params, rows)
                    return ms

                full = [await timed({}, expected_all) for _ in range(queries)]
                part = [await timed({"startkey": str(lo), "endkey": str(hi)}, expected_part) for _ in range(queries)]
    return {
        "docs": n_docs,
        "load_docs_per_s": round(n_docs / load_s),
        "view_build_s": round(build_s, 1),
        "view_build_docs_per_s": round(n_docs / build_s),
        "full_range_reduce_ms": {"p50": round(statistics.median(full), 2), "max": round(max(full), 2)},
        "partial_range_reduce_ms": {"p50": round(statistics.median(part), 2), "max": round(max(part), 2)},
        "note": "HTTP round trip on loopback included; every answer checked against the known sum",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.docs, args.queries)), indent=2))


if __name__ == "__main__":
    main()
