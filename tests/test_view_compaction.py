"""View index compaction gives back the pages updates left free, answers the same afterwards, and
keeps answering queries while it runs."""

from __future__ import annotations

import asyncio

import pytest

import couchpy
from couchpy.views import manager

MAP = "function(doc){ if (doc.name) emit([doc.name, doc.n], doc.city); }"
N = 3000


@pytest.fixture
async def node(tmp_path):
    n = couchpy.open(tmp_path / "data")
    yield n
    await n.aclose()


async def write_rounds(db, rounds: int, revs: dict, tag: str = "r") -> None:
    for rnd in range(rounds):
        docs = []
        for i in range(N):
            doc = {"_id": f"d{i:05}", "name": f"person {i} {tag}{rnd}", "n": i, "city": "Lyon" * (1 + i % 5)}
            if doc["_id"] in revs:
                doc["_rev"] = revs[doc["_id"]]
            docs.append(doc)
        for k in range(0, N, 500):
            for r in await db.bulk_docs(docs[k:k + 500]):
                revs[r["id"]] = r["rev"]


async def answers(node, db) -> list:
    out = []
    for view, raw in (("by_name", {"reduce": "false", "skip": "17", "limit": "40"}),
                      ("by_name", {"group_level": "1", "limit": "30", "descending": "true"}),
                      ("by_name", {})):
        out.append(await query(node, db, view, raw))
    return out


async def query(node, db, view, raw):
    return await manager.query_view(node, db, "d", view, raw, True)


async def test_compaction_gives_space_back_and_answers_the_same(node):
    db = node.create_db("v")
    await db.put({"_id": "_design/d", "views": {"by_name": {"map": MAP, "reduce": "_count"}}})
    revs: dict = {}
    await write_rounds(db, 1, revs)
    await query(node, db, "by_name", {"limit": "1"})  # the index is built
    await write_rounds(db, 2, revs)
    before = await answers(node, db)
    ix = manager.index_by_name(node, db, "d")
    bloated = ix.store.file_size()

    await manager.compact(node, db, "d")
    compacted = ix.store.file_size()
    assert compacted < bloated * 0.75, (bloated, compacted)
    assert ix.info()["sizes"]["file"] == compacted
    assert await answers(node, db) == before
    # the swapped-in environment takes updates as before
    await write_rounds(db, 1, revs, tag="after")
    rows = (await query(node, db, "by_name", {"reduce": "false", "limit": "1"}))["rows"]
    assert rows[0]["key"][0] == "person 0 after0"
    assert (await query(node, db, "by_name", {}))["rows"] == [{"key": None, "value": N}]
    leftovers = sorted(p.name for p in (db.directory / "views").iterdir())
    assert leftovers == [ix.spec.sig]


async def test_queries_go_on_during_compaction(node):
    db = node.create_db("q")
    await db.put({"_id": "_design/d", "views": {"by_name": {"map": MAP, "reduce": "_count"}}})
    revs: dict = {}
    await write_rounds(db, 2, revs)
    expected = await answers(node, db)
    compaction = asyncio.ensure_future(manager.compact(node, db, "d"))
    seen = 0
    while not compaction.done() and seen < 500:
        assert await answers(node, db) == expected
        seen += 1
        await asyncio.sleep(0)
    await compaction
    assert seen > 0
    assert await answers(node, db) == expected


async def test_a_copy_left_by_a_crash_is_recovered_or_dropped(node, tmp_path):
    db = node.create_db("c")
    await db.put({"_id": "_design/d", "views": {"by_name": {"map": MAP, "reduce": "_count"}}})
    await write_rounds(db, 1, {})
    expected = await answers(node, db)
    ix = manager.index_by_name(node, db, "d")
    views, sig = ix.directory.parent, ix.spec.sig
    # a sealed copy, then the crash between the two renames: no live environment at all
    (views / f"{sig}.compact").mkdir()
    ix.store.env.copy(str(views / f"{sig}.compact"), compact=True)
    ix.close()
    manager._indexes.of(db).clear()
    (views / sig).rename(views / f"{sig}.old")
    assert await answers(node, db) == expected
    assert sorted(p.name for p in views.iterdir()) == [sig]


# ---- over HTTP, against the real CouchDB 3.4.3 as well ----

from tests.parity import pdb, peer  # noqa: E402,F401  (pytest fixtures)


async def test_compacting_a_view_answers_as_couchdb(peer, pdb):
    async with peer.post(f"/{pdb}/_compact/nope", json={}) as r:
        assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing"})
    ddoc = {"views": {"v": {"map": "function(doc){ emit(doc.n, null); }"}}}
    async with peer.put(f"/{pdb}/_design/d", json=ddoc) as r:
        assert r.status == 201
    async with peer.post(f"/{pdb}/_bulk_docs", json={"docs": [{"n": i} for i in range(50)]}) as r:
        assert r.status == 201
    async with peer.post(f"/{pdb}/_compact/d", json={}) as r:
        assert (r.status, await r.json()) == (202, {"ok": True})
    # the index answers throughout and after, whatever the compaction has got to
    for _ in range(3):
        async with peer.get(f"/{pdb}/_design/d/_view/v", params={"limit": "2"}) as r:
            body = await r.json()
            assert r.status == 200 and [row["key"] for row in body["rows"]] == [0, 1]
    async with peer.get(f"/{pdb}/_design/d/_info") as r:
        info = (await r.json())["view_index"]
        assert r.status == 200 and isinstance(info["compact_running"], bool)
