"""Bodies are compressed before the first compaction: a database without a dictionary trains one
in the background once it holds enough documents (couchpy.bodycodec AUTO_DOCS), and every body,
stored as JSON before the switch or compressed after it, reads back the same, across a restart
and a compaction."""

from __future__ import annotations

import asyncio
import random
import time

import orjson

import couchpy
from couchpy import bodycodec


def _stored_bodies(db) -> dict[bytes, bytes]:
    with db.store.read() as txn:
        return dict(txn.cursor(db=db.store.db("bodies")))


def _profiles(first: int, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    words = "alpha beta gamma delta epsilon river mountain city north south".split()
    return [{"_id": f"u{i:05d}", "type": "user", "name": f"{rng.choice(words)} {rng.choice(words)}",
             "email": f"user{i}@example.com", "age": rng.randint(18, 90), "tags": rng.sample(words, 3),
             "bio": " ".join(rng.choice(words) for _ in range(12))} for i in range(first, first + n)]


async def _wait_for_dictionary(db, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while db.codec.dictionary is None:
        assert time.monotonic() < deadline, "no dictionary trained in the background"
        await asyncio.sleep(0.05)


async def _write(db, docs: list[dict]) -> dict[str, dict]:
    for i in range(0, len(docs), 250):
        res = await db.bulk_docs(docs[i:i + 250])
        assert all(r["ok"] for r in res)
        for d, r in zip(docs[i:i + 250], res):
            d["_rev"] = r["rev"]
    return {d["_id"]: d for d in docs}


async def test_dictionary_trained_before_compaction_and_every_body_reads(tmp_path):
    node = couchpy.open(tmp_path)
    db = node.create_db("db")
    few = await _write(db, _profiles(0, bodycodec.AUTO_DOCS // 2, 1))
    await asyncio.sleep(0.2)
    assert db.codec.dictionary is None, "too few documents to train on"
    docs = few | await _write(db, _profiles(len(few), bodycodec.AUTO_DOCS, 2))
    await _wait_for_dictionary(db)
    assert all(v[:1] == b"{" for v in _stored_bodies(db).values())  # written before the switch
    later = await _write(db, _profiles(len(docs), 500, 3))
    docs |= later
    stored = _stored_bodies(db)
    new = [v for k, v in stored.items() if k.startswith(b"u0") and v[:1] == bodycodec.TAG]
    assert len(new) == len(later), "every body written after the switch is compressed"
    plain = sum(len(orjson.dumps({k: v for k, v in d.items() if k not in ("_id", "_rev")})) for d in later.values())
    assert sum(map(len, new)) < 0.6 * plain
    # an update of a document stored as JSON: its new body compressed, its old one still read
    old = docs["u00003"]
    r = await db.put({**old, "age": 1})
    docs["u00003"] = {**old, "age": 1, "_rev": r["rev"]}
    for d in docs.values():
        assert db.get(d["_id"]) == d
        assert orjson.loads(db.get_json(d["_id"])[1]) == d
    assert db.get("u00003", rev=old["_rev"]) == old

    await node.aclose()
    node = couchpy.open(tmp_path)  # restart: the dictionary is read from the file
    db = node.get_db("db")
    assert db.codec.dictionary is not None
    for d in docs.values():
        assert db.get(d["_id"]) == d
    await db.compact()
    assert all(v[:1] == bodycodec.TAG for v in _stored_bodies(db).values())
    for d in docs.values():
        assert db.get(d["_id"]) == d
    await node.aclose()


async def test_no_background_dictionary_with_file_compression_none(tmp_path):
    node = couchpy.open(tmp_path)
    node.config.set("couchdb", "file_compression", "none")
    db = node.create_db("db")
    await _write(db, _profiles(0, bodycodec.AUTO_DOCS + 100, 4))
    await asyncio.sleep(0.5)
    assert db.codec.dictionary is None
    assert all(v[:1] == b"{" for v in _stored_bodies(db).values())
    await node.aclose()
