"""Full-text search (Nouveau API): index build rate and query latency.

    python -m benchmarks.fulltext [--docs 20000] [--queries 200] [--json OUT]

Starts a couchpy server of its own (temporary data directory), loads documents with `_bulk_docs`
(a title of 8 words from a 2000-word vocabulary, a category, a price), adds a design document with
a Nouveau index (text, string and double fields), times the first search (the whole build), then
times single searches of several shapes, one after the other: a term, two terms AND, a phrase, a
numeric range with a sort by price, `*:*` with counts and ranges facets. Every answer's
`total_hits` is checked against a scan of the generated documents.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import statistics
import time
from pathlib import Path

import aiohttp

from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, CouchpyServer, temp_dir

BATCH = 2000
VOCAB = [f"w{i}" for i in range(2000)]
CATS = [f"c{i}" for i in range(20)]
INDEX = """function(doc) {
  index('text', 'default', doc.title);
  index('text', 'title', doc.title, {store: true});
  index('string', 'cat', doc.cat, {store: true});
  index('double', 'price', doc.price);
}"""


def _docs(n: int, rng: random.Random) -> list[dict]:
    # a Zipf-like vocabulary: a few frequent words, a long tail
    weights = [1.0 / (i + 1) for i in range(len(VOCAB))]
    return [{"_id": f"{i:08d}", "title": " ".join(rng.choices(VOCAB, weights, k=8)),
             "cat": rng.choice(CATS), "price": rng.randrange(0, 1000)} for i in range(n)]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def run(n_docs: int, queries: int) -> dict:
    rng = random.Random(1)
    docs = _docs(n_docs, rng)
    words = [set(d["title"].split()) for d in docs]
    with temp_dir("fulltext-") as tmp:
        with CouchpyServer(Path(tmp) / "data") as srv:
            token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
            async with aiohttp.ClientSession(base_url=srv.base, headers=headers) as s:
                await (await s.put("/f")).read()
                for start in range(0, n_docs, BATCH):
                    async with s.post("/f/_bulk_docs", json={"docs": docs[start:start + BATCH]}) as r:
                        assert r.status == 201, await r.text()
                await (await s.put("/f/_design/d", json={"nouveau": {"i": {"index": INDEX}}})).read()
                path = "/f/_design/d/_nouveau/i"
                t0 = time.perf_counter()
                async with s.get(path, params={"q": "*:*", "limit": "1"}) as r:
                    body = await r.json()
                    assert body["total_hits"] == n_docs, body
                build_s = time.perf_counter() - t0

                def shapes() -> list[tuple[str, dict, int]]:
                    a, b = rng.choice(VOCAB[:200]), rng.choice(VOCAB[:50])
                    lo = rng.randrange(0, 900)
                    d = rng.choice(docs)["title"].split()
                    phrase = " ".join(d[:2])
                    return [
                        ("term", {"q": a}, sum(a in w for w in words)),
                        ("and", {"q": f"{a} AND {b}"}, sum(a in w and b in w for w in words)),
                        ("phrase", {"q": f'title:"{phrase}"'}, -1),
                        ("range_sorted", {"q": f"price:[{lo} TO {lo + 50}]", "sort": '"-price"'},
                         sum(lo <= x["price"] <= lo + 50 for x in docs)),
                        ("facets", {"q": "*:*", "counts": '["cat"]',
                                    "ranges": '{"price": [{"label": "low", "min": 0, "max": 99}]}'}, n_docs),
                    ]

                lat: dict[str, list[float]] = {}
                for _ in range(queries // 5):
                    for name, q, expect in shapes():
                        t = time.perf_counter()
                        async with s.get(path, params=q) as r:
                            body = await r.json()
                        lat.setdefault(name, []).append((time.perf_counter() - t) * 1000)
                        assert r.status == 200, body
                        if expect >= 0:
                            assert body["total_hits"] == expect, (name, q, body["total_hits"], expect)
                        else:
                            assert body["total_hits"] >= 1, (name, q)
                every = [x for xs in lat.values() for x in xs]
                return {
                    "docs": n_docs,
                    "build_s": round(build_s, 2),
                    "build_docs_per_s": round(n_docs / build_s),
                    "queries": len(every),
                    "p50_ms": round(statistics.median(every), 2),
                    "p99_ms": round(_pct(every, 99), 2),
                    "by_shape": {k: {"p50_ms": round(statistics.median(v), 2), "p99_ms": round(_pct(v, 99), 2)}
                                 for k, v in lat.items()},
                }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    out = asyncio.run(run(a.docs, a.queries))
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
