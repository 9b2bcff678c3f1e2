"""Replication throughput with Apache CouchDB 3.4.3 as the peer, both directions and with each
side's replicator driving, beside couchpy→couchpy and CouchDB→CouchDB, all on this machine.

    python -m benchmarks.replication --docs 20000 --atts 200 [--json OUT]

Two couchpy servers and two CouchDB 3.4.3 instances (the release in ../shared/peers/couchdb, see
tests/couchdb_peer.py) are started with fresh data. One source database on a couchpy and one on
a CouchDB get the same documents (about 200 bytes of JSON each; `--atts` of them also carry a
4 KiB text and a 4 KiB binary attachment). Each run is a one-shot `POST /_replicate` on the
driving server into a fresh target database, timed from request to answer; afterwards the
target must hold as many documents as the source and the same attachment digests, or the run
fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, CouchpyServer
from tests.couchdb_peer import CouchdbPeer

BATCH = 2000


class Peer:
    """The URL (with credentials), base URL and auth of one server."""

    def __init__(self, label: str, url: str, user: str, password: str):
        self.label = label
        self.url = url
        self.base = "http://" + url.split("@", 1)[1]
        self.auth = aiohttp.BasicAuth(user, password)


async def call(s: aiohttp.ClientSession, peer: Peer, method: str, path: str, body: Any = None) -> Any:
    async with s.request(method, peer.base + path, json=body, auth=peer.auth,
                         timeout=aiohttp.ClientTimeout(total=3600)) as r:
        out = await r.json(content_type=None)
        if r.status >= 400:
            raise RuntimeError(f"{peer.label} {method} {path}: {r.status} {out}")
        return out


def dataset(n: int, atts: int) -> list[dict[str, Any]]:
    rnd = random.Random(42)
    docs = []
    for i in range(n):
        doc = {"_id": f"doc-{i:07}", "n": i, "name": f"name {rnd.random()}", "tags": ["a", "b", str(i % 97)],
               "nested": {"x": rnd.randint(0, 10**9), "y": rnd.random(), "s": "z" * 60}}
        if i < atts:
            doc["_attachments"] = {
                "note.txt": {"content_type": "text/plain", "data": base64.b64encode((b"line %d\n" % i * 512)[:4096]).decode()},
                "blob.bin": {"content_type": "application/octet-stream", "data": base64.b64encode(rnd.randbytes(4096)).decode()},
            }
        docs.append(doc)
    return docs


async def fill(s: aiohttp.ClientSession, peer: Peer, db: str, docs: list[dict[str, Any]]) -> None:
    await call(s, peer, "PUT", f"/{db}")
    for i in range(0, len(docs), BATCH):
        await call(s, peer, "POST", f"/{db}/_bulk_docs", {"docs": docs[i:i + BATCH]})


async def digests(s: aiohttp.ClientSession, peer: Peer, db: str, ids: list[str]) -> dict[str, Any]:
    out = await call(s, peer, "POST", f"/{db}/_all_docs?include_docs=true", {"keys": ids})
    return {row["id"]: {k: v["digest"] for k, v in row["doc"]["_attachments"].items()} for row in out["rows"]}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="bench-repl-"))
    docs = dataset(args.docs, args.atts)
    att_ids = [d["_id"] for d in docs[: min(args.atts, 50)]]
    results = []
    with CouchpyServer(root / "couchpy-a") as pa, CouchpyServer(root / "couchpy-b") as pb, \
            CouchdbPeer(root / "couchdb-a") as ca, CouchdbPeer(root / "couchdb-b") as cb:
        couchpy_a = Peer("couchpy", pa.url, ADMIN_USER, ADMIN_PASSWORD)
        couchpy_b = Peer("couchpy", pb.url, ADMIN_USER, ADMIN_PASSWORD)
        couchdb_a = Peer("CouchDB", ca.url, ca.user, ca.password)
        couchdb_b = Peer("CouchDB", cb.url, cb.user, cb.password)
        async with aiohttp.ClientSession() as s:
            await fill(s, couchpy_a, "src", docs)
            await fill(s, couchdb_a, "src", docs)
            expected = await digests(s, couchdb_a, "src", att_ids)
            assert expected == await digests(s, couchpy_a, "src", att_ids), "sources differ"
            plan = [
                (couchpy_a, couchpy_b, couchpy_b),
                (couchdb_a, couchdb_b, couchdb_b),
                (couchpy_a, couchdb_b, couchdb_b),
                (couchpy_a, couchdb_b, couchpy_a),
                (couchdb_a, couchpy_b, couchpy_b),
                (couchdb_a, couchpy_b, couchdb_a),
            ]
            for k, (source, target, driver) in enumerate(plan):
                tgt = f"tgt-{k}"
                spec = {"source": f"{source.url}/src", "target": f"{target.url}/{tgt}", "create_target": True}
                t0 = time.monotonic()
                res = await call(s, driver, "POST", "/_replicate", spec)
                elapsed = time.monotonic() - t0
                info = await call(s, target, "GET", f"/{tgt}")
                if info["doc_count"] != args.docs or not res.get("ok"):
                    raise RuntimeError(f"run {k}: {info['doc_count']} of {args.docs} docs: {res}")
                if await digests(s, target, tgt, att_ids) != expected:
                    raise RuntimeError(f"run {k}: attachment digests differ")
                row = {"source": source.label, "target": target.label, "driver": driver.label,
                       "docs": args.docs, "with_attachments": args.atts, "seconds": round(elapsed, 2),
                       "docs_per_s": round(args.docs / elapsed)}
                print(json.dumps(row), flush=True)
                results.append(row)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--atts", type=int, default=200)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
