"""Attachments at the engine level (couchpy.open, no HTTP): stubs and revpos across edits,
replicated revisions keeping their revpos, missing stubs, shared bodies, and compaction removing
bodies no kept revision refers to."""

from __future__ import annotations

import base64

import pytest

import couchpy
from couchpy.attachments.access import blobs_for
from couchpy.errors import BadRequest, PreconditionFailed


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def node(tmp_path):
    n = couchpy.open(tmp_path / "data")
    yield n
    await n.aclose()


async def test_edits_stubs_and_shared_bodies(node):
    db = node.create_db("e")
    r1 = await db.put({"_id": "d", "_attachments": {"a": {"content_type": "x/y", "data": b64(b"A" * 100)}}})
    r2 = await db.put({"_id": "d", "_rev": r1["rev"], "_attachments": {
        "a": {"stub": True}, "b": {"content_type": "x/y", "data": b64(b"A" * 100)}}})
    doc = db.get("d")
    assert doc["_rev"] == r2["rev"]
    assert doc["_attachments"]["a"]["revpos"] == 1 and doc["_attachments"]["b"]["revpos"] == 2
    assert doc["_attachments"]["a"]["digest"] == doc["_attachments"]["b"]["digest"]
    assert blobs_for(db).stats()["blobs"] == 1  # same bytes, stored once
    with pytest.raises(PreconditionFailed) as exc:
        await db.put({"_id": "d", "_rev": r2["rev"], "_attachments": {"zzz": {"stub": True}}})
    assert exc.value.error == "missing_stub" and exc.value.status == 412
    with pytest.raises(BadRequest):
        await db.put({"_id": "d", "_rev": r2["rev"], "_attachments": {"_bad": {"data": ""}}})


async def test_replicated_revision_keeps_revpos(node):
    db = node.create_db("r")
    await db.put({"_id": "d", "_rev": "3-" + "c" * 32,
                  "_revisions": {"start": 3, "ids": ["c" * 32, "b" * 32, "a" * 32]},
                  "_attachments": {"a": {"content_type": "x/y", "revpos": 2, "data": b64(b"hi")}}},
                 new_edits=False)
    assert db.get("d")["_attachments"]["a"]["revpos"] == 2


async def test_compaction_keeps_only_referenced_bodies(node):
    """Compaction drops the bodies of non-leaf revisions, and with them the attachments only they
    referred to."""
    db = node.create_db("cc")
    bs = blobs_for(db)
    r1 = await db.put({"_id": "d", "_attachments": {"old": {"content_type": "x/y", "data": b64(b"O" * 5000)}}})
    await db.put({"_id": "d", "_rev": r1["rev"], "_attachments": {"new": {"content_type": "x/y", "data": b64(b"N" * 5000)}}})
    await db.put({"_id": "e", "_attachments": {"t": {"content_type": "text/plain", "data": b64(b"T" * 5000)}}})
    assert bs.stats()["blobs"] == 3

    await db.compact()  # drops the body of d's first revision, and with it the orphaned attachment
    assert bs.stats()["blobs"] == 2
    for docid, name, data in (("d", "new", b"N" * 5000), ("e", "t", b"T" * 5000)):
        stub = db.get(docid)["_attachments"][name]
        assert bs.read_all(bs.meta(stub["digest"])) == data


async def test_compaction_removes_unreferenced_bodies(node):
    db = node.create_db("c")
    bs = blobs_for(db)
    r1 = await db.put({"_id": "d", "_attachments": {"old": {"content_type": "x/y", "data": b64(b"O" * 5000)}}})
    r2 = await db.put({"_id": "d", "_rev": r1["rev"], "_attachments": {
        "new": {"content_type": "x/y", "data": b64(b"N" * 5000)}}})
    assert bs.stats()["blobs"] == 2
    await db.compact()
    assert bs.stats()["blobs"] == 1
    doc = db.get("d")
    assert doc["_rev"] == r2["rev"]
    meta = bs.meta(doc["_attachments"]["new"]["digest"])
    assert bs.read_all(meta) == b"N" * 5000
    # A conflicting leaf keeps its attachment alive through compaction.
    await db.put({"_id": "d", "_rev": "2-" + "f" * 32, "_revisions": {"start": 2, "ids": ["f" * 32, r1["rev"][2:]]},
                  "_attachments": {"old": {"content_type": "x/y", "data": b64(b"O" * 5000)}}}, new_edits=False)
    await db.compact()
    assert bs.stats()["blobs"] == 2


async def test_inline_data_for_replication(node):
    from couchpy.attachments import hooks

    db = node.create_db("i")
    r1 = await db.put({"_id": "d", "_attachments": {"a": {"content_type": "text/plain", "data": b64(b"alpha" * 50)}}})
    r2 = await db.put({"_id": "d", "_rev": r1["rev"], "_attachments": {
        "a": {"stub": True}, "b": {"content_type": "x/y", "data": b64(b"beta")}}})
    doc = db.get("d", revs=True)
    full = hooks.inline_data(db, doc)
    assert base64.b64decode(full["_attachments"]["a"]["data"]) == b"alpha" * 50
    assert base64.b64decode(full["_attachments"]["b"]["data"]) == b"beta"
    since = hooks.inline_data(db, doc, atts_since=[r1["rev"]])
    assert since["_attachments"]["a"]["stub"] is True and "data" in since["_attachments"]["b"]
    assert doc["_attachments"]["a"]["stub"] is True  # the input is not modified
    assert r2["rev"] == doc["_rev"]


async def test_reattach_for_copy(node):
    from couchpy.attachments import hooks

    db = node.create_db("cp")
    await db.put({"_id": "src", "_attachments": {"a": {"content_type": "x/y", "data": b64(b"copied bytes")}}})
    src = db.get("src")
    await db.put({"_id": "dst", "k": 1, "_attachments": hooks.reattach(db, src["_attachments"])})
    dst = db.get("dst")
    assert dst["_attachments"]["a"] == {**src["_attachments"]["a"], "revpos": 1}
    assert blobs_for(db).stats()["blobs"] == 1
