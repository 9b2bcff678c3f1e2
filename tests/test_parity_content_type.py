"""Which endpoints refuse a JSON body sent under another Content-Type (415 `bad_content_type`),
each case against couchpy and the real CouchDB 3.4.3 (same answers).

CouchDB checks the Content-Type once the database (and a view's design document) is found and
before any query parameter or the body: only the media type's exact spelling passes.
"""

from __future__ import annotations

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)

REFUSED = {"error": "bad_content_type", "reason": "Content-Type must be application/json"}

CHECKED = ["", "_bulk_docs", "_all_docs", "_design_docs", "_local_docs", "_revs_diff", "_bulk_get",
           "_changes", "_missing_revs", "_find", "_index", "_explain", "_purge", "_compact",
           "_ensure_full_commit", "_design/d/_view/v", "_design/d/_view/missing", "_design/d/_view/v/queries",
           "_compact/d"]


async def _post(peer, path: str, ctype: str | None, body: bytes = b'{"docs": [], "keys": []}'):
    headers = {} if ctype is None else {"Content-Type": ctype}
    async with peer.post(path, data=body, headers=headers, skip_auto_headers=["Content-Type"]) as r:
        return r.status, await r.json(content_type=None)


@pytest.fixture
async def ddoc_db(peer, pdb):
    await put_doc(peer, pdb, "_design/d", {"views": {"v": {"map": "function(d){emit(d._id, 1)}"}}})
    return pdb


@pytest.mark.parametrize("endpoint", CHECKED)
async def test_a_json_endpoint_refuses_another_content_type(peer, ddoc_db, endpoint):
    # the body is not even JSON, and the query parameters are bad: the Content-Type is checked first
    assert await _post(peer, f"/{ddoc_db}/{endpoint}?limit=x&feed=x&new_edits=x", "text/plain", b"{") == (415, REFUSED)


@pytest.mark.parametrize("ctype", [None, "APPLICATION/JSON", "application/jsonx", "application/x-www-form-urlencoded",
                                   "application/json ; charset=utf-8"])
async def test_only_the_exact_media_type_passes(peer, pdb, ctype):
    assert await _post(peer, f"/{pdb}/_changes", ctype) == (415, REFUSED)


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "application/json;",
                                   ";application/json"])
async def test_the_media_type_with_parameters_passes(peer, pdb, ctype):
    assert await _post(peer, f"/{pdb}/_bulk_docs", ctype) == (201, [])


@pytest.mark.parametrize("endpoint", ["_bulk_docs", "_find", "_changes", "_design/d/_view/v", "_compact/d"])
async def test_a_missing_database_is_reported_first(peer, endpoint):
    status, body = await _post(peer, f"/parity-missing-db/{endpoint}", "text/plain")
    assert (status, body) == (404, {"error": "not_found", "reason": "Database does not exist."})


async def test_a_missing_design_document_is_reported_before_the_content_type(peer, pdb):
    assert await _post(peer, f"/{pdb}/_design/d/_view/v", "text/plain") == (404, {"error": "not_found",
                                                                                  "reason": "missing"})


async def test_view_cleanup_reads_no_body_and_ignores_its_content_type(peer, pdb):
    status, body = await _post(peer, f"/{pdb}/_view_cleanup", "text/plain")
    assert (status, body) == (202, {"ok": True})
