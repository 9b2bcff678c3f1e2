"""_changes filters as Apache CouchDB 3.4.3 runs them (PouchDB's changes tests rely on this): each
scenario runs against couchpy and the real CouchDB, and both answers are checked."""

from __future__ import annotations

from tests.parity import on_both


async def test_a_filter_that_throws_fails_the_request(client, couch_client):
    async def scenario(call, db):
        filters = {"named": "function (doc) { if (doc._id === 'a') throw {error: 'oops', reason: 'bad doc'}; "
                            "return true; }",
                   "plain": "function (doc) { if (doc._id === 'a') throw 'x'; return true; }",
                   "fine": "function (doc) { return doc._id === 'a'; }"}
        await call("PUT", f"/{db}/_design/t", {"filters": filters})
        await call("PUT", f"/{db}/a", {})
        out = [await call("GET", f"/{db}/_changes", filter=f"t/{name}") for name in ("named", "plain")]
        status, body = await call("GET", f"/{db}/_changes", filter="t/fine")
        return out, (status, [r["id"] for r in body["results"]])

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs == ([(500, {"error": "oops", "reason": "bad doc"}),
                       (500, {"error": "unknown_error", "reason": "unnamed_error"})], (200, ["a"]))
    assert ours == theirs
