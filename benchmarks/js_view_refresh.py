"""A JavaScript view built over many documents, then refreshed after every single write.

For any CouchDB-compatible server: `docs` documents loaded with `_bulk_docs` (untimed), a design
document with a JavaScript map (`emit(doc.tag, doc.n)`, reduce `_sum`), then

- `build`: the first `reduce=false&limit=1` query, timed (documents indexed per second);
- `refresh`: `refreshes` times, one write followed by a `key=` query of the written document's
  key, which brings the index up to date first (one small map call per query in couchpy's query
  server: the path where the V8 worker's heap is now collected every 500 calls or 4 MB of script).

Every answer is checked: total_rows after the build, and after each write the queried key's rows
are exactly the documents written with that key, the new one among them.

    python -m benchmarks.js_view_refresh --url http://admin:pw@127.0.0.1:5984 [--docs 20000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import orjson

from benchmarks.measure import pct, server_usage
from benchmarks.workloads import Bench, CheckFailed, make_doc

MAP = "function (doc) { if (doc.tag) { emit(doc.tag, doc.n); } }"
VIEW = "_design/hot/_view/by_tag"
BATCH = 1000


def tag_of(n: int) -> str:
    return f"tag-{n % 1000:04d}"  # make_doc's tag


def _cpu(pid: int | None) -> float | None:
    return server_usage(pid)[1]


def _per_item_us(cpu0: float | None, cpu1: float | None, items: int) -> float | None:
    return round((cpu1 - cpu0) / items * 1e6, 1) if cpu0 is not None and cpu1 is not None and items else None


async def js_view_refresh(bench: Bench, *, docs: int = 20_000, refreshes: int = 600,
                          time_limit_s: float = 120.0) -> dict[str, Any]:
    """The figures, with the server's CPU per document built and per refresh when bench.pid is set."""
    db = await bench.create_db("jsview")
    for k in range(0, docs, BATCH):
        body = {"docs": [make_doc(i, f"v{i:08d}") for i in range(k, min(docs, k + BATCH))]}
        rows = await bench.req("POST", f"/{db}/_bulk_docs", body, expect=(201, 202))
        if not all(r.get("ok") for r in rows):
            raise CheckFailed(f"_bulk_docs rows not all ok: {rows[:2]}")
    ddoc = {"language": "javascript", "views": {"by_tag": {"map": MAP, "reduce": "_sum"}}}
    await bench.req("PUT", f"/{db}/_design/hot", ddoc, expect=(201, 202))
    cpu0, t0 = _cpu(bench.pid), time.perf_counter()
    first = await bench.req("GET", f"/{db}/{VIEW}?reduce=false&limit=1", timeout=time_limit_s)
    build_s, cpu1 = time.perf_counter() - t0, _cpu(bench.pid)
    if first.get("total_rows") != docs:
        raise CheckFailed(f"total_rows {first.get('total_rows')} != {docs}")

    per_key = {tag_of(i): docs // 1000 + (1 if i < docs % 1000 else 0) for i in range(1000)}
    lat: list[float] = []
    deadline = time.perf_counter() + time_limit_s
    cpu2, t0 = _cpu(bench.pid), time.perf_counter()
    for j in range(refreshes):
        if time.perf_counter() > deadline:
            break
        n = docs + j
        doc_id = f"r{j:08d}"
        t1 = time.perf_counter()
        await bench.req("PUT", f"/{db}/{doc_id}", make_doc(n), expect=(201, 202))
        key = tag_of(n)
        per_key[key] += 1
        res = await bench.req("GET", f"/{db}/{VIEW}?reduce=false&key=" + orjson.dumps(key).decode())
        lat.append(time.perf_counter() - t1)
        rows = res.get("rows", [])
        if len(rows) != per_key[key] or not any(r["id"] == doc_id and r["value"] == n for r in rows):
            raise CheckFailed(f"key {key}: {len(rows)} rows, {per_key[key]} expected, {doc_id} among them?")
    elapsed, cpu3 = time.perf_counter() - t0, _cpu(bench.pid)
    lat.sort()
    return {"build": {"docs": docs, "elapsed_s": round(build_s, 3), "docs_per_s": round(docs / build_s, 1),
                      "server_cpu_us_per_doc": _per_item_us(cpu0, cpu1, docs)},
            "refresh": {"count": len(lat), "truncated": len(lat) < refreshes,
                        "per_s": round(len(lat) / elapsed, 1) if elapsed else None,
                        "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                        "server_cpu_us_per_refresh": _per_item_us(cpu2, cpu3, len(lat))}}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    async with Bench(args.url, "small") as bench:
        return await js_view_refresh(bench, docs=args.docs, refreshes=args.refreshes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--refreshes", type=int, default=600)
    args = ap.parse_args(argv)
    print(json.dumps(asyncio.run(_main(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
