"""The conflict resolver writes a batch of documents' resolutions together: the merged bodies in
one write, then the losers' deletions in one more (two commits a batch, not two a document), and
a loser is deleted only once its document's merge was written, so that a client's edit racing the
resolver loses nothing (tests/test_conflict_policy_*.py check the resolutions over HTTP).

In process, on a real node: the database's `bulk_docs` is wrapped only to record what each call
wrote, and to make one client edit land between the resolver's read and its write."""

from __future__ import annotations

import hashlib

import couchpy
from couchpy import conflict_merge
from couchpy.conflict_resolver import BATCH, META_FIELD, Resolver, live_leaves


def _rev(seed: str) -> str:
    return "1-" + hashlib.md5(seed.encode()).hexdigest()


async def test_a_batch_of_resolutions_is_two_writes_merges_first(tmp_path):
    node = couchpy.open(tmp_path / "data")
    try:
        db = node.create_db("conflicts")
        ndocs = BATCH + 44  # a full batch and part of another
        ids = [f"c{i:05d}" for i in range(ndocs)]
        await db.bulk_docs([{"_id": d, "_rev": _rev(d + side), "tags": [side]} for d in ids for side in "ab"],
                           new_edits=False)
        await db.set_meta_field(META_FIELD, conflict_merge.parse_policy({"type": "union", "field": "tags"}))

        raced = ids[7]
        kept: list[str] = []  # the raced document's loser: the client's edit replaced the winner's tags
        calls: list[list[dict]] = []
        real = db.bulk_docs

        async def recording(docs, *args, **kwargs):
            if not calls:
                # a client edits the winner of one document after the resolver read it
                winner = db.get_docinfo(raced).rev
                kept.append("a" if winner == _rev(raced + "b") else "b")
                await real([{"_id": raced, "_rev": winner, "tags": ["client"]}])
            calls.append([dict(d) for d in docs])
            return await real(docs, *args, **kwargs)

        db.bulk_docs = recording  # type: ignore[method-assign]
        resolver = Resolver(node)
        for _ in range(10):
            if not await resolver.step():
                break

        # two batches, two writes each; the raced document's merge was refused, and the client's
        # edit moved it to the end of the by-sequence index: it is resolved with the second batch
        tail = ndocs - BATCH + 1
        assert [len(c) for c in calls] == [BATCH, BATCH - 1, tail, tail]
        for merges, deletions in zip(calls[0::2], calls[1::2]):
            assert not any(d.get("_deleted") for d in merges)
            assert all(d.get("_deleted") for d in deletions)
            assert {d["_id"] for d in deletions} <= {d["_id"] for d in merges}
        # the raced document's loser was not deleted with the first batch: its merge had failed
        assert raced in {d["_id"] for d in calls[0]} and raced not in {d["_id"] for d in calls[1]}
        assert resolver.resolved == ndocs
        for d in ids:
            assert len(live_leaves(db.get_docinfo(d))) == 1, d
            expected = sorted(["client", *kept]) if d == raced else ["a", "b"]
            assert sorted(db.get(d)["tags"]) == expected, d
    finally:
        await node.aclose()


async def test_conflicts_met_while_the_database_is_fenced_are_resolved_once_it_is_lifted(tmp_path):
    """A fence (Node.fence: no document writes, e.g. while a database moves) refuses the
    resolver's writes; the documents it read meanwhile must not be passed by for good."""
    node = couchpy.open(tmp_path / "data")
    try:
        db = node.create_db("fenced")
        ids = ["f1", "f2"]
        await db.bulk_docs([{"_id": d, "_rev": _rev(d + side), "tags": [side]} for d in ids for side in "ab"],
                           new_edits=False)
        policy = conflict_merge.parse_policy({"type": "union", "field": "tags"})
        await db.set_meta_field(META_FIELD, policy)
        resolver = Resolver(node)

        # the fence set after the batch was read: the write is refused, the batch not passed
        await node.fence(db.name, "moving")
        assert await resolver.resolve_db(db, policy, 0) == (0, False)
        # while fenced, the resolver does not look at the database
        assert not await resolver.step()
        assert all(len(live_leaves(db.get_docinfo(d))) == 2 for d in ids)

        node.unfence(db.name)
        for _ in range(10):
            if not await resolver.step():
                break
        assert resolver.resolved == len(ids)
        for d in ids:
            assert len(live_leaves(db.get_docinfo(d))) == 1, d
            assert sorted(db.get(d)["tags"]) == ["a", "b"]
    finally:
        await node.aclose()
