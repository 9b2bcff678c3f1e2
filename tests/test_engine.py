"""The engine as a library (no server): LRU of open databases, map growth, compaction, group commit."""

from __future__ import annotations

import asyncio

import pytest

import couchpy
from couchpy import storage
from couchpy.config import Config
from couchpy.errors import Conflict, NotFound, PreconditionFailed


def _node(tmp_path, **couchdb):
    config = Config(tmp_path / "couchpy.ini")
    for k, v in couchdb.items():
        config.set("couchdb", k, str(v))
    return couchpy.open(tmp_path, config=config)


async def test_many_databases_through_a_small_lru(tmp_path):
    node = _node(tmp_path, max_dbs_open=20)
    names = [f"user-{i:04d}" for i in range(300)]
    for i, name in enumerate(names):
        db = node.create_db(name)
        await db.put({"_id": "profile", "n": i})
        assert len(node._open) <= 20
    # every database is still there after being evicted, with its data
    for i, name in enumerate(names):
        assert node.get_db(name).get("profile")["n"] == i
    assert sorted(node.all_dbs()) == names
    with pytest.raises(PreconditionFailed):
        node.create_db("user-0001")
    await node.delete_db("user-0001")
    with pytest.raises(NotFound):
        node.get_db("user-0001")
    await node.aclose()
    # and after reopening the node
    node = _node(tmp_path)
    assert len(node.all_dbs()) == 299
    assert node.get_db("user-0299").get("profile")["n"] == 299
    await node.aclose()


async def test_map_grows_instead_of_failing(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "INITIAL_MAP_SIZE", 1 << 20)  # a 1 MiB map fills after a few docs
    node = _node(tmp_path)
    db = node.create_db("big")
    blob = "x" * 50_000
    results = await db.bulk_docs([{"_id": f"d{i}", "blob": blob} for i in range(100)])
    assert all(r.get("ok") for r in results)
    assert db.store.env.info()["map_size"] > 1 << 20
    assert db.get("d99")["blob"] == blob
    assert db.info()["doc_count"] == 100
    await node.aclose()


async def test_compaction_drops_old_bodies_and_keeps_serving(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("c")
    rev = None
    for i in range(50):
        doc = {"_id": "a", "payload": "y" * 20_000, "i": i}
        if rev:
            doc["_rev"] = rev
        rev = (await db.put(doc))["rev"]
    before = db.store.file_size()
    compaction = asyncio.create_task(db.compact())
    # writes issued during compaction wait for it and then succeed
    other = await db.put({"_id": "b"})
    await compaction
    assert db.get("a")["i"] == 49 and db.get("b")["_rev"] == other["rev"]
    assert db.store.file_size() < before
    info = db.get("a", revs_info=True)
    statuses = {r["status"] for r in info["_revs_info"][1:]}
    assert statuses == {"missing"}  # old revision bodies are gone, the history is kept
    await node.aclose()


async def test_concurrent_writes_share_commits_and_conflict_correctly(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("g")
    txn_before = db.store.env.info()["last_txnid"]
    results = await asyncio.gather(*(db.put({"_id": f"d{i}"}) for i in range(200)))
    commits = db.store.env.info()["last_txnid"] - txn_before
    # group commit: the 200 concurrent writes are committed in a few durable transactions, not 200
    assert 1 <= commits <= 20, commits
    assert len({r["id"] for r in results}) == 200
    assert db.info()["doc_count"] == 200 and db.update_seq == 200
    # two concurrent updates of the same revision: exactly one wins
    rev = results[0]["rev"]
    outcomes = await asyncio.gather(
        db.put({"_id": "d0", "_rev": rev, "v": 1}), db.put({"_id": "d0", "_rev": rev, "v": 2}),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1
    assert sum(isinstance(o, dict) and o["ok"] for o in outcomes) == 1
    await node.aclose()


async def test_replicated_branches_make_conflicts_with_a_deterministic_winner(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("r")
    base = await db.put({"_id": "x", "v": 0})
    h = base["rev"].split("-")[1]
    await db.bulk_docs([
        {"_id": "x", "_rev": "2-aaa", "v": "a", "_revisions": {"start": 2, "ids": ["aaa", h]}},
        {"_id": "x", "_rev": "2-bbb", "v": "b", "_revisions": {"start": 2, "ids": ["bbb", h]}},
    ], new_edits=False)
    doc = db.get("x", conflicts=True)
    assert doc["_rev"] == "2-bbb" and doc["_conflicts"] == ["2-aaa"]
    # deleting the winner promotes the other branch
    await db.put({"_id": "x", "_rev": "2-bbb", "_deleted": True})
    doc = db.get("x", deleted_conflicts=True)
    assert doc["_rev"] == "2-aaa" and doc["v"] == "a" and len(doc["_deleted_conflicts"]) == 1
    await node.aclose()


async def test_a_database_in_use_is_not_evicted(tmp_path):
    from couchpy.node import pinning_scope

    node = _node(tmp_path, max_dbs_open=2)
    for name in ("a", "b", "c"):
        await node.create_db(name).put({"_id": "x"})
    with pinning_scope():
        held = node.get_db("a")
        for name in ("b", "c", "b", "c"):  # would push "a" out of a 2-entry LRU
            node.get_db(name)
        assert not held.closed and held.get("x")["_id"] == "x"
    node.get_db("b"), node.get_db("c")  # once released, it may go
    assert held.closed
    assert node.get_db("a").get("x")["_id"] == "x"  # and comes back on demand
    await node.aclose()


async def test_offsets_while_paging_match_a_full_count(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("p")
    await db.bulk_docs([{"_id": f"k{i:03d}"} for i in range(300)])
    await db.bulk_docs([{"_id": f"k{i:03d}", "_deleted": True, "_rev": db.get(f"k{i:03d}")["_rev"]}
                        for i in range(0, 300, 7)])
    live = sorted(i.id for i in db.iter_docinfos() if not i.deleted)
    for key in ["k000", "k050", "k123", "k124", "k299", "k3", "a", "k200", "k100"]:  # forward, then back
        assert db.count_live_before(key) == sum(k < key for k in live), key
    for key in ["z", "k250", "k120", "k000", "k130"]:
        assert db.count_live_before(key, descending=True) == sum(k > key for k in live), key
    await node.aclose()


async def test_pending_counts_stay_exact_while_paging(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("q")
    await db.bulk_docs([{"_id": f"d{i}"} for i in range(200)])
    rev = db.get("d5")["_rev"]
    await db.put({"_id": "d5", "_rev": rev, "v": 2})  # moves d5 to the end of the by-seq index
    seqs = [i.seq for i in db.changes_since(0)]
    for since in [0, 10, 10, 57, 150, 199, 201, 300]:
        assert db.count_changes_after(since) == sum(s > since for s in seqs), since
    await node.aclose()


async def test_replication_state_fields_are_kept(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("_replicator")
    await db.put({"_id": "r", "source": "a", "target": "b", "_replication_state": "completed",
                  "_replication_stats": {"docs_written": 1}})
    doc = db.get("r")
    assert doc["_replication_state"] == "completed" and doc["_replication_stats"] == {"docs_written": 1}
    await node.aclose()


async def test_a_plain_read_does_not_parse_the_revision_tree(tmp_path, monkeypatch):
    """A document's stored record names its winning revision and whether it is deleted ahead
    of its revision tree (up to revs_limit, 1000, revisions): a plain read of the winner needs
    neither the tree nor its parse, which cost 2.3 ms of the 2.4 of such a read at 1000."""
    from couchpy import docinfo, revtree

    node = couchpy.open(tmp_path)
    try:
        db = node.create_db("h")
        ids = [f"{n:032x}" for n in range(1000, 0, -1)]
        await db.bulk_docs([{"_id": "long", "_rev": f"1000-{ids[0]}", "n": 1,
                             "_revisions": {"start": 1000, "ids": ids}}], new_edits=False)
        parsed = []
        real = revtree.decode
        monkeypatch.setattr(docinfo.revtree, "decode", lambda data: parsed.append(1) or real(data))
        assert db.get("long") == {"_id": "long", "_rev": f"1000-{ids[0]}", "n": 1}
        assert parsed == []
        assert "_revisions" in db.get("long", revs=True)  # asked for: parsed
        assert parsed
    finally:
        await node.aclose()
