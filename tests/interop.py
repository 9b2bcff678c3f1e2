"""Helpers for the tests against a real Apache CouchDB: one client for either server, a dataset
that exercises replication (edits, deletions, conflicts, attachments, design and `_local`
documents, unicode ids, big integers), and a complete snapshot of a database to compare."""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp

from couchpy import jsonutil


def name(prefix: str = "i") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def doc_path(docid: str) -> str:
    if docid.startswith("_design/") or docid.startswith("_local/"):
        head, rest = docid.split("/", 1)
        return head + "/" + quote(rest, safe="")
    return quote(docid, safe="")


async def req(peer: Any, method: str, path: str, body: Any = None, *, headers: dict | None = None,
              raw: bool = False, data_: bytes | None = None, **params: str) -> tuple[int, Any]:
    """(status, JSON body or bytes) of one request to a server with `.base` and `.auth`;
    `data_` is a raw request body (an attachment)."""
    data = jsonutil.dumps(body) if body is not None else data_
    hdrs = {"Content-Type": "application/json", "Accept": "application/json"} if body is not None else {}
    hdrs.update(headers or {})
    async with aiohttp.ClientSession(auth=peer.auth) as s:
        async with s.request(method, peer.base + path, data=data, params=params or None,
                             headers=hdrs, timeout=aiohttp.ClientTimeout(total=600)) as r:
            content = await r.read()
            if raw:
                return r.status, content
            return r.status, jsonutil.loads(content) if content else None


async def wait_for(pred, timeout: float = 60.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


TEXT = b"hello " * 9 + b"hello"  # the note.txt
BINARY = bytes(range(256)) * 4
BIG = 12345678901234567890123456789  # more than 64 bits: must travel exactly


async def ok(result: tuple[int, Any], *statuses: int) -> Any:
    status, body = result
    assert status in (statuses or (200, 201)), (status, body)
    return body


async def populate(peer: Any, db: str, n: int = 40) -> dict[str, Any]:
    """Fill `db` (created here) with what replication must carry; returns facts for checks."""
    await ok(await req(peer, "PUT", f"/{db}"), 201)
    docs = [{"_id": f"doc-{i:03}", "n": i, "nested": {"list": [i, str(i), None, True]}} for i in range(n)]
    docs += [{"_id": "ünïcødé-☃-𝄞", "v": "ü"}, {"_id": "with space/and slash", "v": 1},
             {"_id": "big", "big": BIG, "neg": -BIG, "f": 1.5}]
    await ok(await req(peer, "POST", f"/{db}/_bulk_docs", {"docs": docs}), 201)
    # edits
    for i in range(0, 10):
        for k in range(3):
            st, doc = await req(peer, "GET", f"/{db}/doc-{i:03}")
            doc["edit"] = k
            await ok(await req(peer, "PUT", f"/{db}/doc-{i:03}", doc), 201)
    # deletions
    for i in range(10, 15):
        st, doc = await req(peer, "GET", f"/{db}/doc-{i:03}")
        await ok(await req(peer, "DELETE", f"/{db}/doc-{i:03}", rev=doc["_rev"]), 200)
    # conflicts: a second branch written as a replicator would, one of them deleted
    for i in range(15, 20):
        branch = {"_id": f"doc-{i:03}", "_rev": f"2-{'%032x' % (i * 7919)}",
                  "_revisions": {"start": 2, "ids": ['%032x' % (i * 7919), '%032x' % (i * 104729)]},
                  "branch": "other"}
        if i == 19:
            branch["_deleted"] = True
        await ok(await req(peer, "POST", f"/{db}/_bulk_docs", {"docs": [branch], "new_edits": False}), 201)
    # attachments: binary and compressible, inline, then an edit keeping them, then a new one
    for i in range(20, 30):
        st, doc = await req(peer, "GET", f"/{db}/doc-{i:03}")
        doc["_attachments"] = {
            "note.txt": {"content_type": "text/plain", "data": _b64(TEXT)},
            "blob.bin": {"content_type": "application/octet-stream", "data": _b64(BINARY + bytes([i]))},
        }
        body = await ok(await req(peer, "PUT", f"/{db}/doc-{i:03}", doc), 201)
        if i % 2 == 0:
            st, doc = await req(peer, "GET", f"/{db}/doc-{i:03}")
            doc["edited"] = True
            body = await ok(await req(peer, "PUT", f"/{db}/doc-{i:03}", doc), 201)
        if i % 3 == 0:  # standalone PUT of another attachment
            await ok(await req(peer, "PUT", f"/{db}/doc-{i:03}/more.json", None, raw=True, rev=body["rev"],
                               headers={"Content-Type": "application/json"}), 201)
    design = {"_id": "_design/app", "views": {"by_n": {"map": "function(doc){ if (doc.n) emit(doc.n, null); }"}},
              "_attachments": {"index.html": {"content_type": "text/html", "data": _b64(b"<p>hi</p>" * 20)}}}
    await ok(await req(peer, "PUT", f"/{db}/_design/app", design), 201)
    await ok(await req(peer, "PUT", f"/{db}/_local/keep", {"here": "only"}), 201)
    return {"local": "_local/keep"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def snapshot(peer: Any, db: str, bodies: bool = True) -> dict[str, Any]:
    """Everything a replica holds, as CouchDB shows it: for each document (tombstones included)
    its leaves with bodies, histories and attachment stubs, the winner with its conflicts, and
    the bytes of the winner's attachments."""
    changes = await ok(await req(peer, "GET", f"/{db}/_changes", style="all_docs"), 200)
    out: dict[str, Any] = {}
    for row in changes["results"]:
        docid = row["id"]
        path = f"/{db}/{doc_path(docid)}"
        leaves = await ok(await req(peer, "GET", path, open_revs="all", revs="true",
                                    headers={"Accept": "application/json"}), 200)
        leaves = sorted((x["ok"] for x in leaves if "ok" in x), key=lambda d: d["_rev"])
        status, winner = await req(peer, "GET", path, conflicts="true", deleted_conflicts="true")
        entry: dict[str, Any] = {"leaves": leaves, "winner": (status, winner)}
        if bodies and status == 200:
            for att in winner.get("_attachments") or {}:
                st, data = await req(peer, "GET", f"{path}/{quote(att)}", raw=True,
                                     headers={"Accept-Encoding": "identity"})
                entry[f"att:{att}"] = (st, data)
        out[docid] = entry
    return out


def random_bytes(size: int, seed: int = 1) -> bytes:
    """Incompressible bytes of a given size (repeatable)."""
    return random.Random(seed).randbytes(size)
