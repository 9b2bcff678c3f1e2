"""Mango answers as Apache CouchDB 3.4.3 does where PouchDB's pouchdb-find suite looks: each scenario
runs against couchpy and the real CouchDB, and both answers are checked."""

from __future__ import annotations

from tests.parity import on_both

MARIO = [{"_id": "mario", "name": "Mario", "series": "Mario", "debut": 1981},
         {"_id": "luigi", "name": "Luigi", "series": "Mario", "debut": 1983},
         {"_id": "dk", "name": "Donkey Kong", "series": "Mario", "debut": 1981},
         {"_id": "yoshi", "name": "Yoshi", "series": "Mario", "debut": 1990},
         {"_id": "link", "name": "Link", "series": "Zelda", "debut": 1986},
         {"_id": "nodebut", "series": "Mario"}]


async def test_an_index_serves_a_sort_on_fields_the_selector_does_not_require(client, couch_client):
    async def scenario(call, db):
        await call("POST", f"/{db}/_bulk_docs", {"docs": MARIO})
        for fields in (["name"], ["debut"], ["series", "debut"]):
            await call("POST", f"/{db}/_index", {"index": {"fields": fields}})
        query = {"selector": {"series": {"$eq": "Mario"}}, "fields": ["_id", "debut"],
                 "sort": [{"series": "desc"}, {"debut": "desc"}]}
        status, body = await call("POST", f"/{db}/_find", query)
        body.pop("bookmark", None)
        status2, explained = await call("POST", f"/{db}/_explain", query)
        return status, body, status2, explained["index"]["def"]

    ours, theirs = await on_both(client, couch_client, scenario)
    # documents without the sort field are not in the index, so not in the answer
    assert theirs[:2] == (200, {"docs": [{"_id": "yoshi", "debut": 1990}, {"_id": "luigi", "debut": 1983},
                                         {"_id": "mario", "debut": 1981}, {"_id": "dk", "debut": 1981}]})
    assert theirs[3] == {"fields": [{"series": "asc"}, {"debut": "asc"}]}
    assert ours == theirs


async def test_a_backslash_escapes_an_initial_dollar_sign(client, couch_client):
    async def scenario(call, db):
        await call("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "doc", "$foobar": "a", "a.b": 1},
                                                          {"_id": "other", "$foobar": "b"}]})
        await call("POST", f"/{db}/_index", {"index": {"fields": ["$foobar"]}, "name": "foo-index"})
        out = []
        for selector in ({"\\$foobar": "a"}, {"a\\.b": 1}, {"\\$foobar": {"$gt": "a"}}):
            status, body = await call("POST", f"/{db}/_find", {"selector": selector, "fields": ["_id"]})
            out.append((status, body["docs"]))
        return out

    ours, theirs = await on_both(client, couch_client, scenario)
    assert theirs == [(200, [{"_id": "doc"}]), (200, [{"_id": "doc"}]), (200, [{"_id": "other"}])]
    assert ours == theirs


async def test_index_names_and_stored_definitions(client, couch_client):
    async def scenario(call, db):
        out = {}
        for label, body in (("plain", {"index": {"fields": ["foo"]}}),
                            ("again", {"index": {"fields": ["foo"]}, "type": "json"}),
                            ("foo", {"index": {"fields": ["foo"]}, "name": "foo-index"}),
                            ("bar", {"index": {"fields": ["foo"]}, "name": "bar-index"}),
                            ("partial", {"index": {"fields": ["foo"], "partial_filter_selector":
                                                   {"type": "x", "n": {"$gt": 1}}}, "ddoc": "part", "name": "p"}),
                            ("top-level partial", {"index": {"fields": ["foo"]}, "partial_filter_selector": {}}),
                            ("unknown", {"index": {"fields": ["foo"]}, "foo": 1})):
            out[label] = await call("POST", f"/{db}/_index", body)
        status, ddoc = await call("GET", f"/{db}/_design/part")
        del ddoc["_rev"]
        status2, listed = await call("GET", f"/{db}/_index")
        return out, ddoc, [i["def"] for i in listed["indexes"] if i["name"] == "p"]

    ours, theirs = await on_both(client, couch_client, scenario)
    made, ddoc, listed = theirs
    assert made["again"][1]["result"] == "exists" and made["again"][1]["id"] == made["plain"][1]["id"]
    assert made["foo"][1]["id"] != made["bar"][1]["id"]
    assert made["top-level partial"] == (400, {"error": "invalid_key",
                                               "reason": "Invalid key partial_filter_selector for this request."})
    assert made["unknown"] == (400, {"error": "invalid_key", "reason": "Invalid key foo for this request."})
    normalized = {"$and": [{"type": {"$eq": "x"}}, {"n": {"$gt": 1}}]}
    assert ddoc["views"]["p"]["map"]["partial_filter_selector"] == normalized
    assert ddoc["views"]["p"]["options"]["def"] == {"fields": ["foo"],
                                                     "partial_filter_selector": {"type": "x", "n": {"$gt": 1}}}
    assert listed == [{"fields": [{"foo": "asc"}], "partial_filter_selector": normalized}]
    # generated names are digests of an Erlang term, the same on both (compared by
    # tests/differential/test_parity_mango_index_names.py); here: which requests share one
    assert _shared_names(ours[0]) == _shared_names(made)
    assert ours[1:] == theirs[1:]


def _shared_names(made: dict) -> dict:
    """Each answer with generated ids/names replaced by the label of the first request that got them."""
    first: dict = {}
    out = {}
    for label, (status, body) in made.items():
        body = dict(body)
        for key in ("id", "name"):
            if key in body:
                body[key] = first.setdefault((key, body[key]), label)
        out[label] = (status, body)
    return out
