"""Node.fence: a database that takes no more document writes (a cluster copy leaving its node
holds still while it is drained; couchpy_cli/cluster_agent.py). Writes already handed to the
writer when the fence goes up are committed before `fence` returns; every later one is refused
with a 503; `_local` documents (never replicated) still go in; `unfence` ends it."""

from __future__ import annotations

import asyncio

import pytest

import couchpy
from couchpy.errors import Unavailable


def test_a_fenced_database_refuses_document_writes_and_commits_those_taken_before(tmp_path):
    async def go():
        node = couchpy.open(tmp_path / "data")
        try:
            db = node.create_db("f")
            before = [asyncio.ensure_future(db.put({"_id": f"b{i}"})) for i in range(20)]
            await asyncio.sleep(0)  # they reach the writer
            await node.fence("f", "leaving")
            present = {i.id for i in db.changes_since(0)}  # what the fenced copy holds, for good
            results = await asyncio.gather(*before, return_exceptions=True)
            # a write is either acknowledged and committed when the fence is up, or refused
            acked = {r["id"] for r in results if isinstance(r, dict)}
            assert all(isinstance(r, dict) or isinstance(r, Unavailable) for r in results), results
            assert acked and acked <= present, (acked, present)
            seq = db.update_seq
            with pytest.raises(Unavailable) as refused:
                await db.put({"_id": "after"})
            assert (refused.value.status, refused.value.error, refused.value.reason) == (503, "unavailable", "leaving")
            with pytest.raises(Unavailable):
                await db.bulk_docs([{"_id": "x"}, {"_id": "_local/y"}])
            with pytest.raises(Unavailable):  # replication's writes too
                await db.bulk_docs([{"_id": "r", "_rev": "1-abc"}], new_edits=False)
            assert db.update_seq == seq and db.get_docinfo("after") is None and db.get_docinfo("r") is None
            await db.put({"_id": "_local/checkpoint", "n": 1})  # a copy's own: not fenced
            assert db.get_local("_local/checkpoint")["n"] == 1
            node.unfence("f")
            assert (await db.put({"_id": "after"}))["ok"]
        finally:
            await node.aclose()

    asyncio.run(go())
