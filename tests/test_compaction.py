"""Compaction (couchpy.compactor) and `sizes`: what is live survives any interleaving of writes,
reads and the compaction's phases; the space of what is not comes back; `sizes` mean what
CouchDB's mean (checked against a real CouchDB 3.4.3)."""

from __future__ import annotations

import asyncio
import base64
import random
import tempfile
import threading
import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import couchpy
from couchpy import bodycodec, compactor, envswap
from couchpy.errors import NotFound

# ------------------------------------------------------------------ interleavings (engine)

OPS = st.lists(
    st.tuples(st.sampled_from(["create", "update", "delete", "conflict", "local", "read", "yield"]),
              st.integers(0, 11), st.integers(0, 10**6)),
    min_size=1, max_size=25,
)


class Model:
    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, dict, bool]] = {}  # id -> (winner rev, body, deleted)
        self.leaves: dict[str, dict[str, dict]] = {}  # id -> rev -> body (conflicted docs)
        self.local: dict[str, dict] = {}


async def _apply(db, model: Model, op: str, k: int, v: int) -> None:
    docid = f"d{k}"
    cur = model.docs.get(docid)
    if op == "create" and cur is None:
        r = await db.put({"_id": docid, "v": v, "pad": "p" * (v % 300)})
        model.docs[docid] = (r["rev"], {"v": v, "pad": "p" * (v % 300)}, False)
    elif op == "update" and cur is not None and not cur[2]:  # a tombstone's rev is a conflict, as in CouchDB
        r = await db.put({"_id": docid, "_rev": cur[0], "v": v})
        model.docs[docid] = (r["rev"], {"v": v}, False)
    elif op == "delete" and cur is not None and not cur[2]:
        r = await db.put({"_id": docid, "_rev": cur[0], "_deleted": True})
        model.docs[docid] = (r["rev"], {}, True)
    elif op == "conflict" and cur is None:
        cid = f"c{k}"
        if cid in model.leaves:
            return
        revs = {f"1-{'a' * 32}": {"side": "a", "v": v}, f"1-{'b' * 32}": {"side": "b", "v": v}}
        for rev, body in revs.items():
            await db.put({"_id": cid, "_rev": rev, **body}, new_edits=False)
        model.leaves[cid] = revs
    elif op == "local":
        await db.put({"_id": f"_local/l{k}", "v": v, **({"_rev": db.get(f"_local/l{k}")["_rev"]}
                                                          if f"_local/l{k}" in model.local else {})})
        model.local[f"_local/l{k}"] = {"v": v}
    elif op == "read" and cur is not None:
        _check_doc(db, docid, cur)
    await asyncio.sleep(0)


def _check_doc(db, docid: str, expected: tuple[str, dict, bool]) -> None:
    rev, body, deleted = expected
    doc = db.get(docid, rev=rev)
    assert (doc["_rev"], {k: v for k, v in doc.items() if not k.startswith("_")}, doc.get("_deleted", False)) \
        == (rev, body, deleted)
    if deleted:
        with pytest.raises(NotFound):
            db.get(docid)
    else:
        assert db.get(docid)["_rev"] == rev


def _check_all(db, model: Model) -> None:
    for docid, expected in model.docs.items():
        _check_doc(db, docid, expected)
    for cid, leaves in model.leaves.items():
        got = {row["ok"]["_rev"]: {k: v for k, v in row["ok"].items() if not k.startswith("_")}
               for row in db.open_revs(cid, "all")}
        assert got == leaves
    for lid, body in model.local.items():
        assert {k: v for k, v in db.get(lid).items() if not k.startswith("_")} == body
    # the by-sequence index: exactly one entry per document, its latest change
    changes = list(db.changes_since(0))
    assert sorted(i.id for i in changes) == sorted([*model.docs, *model.leaves])
    seqs = [i.seq for i in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    info = db.info()
    assert info["doc_count"] == sum(not d[2] for d in model.docs.values()) + len(model.leaves)
    assert info["doc_del_count"] == sum(d[2] for d in model.docs.values())


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(before=OPS, during=OPS, chunk=st.integers(1, 4), final=st.integers(0, 3))
def test_compaction_under_interleaved_writes_and_reads_loses_nothing(before, during, chunk, final):
    """Small chunks make every phase (copy, catch-up, exclusive final) meet concurrent writes."""
    saved = compactor.CHUNK, compactor.FINAL_BELOW
    compactor.CHUNK, compactor.FINAL_BELOW = chunk, final

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            node = couchpy.open(tmp)
            db = node.create_db("db")
            model = Model()
            for op in before:
                await _apply(db, model, *op)
            task = asyncio.create_task(db.compact())
            for op in during:
                await _apply(db, model, *op)
            await task
            _check_all(db, model)
            external = db.meta["external_size"]
            await db.compact()  # recounted from scratch: the running count was right
            assert db.meta["external_size"] == external
            _check_all(db, model)
            assert sorted(p.name for p in db.directory.iterdir() if p.name.startswith("main")) == ["main"]
            await node.aclose()
            node = couchpy.open(tmp)
            _check_all(node.get_db("db"), model)
            await node.aclose()

    try:
        asyncio.run(run())
    finally:
        compactor.CHUNK, compactor.FINAL_BELOW = saved


async def test_compaction_returns_the_space_of_old_revisions(tmp_path):
    node = couchpy.open(tmp_path)
    db = node.create_db("db")
    revs: dict[str, str] = {}
    for gen in range(4):
        docs = [{"_id": f"doc{i:05d}", "gen": gen, "text": f"{i}-{gen}-" + "x" * 200,
                 **({"_rev": revs[f"doc{i:05d}"]} if gen else {})} for i in range(3000)]
        for row in await db.bulk_docs(docs):
            revs[row["id"]] = row["rev"]
    before = db.info()["sizes"]
    await db.compact()
    after = db.info()["sizes"]
    assert after["external"] == before["external"]
    # three quarters of the bodies were old revisions: the file shrinks well below half
    assert after["file"] < before["file"] * 0.4, (before, after)
    assert after["active"] <= after["file"] and after["file"] - after["active"] < after["file"] * 0.1
    for i in (0, 1500, 2999):
        assert db.get(f"doc{i:05d}")["_rev"] == revs[f"doc{i:05d}"]
    await node.aclose()


async def test_compaction_keeps_live_attachments_and_drops_dead_ones(tmp_path):
    node = couchpy.open(tmp_path)
    db = node.create_db("db")
    live, dead = random.randbytes(300_000), random.randbytes(300_000)

    def att(data: bytes) -> dict:
        return {"blob": {"content_type": "image/png", "data": base64.b64encode(data).decode()}}

    r = await db.put({"_id": "a", "_attachments": att(dead)})
    await db.put({"_id": "a", "_rev": r["rev"], "_attachments": att(live)})
    await db.put({"_id": "b", "v": 1, "_attachments": att(live)})
    file_before = db.info()["sizes"]["file"]
    await db.compact()
    from couchpy.attachments.access import blobs_for

    assert blobs_for(db).stats()["blobs"] == 1
    assert db.info()["sizes"]["file"] < file_before - 250_000
    meta = blobs_for(db).meta(db.get("a")["_attachments"]["blob"]["digest"])
    assert blobs_for(db).read_all(meta) == live
    await node.aclose()


async def test_failed_compaction_leaves_no_copy_and_the_database_works(tmp_path, monkeypatch):
    node = couchpy.open(tmp_path)
    db = node.create_db("db")
    await db.put({"_id": "x", "v": 1})

    def boom(self, txn):
        raise OSError("disk full")

    monkeypatch.setattr(compactor.Compactor, "final", boom)
    with pytest.raises(OSError):
        await db.compact()
    assert not (db.directory / envswap.NEW).exists()
    assert db.compact_running is False
    assert (await db.put({"_id": "y"}))["ok"]
    assert db.get("x")["v"] == 1
    await node.aclose()


# ------------------------------------------------------------------ sizes, against CouchDB


async def _sizes(session, base: str, db: str) -> dict:
    async with session.get(f"{base}/{db}") as r:
        assert r.status == 200
        return (await r.json())["sizes"]


async def _same_writes(session, base: str, db: str) -> list[int]:
    """The same edits on either server; the `external` size after each step."""
    out = []
    async with session.put(f"{base}/{db}") as r:
        assert r.status == 201
    png = base64.b64encode(bytes(range(256)) * 4).decode()
    steps = [
        ("put", "a", {"x": 1, "s": "hello world", "n": [1, 2.5, None, True]}),
        ("put", "b", {"x": 1, "_attachments": {"f.png": {"content_type": "image/png", "data": png}}}),
        ("update", "a", {"x": 22, "nested": {"deep": ["é", "☃"]}}),
        ("update", "b", {"y": 2}),  # the attachment is dropped with this revision
        ("delete", "a", None),
        ("conflict", "c", None),
        ("put", "_local/chk", {"seq": 12}),  # _local documents are not counted
    ]
    revs: dict[str, str] = {}
    for kind, docid, body in steps:
        if kind == "conflict":
            docs = [{"_id": docid, "_rev": "1-" + "a" * 32, "v": 1}, {"_id": docid, "_rev": "1-" + "b" * 32, "v": 22}]
            async with session.post(f"{base}/{db}/_bulk_docs", json={"docs": docs, "new_edits": False}) as r:
                assert r.status == 201
        elif kind == "delete":
            async with session.delete(f"{base}/{db}/{docid}", params={"rev": revs[docid]}) as r:
                assert r.status == 200
        else:
            doc = dict(body, **({"_rev": revs[docid]} if kind == "update" else {}))
            async with session.put(f"{base}/{db}/{docid}", json=doc) as r:
                assert r.status == 201, await r.text()
                revs[docid] = (await r.json())["rev"]
        out.append((await _sizes(session, base, db))["external"])
    return out


async def test_external_size_is_couchdbs(client, couch_client, server, couchdb, dbname):
    ours = await _same_writes(client, server.base, dbname)
    theirs = await _same_writes(couch_client, couchdb.base, dbname)
    assert ours == theirs
    await client.delete(f"/{dbname}")
    await couch_client.delete(f"/{dbname}")


async def test_sizes_and_progress_through_http(client, server, db):
    docs = [{"_id": f"d{i:04d}", "text": "z" * 500} for i in range(2000)]
    async with client.post(f"/{db}/_bulk_docs", json={"docs": docs}) as r:
        rows = await r.json()
    docs = [{"_id": row["id"], "_rev": row["rev"], "text": "w" * 500} for row in rows]
    async with client.post(f"/{db}/_bulk_docs", json={"docs": docs}) as r:
        assert r.status == 201
    before = await _sizes(client, server.base, db)
    # active counts only the live revisions: well below the file that still holds both
    assert before["external"] == 2000 * len('{"text":"' + "w" * 500 + '"}')
    assert before["active"] < before["file"] * 0.75, before
    async with client.post(f"/{db}/_compact", json={}) as r:
        assert r.status == 202
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with client.get("/_active_tasks") as r:
            tasks = [t for t in await r.json() if t.get("database") == db]
        seen += tasks
        async with client.get(f"/{db}") as r:
            info = await r.json()
        if not info["compact_running"] and not tasks:
            break
        await asyncio.sleep(0.01)
    for t in seen:
        assert t["type"] == "database_compaction" and t["phase"] == "document_copy"
        assert 0 <= t["progress"] <= 100 and t["changes_done"] <= t["total_changes"]
    after = info["sizes"]
    assert after["external"] == before["external"]
    assert after["file"] < before["file"] * 0.6, (before, after)
    assert after["active"] <= after["file"]


async def test_long_ids_survive_compaction(tmp_path):
    """Ids longer than an LMDB key (stored as a prefix and a digest) are copied like any other."""
    node = couchpy.open(tmp_path)
    db = node.create_db("db")
    ids = ["x" * 600 + str(i) for i in range(5)] + ["é" * 400]
    revs = {}
    for docid in ids:
        r = await db.put({"_id": docid, "v": 1})
        revs[docid] = (await db.put({"_id": docid, "_rev": r["rev"], "v": 2}))["rev"]
    await db.put({"_id": "_local/" + "l" * 700, "v": 3})
    task = asyncio.create_task(db.compact())
    revs[ids[0]] = (await db.put({"_id": ids[0], "_rev": revs[ids[0]], "v": 3}))["rev"]
    await task
    for docid, rev in revs.items():
        assert db.get(docid)["_rev"] == rev
    assert db.get("_local/" + "l" * 700)["v"] == 3
    assert sorted(i.id for i in db.changes_since(0)) == sorted(ids)
    await node.aclose()


def _stored_bodies(db) -> list[bytes]:
    with db.store.read() as txn:
        return [v for _, v in txn.cursor(db=db.store.db("bodies"))]


async def _profiles(db, n: int) -> None:
    rng = random.Random(5)
    words = "alpha beta gamma delta epsilon river mountain city north south".split()
    docs = [{"_id": f"u{i:05d}", "type": "user", "name": f"{rng.choice(words)} {rng.choice(words)}",
             "email": f"user{i}@example.com", "age": rng.randint(18, 90), "tags": rng.sample(words, 3),
             "bio": " ".join(rng.choice(words) for _ in range(12))} for i in range(n)]
    assert all(r["ok"] for r in await db.bulk_docs(docs))


async def test_compaction_compresses_bodies_and_plain_ones_keep_working(tmp_path):
    node = couchpy.open(tmp_path)
    db = node.create_db("db")
    await _profiles(db, 1500)
    before = {i: db.get(f"u{i:05d}") for i in range(0, 1500, 7)}
    assert all(v[:1] == b"{" for v in _stored_bodies(db))  # written as JSON, read as before
    await db.compact()
    stored = _stored_bodies(db)
    assert all(v[:1] == bodycodec.TAG for v in stored)
    assert sum(map(len, stored)) < 0.5 * sum(len(db.codec.decode(v)) for v in stored)
    for i, doc in before.items():
        assert db.get(doc["_id"]) == doc
        assert orjson.loads(db.get_json(doc["_id"])[1]) == doc
    # new writes are compressed with the database's dictionary; old and new read alike
    r = await db.put({"_id": "u00001", "_rev": db.get("u00001")["_rev"], "v": 2})
    assert db.get("u00001") == {"_id": "u00001", "_rev": r["rev"], "v": 2}
    fresh = await db.put({"_id": "new", "type": "user", "name": "gamma delta", "bio": "river city north " * 3})
    assert db.get("new")["_rev"] == fresh["rev"]
    await node.aclose()
    node = couchpy.open(tmp_path)
    db = node.get_db("db")
    assert db.get("new")["bio"] == "river city north " * 3
    await node.aclose()


async def test_file_compression_none_stores_json(tmp_path):
    node = couchpy.open(tmp_path)
    node.config.set("couchdb", "file_compression", "none")
    db = node.create_db("db")
    await _profiles(db, 300)
    await db.compact()
    assert all(v[:1] == b"{" for v in _stored_bodies(db))
    assert db.get("u00003")["type"] == "user"
    await node.aclose()


async def test_every_read_answers_the_same_after_bodies_are_compressed(client, server, db):
    rng = random.Random(9)
    words = "alpha beta gamma delta epsilon river mountain city north south".split()
    docs = [{"_id": f"p{i:04d}", "type": "user", "name": rng.choice(words), "age": rng.randint(18, 90),
             "bio": " ".join(rng.choice(words) for _ in range(10))} for i in range(400)]
    docs.append({"_id": "_design/d", "views": {"by_age": {"map": "function(doc){ if (doc.age) emit(doc.age, null); }"}}})
    async with client.post(f"/{db}/_bulk_docs", json={"docs": docs}) as r:
        assert r.status == 201
    async with client.post(f"/{db}/_index", json={"index": {"fields": ["name"]}}) as r:
        assert r.status == 200

    async def answers() -> list:
        out = []
        for method, path, kw in [
            ("GET", "/p0007", {}),
            ("GET", "/_all_docs", {"params": {"include_docs": "true"}}),
            ("GET", "/_changes", {"params": {"include_docs": "true"}}),
            ("POST", "/_find", {"json": {"selector": {"name": "river"}, "sort": ["name"]}}),
            ("POST", "/_find", {"json": {"selector": {"age": {"$gt": 50}}}}),
            ("GET", "/_design/d/_view/by_age", {"params": {"include_docs": "true", "limit": "50"}}),
        ]:
            async with client.request(method, f"/{db}{path}", **kw) as r:
                assert r.status == 200, (path, await r.text())
                body = await r.json()
            if isinstance(body, dict):
                body.pop("last_seq", None)
                body.pop("bookmark", None)
                for row in body.get("results", []):
                    row.pop("seq", None)
            out.append(body)
        return out

    before = await answers()
    async with client.post(f"/{db}/_compact", json={}) as r:
        assert r.status == 202
    # compaction swaps in a new environment: wait until the database runs on it
    directory = next(p for p in (server.data_dir / "dbs").iterdir() if p.name.startswith(db + "."))
    inode = (directory / "main" / "data.mdb").stat().st_ino
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with client.get(f"/{db}") as r:
            running = (await r.json())["compact_running"]
        if not running and (directory / "main" / "data.mdb").stat().st_ino != inode:
            break
        await asyncio.sleep(0.05)
    assert await answers() == before


async def test_purge_queued_behind_the_swap_writes_into_the_new_environment(tmp_path, monkeypatch):
    """A purge (or a new `_purged_infos_limit`) asked while compaction's exclusive final phase
    runs is applied after the swap: it must use the new environment's sub-database handle, not
    one taken when it was asked (lmdb.Error, a 500, before)."""
    started = threading.Event()
    final = compactor.Compactor.final

    def slow_final(self, txn):  # the real final phase, begun a little later
        started.set()
        time.sleep(0.3)  # the purge and the limit below are asked meanwhile
        return final(self, txn)

    monkeypatch.setattr(compactor.Compactor, "final", slow_final)
    node = couchpy.open(tmp_path)
    db = node.create_db("db")
    revs = [r["rev"] for r in await db.bulk_docs([{"_id": f"d{i}", "v": i} for i in range(50)])]
    task = asyncio.create_task(db.compact())
    for _ in range(10000):  # bounded
        if started.is_set():
            break
        await asyncio.sleep(0.001)
    assert started.is_set() and not task.done()
    purged = asyncio.create_task(db.purge({"d1": [revs[1]]}))
    limit = asyncio.create_task(db.set_purged_infos_limit(7))
    await task
    assert await purged == {"d1": [revs[1]]}
    await limit
    assert db.get_docinfo("d1") is None and db.purged_infos_limit == 7
    assert [i["id"] for i in db.purged_infos()] == ["d1"]
    await node.aclose()


@pytest.mark.parametrize("limit", [None, 1])
async def test_a_document_purged_during_compaction_stays_purged(tmp_path, monkeypatch, limit):
    """A purge that removes a whole document while compaction copies leaves no sequence for the
    catch-up to find: the copy must drop it in the final phase, or the swap brings it back
    (found by test_partition_sizes in CI: the document reappeared and a new write of it was a
    409). With `_purged_infos_limit` 1, the infos of all but the last purge are gone by then and
    the copy's documents are checked against the live ones instead."""
    copied = threading.Event()
    go_on = threading.Event()
    copy = compactor.Compactor.copy

    def paused_copy(self):  # the real copy, then a pause while the purges happen
        copy(self)
        copied.set()
        assert go_on.wait(30)

    monkeypatch.setattr(compactor.Compactor, "copy", paused_copy)
    node = couchpy.open(tmp_path)
    db = node.create_db("db", partitioned=True)
    long_id = "l" * 500 + ":1"  # a long id (stored by hash, couchpy.longkeys) too
    ids = ["a:0", "a:1", "b:0", long_id]
    revs = {r["id"]: r["rev"] for r in await db.bulk_docs([{"_id": i, "v": i[:5]} for i in ids])}
    if limit is not None:
        await db.set_purged_infos_limit(limit)
    task = asyncio.create_task(db.compact())
    for _ in range(10000):  # bounded
        if copied.is_set():
            break
        await asyncio.sleep(0.001)
    assert copied.is_set() and not task.done()
    await db.purge({long_id: [revs[long_id]]})
    await db.purge({"a:0": [revs["a:0"]]})
    go_on.set()
    await task
    for docid in (long_id, "a:0"):
        assert db.get_docinfo(docid) is None, docid
        with pytest.raises(NotFound):
            db.get(docid)
    assert sorted(r.id for r in db.changes_since(0)) == ["a:1", "b:0"]
    assert db.info()["doc_count"] == 2
    assert db.partition_info("a")["doc_count"] == 1 and db.partition_info("l" * 500)["doc_count"] == 0
    await db.put({"_id": long_id, "v": "again"})  # a new document again, not a conflict
    await node.aclose()
