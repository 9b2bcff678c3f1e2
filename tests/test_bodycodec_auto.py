"""Bodies are compressed before the first compaction: a database without a dictionary trains one
in the background once it holds enough documents (couchpy.bodycodec AUTO_DOCS), and every body,
stored as JSON before the switch or compressed after it, reads back the same, across a restart
and a compaction."""

from __future__ import annotations

import asyncio
import random
import time

import lmdb
import orjson

import couchpy
from couchpy import bodycodec
from couchpy.docinfo import body_key
from tests.test_workers import WorkersServer, _pinned_session, _put_db


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


def _stored(main, ids_revs: dict[str, str]) -> tuple[bytes | None, dict[str, bytes]]:
    """(the stored dictionary, each document's stored body) read from the environment at `main`
    by this process: LMDB's readers may be in any process."""
    env = lmdb.open(str(main), readonly=True, max_dbs=32, lock=True, subdir=True)
    try:
        meta, bodies = env.open_db(b"meta", create=False), env.open_db(b"bodies", create=False)
        with env.begin() as txn:
            dictionary = txn.get(bodycodec.DICT_KEY, db=meta)
            stored = {i: bytes(txn.get(body_key(i, r), db=bodies)) for i, r in ids_revs.items()}
        return (bytes(dictionary) if dictionary is not None else None), stored
    finally:
        env.close()


async def _bulk(s, db: str, docs: list[dict]) -> dict[str, str]:
    revs = {}
    for i in range(0, len(docs), 250):
        async with s.post(f"/{db}/_bulk_docs", json={"docs": docs[i:i + 250]}) as r:
            assert r.status == 201, await r.text()
            revs.update((row["id"], row["rev"]) for row in await r.json())
    return revs


async def test_with_two_workers_one_trains_and_both_compress_and_read(tmp_path):
    """`couchpy serve --workers 2`: the worker whose write crosses the threshold trains and stores
    the dictionary; the other reads the bodies compressed with it at once (it loads the stored
    dictionary when it meets the first one) and compresses its own writes from its next try on.
    Before, with several workers, no dictionary was trained until the first compaction."""
    srv = WorkersServer(tmp_path, args=["--workers", "2"])
    srv.start()
    try:
        one = await _pinned_session(srv, 1)
        zero = await _pinned_session(srv, 0)
        try:
            await _put_db(one, "z")
            (main,) = (srv.data_dir / "dbs").glob("z.*")
            main = main / "main"
            async with zero.get("/z") as r:  # worker 0 opens the database: no dictionary yet
                assert r.status == 200
            first = _profiles(0, 1200, 7)
            await _bulk(one, "z", first)  # worker 1 crosses AUTO_DOCS
            deadline = time.monotonic() + 60
            while _stored(main, {})[0] is None:
                assert time.monotonic() < deadline, "no dictionary stored"
                await asyncio.sleep(0.1)
            later1 = await _bulk(one, "z", _profiles(1200, 300, 8))  # compressed by worker 1
            _, stored = _stored(main, later1)
            assert all(b[:1] == bodycodec.TAG for b in stored.values())
            # worker 0 has not trained nor adopted: it reads worker 1's compressed bodies
            expected = {d["_id"]: d for d in first + _profiles(1200, 300, 8)}
            async with zero.post("/z/_all_docs", json={"keys": sorted(expected), "include_docs": True}) as r:
                assert r.status == 200, await r.text()
                for row in (await r.json())["rows"]:
                    doc = row["doc"]
                    assert {k: v for k, v in doc.items() if k != "_rev"} == expected[row["id"]]
            # and its own writes are compressed from its next write on
            await _bulk(zero, "z", _profiles(1500, 10, 9))
            deadline = time.monotonic() + 30
            for attempt in range(300):
                later0 = await _bulk(zero, "z", _profiles(2000 + 5 * attempt, 5, 10))
                if all(b[:1] == bodycodec.TAG for b in _stored(main, later0)[1].values()):
                    break
                assert time.monotonic() < deadline, "worker 0 never compressed"
                await asyncio.sleep(0.1)
            async with one.get(f"/z/{next(iter(later0))}") as r:
                assert r.status == 200 and (await r.json())["_rev"] == later0[next(iter(later0))]
        finally:
            await one.close()
            await zero.close()
    finally:
        srv.stop()
