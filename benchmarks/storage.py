"""Bytes on disk per document, couchpy next to Apache CouchDB 3.4.3, through the HTTP API.

For each server, with a fresh data directory: `--docs` documents of about 300 bytes written with
`_bulk_docs` in batches of 1000, then every document updated three times, then
`POST /{db}/_compact` and waiting for it to finish, then every document updated once more (the
write path after compaction, when couchpy compresses bodies). After each phase: the data directory's disk
usage (allocated blocks, as `du`) and the database's `sizes`. Also the throughput of the inserts,
of the updates and of random single-document GETs (16 concurrent clients), every answer checked.

A design document with one view (`[address.city, age]` -> score, `_stats`) is written first; after
each phase the view is queried (which brings its index up to date) and its index's `sizes` taken
from `_design/v/_info`; after the database's compaction the index is compacted too
(`POST /{db}/_compact/v`). `--no-view` leaves it out.

    python -m benchmarks.storage --docs 100000
    python -m benchmarks.storage --docs 20000 --servers couchpy-json,couchpy   # compression's effect

CouchDB comes from ../shared/peers/couchdb/couchdb.sh (COUCHDB_PEER_DIR overrides the folder).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, CouchpyServer, temp_dir

REPO = Path(__file__).resolve().parent.parent
PEER_DIR = Path(os.environ.get("COUCHDB_PEER_DIR", REPO.parent / "shared" / "peers" / "couchdb"))
DB = "storagebench"
BATCH = 1000
READERS = 16
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau upsilon "
         "phi chi psi omega red green blue north south east west river mountain city village").split()


def make_body(rng: random.Random, i: int, gen: int) -> dict[str, Any]:
    """A user-profile-like document of about 300 bytes of JSON."""
    first = rng.choice(WORDS).title()
    last = rng.choice(WORDS).title()
    return {
        "type": "user",
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{i}@example.com",
        "age": rng.randint(18, 90),
        "active": rng.random() < 0.8,
        "score": round(rng.random() * 1000, 3),
        "tags": rng.sample(WORDS, 3),
        "address": {"street": f"{rng.randint(1, 999)} {rng.choice(WORDS).title()} Street",
                    "city": rng.choice(WORDS).title(), "zip": f"{rng.randint(10000, 99999)}"},
        "bio": " ".join(rng.choice(WORDS) for _ in range(12)),
        "version": gen,
    }


def disk_usage(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class CouchdbPeer:
    """Apache CouchDB 3.4.3 from the shared peer folder, in its own instance directory."""

    name = "CouchDB 3.4.3"

    def __init__(self, directory: Path):
        self.dir = directory
        self.pid = ""
        self.base = ""
        self.data_dir = directory / "data"
        self.auth = aiohttp.BasicAuth("admin", "admin")

    def __enter__(self) -> CouchdbPeer:
        out = subprocess.run([str(PEER_DIR / "couchdb.sh"), "start", "--dir", str(self.dir)],
                             capture_output=True, text=True, timeout=240, check=True).stdout
        info = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.pid = info["PID"]
        self.base = "http://" + info["URL"].split("@", 1)[1]
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run([str(PEER_DIR / "couchdb.sh"), "stop", self.pid], capture_output=True, timeout=120)


class Couchpy:
    name = "couchpy"
    settings = ""

    def __init__(self, directory: Path):
        self.server = CouchpyServer(directory)
        self.data_dir = directory
        self.auth = aiohttp.BasicAuth(ADMIN_USER, ADMIN_PASSWORD)
        self.base = ""

    def __enter__(self) -> Couchpy:
        # Automatic compaction off: the table compares the files updates leave and one compaction.
        (self.data_dir / "couchpy.ini").write_text(
            f"[admins]\n{ADMIN_USER} = {ADMIN_PASSWORD}\n\n[smoosh]\nenabled = false\n{self.settings}")
        self.server.__enter__()
        self.base = self.server.base
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)


class CouchpyJson(Couchpy):
    """couchpy storing bodies as JSON (no compression): the baseline compression is measured against."""

    name = "couchpy, bodies as JSON"
    settings = "\n[couchdb]\nfile_compression = none\n"


async def _json(resp: aiohttp.ClientResponse, status: int) -> Any:
    body = await resp.read()
    if resp.status != status:
        raise RuntimeError(f"{resp.method} {resp.url}: {resp.status} {body[:300]!r}")
    return json.loads(body)


async def write_all(s: aiohttp.ClientSession, n: int, gen: int, revs: dict[str, str]) -> float:
    """Write generation `gen` of every document in batches; docs/s."""
    rng = random.Random(gen)
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        docs = []
        for i in range(start, min(n, start + BATCH)):
            docid = f"user-{i:08d}"
            doc = {"_id": docid, **make_body(rng, i, gen)}
            if docid in revs:
                doc["_rev"] = revs[docid]
            docs.append(doc)
        async with s.post(f"/{DB}/_bulk_docs", json={"docs": docs}) as r:
            rows = await _json(r, 201)
        for row in rows:
            if not row.get("ok"):
                raise RuntimeError(f"write failed: {row}")
            revs[row["id"]] = row["rev"]
    return n / (time.perf_counter() - t0)


async def read_random(s: aiohttp.ClientSession, revs: dict[str, str], count: int) -> float:
    ids = list(revs)
    rng = random.Random(7)
    picks = [rng.choice(ids) for _ in range(count)]

    async def reader(part: list[str]) -> None:
        for docid in part:
            async with s.get(f"/{DB}/{docid}") as r:
                doc = await _json(r, 200)
            if doc["_rev"] != revs[docid]:
                raise RuntimeError(f"{docid}: {doc['_rev']} != {revs[docid]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(reader(picks[i::READERS]) for i in range(READERS)))
    return count / (time.perf_counter() - t0)


VIEW_DDOC = {"views": {"by_city": {
    "map": "function(doc) { if (doc.address) emit([doc.address.city, doc.age], doc.score); }",
    "reduce": "_stats"}}}


async def view_sizes(s: aiohttp.ClientSession) -> dict[str, int]:
    """Bring the view's index up to date (a query), then its index's sizes."""
    for _ in range(60):
        async with s.get(f"/{DB}/_design/v/_view/by_city", params={"limit": "1"}) as r:
            if r.status == 500 and (await r.json(content_type=None)).get("error") == "timeout":
                continue  # CouchDB gives up waiting after a minute and goes on building: ask again
            await _json(r, 200)
            break
    else:
        raise RuntimeError("the view index was not built within an hour")
    async with s.get(f"/{DB}/_design/v/_info") as r:
        return {k: v for k, v in (await _json(r, 200))["view_index"]["sizes"].items() if k in ("file", "active")}


async def compact(s: aiohttp.ClientSession, data_dir: Path, view: bool = False) -> float:
    """The database's compaction (or with `view`, the design document's), waited for."""
    t0 = time.perf_counter()
    async with s.post(f"/{DB}/_compact/v" if view else f"/{DB}/_compact", json={}) as r:
        await _json(r, 202)
    seen_running = False
    while time.perf_counter() - t0 < 3600:
        await asyncio.sleep(0.2)
        async with s.get(f"/{DB}/_design/v/_info" if view else f"/{DB}") as r:
            info = await _json(r, 200)
        running = info["view_index"]["compact_running"] if view else info["compact_running"]
        seen_running |= running
        leftovers = any(p.name.endswith((".compact", ".compact.data", ".compact.meta", ".compact.view", ".old"))
                        for p in data_dir.rglob("*"))
        if not running and not leftovers and (seen_running or time.perf_counter() - t0 > 2):
            return time.perf_counter() - t0
    raise RuntimeError("compaction did not finish")


def sizes_of(info: dict) -> dict[str, int]:
    return {k: info["sizes"][k] for k in ("file", "external", "active")}


async def run_one(server, n: int, reads: int, view: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"server": server.name}
    revs: dict[str, str] = {}
    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth,
                                     timeout=aiohttp.ClientTimeout(total=3600)) as s:
        async with s.put(f"/{DB}") as r:
            await _json(r, 201)
        if view:
            async with s.put(f"/{DB}/_design/v", json=VIEW_DDOC) as r:
                await _json(r, 201)

        async def snapshot(phase: str) -> None:
            view_part = {"view": await view_sizes(s)} if view else {}
            async with s.get(f"/{DB}") as r:
                info = await _json(r, 200)
            out[phase] = {"disk": disk_usage(server.data_dir), "sizes": sizes_of(info), **view_part}

        out["insert_docs_per_s"] = await write_all(s, n, 0, revs)
        await snapshot("inserted")
        out["read_docs_per_s"] = await read_random(s, revs, reads)
        out["update_docs_per_s"] = sum([await write_all(s, n, g, revs) for g in (1, 2, 3)]) / 3
        await snapshot("updated")
        out["compact_s"] = await compact(s, server.data_dir)
        if view:
            out["view_compact_s"] = await compact(s, server.data_dir, view=True)
        await snapshot("compacted")
        out["read_after_compact_docs_per_s"] = await read_random(s, revs, reads)
        # one more full update: the write path once compaction has set up compression
        out["update_after_compact_docs_per_s"] = await write_all(s, n, 4, revs)
        await snapshot("updated_after_compact")
    return out


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def table(results: list[dict[str, Any]], n: int) -> str:
    names = [r["server"] for r in results]
    lines = [f"| {n:,} docs | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for phase, label in (("inserted", "after inserts"), ("updated", "after 3 full updates"),
                         ("compacted", "after compaction"),
                         ("updated_after_compact", "after one more full update")):
        lines.append(f"| data directory {label} | " + " | ".join(mb(r[phase]["disk"]) for r in results) + " |")
    for phase in ("updated", "compacted"):
        lines.append(f"| `sizes` {phase} | " + " | ".join(
            ", ".join(f"{k} {mb(v)}" for k, v in r[phase]["sizes"].items()) for r in results) + " |")
    if all("view" in r["updated"] for r in results):
        for phase, label in (("inserted", "after inserts"), ("updated", "after 3 full updates"),
                             ("compacted", "after compaction"),
                             ("updated_after_compact", "after one more full update")):
            lines.append(f"| view index {label} (file / active) | " + " | ".join(
                f"{mb(r[phase]['view']['file'])} / {mb(r[phase]['view']['active'])}" for r in results) + " |")
    for key, label in (("insert_docs_per_s", "bulk inserts, docs/s"), ("update_docs_per_s", "bulk updates, docs/s"),
                       ("read_docs_per_s", f"random GETs ({READERS} clients), docs/s"),
                       ("read_after_compact_docs_per_s", "random GETs after compaction, docs/s"),
                       ("update_after_compact_docs_per_s", "bulk updates after compaction, docs/s"),
                       ("compact_s", "compaction, s"), ("view_compact_s", "view index compaction, s")):
        if all(key in r for r in results):
            lines.append(f"| {label} | " + " | ".join(f"{r[key]:,.1f}" for r in results) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--reads", type=int, default=5000)
    ap.add_argument("--servers", default="couchpy,couchdb", help="of couchpy, couchpy-json, couchdb")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--no-view", action="store_true", help="no design document (database sizes only)")
    args = ap.parse_args()
    kinds = {"couchpy": Couchpy, "couchpy-json": CouchpyJson, "couchdb": CouchdbPeer}
    results = []
    for key in args.servers.split(","):
        with temp_dir(f"storagebench-{key}-") as d:
            with kinds[key](Path(d)) as server:
                print(f"{server.name}: {args.docs} docs ...", file=sys.stderr, flush=True)
                results.append(asyncio.run(run_one(server, args.docs, args.reads, not args.no_view)))
    print(table(results, args.docs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
