"""Query-parameter parsing as CouchDB 3.4.3 does it, checked against the real one."""

from __future__ import annotations

import asyncio

from .client import Session, Target, fresh_db_name
from .model import Req
from .parity import parity

A = Req("PUT", "/{db}/a", body={"x": 1}, endpoint="PUT /{db}/{doc}")
B = Req("PUT", "/{db}/b", body={"x": 2}, endpoint="PUT /{db}/{doc}")
DDOC = Req("PUT", "/{db}/_design/d", body={"views": {"v": {"map": "function(doc) { emit(doc.x, 1); }",
                                                            "reduce": "_count"}}}, endpoint="PUT /{db}/_design/{ddoc}")


def get(path: str, **query: str) -> Req:
    return Req("GET", path, tuple(query.items()), endpoint="GET " + path)


async def test_listing_flags_are_case_insensitive(server, couchdb):
    got = await parity(server, couchdb, [A, B, get("/{db}/_all_docs", descending="TRUE")])
    assert got.status == 200 and [r["id"] for r in got.body["rows"]] == ["b", "a"]


async def test_listing_bad_flag_quotes_the_value(server, couchdb):
    got = await parity(server, couchdb, [get("/{db}/_all_docs", descending="1")])
    assert got.status == 400 and got.body == {"error": "query_parse_error", "reason": 'Invalid boolean parameter: "1"'}
    got = await parity(server, couchdb, [get("/{db}/_all_docs", conflicts="")])
    assert got.body == {"error": "query_parse_error", "reason": "Invalid boolean parameter: []"}


async def test_listing_bad_integers_quote_the_value(server, couchdb):
    for name, value, reason in [("limit", "x", 'Invalid value for integer: "x"'),
                                ("skip", "1.5", 'Invalid value for integer: "1.5"'),
                                ("limit", "-1", 'Invalid value for positive integer: "-1"')]:
        got = await parity(server, couchdb, [get("/{db}/_all_docs", **{name: value})])
        assert got.status == 400 and got.body == {"error": "query_parse_error", "reason": reason}


async def test_view_body_members_typed(server, couchdb):
    post = Req("POST", "/{db}/_design/d/_view/v", body={"limit": "2"}, endpoint="POST view")
    got = await parity(server, couchdb, [DDOC, A, post])
    assert got.body == {"error": "query_parse_error", "reason": 'Invalid value for integer: <<"2">>'}
    post = Req("POST", "/{db}/_design/d/_view/v", body={"group": "true"}, endpoint="POST view")
    got = await parity(server, couchdb, [DDOC, A, post])
    assert got.status == 200 and got.body == {"rows": [{"key": 1, "value": 1}]}


async def test_view_body_members_of_other_types_print_as_erlang_terms(server, couchdb):
    for member, value in [("limit", [1, "a"]), ("skip", {"a": 1.5}), ("limit", 2.5)]:
        post = Req("POST", "/{db}/_design/d/_view/v", body={member: value}, endpoint="POST view")
        got = await parity(server, couchdb, [DDOC, A, post])
        assert got.status == 400 and got.body["error"] == "query_parse_error", got.body


async def test_document_flags_are_on_only_when_true(server, couchdb):
    for value in ("1", "TRUE", "yes", ""):
        got = await parity(server, couchdb, [A, get("/{db}/a", revs=value, conflicts=value)])
        assert got.status == 200 and "_revisions" not in got.body


async def test_changes_flags_are_on_only_when_true(server, couchdb):
    got = await parity(server, couchdb, [A, B, get("/{db}/_changes", descending="yes", include_docs="1")])
    assert got.status == 200 and [r["id"] for r in got.body["results"]] == ["a", "b"]
    assert "doc" not in got.body["results"][0]


async def test_bulk_get_flags_are_on_only_when_true(server, couchdb):
    req = Req("POST", "/{db}/_bulk_get", (("revs", "yes"),), {"docs": [{"id": "a"}]}, endpoint="POST _bulk_get")
    got = await parity(server, couchdb, [A, req])
    assert got.status == 200 and "_revisions" not in got.body["results"][0]["docs"][0]["ok"]


async def test_new_edits_is_off_only_when_false(server, couchdb):
    req = Req("PUT", "/{db}/c", (("new_edits", "yes"),), {"x": 1}, endpoint="PUT /{db}/{doc}")
    got = await parity(server, couchdb, [req])
    assert got.status == 201 and got.body["ok"] is True


def _revalidate(target: Target) -> tuple[int, int]:
    """(status of a changes read with the ETag of the previous one, after a write), on one server."""
    session, db = Session(target), fresh_db_name()
    try:
        session.raw("PUT", f"/{db}?q=1" if target.is_couchdb else f"/{db}", {}, None)
        session.raw("PUT", f"/{db}/a", {"Content-Type": "application/json"}, b"{}")
        etag = session.raw("GET", f"/{db}/_changes", {}, None).headers["etag"]
        same = session.raw("GET", f"/{db}/_changes?limit=1", {"If-None-Match": etag}, None).status
        session.raw("PUT", f"/{db}/b", {"Content-Type": "application/json"}, b"{}")
        after = session.raw("GET", f"/{db}/_changes", {"If-None-Match": etag}, None).status
        return same, after
    finally:
        session.raw("DELETE", f"/{db}", {}, None)
        session.close()


async def test_changes_feed_tagged_by_database_state(server, couchdb):
    got = await parity(server, couchdb, [A, get("/{db}/_changes")])
    assert got.status == 200 and got.headers["etag"]
    mine = await asyncio.to_thread(_revalidate, Target(server.url, False))
    theirs = await asyncio.to_thread(_revalidate, Target(couchdb.url, True))
    assert mine == theirs == (304, 200)


async def test_sorted_and_stable_are_parsed(server, couchdb):
    for path in ("/{db}/_design/d/_view/v", "/{db}/_all_docs"):
        for value, reason in [("0", 'Invalid boolean parameter: "0"'), ("x", 'Invalid boolean parameter: "x"'),
                              ("", "Invalid boolean parameter: []")]:
            got = await parity(server, couchdb, [DDOC, A, get(path, sorted=value)])
            assert got.status == 400 and got.body == {"error": "query_parse_error", "reason": reason}, (path, value)
        got = await parity(server, couchdb, [DDOC, A, get(path, sorted="TRUE")])
        assert got.status == 200
    for value in ("TRUE", "1", ""):
        got = await parity(server, couchdb, [DDOC, A, get("/{db}/_design/d/_view/v", stable=value)])
        assert got.status == 400 and got.body == {"error": "query_parse_error", "reason": "Invalid value for `stable`."}
    got = await parity(server, couchdb, [DDOC, A, get("/{db}/_design/d/_view/v", stable="false")])
    assert got.status == 200


async def test_all_docs_query_string_over_body(server, couchdb):
    def post(body: dict, **query: str) -> Req:
        return Req("POST", "/{db}/_all_docs", tuple(query.items()), body, endpoint="POST /{db}/_all_docs")

    got = await parity(server, couchdb, [A, B, post({"limit": 2}, limit="1")])
    assert [r["id"] for r in got.body["rows"]] == ["a"]
    got = await parity(server, couchdb, [A, B, post({"descending": False}, descending="true", limit="1")])
    assert [r["id"] for r in got.body["rows"]] == ["b"]
    got = await parity(server, couchdb, [A, post({"include_docs": False}, include_docs="true")])
    assert got.body["rows"][0]["doc"]["x"] == 1


async def test_view_body_is_read_before_the_query_string(server, couchdb):
    post = Req("POST", "/{db}/_design/d/_view/v", (("group_level", "1.5"),), {"limit": "2"}, endpoint="POST view")
    got = await parity(server, couchdb, [DDOC, A, post])
    assert got.status == 400 and got.body == {"error": "query_parse_error",
                                              "reason": 'Invalid value for integer: <<"2">>'}
    post = Req("POST", "/{db}/_design/d/_view/v", (("limit", "x"),), {"group_level": 1}, endpoint="POST view")
    got = await parity(server, couchdb, [DDOC, A, post])
    assert got.body == {"error": "query_parse_error", "reason": 'Invalid value for integer: "x"'}


async def test_keys_beside_a_range_around_its_single_key(server, couchdb):
    # a single key's `keys` sets the range K..K where it is read: a range is tolerated when it
    # ends up K..K, whatever the order (query string) or place (body, then query string)
    def all_docs(method: str, query: tuple = (), body: object = None) -> Req:
        return Req(method, "/{db}/_all_docs", query, body, endpoint=f"{method} /{{db}}/_all_docs")

    for req, status in [
        (all_docs("GET", (("keys", '["a"]'), ("startkey", '"a"'))), 200),
        (all_docs("GET", (("startkey", '"a"'), ("keys", '["a"]'))), 200),
        (all_docs("GET", (("key", '"b"'), ("keys", '["a"]'))), 200),
        (all_docs("GET", (("keys", '["a"]'), ("key", '"b"'))), 400),
        (all_docs("GET", (("keys", '["a"]'), ("startkey", '"b"'))), 400),
        (all_docs("GET", (("keys", '["a"]'), ("startkey", '"a"'), ("endkey", '"b"'))), 400),
        (all_docs("GET", (("keys", '["a","b"]'), ("startkey", '"a"'))), 400),
        (all_docs("GET", (("keys", '["b"]'), ("endkey", '"b"'), ("descending", "true"))), 200),
        (all_docs("POST", body={"keys": ["a"], "startkey": "a"}), 200),
        (all_docs("POST", body={"startkey": "a", "keys": ["a"]}), 200),
        (all_docs("POST", (("startkey", '"a"'),), {"keys": ["a"]}), 200),
        (all_docs("POST", (("startkey", '"b"'),), {"keys": ["a"]}), 400),
        (all_docs("POST", body={"keys": ["a", "b"], "startkey": "a"}), 400),
    ]:
        got = await parity(server, couchdb, [A, B, req])
        assert got.status == status, (req.describe(), got.status, got.body)


async def test_update_seq_beside_keys_is_null(server, couchdb):
    for req in (get("/{db}/_all_docs", keys='["a","b"]', update_seq="true"),
                Req("POST", "/{db}/_all_docs", (("update_seq", "true"),), {"keys": ["a"]}, endpoint="POST /{db}/_all_docs")):
        got = await parity(server, couchdb, [A, B, req])
        assert got.status == 200 and got.body["update_seq"] is None


async def test_post_with_a_single_key_in_the_query_string_is_a_range(server, couchdb):
    # a POST's `keys` is its body's; a single key in the query string sets the range K..K
    def post(*query: tuple[str, str], body: object = None) -> Req:
        return Req("POST", "/{db}/_all_docs", query, {} if body is None else body, endpoint="POST /{db}/_all_docs")

    got = await parity(server, couchdb, [A, B, post(("keys", '["b"]'), ("update_seq", "true"))])
    assert got.body["offset"] == 1 and isinstance(got.body["update_seq"], str)
    got = await parity(server, couchdb, [A, B, post(("keys", '["b"]'), ("startkey", '"a"'))])
    assert [r["id"] for r in got.body["rows"]] == ["a", "b"]
    got = await parity(server, couchdb, [A, B, post(("keys", '["b","a"]'))])
    assert got.body["offset"] is None and [r["id"] for r in got.body["rows"]] == ["b", "a"]
    got = await parity(server, couchdb, [A, B, post(("keys", '["b"]'), body={"keys": ["a"]})])
    assert got.status == 400


async def test_post_keys_in_the_query_string_replace_the_bodys(server, couchdb):
    # found by the 5,000-sequence run of seed 3002: several keys (or none) in the query string
    # replace the body's, a single one only sets the range
    def post(query: tuple, body: object) -> Req:
        return Req("POST", "/{db}/_all_docs", query, body, endpoint="POST /{db}/_all_docs")

    got = await parity(server, couchdb, [A, B, post((("keys", '["b","x","a"]'),), {"keys": [3, "b", None]})])
    assert [r["key"] for r in got.body["rows"]] == ["b", "x", "a"]
    got = await parity(server, couchdb, [A, B, post((("keys", '[["x"],1.0]'), ("start_key", '"a"')), {"keys": []})])
    assert got.status == 400
    got = await parity(server, couchdb, [A, B, post((("key", '"a"'), ("keys", "[]")), {"keys": [False, "K"]})])
    assert got.status == 200 and got.body["rows"] == []
    got = await parity(server, couchdb, [A, B, post((("keys", '["b"]'),), {"keys": ["a"]})])
    assert got.status == 400


async def test_listing_keys_decoded_before_other_parameters(server, couchdb):
    # a GET's `keys` is decoded (and for _all_docs checked to be an array) before the rest
    for path in ("/{db}/_design/d/_view/v", "/{db}/_all_docs"):
        got = await parity(server, couchdb, [DDOC, get(path, limit="x", keys="{")])
        assert got.status == 400 and got.body == {"error": "bad_request", "reason": "invalid UTF-8 JSON"}, path
    got = await parity(server, couchdb, [get("/{db}/_all_docs", limit="x", keys="1")])
    assert got.body == {"error": "bad_request", "reason": "`keys` parameter must be an array."}
    got = await parity(server, couchdb, [DDOC, get("/{db}/_design/d/_view/v", limit="x", keys="1")])
    assert got.body == {"error": "query_parse_error", "reason": 'Invalid value for integer: "x"'}


async def test_listing_post_reads_body_then_query_string_in_order(server, couchdb):
    def post(query: dict, body: dict) -> Req:
        return Req("POST", "/{db}/_all_docs", tuple(query.items()), body, endpoint="POST /{db}/_all_docs")
    got = await parity(server, couchdb, [post({"keys": "{"}, {"limit": "x"})])
    assert got.body == {"error": "query_parse_error", "reason": 'Invalid value for integer: <<"x">>'}
    got = await parity(server, couchdb, [post({"skip": "-1"}, {"descending": "y"})])
    assert got.body == {"error": "query_parse_error", "reason": 'Invalid boolean parameter: "y"'}
    got = await parity(server, couchdb, [get("/{db}/_all_docs", key="{", skip="-1", descending="y")])
    assert got.body == {"error": "bad_request", "reason": "invalid UTF-8 JSON"}


async def test_body_flags_print_their_utf8_bytes(server, couchdb):
    # CouchDB parses a body's string flag as the list of its UTF-8 bytes
    for value, shown in [("é", '"é"'), ("\u0100", "[196,128]"), ("日", "[230,151,165]"), ("a\nb", '"a\\nb"')]:
        for path in ("/{db}/_all_docs", "/{db}/_design/d/_view/v"):
            post = Req("POST", path, body={"descending": value}, endpoint="POST " + path)
            got = await parity(server, couchdb, [DDOC, post])
            assert got.body == {"error": "query_parse_error", "reason": f"Invalid boolean parameter: {shown}"}, path


async def test_single_key_range_compared_exactly(server, couchdb):
    # `keys` of one key beside a range is tolerated only when the range is that very key, as
    # Erlang's =:= compares them: 1, 1.0 and true differ, as do objects with members reordered
    def post(query_keys: str, body_keys: list) -> Req:
        return Req("POST", "/{db}/_all_docs", (("keys", query_keys),), {"keys": body_keys},
                   endpoint="POST /{db}/_all_docs")
    incompatible = {"error": "query_parse_error", "reason": "`keys` is incompatible with `key`, `start_key` and `end_key`"}
    for query_keys, body_keys in [("[1.0]", [1]), ("[true]", [1]), ("[0]", [False]), ('[{"a":1,"b":2}]', [{"b": 2, "a": 1}])]:
        got = await parity(server, couchdb, [post(query_keys, body_keys)])
        assert got.status == 400 and got.body == incompatible, (query_keys, body_keys)
    got = await parity(server, couchdb, [get("/{db}/_all_docs", keys="[1]", key="true")])
    assert got.status == 400 and got.body == incompatible
    got = await parity(server, couchdb, [post('[{"a":1}]', [{"a": 1}])])
    assert got.status == 200 and got.body["rows"] == [{"key": {"a": 1}, "error": "not_found"}]


async def test_view_arguments_checked_before_its_language(server, couchdb):
    cobol = Req("PUT", "/{db}/_design/c", body={"language": "cobol", "views": {"v": {"map": "x"}}},
                endpoint="PUT /{db}/_design/{ddoc}")
    got = await parity(server, couchdb, [cobol, get("/{db}/_design/c/_view/v", group="true")])
    assert got.status == 400 and got.body == {"error": "query_parse_error",
                                              "reason": "Invalid use of grouping on a map view."}


async def test_listing_null_range_end_is_a_key(server, couchdb):
    # JSON null sorts before every document id, as any non-string: an end, not an open range
    for query, ids, offset in [({"endkey": "null"}, [], 0), ({"key": "null"}, [], 0), ({"startkey": "null"}, ["a", "b"], 0),
                               ({"endkey": '"z"', "end_key": "null"}, [], 0),
                               ({"startkey": "null", "descending": "true"}, [], 2),
                               ({"endkey": "null", "descending": "true"}, ["b", "a"], 0)]:
        got = await parity(server, couchdb, [A, B, get("/{db}/_all_docs", **query)])
        assert [r["id"] for r in got.body["rows"]] == ids and got.body["offset"] == offset, query
    post = Req("POST", "/{db}/_all_docs", body={"endkey": None}, endpoint="POST /{db}/_all_docs")
    got = await parity(server, couchdb, [A, post])
    assert got.status == 200 and got.body["rows"] == []
    local = Req("PUT", "/{db}/_local/l", body={"x": 1}, endpoint="PUT /{db}/_local/{doc}")
    for query in ({"endkey": "null"}, {"key": "null"}, {"startkey": "null", "descending": "true"}):
        got = await parity(server, couchdb, [local, get("/{db}/_local_docs", **query)])
        assert got.status == 200 and got.body["rows"] == [], query


async def test_all_docs_list_key_crash_is_the_documented_difference(server, couchdb):
    # documented difference `all-docs-non-string-keys` (the second run's `open-all-docs-badarg`):
    # the query string's keys replace the body's, `skip` passes two by, CouchDB crashes opening
    # the list key, couchpy answers it not found
    from .compare import differences
    from .known_differences import known
    from .parity import both
    req = Req("POST", "/{db}/_all_docs", (("skip", "2"), ("keys", '[1e+20, null, [false, 1.0]]')), {"keys": []},
              endpoint="POST /{db}/_all_docs")
    mine, theirs = await both(server, couchdb, [A, req])
    assert mine.status == 200 and mine.body["rows"] == [{"key": [False, 1.0], "error": "not_found"}]
    assert theirs.status == 500 and theirs.body["error"] == "badarg"
    (d,) = differences(req.endpoint, {"status": 200, "headers": {}, "body": mine.body},
                       {"status": 500, "headers": {}, "body": theirs.body})
    assert known(req, d).name == "all-docs-non-string-keys"
