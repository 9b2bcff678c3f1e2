"""_changes filters as Apache CouchDB 3.4.3 runs them (PouchDB's changes tests rely on this): each
scenario runs against couchpy and the real CouchDB, and both answers are checked."""

from __future__ import annotations

from tests.parity import on_both

# What CouchDB 3.4.3 answers (checked by the test each run, see below).
NAMED_THROW = (500, {"error": "oops", "reason": "bad doc"})
UNNAMED_THROW = (500, {"error": "unknown_error", "reason": "unnamed_error"})


def _crashed(answer) -> bool:
    """CouchDB's own races: right after a filter threw, the next requests can crash in its HTTP
    layer (500 `badmatch` on `delayed_resp`), or be answered with the earlier filter's error
    (500 `unnamed_error` for a filter that throws nothing), instead of their own answer."""
    status, body = answer
    return status == 500 and isinstance(body, dict) and body.get("error") in ("badmatch", "unknown_error")


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
        return out, (status, [r["id"] for r in body["results"]] if status == 200 else body)

    ours, theirs = await on_both(client, couch_client, scenario)
    assert ours == ([NAMED_THROW, UNNAMED_THROW], (200, ["a"]))
    assert theirs[0][0] == NAMED_THROW
    # every later answer: when CouchDB answers at all (see _crashed), it answers as couchpy does
    for couchdb, mine in ((theirs[0][1], ours[0][1]), (theirs[1], ours[1])):
        if not _crashed(couchdb):
            assert couchdb == mine
