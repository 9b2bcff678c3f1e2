"""Hypothesis: after random creates/updates/deletes, view queries equal a brute-force evaluation.

Both languages (JavaScript and Python views), map and reduce, random ranges, directions, limits,
group levels; the index is queried between rounds of writes, so incremental updates are exercised.
"""

from __future__ import annotations

import base64
import functools
import json
import urllib.error
import urllib.request
import uuid
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from couchpy import collate
from tests.serverproc import CouchpyServer

KEYS = [None, False, True, 0, 1, 2.5, -3, "a", "A", "b", "ab", ["a"], ["a", 1], ["a", 2], ["b"], ["b", "a", 1], {"x": 1}]

JS_VIEWS = {
    "sum": {"map": "function(doc) { if ('k' in doc) emit(doc.k, doc.v); }", "reduce": "_sum"},
    "custom": {"map": "function(doc) { if ('k' in doc) emit(doc.k, doc.v); }",
               "reduce": "function(keys, values, rereduce) { return sum(values); }"},
}
PY_VIEWS = {
    "sum": {"map": "def fun(doc):\n    if 'k' in doc:\n        yield doc['k'], doc['v']\n", "reduce": "_sum"},
    "custom": {"map": "def fun(doc):\n    if 'k' in doc:\n        yield doc['k'], doc['v']\n",
               "reduce": "def red(keys, values, rereduce):\n    return sum(values)\n"},
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = CouchpyServer(tmp_path_factory.mktemp("vprop"), config={"query_servers": {"python": "true"}})
    s.start()
    yield s
    s.stop()


class Http:
    def __init__(self, srv):
        self.base = srv.base
        user, pw = srv.auth.login, srv.auth.password
        self.auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.base + path, data=data, method=method,
                                   headers={"Authorization": self.auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


def row_order(a, b):
    c = collate.compare(a[0], b[0])
    if c:
        return c
    x, y = a[1].encode(), b[1].encode()
    return (x > y) - (x < y)


def brute(docs: dict, q: dict):
    rows = sorted(((d["k"], i, d["v"]) for i, d in docs.items() if "k" in d), key=functools.cmp_to_key(row_order))
    desc = q.get("descending", False)
    if desc:
        rows.reverse()
    incl = q.get("inclusive_end", True)

    def in_range(k):
        if "startkey" in q:
            c = collate.compare(k, q["startkey"])
            if (c < 0 and not desc) or (c > 0 and desc):
                return False
        if "endkey" in q:
            c = collate.compare(k, q["endkey"])
            if not desc and (c > 0 or (c == 0 and not incl)):
                return False
            if desc and (c < 0 or (c == 0 and not incl)):
                return False
        return True

    rows = [r for r in rows if in_range(r[0])]
    if not q.get("reduce", True):
        out = [{"id": i, "key": k, "value": v} for k, i, v in rows]
    else:
        level = q.get("group_level")
        if q.get("group"):
            level = level if level is not None else "exact"
        if level is None:
            out = [{"key": None, "value": sum(v for _, _, v in rows)}] if rows else []
        else:
            out = []
            for k, _i, v in rows:
                gk = k if level == "exact" else collate.group_key(k, level)
                if out and collate.compare(out[-1]["key"], gk) == 0:
                    out[-1]["value"] += v
                else:
                    out.append({"key": gk, "value": v})
    skip = q.get("skip", 0)
    out = out[skip:]
    if "limit" in q:
        out = out[: q["limit"]]
    return out


keys = st.sampled_from(KEYS)
ops = st.lists(st.tuples(st.integers(0, 12), st.one_of(st.none(), keys), st.integers(-5, 20)), min_size=1, max_size=25)


@st.composite
def queries(draw):
    q: dict = {}
    if draw(st.booleans()):
        q["startkey"] = draw(keys)
    if draw(st.booleans()):
        q["endkey"] = draw(keys)
    q["descending"] = draw(st.booleans())
    if "startkey" in q and "endkey" in q:
        c = collate.compare(q["startkey"], q["endkey"])
        if (c > 0 and not q["descending"]) or (c < 0 and q["descending"]):
            q["startkey"], q["endkey"] = q["endkey"], q["startkey"]
    if draw(st.booleans()):
        q["inclusive_end"] = False
    mode = draw(st.sampled_from(["map", "reduce", "group", "level"]))
    if mode == "map":
        q["reduce"] = False
    elif mode == "group":
        q["group"] = True
    elif mode == "level":
        q["group_level"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        q["limit"] = draw(st.integers(0, 6))
    if draw(st.booleans()):
        q["skip"] = draw(st.integers(0, 4))
    return q


def qs(q: dict) -> str:
    return "&".join(f"{k}={quote(json.dumps(v))}" for k, v in q.items())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ops, min_size=1, max_size=3), st.lists(queries(), min_size=1, max_size=4))
def test_views_equal_brute_force(srv, rounds, qlist):
    h = Http(srv)
    db = "vp-" + uuid.uuid4().hex[:10]
    assert h.req("PUT", f"/{db}")[0] == 201
    try:
        assert h.req("PUT", f"/{db}/_design/js", {"views": JS_VIEWS})[0] == 201
        assert h.req("PUT", f"/{db}/_design/py", {"language": "python", "views": PY_VIEWS})[0] == 201
        docs: dict[str, dict] = {}
        revs: dict[str, str] = {}
        for batch in rounds:
            seen = set()
            bulk = []
            for n, k, v in batch:
                did = f"doc{n}"
                if did in seen:
                    continue
                seen.add(did)
                if k is None and did in revs:  # delete
                    bulk.append({"_id": did, "_rev": revs[did], "_deleted": True})
                    docs.pop(did, None)
                elif k is not None:
                    d = {"_id": did, "k": k, "v": v}
                    if did in revs:
                        d["_rev"] = revs[did]
                    bulk.append(d)
                    docs[did] = {"k": k, "v": v}
            status, res = h.req("POST", f"/{db}/_bulk_docs", {"docs": bulk})
            assert status == 201
            for r in res:
                assert r.get("ok"), r
                revs[r["id"]] = r["rev"]
            # as in CouchDB, a deleted document is written again without a rev (its tombstone's
            # rev is a conflict), and deleting it again is nothing to do
            for d in bulk:
                if d.get("_deleted"):
                    revs.pop(d["_id"], None)
            for q in qlist:
                want = brute(docs, q)
                for dd in ("js", "py"):
                    for view in ("sum", "custom"):
                        if view == "custom" and not q.get("reduce", True):
                            continue
                        status, body = h.req("GET", f"/{db}/_design/{dd}/_view/{view}?{qs(q)}")
                        assert status == 200, (q, body)
                        assert body["rows"] == want, (dd, view, q)
                        if not q.get("reduce", True):
                            assert body["total_rows"] == len(docs)
    finally:
        h.req("DELETE", f"/{db}")
