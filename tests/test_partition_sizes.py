"""Per-partition counts and sizes (couchpy.partition_sizes) in the engine: the records every write
keeps equal a recount from the documents after any sequence of edits, deletions, replicated
conflicts, purges, compactions (also while writes go on) and reopenings; a database written
before the records existed gets them at its first write; and `[couchdb] max_partition_size`
refuses what CouchDB 3.4.3 refuses (tests/test_partitions_parity.py sends the same requests to
the real one)."""

from __future__ import annotations

import asyncio
import base64
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import couchpy
from couchpy import compactor, jsonutil, partition_sizes, partitions, sizes
from couchpy.docinfo import body_key
from couchpy.errors import CouchError
from couchpy.updates import META_KEY

PARTITIONS = ["a", "b", "l" * 500]  # a long name: its record key is a prefix and a digest
IDS = [f"{p}:{i}" for p in PARTITIONS for i in range(2)]


def recount(db) -> dict[str, partition_sizes.Counts]:
    """Every partition's counts from the documents themselves (no record read)."""
    totals: dict[str, list[int]] = {}
    with db.store.read() as txn:
        for info in db.iter_docinfos(None, None, False, False):
            partition = partitions.partition_of(info.id)
            if partition is None:
                continue
            t = totals.setdefault(partition, [0, 0, 0, 0])
            t[1 if info.deleted else 0] += 1
            for leaf in info.leaves():
                key = body_key(info.id, leaf)
                raw = txn.get(key, db=db._bodies)
                if raw is not None:
                    t[2] += sizes.body_external(db.codec.decode(raw))
                    t[3] += sizes.stored(key, raw)
    return {p: partition_sizes.Counts(*t) for p, t in totals.items() if any(t)}


def records(db) -> dict[str, partition_sizes.Counts]:
    dbi = db.store.db(partition_sizes.SUBDB)
    with db.store.read() as txn:
        out = {p: partition_sizes.read(txn, dbi, p) for p in PARTITIONS}
        assert txn.stat(dbi)["entries"] == sum(c != partition_sizes.ZERO for c in out.values())
    return {p: c for p, c in out.items() if c != partition_sizes.ZERO}


def check(db) -> None:
    assert db.meta[partition_sizes.READY]
    expected = recount(db)
    assert records(db) == expected
    for p in PARTITIONS:
        c = expected.get(p, partition_sizes.ZERO)
        assert db.partition_info(p) == {"sizes": {"active": c.active, "external": c.external}, "partition": p,
                                        "doc_count": c.doc_count, "doc_del_count": c.doc_del_count}


async def apply(db, op: tuple) -> None:
    kind, i, n = op
    docid = IDS[i % len(IDS)]
    info = db.get_docinfo(docid)
    if kind == "put":
        doc = {"_id": docid, "v": "x" * n}
        if n % 4 == 0:  # some carry an attachment (counted by its length, as CouchDB does)
            doc["_attachments"] = {"t.txt": {"content_type": "text/plain",
                                             "data": base64.b64encode(b"y" * n).decode()}}
        if info is not None and not info.deleted:
            doc["_rev"] = info.rev
        await db.put(doc)
    elif kind == "delete" and info is not None and not info.deleted:
        await db.put({"_id": docid, "_rev": info.rev, "_deleted": True, **({"w": "z" * n} if n % 2 else {})})
    elif kind == "branch":  # a replicated sibling: a conflict (or a new document)
        await db.bulk_docs([{"_id": docid, "_rev": f"1-{n:032x}", "v": n, "_deleted": n % 5 == 0}],
                           new_edits=False)
    elif kind == "purge" and info is not None:
        leaves = info.leaves()
        await db.purge({docid: [leaves[n % len(leaves)]]})
    elif kind == "other":  # design and local documents belong to no partition
        await db.bulk_docs([{"_id": f"_design/d{n % 2}", "n": n}, {"_id": f"_local/l{n}", "n": n}])


OP = st.tuples(st.sampled_from(["put", "put", "put", "delete", "branch", "purge", "purge", "other"]),
               st.integers(0, len(IDS) - 1), st.integers(0, 40))
STEP = st.one_of(OP, st.just(("compact", 0, 0)), st.just(("reopen", 0, 0)))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEP, max_size=30))
def test_records_equal_a_recount_after_any_history(steps):
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            node = couchpy.open(tmp)
            db = node.create_db("p", partitioned=True)
            for step in steps:
                if step[0] == "compact":
                    await db.compact()
                elif step[0] == "reopen":
                    await node.aclose()
                    node = couchpy.open(tmp)
                    db = node.get_db("p")
                else:
                    await apply(db, step)
                check(db)
            await node.aclose()

    asyncio.run(run())


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(before=st.lists(OP, max_size=25), during=st.lists(OP, max_size=25), chunk=st.integers(1, 3))
def test_compaction_during_writes_recounts_every_partition(before, during, chunk):
    """Small chunks: the copy, its catch-up and the exclusive final phase all meet writes."""
    saved = compactor.CHUNK, compactor.FINAL_BELOW
    compactor.CHUNK, compactor.FINAL_BELOW = chunk, 1

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            node = couchpy.open(tmp)
            db = node.create_db("p", partitioned=True)
            for op in before:
                await apply(db, op)
            task = asyncio.create_task(db.compact())
            for op in during:
                await apply(db, op)
            await task
            check(db)
            await node.aclose()

    try:
        asyncio.run(run())
    finally:
        compactor.CHUNK, compactor.FINAL_BELOW = saved


@pytest.fixture
async def node(tmp_path):
    n = couchpy.open(tmp_path)
    yield n
    await n.aclose()


async def test_a_database_without_records_gets_them_at_its_first_write(tmp_path):
    node = couchpy.open(tmp_path)
    db = node.create_db("p", partitioned=True)
    await db.bulk_docs([{"_id": f"{p}:{i}", "v": i} for p in PARTITIONS for i in range(5)])
    await db.put({"_id": "a:0", "_rev": db.get_docinfo("a:0").rev, "_deleted": True})
    expected = recount(db)

    def forget(txn) -> None:  # as a database written before the records existed
        txn.drop(db.store.db(partition_sizes.SUBDB), delete=False)
        meta = dict(db.meta)
        del meta[partition_sizes.READY]
        txn.put(META_KEY, jsonutil.dumps(meta), db=db._meta_db)

    db.store.write(forget)
    await node.aclose()
    node = couchpy.open(tmp_path)
    db = node.get_db("p")
    assert not db.meta.get(partition_sizes.READY)
    before = {p: db.partition_info(p) for p in PARTITIONS}  # counted from the id range meanwhile
    assert before["a"]["doc_count"] == 4 and before["a"]["doc_del_count"] == 1
    await db.put({"_id": "_local/x"})  # any write transaction builds them
    check(db)
    assert records(db) == expected
    assert {p: db.partition_info(p) for p in PARTITIONS} == before
    await node.aclose()


async def test_a_plain_database_keeps_no_records(node):
    db = node.create_db("plain")
    await db.bulk_docs([{"_id": "a:1"}, {"_id": "b:1"}])
    assert records(db) == {}
    assert not db.meta.get(partition_sizes.READY)


def _limit(node, value: str | None) -> None:
    if value is None:
        node.config.delete("couchdb", "max_partition_size")
    else:
        node.config.set("couchdb", "max_partition_size", value)


TEN = "x" * 10  # {"v":"xxxxxxxxxx"}: 18 bytes


async def test_limit_refuses_growth_of_a_full_partition(node):
    db = node.create_db("p", partitioned=True)
    _limit(node, "54")
    # the partition is full only once its size before a request reaches the limit: one request
    # may cross it
    rows = await db.bulk_docs([{"_id": f"a:{i}", "v": TEN} for i in range(4)])
    assert all(r.get("ok") for r in rows)
    assert db.partition_info("a")["sizes"]["external"] == 72
    with pytest.raises(CouchError) as exc:
        await db.put({"_id": "a:new", "v": 1})
    assert (exc.value.status, exc.value.error, exc.value.reason) == (
        403, "partition_overflow", "Partition limit exceeded due to update on 'a:new'")
    rev = db.get_docinfo("a:0").rev
    with pytest.raises(CouchError, match="a:0"):  # larger
        await db.put({"_id": "a:0", "_rev": rev, "v": TEN + "y"})
    with pytest.raises(CouchError, match="a:0"):  # a deletion larger than what it replaces
        await db.put({"_id": "a:0", "_rev": rev, "_deleted": True, "v": TEN * 2})
    res = await db.put({"_id": "a:0", "_rev": rev, "v": "y" * 10})  # the same size passes
    await db.put({"_id": "a:0", "_rev": res["rev"], "v": "y"})  # and smaller
    await db.put({"_id": "a:1", "_rev": db.get_docinfo("a:1").rev, "_deleted": True})
    # other partitions, design and local documents, replicated revisions: never refused
    assert db.partition_info("a")["sizes"]["external"] == 9 + 2 + 18 + 18
    _limit(node, "47")
    rows = await db.bulk_docs([{"_id": "a:2x"}, {"_id": "b:1", "v": TEN}, {"_id": "_design/d"},
                               {"_id": "_local/l", "v": TEN * 9}])
    assert rows[0] == {"id": "a:2x", "error": "partition_overflow",
                       "reason": "Partition limit exceeded due to update on 'a:2x'"}
    assert all(r.get("ok") for r in rows[1:])
    assert await db.bulk_docs([{"_id": "a:9", "_rev": "1-abc", "v": TEN * 9}], new_edits=False) == []
    assert db.get_docinfo("a:9") is not None
    check(db)


@pytest.mark.parametrize("value", ["0", "-1"])
async def test_limit_zero_or_less_is_no_limit(node, value):
    db = node.create_db("p", partitioned=True)
    _limit(node, value)
    for i in range(3):
        await db.put({"_id": f"a:{i}", "v": TEN})


async def test_limit_that_is_no_integer_is_the_default(node):
    db = node.create_db("p", partitioned=True)
    for i, value in enumerate(("abc", "1.5", "", "infinity")):
        _limit(node, value)
        assert partition_sizes.limit(node.config) == partition_sizes.DEFAULT_MAX
        await db.put({"_id": f"a:{i}", "v": TEN})
    _limit(node, None)
    assert partition_sizes.limit(node.config) == 10 * 1024 ** 3
