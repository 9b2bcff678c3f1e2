"""_bulk_docs where couchpy used to answer otherwise than CouchDB 3.4.3: each case runs against
both (same requests, same asserted answer)."""

from __future__ import annotations

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)


def num(seq: str) -> int:
    return int(str(seq).split("-", 1)[0])


async def _bulk(peer, pdb, body: dict) -> tuple[int, object]:
    async with peer.post(f"/{pdb}/_bulk_docs", json=body) as r:
        return r.status, await r.json()


async def _missing(peer, pdb, docid: str) -> bool:
    async with peer.get(f"/{pdb}/{docid}") as r:
        return r.status == 404


async def test_a_missing_stub_refuses_the_whole_request(peer, pdb):
    rev = await put_doc(peer, pdb, "s", {"a": 1})
    status, body = await _bulk(peer, pdb, {"docs": [
        {"_id": "n1", "a": 1}, {"_id": "s", "_rev": rev, "_attachments": {"x.txt": {"stub": True}}}]})
    assert (status, body) == (412, {"error": "missing_stub", "reason": "Invalid attachment stub in s for x.txt"})
    assert await _missing(peer, pdb, "n1")
    status, body = await _bulk(peer, pdb, {"docs": [{"_id": "n", "_attachments": {"x": {"stub": True}}}]})
    assert (status, body) == (412, {"error": "missing_stub", "reason": "Invalid attachment stub in n for x"})


async def test_invalid_base64_refuses_the_whole_request(peer, pdb):
    status, body = await _bulk(peer, pdb, {"docs": [
        {"_id": "n2", "a": 1},
        {"_id": "b64", "_attachments": {"x.txt": {"content_type": "text/plain", "data": "!!!notbase64"}}}]})
    assert (status, body) == (400, {"error": "bad_request", "reason": "Invalid attachment data for x.txt"})
    assert await _missing(peer, pdb, "n2")


async def test_all_or_nothing_is_refused_and_nothing_written(peer, pdb):
    status, body = await _bulk(peer, pdb, {"all_or_nothing": True, "docs": [
        {"_id": "a", "_rev": "1-abc"}, {"_id": "b"}, {"_id": "_local/x"}]})
    reason = {"error": "not_implemented", "reason": "all_or_nothing is not supported"}
    assert status == 417
    assert body == [{"id": "a", "rev": "1-abc", **reason}, {"id": "b", "rev": "0-", **reason},
                    {"id": "_local/x", "rev": "0-", **reason}]
    assert await _missing(peer, pdb, "b") and await _missing(peer, pdb, "_local/x")
    # anything but `true` is ignored
    status, body = await _bulk(peer, pdb, {"all_or_nothing": "yes", "docs": [{"_id": "c"}]})
    assert status == 201 and body[0]["ok"] is True


async def test_a_batch_is_applied_in_document_id_order(peer, pdb):
    status, body = await _bulk(peer, pdb, {"docs": [{"_id": k} for k in ("m", "b", "z", "a")]})
    assert status == 201 and [row["id"] for row in body] == ["m", "b", "z", "a"]  # answers in request order
    async with peer.get(f"/{pdb}/_changes") as r:
        rows = (await r.json())["results"]
    assert [(num(row["seq"]), row["id"]) for row in rows] == [(1, "a"), (2, "b"), (3, "m"), (4, "z")]
    async with peer.get(f"/{pdb}/m", params={"local_seq": "true"}) as r:
        assert (await r.json())["_local_seq"] == 3


async def test_revisions_name_the_revision_edited(peer, pdb):
    rev = await put_doc(peer, pdb, "e", {"a": 1})
    pos, rid = rev.split("-", 1)
    status, body = await _bulk(peer, pdb, {"docs": [{"_id": "e", "_revisions": {"start": int(pos), "ids": [rid]}, "v": 1}]})
    assert status == 201
    assert body[0]["ok"] is True and body[0]["rev"].startswith("2-")
    async with peer.get(f"/{pdb}/e", params={"revs": "true"}) as r:
        doc = await r.json()
    assert doc["_revisions"] == {"start": 2, "ids": [body[0]["rev"].split("-", 1)[1], rid]}
    assert doc["v"] == 1 and "a" not in doc
    # a history whose head is no leaf any more is a conflict, as a stale _rev is
    status, body = await _bulk(peer, pdb, {"docs": [{"_id": "e", "_revisions": {"start": int(pos), "ids": [rid]}}]})
    assert body == [{"id": "e", "error": "conflict", "reason": "Document update conflict."}]


async def test_revisions_of_a_document_that_does_not_exist_are_a_conflict(peer, pdb):
    # (in a database that has seen other writes, CouchDB sometimes accepts these: couchpy does not)
    async with peer.put(f"/{pdb}/nope", json={"_revisions": {"start": 2, "ids": ["bb", "aa"]}}) as r:
        assert (r.status, await r.json()) == (409, {"error": "conflict", "reason": "Document update conflict."})
    status, body = await _bulk(peer, pdb, {"docs": [
        {"_id": "nope", "_revisions": {"start": 3, "ids": ["ccc", "bbb", "aaa"]}, "v": 1}]})
    assert (status, body) == (201, [{"id": "nope", "error": "conflict", "reason": "Document update conflict."}])


@pytest.mark.parametrize("revisions", [{"start": 1}, {"start": 0, "ids": ["a"]}, {"start": 2, "ids": "ab"}])
async def test_malformed_revisions_in_normal_mode_are_refused(client, db, revisions):
    async with client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": "x", "_revisions": revisions}]}) as r:
        assert r.status == 400
