"""Answers the differential tester found couchpy giving otherwise than CouchDB 3.4.3, each case
against couchpy and the real CouchDB (same answers)."""

from __future__ import annotations

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)


async def _json(peer, method: str, path: str, body=None):
    async with peer.request(method, path, json=body) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize("listing", ["_all_docs", "_design_docs", "_local_docs"])
async def test_a_null_keys_body_member_is_not_an_array(peer, pdb, listing):
    assert await _json(peer, "POST", f"/{pdb}/{listing}", {"keys": None, "limit": 1}) == (
        400, {"error": "bad_request", "reason": "`keys` body member must be an array."})


@pytest.mark.parametrize("view", ["v", "missing"])
async def test_a_view_names_its_keys_member_without_body(peer, pdb, view):
    await put_doc(peer, pdb, "_design/d", {"views": {"v": {"map": "function(d){emit(d._id, 1)}"}}})
    assert await _json(peer, "POST", f"/{pdb}/_design/d/_view/{view}", {"keys": 0}) == (
        400, {"error": "bad_request", "reason": "`keys` member must be an array."})


async def test_a_local_document_lists_its_revision_as_its_history(peer, pdb):
    await put_doc(peer, pdb, "_local/l", {"b": 1})
    rev = await put_doc(peer, pdb, "_local/l", {"b": 2, "_rev": "0-1"})
    assert rev == "0-2"
    assert await _json(peer, "GET", f"/{pdb}/_local/l?revs=true") == (
        200, {"_id": "_local/l", "_rev": "0-2", "b": 2, "_revisions": {"start": 0, "ids": ["2"]}})
    # only exactly `true` is on, as for any chttpd flag
    assert await _json(peer, "GET", f"/{pdb}/_local/l?revs=on") == (200, {"_id": "_local/l", "_rev": "0-2", "b": 2})


@pytest.mark.parametrize("since", ["-1", "abc", "now", "0"])
async def test_a_descending_feed_does_not_read_since(peer, pdb, since):
    await put_doc(peer, pdb, "a", {})
    await put_doc(peer, pdb, "b", {})
    status, body = await _json(peer, "GET", f"/{pdb}/_changes?descending=true&since={since}&limit=1")
    assert status == 200, body
    assert [r["id"] for r in body["results"]] == ["b"] and body["pending"] == 1
    status, body = await _json(peer, "POST", f"/{pdb}/_changes?descending=true", {"since": since})
    assert status == 200 and [r["id"] for r in body["results"]] == ["b", "a"], body


@pytest.mark.parametrize("query, ids, offset", [
    ("startkey=1&endkey=%22b%22", ["_design/x", "b"], 0),
    ("startkey=%22b%22&endkey=1", [], 1),
    ("startkey=1&endkey=%22b%22&descending=true", [], 3),
    ("startkey=%22b%22&endkey=1&descending=true", ["b", "_design/x"], 1),
    ("startkey=1&skip=1", ["b", "c"], 1),
    ("startkey=%5B%5D&descending=true&skip=1", [], 3),
    ("key=1&skip=1", [], 1),
    ("skip=2&end_key=false&key=9007199254740993", [], 2),
    ("endkey=%7B%7D", [], 0),
])
async def test_all_docs_ranges_with_ends_that_are_not_strings(peer, pdb, query, ids, offset):
    # every JSON value but a string sorts before any document id
    for docid in ("b", "c", "_design/x"):
        await put_doc(peer, pdb, docid, {})
    status, body = await _json(peer, "GET", f"/{pdb}/_all_docs?{query}")
    assert (status, [r["id"] for r in body["rows"]], body["offset"], body["total_rows"]) == (200, ids, offset, 3)


@pytest.mark.parametrize("how", ["POST", "PUT", "_bulk_docs"])
async def test_deleting_a_deleted_document_without_a_rev_is_a_conflict(peer, pdb, how):
    assert (await _json(peer, "POST", f"/{pdb}", {"_id": "a", "_deleted": True}))[0] == 201
    if how == "POST":
        answer = await _json(peer, "POST", f"/{pdb}", {"_id": "a", "_deleted": True})
    elif how == "PUT":
        answer = await _json(peer, "PUT", f"/{pdb}/a", {"_deleted": True, "x": 1})
    else:
        status, body = await _json(peer, "POST", f"/{pdb}/_bulk_docs", {"docs": [{"_id": "a", "_deleted": True}]})
        answer = status, body[0]
    conflict = {"error": "conflict", "reason": "Document update conflict."}
    assert answer == ((201, {"id": "a", **conflict}) if how == "_bulk_docs" else (409, conflict))
    # recreating it is no conflict: the new revision continues the tombstone
    status, body = await _json(peer, "PUT", f"/{pdb}/a", {"x": 1})
    assert status == 201 and body["rev"].startswith("2-")


NO_DATA = {"t.txt": {"content_type": "text/plain"}}


@pytest.mark.parametrize("docs", [
    [{"_id": "c", "_attachments": NO_DATA}],
    [{"_id": "c", "_attachments": {"t.txt": {"content_type": "text/plain", "stub": False}}}],
    # checked before any stub is looked up (the stub of `a` names nothing: 412 on its own)
    [{"_id": "a", "_attachments": {"t.txt": {"stub": True}}}, {"_id": "c", "_attachments": NO_DATA}],
])
async def test_an_attachment_without_data_fails_a_bulk_write(peer, pdb, docs):
    assert await _json(peer, "POST", f"/{pdb}/_bulk_docs", {"docs": docs}) == (
        400, {"error": "bad_request", "reason": "Invalid attachment data for t.txt"})


async def test_an_attachment_without_data_fails_a_put(peer, pdb):
    assert await _json(peer, "PUT", f"/{pdb}/d", {"_attachments": NO_DATA}) == (
        400, {"error": "bad_request", "reason": "Invalid attachment data for t.txt"})
