"""Mango's answers to bad input as CouchDB 3.4.3 gives them (error names, Erlang-printed values)."""

from __future__ import annotations

import pytest

from .model import Req
from .parity import both, parity

A = Req("PUT", "/{db}/a", body={"x": 1}, endpoint="PUT /{db}/{doc}")


def index(body: object) -> Req:
    return Req("POST", "/{db}/_index", body=body, endpoint="POST /{db}/_index")


def find(body: object) -> Req:
    return Req("POST", "/{db}/_find", body=body, endpoint="POST /{db}/_find")


@pytest.mark.parametrize("body, error, reason", [
    ({"index": {}, "name": ""}, "invalid_empty_string", "Index name or ddoc cannot be empty string"),
    ({"index": {}}, "missing_required_key", "Missing required key: fields"),
    ({"index": {"fields": ["x"]}, "name": 1}, "invalid_string", "Invalid string: 1"),
    ({"index": {"fields": ["x"]}, "ddoc": True}, "invalid_string", "Invalid string: true"),
    ({"index": {"fields": ["x"]}, "type": 1}, "invalid_string", "Invalid string: 1"),
    ({"index": "x", "name": ""}, "invalid_empty_string", "Index name or ddoc cannot be empty string"),
    ({"index": "x"}, "invalid_index", "JSON indexes must be an object, not: <<120>>"),
    ({"index": {"fields": "x"}}, "invalid_sort_json", 'Sort must be an array of sort specs, not: <<"x">>'),
    ({"index": {"fields": [1]}}, "invalid_sort_field", "Invalid sort field: 1"),
])
async def test_index_creation_errors(server, couchdb, body, error, reason):
    got = await parity(server, couchdb, [A, index(body)])
    assert got.status == 400 and got.body == {"error": error, "reason": reason}


async def test_text_index_needs_a_search_service(server, couchdb):
    got = await parity(server, couchdb, [A, index({"index": {"fields": ["x"]}, "type": "text"})])
    assert got.status == 503 and got.body == {"error": "required index service unavailable", "reason": "text"}


async def test_index_without_fields_is_refused(server, couchdb):
    # known difference mango-index-without-fields: CouchDB creates an index no query can use
    mine, theirs = await both(server, couchdb, [A, index({"index": {"fields": []}})])
    assert theirs.status == 200 and theirs.body["result"] == "created"
    assert mine.status == 400 and mine.body["error"] == "invalid_field"


@pytest.mark.parametrize("body, error, reason", [
    ({"selector": {}, "skip": "x"}, "invalid_non_neg_integer", "<<120>> is not an integer greater than or equal to zero"),
    ({"selector": {}, "limit": 1.5}, "invalid_non_neg_integer", "1.5 is not an integer greater than or equal to zero"),
    ({"selector": {}, "fields": "x"}, "invalid_fields", "Fields must be an array of strings, not: <<120>>"),
    ({"selector": {}, "fields": {"a": 1}}, "invalid_fields", "Fields must be an array of strings, not: {[{<<97>>,1}]}"),
    ({"selector": "x"}, "invalid_selector_json", "Selector must be a JSON object, not: <<120>>"),
    ({"selector": {}, "sort": "x"}, "invalid_sort_json", 'Sort must be an array of sort specs, not: <<"x">>'),
    ({"selector": {}, "use_index": ["a", "b", "c"]}, "invalid_index_name", "Invalid index name: [<<97>>,<<98>>,<<99>>]"),
    ({"selector": {}, "use_index": 1}, "invalid_index_name", "Invalid index name: 1"),
    ({"selector": {}, "conflicts": "x"}, "invalid_boolean", "Invalid boolean value: <<120>>"),
    ({"selector": {}, "r": "x"}, "invalid_pos_integer", "<<120>> is not an integer greater than zero"),
    ({"selector": {}, "r": 0}, "invalid_pos_integer", "0 is not an integer greater than zero"),
    ({"selector": {}, "sort": [{"_id": "desc"}]}, "no_usable_index",
     "No index exists for this sort, try indexing by the sort fields."),
    ({"selector": {"x": 1}, "sort": ["_id"]}, "no_usable_index",
     "No index exists for this sort, try indexing by the sort fields."),
])
async def test_find_errors(server, couchdb, body, error, reason):
    got = await parity(server, couchdb, [A, find(body)])
    assert got.status == 400 and got.body == {"error": error, "reason": reason}


async def test_id_sort_served_by_all_docs_with_an_id_condition(server, couchdb):
    for selector in ({"_id": "a"}, {"_id": {"$exists": True}}, {"_id": {"$gt": None}}):
        got = await parity(server, couchdb, [A, find({"selector": selector, "sort": [{"_id": "desc"}]})])
        assert got.status == 200 and [d["_id"] for d in got.body["docs"]] == ["a"]


S = {"x": 1}


@pytest.mark.parametrize("body, error", [
    ({"bad": 1}, "missing_required_key"),                      # selector first, unknown keys last
    ({"bad": 1, "selector": S, "limit": -1}, "invalid_non_neg_integer"),
    ({"selector": S, "fields": 1, "sort": 1}, "invalid_sort_json"),
    ({"selector": S, "conflicts": 1, "r": 0}, "invalid_pos_integer"),
    ({"selector": S, "bookmark": 1, "use_index": 1}, "invalid_index_name"),
    ({"selector": S, "use_index": "a/b/c"}, "invalid_index_name"),
    ({"selector": S, "allow_fallback": 1}, "invalid_boolean"),
])
async def test_find_options_in_mango_opts_order(server, couchdb, body, error):
    got = await parity(server, couchdb, [find(body)])
    assert got.status == 400 and got.body["error"] == error, got.body


async def test_find_use_index_names_design_document_and_index(server, couchdb):
    ix = index({"index": {"fields": ["x"]}, "ddoc": "a", "name": "b"})
    for use_index in ("a/b", "_design/a/b", ["a", "b"]):
        got = await parity(server, couchdb, [ix, A, find({"selector": {"x": {"$gt": 0}}, "use_index": use_index})])
        assert got.status == 200 and "warning" not in got.body and len(got.body["docs"]) == 1, use_index


@pytest.mark.parametrize("body, error", [
    ({"bad": 1, "index": {"fields": ["x"]}, "w": 0}, "invalid_pos_integer"),
    ({"index": 1, "bad": 1}, "invalid_key"),
    ({"index": {"fields": ["x"]}, "type": "foo", "w": 0}, "invalid_pos_integer"),
])
async def test_index_options_in_mango_opts_order(server, couchdb, body, error):
    got = await parity(server, couchdb, [index(body)])
    assert got.status == 400 and got.body["error"] == error, got.body


async def test_find_bad_stale_is_a_client_error(server, couchdb):
    # CouchDB crashes on it (500, couchdb-5xx); couchpy names it
    mine, theirs = await both(server, couchdb, [find({"selector": S, "stale": "x"})])
    assert mine.status == 400 and mine.body["error"] == "invalid_ok_or_false_value"
    assert theirs.status == 500


@pytest.mark.parametrize("sort, reason", [
    ([{"x": "up"}], 'Invalid sort field: {[{<<"x">>,<<"up">>}]}'),   # no invalid_sort_dir for JSON
    ([{"x": None}], 'Invalid sort field: {[{<<"x">>,null}]}'),
    ([{"x": "asc", "y": "desc"}], 'Invalid sort field: {[{<<"x">>,<<"asc">>},{<<"y">>,<<"desc">>}]}'),
    ([""], "Invalid sort field: <<>>"),
])
async def test_find_bad_sort_entries_are_invalid_fields(server, couchdb, sort, reason):
    got = await parity(server, couchdb, [find({"selector": S, "sort": sort})])
    assert got.status == 400 and got.body == {"error": "invalid_sort_field", "reason": reason}
