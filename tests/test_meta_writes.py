"""Database metadata (`_security`, `_revs_limit`) written while documents are being written: the
write acknowledged to the client is the one on disk, and the document counters stay right.

Found by the crash trials: an update of `_security` acknowledged just before a group commit of
documents was overwritten on disk by that commit (which wrote the metadata as it was before), so
a restart brought the old `_security` back.
"""

from __future__ import annotations

import asyncio

import couchpy
from couchpy.config import Config

ROUNDS = 100
SECURITY = {"admins": {"names": [], "roles": []}, "members": {"names": ["someone"], "roles": []}}


def _node(tmp_path):
    return couchpy.open(tmp_path, config=Config(tmp_path / "couchpy.ini"))


async def test_security_written_between_document_commits_survives_a_reopen(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("m")
    n = 0
    for round_ in range(ROUNDS):
        security = dict(SECURITY, members={"names": [f"user{round_}"], "roles": []})
        # documents in flight, the metadata write queued behind them, more documents behind it
        first = [asyncio.ensure_future(db.put({"_id": f"a{round_}-{i}"})) for i in range(5)]
        await asyncio.sleep(0)
        await asyncio.gather(db.set_meta_field("security", security), *first,
                             *(db.put({"_id": f"b{round_}-{i}"}) for i in range(5)))
        n += 10
        assert db.meta["security"] == security, round_
        assert db.update_seq == n and db.info()["doc_count"] == n
    await node.aclose()
    node = _node(tmp_path)
    db = node.get_db("m")
    assert db.meta["security"] == security
    assert db.update_seq == n and db.info()["doc_count"] == n
    await node.aclose()


async def test_documents_written_between_metadata_writes_keep_their_counts(tmp_path):
    node = _node(tmp_path)
    db = node.create_db("m")
    tasks = []
    for i in range(10):
        tasks.append(db.put({"_id": f"d{i}"}))
        tasks.append(db.set_meta_field("revs_limit", 100 + i))
    await asyncio.gather(*tasks)
    assert db.update_seq == 10 and db.info()["doc_count"] == 10 and db.meta["revs_limit"] == 109
    await node.aclose()
    node = _node(tmp_path)
    db = node.get_db("m")
    assert db.update_seq == 10 and db.info()["doc_count"] == 10 and db.meta["revs_limit"] == 109
    await node.aclose()
