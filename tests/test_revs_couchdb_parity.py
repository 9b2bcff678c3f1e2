"""Revision strings as Apache CouchDB 3.4.3 takes them (PouchDB's bulk_docs tests send these):
each scenario runs against couchpy and the real CouchDB, and both answers are checked."""

from __future__ import annotations

from tests.parity import on_both


async def test_a_replicated_revision_with_an_empty_hash_is_stored(client, couch_client):
    async def scenario(call, db):
        bulk = await call("POST", f"/{db}/_bulk_docs",
                          {"new_edits": False, "docs": [{"_id": "foo", "_rev": "1-", "integer": 1},
                                                        {"_id": "q", "_rev": "1-x"}, {"_id": "q", "_rev": "1-"}]})
        put = await call("PUT", f"/{db}/zz", {"_rev": "2-"}, new_edits=False)
        got = await call("GET", f"/{db}/foo", revs=True, revs_info=True)
        status, listed = await call("GET", f"/{db}/_all_docs")
        return bulk, put, got, (status, listed["rows"]), await call("GET", f"/{db}/zz", revs=True)

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs[0] == (201, [])
    assert theirs[1] == (201, {"ok": True, "id": "zz", "rev": "2-"})
    assert theirs[2] == (200, {"_id": "foo", "_rev": "1-", "integer": 1, "_revisions": {"start": 1, "ids": [""]},
                               "_revs_info": [{"rev": "1-", "status": "available"}]})
    assert ours == theirs


async def test_open_revs_must_be_a_list_of_well_formed_revisions(client, couch_client):
    async def scenario(call, db):
        await call("PUT", f"/{db}/foo", {})
        out = []
        for value in ('{"whatever":"which is"}', '"1-abc"', '[1]', '["1-abc",2]', '["1-almost","2-correct","keys"]',
                      '["x-abc"]'):
            out.append(await call("GET", f"/{db}/foo", open_revs=value))
        return out

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs[0] == (400, {"error": "bad_request", "reason": "Invalid list of revisions"})
    assert theirs[4] == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    assert ours == theirs
