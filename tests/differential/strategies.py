"""Hypothesis strategies for sequences of valid and invalid CouchDB requests.

The state space is kept small on purpose (a handful of document ids, field names and values) so
that requests of one sequence meet each other: reads see earlier writes, updates hit existing
revisions, view keys collide. Documents written with `new_edits=false` use their own ids and
client-chosen revisions, so conflicts are always decided between revisions both servers share
(a winner picked between two generated hashes would legitimately differ).
"""

from __future__ import annotations

import base64
import json
import urllib.parse

from hypothesis import strategies as st

from .model import BAD_JSON, Req

IDS = ("a", "b", "c", "d e", "\u00e9t\u00e9")
REP_IDS = ("r1", "r2")
ALL_IDS = IDS + REP_IDS
DDOC = "_design/d"
FIELDS = ("x", "y", "tag")
# client-chosen revision hashes for new_edits=false writes
GIVEN = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)
BOOLS = ("true", "false")
ODD_BOOLS = ("1", "0", "yes", "TRUE", "", "on", "null")
VIEWS = {
    "by_x": {"map": "function(doc) { if (doc.x !== undefined) emit(doc.x, doc.y === undefined ? null : doc.y); }"},
    "by_x_sum": {"map": "function(doc) { if (typeof doc.x === 'number') emit(doc.x, doc.x); }", "reduce": "_sum"},
    "pairs": {"map": "function(doc) { emit([doc.tag === undefined ? null : doc.tag, doc.x === undefined ? 0 : doc.x], 1); }",
              "reduce": "_count"},
    "objs": {"map": "function(doc) { if (doc.y !== undefined) emit({k: doc.y}, doc); }"},
    "stats": {"map": "function(doc) { if (typeof doc.x === 'number') emit(doc.tag === undefined ? null : doc.tag, doc.x); }",
              "reduce": "_stats"},
}
VIEW_NAMES = tuple(VIEWS) + ("missing",)


def enc(docid: str) -> str:
    if docid.startswith("_design/"):
        return "_design/" + urllib.parse.quote(docid[8:], safe="")
    return urllib.parse.quote(docid, safe="")


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3),
    st.sampled_from([9007199254740993, 2**64, -(2**63), 1.5, 0.1, 1e20, 1.0, -0.0]),
    st.sampled_from(["", "k", "K", "a", "b", "\u00e9", "10", "x" * 40]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELDS), inner, max_size=2)), max_leaves=6)
keys = st.one_of(st.sampled_from(ALL_IDS), scalars, st.lists(scalars, max_size=2), values)


def qbool(name: str) -> st.SearchStrategy:
    return st.tuples(st.just(name), st.one_of(st.sampled_from(BOOLS), st.sampled_from(ODD_BOOLS)))


def qint(name: str) -> st.SearchStrategy:
    return st.tuples(st.just(name), st.sampled_from(["0", "1", "2", "3", "-1", "x", "1.5", "", "10"]))


def qjson(name: str, strat: st.SearchStrategy = keys) -> st.SearchStrategy:
    return st.tuples(st.just(name), st.one_of(strat.map(json.dumps), st.sampled_from(["a", "{", "[1,"])))


def query(*items: st.SearchStrategy) -> st.SearchStrategy:
    """A subset of the given parameters, in a drawn order."""
    return st.lists(st.one_of(*items), max_size=4, unique_by=lambda kv: kv[0]).map(tuple)


attachment_inline = st.fixed_dictionaries({
    "content_type": st.sampled_from(["text/plain", "application/octet-stream"]),
    "data": st.sampled_from([base64.b64encode(b"hello world").decode(), "", "!!notbase64", base64.b64encode(b"x" * 50).decode()]),
})
attachments = st.one_of(
    st.dictionaries(st.sampled_from(["t.txt", "u.bin"]), attachment_inline, min_size=1, max_size=2),
    st.just({"t.txt": {"stub": True}}),
    st.just({"t.txt": {"content_type": "text/plain"}}),
)


@st.composite
def doc_body(draw, docid: str | None, with_rev: bool) -> dict:
    doc: dict = {}
    if docid is not None:
        doc["_id"] = docid
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=3)):
        doc[name] = draw(values)
    if with_rev:
        doc["_rev"] = draw(st.sampled_from([f"$rev:{docid}", f"$first:{docid}", "bad", "1-" + "0" * 32]))
    extra = draw(st.sampled_from(["none"] * 6 + ["deleted", "underscore", "attachments", "attachments"]))
    if extra == "deleted":
        doc["_deleted"] = True
    elif extra == "underscore":
        doc["_foo"] = 1
    elif extra == "attachments":
        doc["_attachments"] = draw(attachments)
    return doc


ids = st.sampled_from(IDS)
doc_get_params = query(
    st.tuples(st.just("rev"), st.sampled_from(["$rev:a", "$first:a", "$rev:b", "bad", "1-" + "0" * 32])),
    qbool("revs"), qbool("revs_info"), qbool("conflicts"), qbool("deleted_conflicts"), qbool("local_seq"),
    qbool("meta"), qbool("attachments"), qbool("att_encoding_info"), qbool("latest"),
    st.tuples(st.just("open_revs"), st.sampled_from(["all", '["$rev:a"]', "[]", "x", '["bad"]'])),
    qjson("atts_since", st.just(["1-" + "0" * 32])),
)


@st.composite
def put_doc(draw) -> Req:
    docid = draw(ids)
    body = draw(doc_body(None, False))
    if draw(st.booleans()):
        body["_rev"] = f"$rev:{docid}"
    q = draw(query(st.tuples(st.just("rev"), st.sampled_from([f"$rev:{docid}", "bad"])),
                   st.tuples(st.just("batch"), st.sampled_from(["ok", "no"])),
                   qbool("new_edits")))
    # a batch=ok write may not be visible yet to the next request, on either server
    return Req("PUT", f"/{{db}}/{enc(docid)}", q, body, endpoint="PUT /{db}/{doc}", terminal=("batch", "ok") in q)


@st.composite
def post_doc(draw) -> Req:
    with_id = draw(st.integers(0, 5)) > 0
    docid = draw(ids) if with_id else None
    body = draw(doc_body(docid, with_id and draw(st.booleans())))
    q = draw(query(st.tuples(st.just("batch"), st.just("ok"))))
    return Req("POST", "/{db}", q, body, endpoint="POST /{db}", terminal=not with_id or bool(q))


@st.composite
def get_doc(draw) -> Req:
    docid = draw(st.sampled_from(ALL_IDS + ("_design/d", "_local/l", "_bad")))
    q = draw(doc_get_params)
    q = tuple((k, v.replace("$rev:a", f"$rev:{docid}").replace("$first:a", f"$first:{docid}")) for k, v in q)
    method = draw(st.sampled_from(["GET", "GET", "HEAD"]))
    return Req(method, f"/{{db}}/{enc(docid)}", q, endpoint=f"{method} /{{db}}/{{doc}}")


@st.composite
def delete_doc(draw) -> Req:
    docid = draw(st.sampled_from(ALL_IDS + (DDOC,)))
    q = draw(st.sampled_from([(("rev", f"$rev:{docid}"),), (("rev", f"$first:{docid}"),), (), (("rev", "bad"),)]))
    headers = (("If-Match", f"$rev:{docid}"),) if draw(st.integers(0, 5)) == 0 else ()
    return Req("DELETE", f"/{{db}}/{enc(docid)}", q, headers=headers, endpoint="DELETE /{db}/{doc}")


@st.composite
def copy_doc(draw) -> Req:
    src, dst = draw(ids), draw(ids)
    dest = draw(st.sampled_from([enc(dst), f"{enc(dst)}?rev=$rev:{dst}"]))
    return Req("COPY", f"/{{db}}/{enc(src)}", headers=(("Destination", dest),), endpoint="COPY /{db}/{doc}")


@st.composite
def replicated_doc(draw) -> dict:
    docid = draw(st.sampled_from(REP_IDS))
    body = draw(doc_body(docid, False))
    gen = draw(st.integers(1, 3))
    history = draw(st.lists(st.sampled_from(GIVEN), min_size=gen, max_size=gen, unique=True))
    body["_rev"] = f"{gen}-{history[0]}"
    if draw(st.booleans()):
        body["_revisions"] = {"start": gen, "ids": history}
    if draw(st.integers(0, 6)) == 0:
        body["_rev"] = draw(st.sampled_from(["bad", "0-" + GIVEN[0]]))
    return body


@st.composite
def bulk_docs(draw) -> Req:
    new_edits = draw(st.sampled_from([None, True, False, False, "x"]))
    if new_edits is False:
        docs = draw(st.lists(replicated_doc(), min_size=1, max_size=3))
    else:
        docs = draw(st.lists(ids.flatmap(lambda i: doc_body(i, True)) | ids.flatmap(lambda i: doc_body(i, False)),
                             max_size=3))
    body: object = {"docs": docs}
    if new_edits is not None:
        body["new_edits"] = new_edits
    body = draw(st.sampled_from([body] * 8 + [{"docs": "x"}, [], {"docs": [1]}, {}, BAD_JSON]))
    return Req("POST", "/{db}/_bulk_docs", (), body, endpoint="POST /{db}/_bulk_docs")


id_keys = st.one_of(st.sampled_from(ALL_IDS + ("", "\uffff", "_design/", "z")), keys)
all_docs_params = query(
    qjson("key", id_keys), qjson("keys", st.lists(id_keys, max_size=3)), qjson("startkey", id_keys),
    qjson("start_key", id_keys), qjson("endkey", id_keys), qjson("end_key", id_keys), qint("limit"),
    qint("skip"), qbool("descending"), qbool("include_docs"), qbool("inclusive_end"), qbool("update_seq"),
    qbool("conflicts"), qbool("attachments"),
)


@st.composite
def all_docs(draw) -> Req:
    q = draw(all_docs_params)
    if draw(st.booleans()):
        return Req("GET", "/{db}/_all_docs", q, endpoint="GET /{db}/_all_docs")
    body = draw(st.one_of(
        st.fixed_dictionaries({"keys": st.lists(id_keys, max_size=4)}),
        st.fixed_dictionaries({}, optional={"keys": st.one_of(st.lists(id_keys, max_size=3), scalars),
                                            "limit": st.sampled_from([0, 1, -1, "2", 1.5]),
                                            "descending": st.sampled_from([True, False, "true"]),
                                            "startkey": id_keys, "endkey": id_keys,
                                            "include_docs": st.booleans()}),
        st.sampled_from([[], "x", BAD_JSON])))
    return Req("POST", "/{db}/_all_docs", q, body, endpoint="POST /{db}/_all_docs")


changes_params = query(
    st.tuples(st.just("since"), st.sampled_from(["0", "now", "1", "-1", "abc", "2-x", '"0"', "0-x"])),
    qint("limit"), qbool("descending"), qbool("include_docs"), qbool("conflicts"), qbool("attachments"),
    st.tuples(st.just("style"), st.sampled_from(["main_only", "all_docs", "bad"])),
    st.tuples(st.just("filter"), st.sampled_from(["_doc_ids", "_design", "_view", "nope", "d/nope"])),
    qjson("doc_ids", st.lists(st.sampled_from(ALL_IDS), max_size=2)),
    st.tuples(st.just("view"), st.sampled_from(["d/by_x", "d/missing", "bad"])),
    st.tuples(st.just("feed"), st.sampled_from(["normal", "bogus"])),
    qint("seq_interval"),
)


@st.composite
def changes(draw) -> Req:
    q = draw(changes_params)
    if draw(st.integers(0, 3)):
        return Req("GET", "/{db}/_changes", q, endpoint="GET /{db}/_changes")
    body = draw(st.one_of(st.fixed_dictionaries({}, optional={
        "doc_ids": st.one_of(st.lists(st.sampled_from(ALL_IDS), max_size=2), scalars),
        "selector": st.sampled_from([{"x": {"$gt": 0}}, {"tag": "k"}, "bad"])}), st.sampled_from(["x", BAD_JSON])))
    return Req("POST", "/{db}/_changes", q, body, endpoint="POST /{db}/_changes")


@st.composite
def design_doc(draw) -> Req:
    names = draw(st.lists(st.sampled_from(tuple(VIEWS)), min_size=1, max_size=3, unique=True))
    body: dict = {"views": {n: VIEWS[n] for n in names}}
    bad = draw(st.integers(0, 8))
    if bad == 0:
        body["views"] = {"v": {"map": 1}}
    elif bad == 1:
        body["views"] = {"v": {"map": "function(doc) { emit(doc._id, 1); }", "reduce": "_nope"}}
    elif bad == 2:
        body["language"] = "cobol"
    if draw(st.booleans()):
        body["_rev"] = f"$rev:{DDOC}"
    return Req("PUT", f"/{{db}}/{DDOC}", (), body, endpoint="PUT /{db}/_design/{ddoc}")


view_keys = st.one_of(keys, st.lists(st.one_of(st.sampled_from(["k", "K", None]), st.integers(-1, 3)), max_size=2))
view_params = query(
    qjson("key", view_keys), qjson("keys", st.lists(view_keys, max_size=3)), qjson("startkey", view_keys),
    qjson("start_key", view_keys), qjson("endkey", view_keys), qjson("end_key", view_keys),
    st.tuples(st.sampled_from(["startkey_docid", "start_key_doc_id", "endkey_docid", "end_key_doc_id"]),
              st.sampled_from(ALL_IDS)),
    qint("limit"), qint("skip"), qbool("descending"), qbool("group"), qint("group_level"), qbool("reduce"),
    qbool("include_docs"), qbool("inclusive_end"), qbool("update_seq"), qbool("sorted"), qbool("conflicts"),
    qbool("attachments"), st.tuples(st.just("stale"), st.sampled_from(["ok", "update_after", "bad"])),
    st.tuples(st.just("update"), st.sampled_from(["true", "false", "lazy", "x"])),
)


@st.composite
def view_query(draw) -> Req:
    view = draw(st.sampled_from(VIEW_NAMES))
    path = f"/{{db}}/{DDOC}/_view/{view}"
    q = draw(view_params)
    if draw(st.integers(0, 2)):
        return Req("GET", path, q, endpoint="GET /{db}/_design/{ddoc}/_view/{view}")
    body = draw(st.one_of(
        st.fixed_dictionaries({}, optional={"keys": st.one_of(st.lists(view_keys, max_size=3), scalars),
                                            "limit": st.sampled_from([1, -1, "2"]),
                                            "group": st.sampled_from([True, "true"]),
                                            "reduce": st.booleans(), "startkey": view_keys,
                                            "descending": st.booleans()}),
        st.sampled_from(["x", BAD_JSON])))
    return Req("POST", path, q, body, endpoint="POST /{db}/_design/{ddoc}/_view/{view}")


selectors = st.one_of(
    st.sampled_from([{}, {"x": {"$gt": 0}}, {"tag": "k"}, {"x": {"$exists": True}}, {"_id": {"$gt": None}},
                     {"x": {"$in": [1, 2]}}, {"$or": [{"x": 1}, {"tag": "k"}]}, {"x": {"$bad": 1}}, "x", []]),
    st.builds(lambda f, v: {f: v}, st.sampled_from(FIELDS), scalars),
)
sorts = st.sampled_from([["x"], [{"x": "desc"}], [{"_id": "desc"}], ["_id"], [{"x": "up"}], "x", ["x", "tag"]])


@st.composite
def find(draw) -> Req:
    body = draw(st.fixed_dictionaries({"selector": selectors}, optional={
        "sort": sorts, "fields": st.sampled_from([["_id"], ["x", "_rev"], "x", []]),
        "limit": st.sampled_from([0, 1, 2, -1, "1"]), "skip": st.sampled_from([0, 1, -1, "x"]),
        "use_index": st.sampled_from(["byx", ["_design/i", "byx"], "nope", 1]),
        "conflicts": st.booleans(), "r": st.sampled_from([1, 2, "x"]),
        "execution_stats": st.booleans(), "stable": st.booleans(), "update": st.booleans(),
    }) | st.sampled_from([{}, [], {"selector": {}, "nope": 1}, BAD_JSON]))
    return Req("POST", "/{db}/_find", (), body, endpoint="POST /{db}/_find")


@st.composite
def index(draw) -> Req:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return Req("GET", "/{db}/_index", draw(query(qint("limit"), qint("skip"))), endpoint="GET /{db}/_index")
    if kind == 1:
        path = draw(st.sampled_from(["/{db}/_index/_design/i/json/byx", "/{db}/_index/i/json/byx",
                                     "/{db}/_index/_design/i/json/nope", "/{db}/_index/_design/i/text/byx"]))
        return Req("DELETE", path, endpoint="DELETE /{db}/_index/{ddoc}/{type}/{name}")
    body = draw(st.fixed_dictionaries(
        {"index": st.sampled_from([{"fields": ["x"]}, {"fields": [{"x": "desc"}]}, {"fields": ["tag", "x"]},
                                   {"fields": []}, {"fields": "x"}, {}, "x"])},
        optional={"name": st.sampled_from(["byx", "", 1]), "ddoc": st.sampled_from(["i", "_design/i", 1]),
                  "type": st.sampled_from(["json", "text", "x"]),
                  "partial_filter_selector": st.sampled_from([{"x": {"$gt": 0}}, "x"])}))
    return Req("POST", "/{db}/_index", (), body, endpoint="POST /{db}/_index")


rev_lists = st.lists(st.sampled_from(["$rev:a", "$first:a", "$rev:b", "bad", "1-" + GIVEN[0], None, 1, ""]), max_size=3)


@st.composite
def revs_diff(draw) -> Req:
    body = draw(st.one_of(st.dictionaries(st.sampled_from(ALL_IDS + ("zz",)), st.one_of(rev_lists, scalars), max_size=3),
                          st.sampled_from([[], "x", BAD_JSON])))
    return Req("POST", "/{db}/_revs_diff", (), body, endpoint="POST /{db}/_revs_diff")


@st.composite
def bulk_get(draw) -> Req:
    item = st.fixed_dictionaries({"id": st.sampled_from(ALL_IDS + ("zz",))}, optional={
        "rev": st.sampled_from(["$rev:a", "$first:b", "bad", "1-" + GIVEN[0]]),
        "atts_since": st.sampled_from([["1-" + "0" * 32], "x"])}) | st.sampled_from([{}, "x", {"id": 1}])
    body = draw(st.one_of(st.fixed_dictionaries({"docs": st.lists(item, max_size=3)}),
                          st.sampled_from([{"docs": "x"}, {}, [], BAD_JSON])))
    q = draw(query(qbool("revs"), qbool("attachments"), qbool("latest")))
    return Req("POST", "/{db}/_bulk_get", q, body, endpoint="POST /{db}/_bulk_get")


RANGES = ("bytes=0-3", "bytes=-2", "bytes=5-", "bytes=3-1", "bytes=0-0", "bytes=100-200", "bytes=0-1,3-4",
          "bytes=x", "items=0-1", "bytes=0-100")


@st.composite
def attachment(draw) -> Req:
    docid = draw(st.sampled_from(IDS[:3]))
    att = draw(st.sampled_from(["t.txt", "u.bin", "no.txt"]))
    path = f"/{{db}}/{enc(docid)}/{att}"
    kind = draw(st.integers(0, 3))
    if kind == 0:
        q = draw(st.sampled_from([(("rev", f"$rev:{docid}"),), (), (("rev", "bad"),)]))
        ctype = draw(st.sampled_from(["text/plain", "application/octet-stream", None]))
        headers = (("Content-Type", ctype),) if ctype else ()
        data = draw(st.sampled_from([b"hello world", b"", b"0123456789" * 3]))
        return Req("PUT", path, q, data, headers, endpoint="PUT /{db}/{doc}/{att}")
    if kind == 1:
        q = draw(st.sampled_from([(("rev", f"$rev:{docid}"),), (), (("rev", f"$first:{docid}"),)]))
        return Req("DELETE", path, q, endpoint="DELETE /{db}/{doc}/{att}")
    method = draw(st.sampled_from(["GET", "GET", "HEAD"]))
    headers = (("Range", draw(st.sampled_from(RANGES))),) if draw(st.booleans()) else ()
    q = draw(query(st.tuples(st.just("rev"), st.sampled_from([f"$rev:{docid}", f"$first:{docid}"]))))
    return Req(method, path, q, headers=headers, endpoint=f"{method} /{{db}}/{{doc}}/{{att}}")


@st.composite
def local_doc(draw) -> Req:
    kind = draw(st.integers(0, 2))
    path = "/{db}/_local/l"
    if kind == 0:
        body = draw(doc_body(None, False))
        return Req("PUT", path, (), body, endpoint="PUT /{db}/_local/{doc}")
    if kind == 1:
        return Req("GET", path, draw(query(qbool("revs"), qbool("conflicts"))), endpoint="GET /{db}/_local/{doc}")
    return Req("DELETE", path, draw(st.sampled_from([(), (("rev", "0-1"),), (("rev", "$rev:_local/l"),)])),
               endpoint="DELETE /{db}/_local/{doc}")


def db_info() -> st.SearchStrategy:
    return st.just(Req("GET", "/{db}", endpoint="GET /{db}"))


@st.composite
def wrong_content_type(draw, inner: st.SearchStrategy) -> Req:
    """A request with a JSON body sent under another (or no) Content-Type."""
    req = draw(inner)
    if req.body is None or isinstance(req.body, bytes):
        return req
    ctype = draw(st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"]))
    # still terminal when it was (a batch=ok write is visible at a moment of each server's choosing)
    return Req(req.method, req.path, req.query, json.dumps(req.body).encode(), (("Content-Type", ctype),),
               req.endpoint, terminal=req.terminal)


def request() -> st.SearchStrategy:
    writes = st.one_of(put_doc(), post_doc(), bulk_docs(), delete_doc(), design_doc(), attachment())
    reads = st.one_of(get_doc(), all_docs(), changes(), view_query(), find(), revs_diff(), bulk_get(),
                      db_info(), local_doc(), copy_doc(), index())
    return st.one_of(writes, writes, reads, reads, reads,
                     wrong_content_type(st.one_of(bulk_docs(), all_docs(), find(), index(), revs_diff(), put_doc())))


@st.composite
def sequences(draw, max_size: int = 12) -> list[Req]:
    reqs = draw(st.lists(request(), min_size=1, max_size=max_size))
    # a generated id orders unpredictably among the others: nothing is compared after it
    cut = next((i for i, r in enumerate(reqs) if r.terminal), None)
    return reqs if cut is None else reqs[: cut + 1]
