"""Replication between couchpy and a real Apache CouchDB 3.4.3, with either side's replicator
driving, in both directions: every document (edits, deletions, conflicts, attachments binary and
compressible, design documents, unicode ids, big integers) arrives with an identical revision
tree, body and attachment digests; `_local` documents stay where they are."""

from __future__ import annotations

import pytest

from tests.interop import TEXT, name, ok, populate, req, snapshot

DRIVERS = ["couchdb", "couchpy"]
DIRECTIONS = ["couchpy->couchdb", "couchdb->couchpy"]


def sides(server, couchdb, direction):
    return (server, couchdb) if direction == "couchpy->couchdb" else (couchdb, server)


async def replicate(driver, source, src_db, target, tgt_db, **extra):
    body = {"source": f"{source.url}/{src_db}", "target": f"{target.url}/{tgt_db}", **extra}
    st, res = await req(driver, "POST", "/_replicate", body)
    assert st == 200, res
    assert res["ok"] is True, res
    return res


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("driver_name", DRIVERS)
async def test_replicas_identical(server, couchdb, driver_name, direction):
    source, target = sides(server, couchdb, direction)
    driver = couchdb if driver_name == "couchdb" else server
    src, tgt = name("src"), name("tgt")
    await populate(source, src)
    res = await replicate(driver, source, src, target, tgt, create_target=True)
    assert res["history"][0]["doc_write_failures"] == 0, res
    want = await snapshot(source, src)
    got = await snapshot(target, tgt)
    assert got.keys() == want.keys()
    for docid in want:
        assert got[docid] == want[docid], docid
    # the example: the compressible attachment has CouchDB's digest on both sides
    doc = want["doc-021"]["winner"][1]
    assert doc["_attachments"]["note.txt"]["digest"] == "md5-t6qPHzaShJHFi1MnI1x4UA=="
    assert want["doc-021"]["att:note.txt"] == (200, TEXT)
    # _local documents never travel
    assert (await req(target, "GET", f"/{tgt}/_local/keep"))[0] == 404
    if driver_name == "couchpy":
        # couchpy's replicator moves attachment bodies as CouchDB's does: multipart/mixed
        # open_revs from the source, multipart/related PUT ?new_edits=false to the target
        log = (couchdb.dir / "couch.log").read_text(errors="replace")
        if target is couchdb:
            assert f"PUT /{tgt}/doc-020?new_edits=false 201" in log
        else:
            assert f"GET /{src}/doc-020?open_revs=" in log and "att_encoding_info=true" in log

    # Incremental: new attachment revisions on the source, only those travel again.
    st, doc = await req(source, "GET", f"/{src}/doc-022")
    doc["_attachments"]["note.txt"] = {"content_type": "text/plain", "data": "bmV3IHRleHQ="}
    await ok(await req(source, "PUT", f"/{src}/doc-022", doc), 201)
    st, doc = await req(source, "GET", f"/{src}/doc-023")
    await ok(await req(source, "DELETE", f"/{src}/doc-023", rev=doc["_rev"]), 200)
    res = await replicate(driver, source, src, target, tgt)
    assert res["history"][0]["doc_write_failures"] == 0, res
    want, got = await snapshot(source, src), await snapshot(target, tgt)
    assert got == want
