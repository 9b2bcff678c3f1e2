"""A view query's parameters as CouchDB 3.4.3 reads them (couch_mrview_http, couch_mrview_util),
checked against the real one: read in order (a POSTed view's body, then its query string; a
`/queries` query's members after the query string), a later word winning; `keys` of a single key
read as `key` where it stands; `keys` of several beside a key range refused; a range whose ends are
the same term never reversed by its document ids; `group=false` beside a `group_level`."""

from __future__ import annotations

from .model import Req
from .parity import both, parity

DDOC = Req("PUT", "/{db}/_design/d", body={"views": {
    "v": {"map": "function(doc) { emit(doc.x, 1); }"},
    "r": {"map": "function(doc) { emit(doc._id, 1); }", "reduce": "_count"}}}, endpoint="PUT /{db}/_design/{ddoc}")
DOCS = [Req("PUT", f"/{{db}}/{x}", body={"x": x}, endpoint="PUT /{db}/{doc}") for x in "abc"]
REVERSED = "No rows can match your key range, reverse your start_key and end_key or set descending=true"
INCOMPATIBLE = "`keys` is incompatible with `key`, `start_key` and `end_key`"


def view(method: str, query: tuple = (), body: object = None, name: str = "v", queries: bool = False) -> Req:
    path = f"/{{db}}/_design/d/_view/{name}" + ("/queries" if queries else "")
    return Req(method, path, query, body, endpoint=f"{method} /{{db}}/_design/{{ddoc}}/_view/{{view}}")


async def run(server, couchdb, req: Req) -> tuple[int, object]:
    got = await parity(server, couchdb, [DDOC, *DOCS, req])
    if got.status == 200:
        rows = got.body["results"][0]["rows"] if "results" in got.body else got.body["rows"]
        return 200, [r.get("key") for r in rows]
    return got.status, got.body["reason"]


async def test_single_key_reads_as_key_where_it_stands(server, couchdb):
    cases = [
        (view("GET", (("startkey", '"b"'), ("keys", '["a"]'))), (200, ["a"])),
        (view("GET", (("keys", '["a"]'), ("endkey", '"b"'))), (200, ["a", "b"])),
        (view("GET", (("keys", '["a"]'), ("key", '"b"'))), (200, ["b"])),
        (view("GET", (("keys", '["a","b"]'), ("startkey", '"b"'))), (400, INCOMPATIBLE)),
        (view("GET", (("keys", "[]"), ("startkey", '"a"'))), (200, [])),
        (view("POST", body={"keys": ["a"], "endkey": "b"}), (200, ["a", "b"])),
        (view("POST", body={"keys": ["a", "b"], "endkey": "b"}), (400, INCOMPATIBLE)),
        # a reduce view: one key is a range, reduced whole; several need group=true
        (view("GET", (("keys", '["a"]'),), name="r"), (200, [None])),
        (view("GET", (("keys", '["a","b"]'),), name="r"), (400, "Multi-key fetches for reduce views must use `group=true`")),
    ]
    for req, answer in cases:
        assert await run(server, couchdb, req) == answer, req.describe()
    # the body first, then the query string: the query string's word wins
    cases = [
        (view("POST", (("limit", "2"),), {"limit": 1}), (200, ["a", "b"])),
        (view("POST", (("startkey", '"b"'),), {"startkey": "c"}), (200, ["b", "c"])),
        (view("POST", (("keys", '["a"]'),), {"startkey": "b"}), (200, ["a"])),
        (view("POST", (("keys", '["a","b"]'),), {"keys": ["b", "c"]}), (200, ["a", "b"])),
        (view("POST", (("keys", '["a","b"]'),), {"keys": ["c"]}), (400, INCOMPATIBLE)),
        # `/queries`: the query string first, then each query's members
        (view("POST", (("startkey", '"b"'),), {"queries": [{"keys": ["a"]}]}, queries=True), (200, ["a"])),
        (view("POST", (("limit", "1"),), {"queries": [{"limit": 2}]}, queries=True), (200, ["a", "b"])),
        (view("POST", (("keys", '["a"]'),), {"queries": [{"startkey": "b"}]}, queries=True), (400, REVERSED)),
    ]
    for req, answer in cases:
        assert await run(server, couchdb, req) == answer, req.describe()


async def test_range_of_one_term_is_never_reversed(server, couchdb):
    for query, answer in [
        ((("startkey", '"a"'), ("endkey", '"a"'), ("startkey_docid", "b"), ("endkey_docid", "a")), (200, [])),
        ((("startkey", '"a"'), ("endkey", '"a"'), ("startkey_docid", "a"), ("endkey_docid", "b"),
          ("descending", "true")), (200, [])),
        ((("startkey", "1"), ("endkey", "1"), ("startkey_docid", "b"), ("endkey_docid", "a")), (200, [])),
    ]:
        assert await run(server, couchdb, view("GET", query)) == answer, query
    # 1 and 1.0 are two terms: compared with their document ids
    mine, theirs = await both(server, couchdb, [DDOC, view("GET", (("startkey", "1"), ("endkey", "1.0"),
                                                                   ("startkey_docid", "b"), ("endkey_docid", "a")))])
    assert mine.status == theirs.status == 400 and mine.body["reason"] == theirs.body["reason"] == REVERSED
    # documented difference `view-error-ref`: CouchDB's single view query names its stack
    assert "ref" in theirs.body and set(mine.body) == {"error", "reason"}


async def test_group_false_beside_a_group_level(server, couchdb):
    for query in ((("group", "false"), ("group_level", "1")), (("group_level", "1"), ("group", "false"))):
        assert await run(server, couchdb, view("GET", query, name="r")) == (
            400, "Can't specify group=false and group_level>0 at the same time")
    assert await run(server, couchdb, view("GET", (("group_level", "0"), ("group", "false")), name="r")) == (200, [None])
