"""A write load whose every acknowledgement is recorded, and the check that a restarted server kept it.

Each writer owns its documents, so a write can only conflict if the server lost one of ours; every
status but the one CouchDB gives for success is counted as a failure, and so is a connection error
before the server was killed. A write in flight at the kill may or may not have been committed:
the writer remembers it as *pending*, and after the restart each record must be exactly the
acknowledged one, or exactly the pending one as its direct child.

Kinds of write: documents (PUT and `_bulk_docs`), standalone attachments (random bytes, checked
byte for byte and against their MD5 digest) and `_local` checkpoints (as a replicator writes them).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from dataclasses import dataclass, field

import aiohttp

KINDS = ("doc", "bulk", "att", "local")


@dataclass
class Record:
    """The last acknowledged state of one document, and the write in flight for it (if any)."""

    rev: str | None = None
    body: dict | None = None
    att: bytes | None = None
    pending_body: dict | None = None
    pending_att: bytes | None = None


@dataclass
class Load:
    base: str  # database URL
    seed: int
    records: dict[str, Record] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    acks: int = 0
    killed: bool = False

    def fail(self, what: str) -> None:
        self.failures.append(what)


async def writer(session: aiohttp.ClientSession, load: Load, wid: int, stop: asyncio.Event,
                 docs_per_writer: int = 4) -> None:
    rng = random.Random(f"{load.seed}-{wid}")
    n = 0
    while not stop.is_set():
        kind = KINDS[rng.randrange(len(KINDS))]
        docid = f"{kind}-w{wid}-{n % docs_per_writer}"
        if kind == "local":
            docid = "_local/" + docid
        rec = load.records.setdefault(docid, Record())
        body = {"writer": wid, "n": n, "pad": "x" * rng.randint(0, 300)}
        try:
            if kind == "local":
                rec.pending_body = body
                doc = dict(body, _rev=rec.rev) if rec.rev else body  # _local docs check revisions too
                async with session.put(f"{load.base}/{docid}", json=doc) as r:
                    reply = await _reply(r, load, docid, 201)
            elif kind == "att":
                data = rng.randbytes(rng.randint(1, 64 << 10))
                rec.pending_att = data
                url = f"{load.base}/{docid}/blob"
                params = {"rev": rec.rev} if rec.rev else {}
                async with session.put(url, data=data, params=params,
                                       headers={"Content-Type": "application/octet-stream"}) as r:
                    reply = await _reply(r, load, docid, 201)
            else:
                doc = dict(body, _rev=rec.rev) if rec.rev else body
                rec.pending_body = body
                if kind == "bulk":
                    async with session.post(f"{load.base}/_bulk_docs", json={"docs": [dict(doc, _id=docid)]}) as r:
                        rows = await _reply(r, load, docid, 201)
                    reply = None
                    if rows is not None:
                        if len(rows) != 1 or rows[0].get("id") != docid or not rows[0].get("ok"):
                            load.fail(f"{docid}: bulk row {rows}")
                        else:
                            reply = rows[0]
                else:
                    async with session.put(f"{load.base}/{docid}", json=doc) as r:
                        reply = await _reply(r, load, docid, 201)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            if not load.killed:
                load.fail(f"{docid}: {type(exc).__name__} {exc} before the kill")
            return
        if reply is None:
            return  # counted as a failure by _reply
        if reply.get("ok") is not True or reply.get("id") != docid or not isinstance(reply.get("rev"), str):
            load.fail(f"{docid}: acknowledgement {reply}")
            return
        if kind == "att":
            rec.att, rec.pending_att = rec.pending_att, None
        else:
            rec.body, rec.pending_body = rec.pending_body, None
        rec.rev = reply["rev"]
        load.acks += 1
        n += 1


async def _reply(r: aiohttp.ClientResponse, load: Load, docid: str, expected: int):
    """The JSON of a response with the expected status; anything else is a failure (None)."""
    text = await r.text()
    if r.status != expected:
        if not load.killed:
            load.fail(f"{docid}: HTTP {r.status} {text[:200]}")
        return None
    try:
        return await r.json()
    except ValueError:
        load.fail(f"{docid}: not JSON: {text[:200]}")
        return None


def _history(doc: dict) -> list[str]:
    start, ids = doc["_revisions"]["start"], doc["_revisions"]["ids"]
    return [f"{start - i}-{h}" for i, h in enumerate(ids)]


def _user_fields(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


async def verify(session: aiohttp.ClientSession, load: Load) -> list[str]:
    """Compare the restarted server with the records; adopt what it kept as the new baseline."""
    problems: list[str] = []
    for docid, rec in load.records.items():
        pending = rec.pending_body is not None or rec.pending_att is not None
        if docid.startswith("_local/"):
            async with session.get(f"{load.base}/{docid}") as r:
                doc = await r.json() if r.status == 200 else None
                status = r.status
            if status == 404 and rec.rev is None:
                rec.pending_body = None
                continue  # never acknowledged, never committed
            if status != 200:
                problems.append(f"{docid}: HTTP {status} after restart (acknowledged {rec.rev})")
                continue
            kept = _user_fields(doc)
            if kept == rec.body:
                pass
            elif pending and kept == rec.pending_body:
                rec.body = kept
            else:
                problems.append(f"{docid}: body {kept} is neither acknowledged {rec.body} nor pending")
            rec.rev, rec.pending_body = doc["_rev"], None
            continue
        async with session.get(f"{load.base}/{docid}", params={"revs": "true"}) as r:
            status = r.status
            doc = await r.json() if status == 200 else None
        if status == 404 and rec.rev is None:
            rec.pending_body = rec.pending_att = None
            continue
        if status != 200:
            problems.append(f"{docid}: HTTP {status} after restart (acknowledged {rec.rev})")
            continue
        history = _history(doc)
        if doc["_rev"] == rec.rev:
            took_pending = False
        elif pending and (history[1:2] == [rec.rev] or (rec.rev is None and len(history) == 1)):
            took_pending = True
        else:
            problems.append(f"{docid}: revision {doc['_rev']} (history {history[:3]}) is neither "
                            f"the acknowledged {rec.rev} nor its pending child")
            continue
        if rec.pending_att is not None or (rec.att is not None and not took_pending):
            data = rec.pending_att if took_pending else rec.att
            stub = doc.get("_attachments", {}).get("blob")
            if stub is None:
                problems.append(f"{docid}@{doc['_rev']}: attachment missing")
            else:
                digest = "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()
                async with session.get(f"{load.base}/{docid}/blob") as r:
                    got = await r.read()
                if got != data or stub.get("digest") != digest or stub.get("length") != len(data):
                    problems.append(f"{docid}@{doc['_rev']}: attachment differs "
                                    f"({len(got)} bytes, stub {stub}, expected {len(data)} bytes {digest})")
            if took_pending:
                rec.att = rec.pending_att
        else:
            expected = rec.pending_body if took_pending else rec.body
            if _user_fields(doc) != expected:
                problems.append(f"{docid}@{doc['_rev']}: body {_user_fields(doc)} != {expected}")
            if took_pending:
                rec.body = expected
        rec.rev = doc["_rev"]
        rec.pending_body = rec.pending_att = None
    return problems


@dataclass
class BigUpload:
    """A large attachment streamed again and again to one document (`big`), as (length, md5)."""

    rev: str | None = None
    acked: tuple[int, str] | None = None
    pending: tuple[int, str] | None = None


def _chunks(seed: str, size: int, digest):
    rng = random.Random(seed)
    left = size
    while left:
        chunk = rng.randbytes(min(1 << 20, left))
        digest.update(chunk)
        left -= len(chunk)
        yield chunk


async def big_uploader(session: aiohttp.ClientSession, load: Load, big: BigUpload, stop: asyncio.Event,
                       size: int) -> None:
    """Stream `size` bytes as the attachment `big/blob` until stopped (a kill lands mid-upload)."""
    n = 0
    while not stop.is_set():
        md5 = hashlib.md5()
        digest_of = "md5-"
        body_size = size - n % 7  # each upload differs in length as well as in bytes
        big.pending = None

        async def stream():
            for chunk in _chunks(f"{load.seed}-big-{n}", body_size, md5):
                yield chunk
            big.pending = (body_size, digest_of + base64.b64encode(md5.digest()).decode())

        params = {"rev": big.rev} if big.rev else {}
        try:
            async with session.put(f"{load.base}/big/blob", data=stream(), params=params,
                                   headers={"Content-Type": "application/octet-stream"}) as r:
                reply = await _reply(r, load, "big", 201)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            if not load.killed:
                load.fail(f"big: {type(exc).__name__} {exc} before the kill")
            return
        if reply is None:
            return
        big.rev, big.acked, big.pending = reply["rev"], big.pending, None
        load.acks += 1
        n += 1


async def verify_big(session: aiohttp.ClientSession, load: Load, big: BigUpload) -> list[str]:
    """The stored attachment is the acknowledged upload, or the one fully sent when the kill came."""
    async with session.get(f"{load.base}/big") as r:
        status = r.status
        doc = await r.json() if status == 200 else None
    if doc is None:
        return [] if big.acked is None else [f"big: HTTP {status}, acknowledged {big.acked}"]
    stub = doc["_attachments"]["blob"]
    got = (stub["length"], stub["digest"])
    if got != big.acked and not (got == big.pending and doc["_rev"] != big.rev):
        return [f"big: stored {got} is neither the acknowledged {big.acked} nor the pending {big.pending}"]
    md5 = hashlib.md5()
    length = 0
    async with session.get(f"{load.base}/big/blob") as r:
        async for chunk in r.content.iter_chunked(1 << 20):
            md5.update(chunk)
            length += len(chunk)
    if (length, "md5-" + base64.b64encode(md5.digest()).decode()) != got:
        return [f"big: the bytes read back ({length}) do not match the stub {got}"]
    big.rev, big.acked, big.pending = doc["_rev"], got, None
    return []


@dataclass
class Security:
    acked: dict | None = None
    pending: dict | None = None


async def security_writer(session: aiohttp.ClientSession, load: Load, sec: Security, stop: asyncio.Event) -> None:
    """Rewrites the database's `_security` object with a new member name each time."""
    n = 0
    while not stop.is_set():
        obj = {"admins": {"names": [], "roles": []}, "members": {"names": [f"user{n}"], "roles": ["crash"]}}
        sec.pending = obj
        try:
            async with session.put(f"{load.base}/_security", json=obj) as r:
                reply = await _reply(r, load, "_security", 200)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            if not load.killed:
                load.fail(f"_security: {type(exc).__name__} before the kill")
            return
        if reply is None:
            return
        if reply != {"ok": True}:
            load.fail(f"_security: acknowledgement {reply}")
            return
        sec.acked, sec.pending = obj, None
        load.acks += 1
        n += 1
        await asyncio.sleep(0.01)


async def verify_security(session: aiohttp.ClientSession, load: Load, sec: Security) -> list[str]:
    async with session.get(f"{load.base}/_security") as r:
        got = await r.json()
    if got != sec.acked and got != sec.pending:
        return [f"_security: {got} is neither the acknowledged {sec.acked} nor the pending {sec.pending}"]
    sec.acked, sec.pending = got, None
    return []


@dataclass
class User:
    """One `_users` document rewritten again and again with a new password (hashed on write)."""

    name: str
    rev: str | None = None
    acked: str | None = None  # the acknowledged password
    pending: str | None = None


def _basic(name: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


async def users_writer(session: aiohttp.ClientSession, load: Load, user: User, stop: asyncio.Event) -> None:
    """Changes the user's password again and again (each write hashes it: PBKDF2 on the server)."""
    n = 0
    while not stop.is_set():
        password = f"pw-{load.seed}-{n}"
        doc = {"_id": f"org.couchdb.user:{user.name}", "name": user.name, "type": "user", "roles": ["crash"],
               "password": password}
        if user.rev:
            doc["_rev"] = user.rev
        user.pending = password
        try:
            async with session.put(f"{load.base.rsplit('/', 1)[0]}/_users/{doc['_id']}", json=doc) as r:
                reply = await _reply(r, load, "_users", 201)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            if not load.killed:
                load.fail(f"_users: {type(exc).__name__} before the kill")
            return
        if reply is None:
            return
        user.rev, user.acked, user.pending = reply["rev"], password, None
        load.acks += 1
        n += 1
        await asyncio.sleep(0.01)


async def verify_user(session: aiohttp.ClientSession, load: Load, user: User) -> list[str]:
    """The user document is the acknowledged revision (or its pending child), and the password it
    holds is the one that logs in: the acknowledged one, or the pending one with the child."""
    server = load.base.rsplit("/", 1)[0]
    async with session.get(f"{server}/_users/org.couchdb.user:{user.name}", params={"revs": "true"}) as r:
        status = r.status
        doc = await r.json() if status == 200 else None
    if doc is None:
        if user.rev is None:
            user.pending = None
            return []
        return [f"_users: HTTP {status}, acknowledged {user.rev}"]
    history = _history(doc)
    if doc["_rev"] == user.rev:
        password = user.acked
    elif user.pending is not None and (history[1:2] == [user.rev] or (user.rev is None and len(history) == 1)):
        password = user.pending
    else:
        return [f"_users: revision {doc['_rev']} is neither the acknowledged {user.rev} nor its pending child"]
    if "password" in doc:
        return ["_users: the password is stored in plain text"]
    async with aiohttp.ClientSession() as anon:
        async with anon.get(f"{server}/_session", headers=_basic(user.name, password)) as r:
            if r.status != 200 or (await r.json())["userCtx"]["name"] != user.name:
                return [f"_users: the password of {doc['_rev']} does not log in (HTTP {r.status})"]
    user.rev, user.acked, user.pending = doc["_rev"], password, None
    return []


def _seq_number(seq) -> int:
    return int(str(seq).split("-", 1)[0])


async def verify_checkpoints(session: aiohttp.ClientSession, source: str, target: str) -> tuple[list[str], int]:
    """No replication checkpoint on the target runs ahead of what the target holds: every document
    whose last change in the source is at or before the checkpoint's `source_last_seq` has its
    winning revision in the target. Returns the problems and the checkpoint's sequence (0: none)."""
    async with session.get(f"{target}/_local_docs", params={"include_docs": "true"}) as r:
        if r.status == 404:
            return [], 0
        rows = (await r.json())["rows"]
    checkpoints = [row["doc"] for row in rows if "source_last_seq" in (row.get("doc") or {})]
    if not checkpoints:
        return [], 0
    upto = max(_seq_number(doc["source_last_seq"]) for doc in checkpoints)
    async with session.get(f"{source}/_changes", params={"style": "all_docs"}) as r:
        changes = (await r.json())["results"]
    wanted: dict[str, list[str]] = {}
    for row in changes:
        if _seq_number(row["seq"]) <= upto:
            wanted[row["id"]] = [c["rev"] for c in row["changes"]]
    missing: dict = {}
    if wanted:
        async with session.post(f"{target}/_revs_diff", json=wanted) as r:
            missing = await r.json()
    return [f"checkpoint at {upto} but the target lacks {docid} {m['missing']}" for docid, m in missing.items()], upto
