"""Attachment reads and deletions where couchpy used to answer otherwise than CouchDB 3.4.3: each
case runs against both (same requests, same asserted answer)."""

from __future__ import annotations

import base64

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)

HELLO = base64.b64encode(b"hello world").decode()
UNSATISFIABLE = {"error": "requested_range_not_satisfiable", "reason": "Requested range not satisfiable"}


async def _doc_with_attachments(peer, pdb) -> str:
    return await put_doc(peer, pdb, "att", {"_attachments": {
        "x.txt": {"content_type": "text/plain", "data": HELLO},  # compressible: stored gzip
        "x.png": {"content_type": "image/png", "data": HELLO},  # stored as it is
    }})


@pytest.mark.parametrize("name", ["x.txt", "x.png"])
@pytest.mark.parametrize("spec", ["bytes=3-1", "bytes=3-1,0-2", "bytes=0-2,3-1"])
async def test_a_reversed_range_is_416(peer, pdb, name, spec):
    await _doc_with_attachments(peer, pdb)
    async with peer.get(f"/{pdb}/att/{name}", headers={"Range": spec}) as r:
        assert (r.status, await r.json()) == (416, UNSATISFIABLE)


async def test_ranges_of_an_encoded_body_are_otherwise_ignored(peer, pdb):
    await _doc_with_attachments(peer, pdb)
    for spec in ("bytes=3-5", "bytes=30-50", "bytes=-3"):
        async with peer.get(f"/{pdb}/att/x.txt", headers={"Range": spec}) as r:
            assert (r.status, await r.read()) == (200, b"hello world")
    async with peer.get(f"/{pdb}/att/x.png", headers={"Range": "bytes=3-5"}) as r:
        assert (r.status, r.headers["Content-Range"], await r.read()) == (206, "bytes 3-5/11", b"lo ")


async def test_deleting_an_attachment_the_document_lacks_is_404(peer, pdb):
    rev = await _doc_with_attachments(peer, pdb)
    missing = {"error": "not_found", "reason": "Document is missing attachment"}
    async with peer.delete(f"/{pdb}/att/nope.png", params={"rev": rev}) as r:
        assert (r.status, await r.json()) == (404, missing)
    async with peer.delete(f"/{pdb}/att/nope.png") as r:
        assert (r.status, await r.json()) == (404, missing)
    async with peer.get(f"/{pdb}/att") as r:
        assert (await r.json())["_rev"] == rev  # no new revision
    async with peer.delete(f"/{pdb}/att/x.png") as r:
        assert (r.status, await r.json()) == (409, {"error": "conflict", "reason": "Document update conflict."})
    async with peer.delete(f"/{pdb}/att/x.png", params={"rev": rev}) as r:
        assert r.status == 200 and (await r.json())["rev"].startswith("2-")
    # a stale rev: 404 where that revision lacks the attachment, else a conflict
    async with peer.delete(f"/{pdb}/att/nope.png", params={"rev": rev}) as r:
        assert (r.status, await r.json()) == (404, missing)
    async with peer.delete(f"/{pdb}/att/x.png", params={"rev": rev}) as r:
        assert (r.status, await r.json()) == (409, {"error": "conflict", "reason": "Document update conflict."})


async def test_an_attachment_edit_of_an_unknown_revision(peer, pdb):
    await _doc_with_attachments(peer, pdb)
    answer = (409, {"error": "not_found", "reason": "missing_rev"})
    for docid in ("att", "missing"):
        async with peer.delete(f"/{pdb}/{docid}/x.png", params={"rev": "9-abc"}) as r:
            assert (r.status, await r.json()) == answer
        async with peer.put(f"/{pdb}/{docid}/y.png", params={"rev": "9-abc"}, data=b"x") as r:
            assert (r.status, await r.json()) == answer
    async with peer.get(f"/{pdb}/att/x.png", params={"rev": "9-abc"}) as r:
        assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing"})


# A replicated revision keeps the revpos it was sent with, whatever JSON it is, and 0 without one;
# a new edit always stamps its own generation (asked of CouchDB 3.4.3 directly). `atts_since` then
# sends the body for revpos after the known generation in Erlang's order: numbers by value,
# everything else after every number.
REPLICATED_REVPOS = [(None, 0, False), (0, 0, False), (2, 2, False), (3, 3, False), (7, 7, True),
                     (2.5, 2.5, False), (-1, -1, False), ("2", "2", True), (True, True, True)]


@pytest.mark.parametrize("how", ["put", "bulk_docs"])
async def test_a_replicated_revision_keeps_the_revpos_it_was_sent(peer, pdb, how):
    for i, (sent, stored, sent_since_3) in enumerate(REPLICATED_REVPOS):
        docid = f"r{i}"
        entry = {"content_type": "text/plain", "data": HELLO}
        if sent is not None:
            entry["revpos"] = sent
        doc = {"_id": docid, "_rev": "3-ddd", "_attachments": {"t.txt": entry}}
        if how == "put":
            async with peer.put(f"/{pdb}/{docid}", params={"new_edits": "false"}, json=doc) as r:
                assert r.status == 201, await r.text()
        else:
            async with peer.post(f"/{pdb}/_bulk_docs", json={"docs": [doc], "new_edits": False}) as r:
                assert r.status == 201, await r.text()
        async with peer.get(f"/{pdb}/{docid}") as r:
            assert (await r.json())["_attachments"]["t.txt"]["revpos"] == stored, sent
        since = {"atts_since": '["3-ddd"]', "attachments": "true"}
        async with peer.get(f"/{pdb}/{docid}", params=since, headers={"Accept": "application/json"}) as r:
            att = (await r.json())["_attachments"]["t.txt"]
            assert ("data" in att, att.get("stub", False)) == (sent_since_3, not sent_since_3), sent


async def test_a_new_edit_stamps_its_generation_over_a_sent_revpos(peer, pdb):
    rev = None
    for gen, sent in ((1, 0), (2, 7), (3, None)):
        entry = {"content_type": "text/plain", "data": HELLO}
        if sent is not None:
            entry["revpos"] = sent
        doc = {"_attachments": {f"a{gen}.txt": entry}}
        if rev:
            doc["_rev"] = rev
            doc["_attachments"].update({f"a{g}.txt": {"stub": True} for g in range(1, gen)})
        async with peer.put(f"/{pdb}/n", json=doc) as r:
            assert r.status == 201, await r.text()
            rev = (await r.json())["rev"]
    async with peer.get(f"/{pdb}/n") as r:
        atts = (await r.json())["_attachments"]
    assert {name: a["revpos"] for name, a in atts.items()} == {"a1.txt": 1, "a2.txt": 2, "a3.txt": 3}
