"""A database's sequence and counts are never behind the documents a reader can already see.

The group-commit writer (couchpy.writer) commits in a worker thread and publishes the new
metadata on the event loop when the commit returns. Between the two, a request served on the
loop can read the new document from LMDB; `GET /db` right after it must then not answer the old
`update_seq` (a client that saw a write, then the database's sequence, would conclude it was
lost; CI once met exactly that). The test holds the loop without yielding while the commit runs
in its thread, so that the window is not a matter of luck.
"""

from __future__ import annotations

import asyncio
import time

import couchpy


def _visible(db, docid: str) -> bool:
    return db.get_docinfo(docid) is not None  # a fresh LMDB read transaction


async def test_a_committed_write_is_counted_before_the_loop_publishes_it(tmp_path):
    node = couchpy.open(tmp_path)
    try:
        db = node.create_db("m")
        await db.put({"_id": "before"})
        seq, count = db.update_seq, db.info()["doc_count"]
        node.db_updates.flush_now()
        since = node.db_updates.seq
        write = asyncio.ensure_future(db.put({"_id": "after"}))
        for _ in range(1000):  # until the writer has taken the update to commit in its thread
            await asyncio.sleep(0)
            if db.writer.in_flight:
                break
        # the loop is held here: the writer cannot resume and publish until this returns
        deadline = time.monotonic() + 10
        while not _visible(db, "after"):
            assert time.monotonic() < deadline, "the commit did not land"
            time.sleep(0.001)
        assert not write.done()
        assert db.update_seq == seq + 1
        info = db.info()
        assert info["doc_count"] == count + 1
        assert int(str(info["update_seq"]).split("-")[0]) == seq + 1
        await write
        assert db.update_seq == seq + 1 and db.info()["doc_count"] == count + 1
        # the writer still announces the commit to `_db_updates`, though a reader loaded its
        # metadata first
        node.db_updates.flush_now()
        assert [e.db_name for e in node.db_updates.events(since, None)] == ["m"]
    finally:
        await node.aclose()
