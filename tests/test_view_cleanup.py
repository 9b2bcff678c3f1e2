"""`_view_cleanup` of view indexes: the index of a deleted design document is closed and its
directory removed (with a compaction's leftovers of it); a live one, and what is not an index
directory, stay."""

from __future__ import annotations

import couchpy
from couchpy.views import manager


async def test_cleanup_removes_only_unused_view_indexes(tmp_path):
    node = couchpy.open(tmp_path / "data")
    try:
        db = node.create_db("v")
        await db.put({"_id": "_design/keep", "views": {"v": {"map": "function(doc){ emit(doc.n, 1); }"}}})
        gone_rev = (await db.put({"_id": "_design/gone",
                                  "views": {"v": {"map": "function(doc){ emit(doc._id, 2); }"}}}))["rev"]
        await db.put({"_id": "a", "n": 1})
        for ddoc in ("keep", "gone"):
            await manager.query_view(node, db, ddoc, "v", {}, True)
        keep, gone = manager.index_by_name(node, db, "keep"), manager.index_by_name(node, db, "gone")
        views = db.directory / "views"
        (views / f"{keep.spec.sig}.compact").mkdir()
        (views / f"{gone.spec.sig}.old").mkdir()
        (views / "not-an-index").mkdir()

        await db.put({"_id": "_design/gone", "_rev": gone_rev, "_deleted": True})
        await manager.cleanup(node, db)

        assert gone.closed and not keep.closed
        assert manager.open_indexes(db) == [keep]
        assert sorted(p.name for p in views.iterdir()) == sorted(
            [keep.spec.sig, f"{keep.spec.sig}.compact", "not-an-index"])
        rows = (await manager.query_view(node, db, "keep", "v", {}, True))["rows"]
        assert rows == [{"id": "a", "key": 1, "value": 1}]
    finally:
        await node.aclose()
