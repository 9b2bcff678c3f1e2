"""Partitioned databases in the engine: a partition query reads its partition's rows only (a range
of the index, not a filter over it), and the database stays partitioned across compaction and
reopening."""

from __future__ import annotations

import orjson
import pytest

import couchpy
from couchpy.errors import QueryParseError
from couchpy.mango import find as mango_find
from couchpy.mango import indexes
from couchpy.views import args as qargs
from couchpy.views import manager
from couchpy.views.query import TooBig, run_query

OTHERS = 600  # documents in the other partition: far more than any budget below


@pytest.fixture
async def node(tmp_path):
    n = couchpy.open(tmp_path)
    yield n
    await n.aclose()


async def _fill(db) -> None:
    docs = [{"_id": f"b:{i:04}", "v": i % 10} for i in range(OTHERS)]
    docs += [{"_id": "a:1", "v": 3}, {"_id": "a:2", "v": 4}]
    assert all("ok" in r for r in await db.bulk_docs(docs))


async def test_partition_view_query_reads_its_partition_only(node):
    db = node.create_db("p", partitioned=True)
    await _fill(db)
    await db.put({"_id": "_design/d", "views": {"v": {"map": "function(doc){ emit(doc.v, null); }",
                                                      "reduce": "_count"}}})
    ix = manager.index_by_name(node, db, "d")
    await ix.update(node, "_design/d")
    vi = ix.spec.view_index("v")

    def query(partition: str, budget: int, **params) -> dict:
        a = qargs.parse({"partition": partition, "reduce": "false", **params}, True)
        return run_query(ix, vi, a, False, None, str, budget=budget)

    # a budget of a few rows is enough for partition a: the other partition's rows are never read
    out = query("a", 4)
    assert [r["id"] for r in out["rows"]] == ["a:1", "a:2"]
    assert out["total_rows"] == OTHERS + 2 and out["offset"] == 0
    assert [r["id"] for r in query("a", 4, startkey="4")["rows"]] == ["a:2"]
    with pytest.raises(TooBig):  # the budget does count rows read
        query("b", 4)
    reduced = run_query(ix, vi, qargs.parse({"partition": "b"}, True), True, None, str)
    assert reduced["rows"] == [{"key": None, "value": OTHERS}]


async def test_partition_find_examines_its_partition_only(node):
    db = node.create_db("p", partitioned=True)
    await _fill(db)
    body = {"selector": {"v": {"$gte": 0}}, "partition": "a", "execution_stats": True}
    # without an index: the partition's id range of _all_docs
    out = await mango_find.find(node, db, dict(body))
    assert [d["_id"] for d in out["docs"]] == ["a:1", "a:2"]
    assert out["execution_stats"]["total_docs_examined"] == 2
    # with a (partitioned, by default) index: the partition's range of the index
    await indexes.create_index(db, {"index": {"fields": ["v"]}, "name": "v"})
    out = await mango_find.find(node, db, dict(body))
    assert "warning" not in out
    # an exact plan answers with ready-made JSON
    assert [d["_id"] for d in orjson.loads(orjson.dumps(out["docs"]))] == ["a:1", "a:2"]
    assert out["execution_stats"]["total_keys_examined"] == 2


async def test_partitioned_survives_compaction_and_reopening(tmp_path):
    node = couchpy.open(tmp_path)
    try:
        db = node.create_db("p", partitioned=True)
        await db.put({"_id": "a:1"})
        await db.compact()
        assert db.info()["props"] == {"partitioned": True}
    finally:
        await node.aclose()
    node = couchpy.open(tmp_path)
    try:
        db = node.get_db("p")
        assert db.partitioned and db.info()["props"] == {"partitioned": True}
        assert node.create_db("plain").info()["props"] == {}
    finally:
        await node.aclose()


async def test_partitioned_view_leaves_design_documents_out(node):
    """Design documents belong to no partition: a partitioned view does not map them, even with
    `include_design` (CouchDB's indexer fails on them with a 500)."""
    db = node.create_db("p", partitioned=True)
    await db.put({"_id": "a:1"})
    await db.put({"_id": "_design/d", "options": {"include_design": True},
                  "views": {"v": {"map": "function(doc){ emit(doc._id, null); }"}}})
    out = await manager.query_view(node, db, "d", "v", {"partition": "a"}, True)
    assert [r["id"] for r in out["rows"]] == ["a:1"] and out["total_rows"] == 1


async def test_a_database_created_again_partitioned_gets_partitioned_views(node):
    """The same design document revision in a database of the same name, deleted and created
    again partitioned: its view is partitioned now (no parse of the old database is reused)."""
    ddoc = {"_id": "_design/d", "views": {"v": {"map": "function(doc){ emit(doc._id, null); }"}}}
    db = node.create_db("x")
    await db.put(dict(ddoc))
    await db.put({"_id": "a:1"})
    assert len((await manager.query_view(node, db, "d", "v", {}, True))["rows"]) == 1
    await node.delete_db("x")
    db = node.create_db("x", partitioned=True)
    await db.put(dict(ddoc))
    await db.put({"_id": "a:1"})
    with pytest.raises(QueryParseError):
        await manager.query_view(node, db, "d", "v", {}, True)
    assert len((await manager.query_view(node, db, "d", "v", {"partition": "a"}, True))["rows"]) == 1
