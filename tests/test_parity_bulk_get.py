"""_bulk_get items that are malformed, each case against couchpy and the real CouchDB 3.4.3
(same answers): each gets an error of its own in the results, as CouchDB answers it."""

from __future__ import annotations

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)


def _error(docid, rev, error, reason) -> dict:
    return {"id": docid, "docs": [{"error": {"id": docid, "rev": rev, "error": error, "reason": reason}}]}


@pytest.mark.parametrize("item, answer", [
    (1, _error(None, None, "bad_request", "document must be a JSON object")),
    ("x", _error(None, None, "bad_request", "document must be a JSON object")),
    (None, _error(None, None, "bad_request", "document must be a JSON object")),
    ([], _error(None, None, "bad_request", "document must be a JSON object")),
    ({}, _error(None, None, "bad_request", "document must be a JSON object")),
    ({"rev": "1-a"}, _error(None, None, "bad_request", "document id missed")),
    ({"id": "b", "rev": 1}, _error("b", 1, "bad_request", "Invalid rev format")),
    ({"id": "b", "rev": "x"}, _error("b", "x", "bad_request", "Invalid rev format")),
    ({"id": "b", "atts_since": 1}, _error("b", 1, "bad_request", "att_since value must be array of revs.")),
    ({"id": "b", "atts_since": ["x"]}, _error("b", "x", "bad_request", "Invalid rev format")),
    ({"id": ""}, _error("", None, "illegal_docid", "Document id must not be empty")),
    ({"id": "zz"}, _error("zz", "undefined", "not_found", "missing")),
    ({"id": "b", "rev": "2-abc"}, _error("b", "2-abc", "not_found", "missing")),
])
async def test_a_malformed_item_gets_its_own_error(peer, pdb, item, answer):
    await put_doc(peer, pdb, "b", {})
    async with peer.post(f"/{pdb}/_bulk_get", json={"docs": [item]}) as r:
        assert (r.status, await r.json()) == (200, {"results": [answer]})


@pytest.mark.parametrize("docid", [1, None])
async def test_an_id_that_is_not_a_string_fails_the_request(peer, pdb, docid):
    async with peer.post(f"/{pdb}/_bulk_get", json={"docs": [{"id": docid}]}) as r:
        body = await r.json()
    if peer.kind == "couchdb":  # an uncaught error (the couchdb-5xx difference)
        assert (r.status, body["error"], body["reason"]) == (500, "unknown_error", "function_clause")
    else:
        assert (r.status, body) == (400, {"error": "bad_request", "reason": "A _bulk_get item's `id` must be a string"})
