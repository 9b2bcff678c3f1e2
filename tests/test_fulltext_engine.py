"""Nouveau indexes in the engine (no HTTP): hits, ranking, sort, bookmarks, facets, incremental
updates, deletions, purges, reopening, crash states, and a hypothesis property against a
brute-force scan of the documents."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import shutil

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import couchpy
from couchpy.errors import BadRequest, CouchError, NotFound
from couchpy.fulltext import manager, params
from couchpy.fulltext.lucene import QueryParseError

INDEX = """function(doc){
  if (typeof doc.title == 'string') { index('text','default',doc.title); index('text','title',doc.title,{store:true}); }
  if (typeof doc.kind == 'string') index('string','kind',doc.kind,{store:true});
  if (typeof doc.price == 'number') index('double','price',doc.price,{store:true});
  if (doc.tags) for (var i = 0; i < doc.tags.length; i++) index('string','tag',doc.tags[i]);
  if (doc.secret) index('stored','note',doc.secret);
}"""

DDOC = {"_id": "_design/s", "nouveau": {"idx": {"index": INDEX, "default_analyzer": "english"}}}

DOCS = [
    {"_id": "a", "title": "The quick brown fox", "kind": "animal", "price": 3.5, "tags": ["x", "y"]},
    {"_id": "b", "title": "Running dogs run and run", "kind": "animal", "price": 10},
    {"_id": "c", "title": "A red car", "kind": "thing", "price": 100.0, "secret": "s1"},
    {"_id": "d", "title": "Cars are running", "kind": "thing", "price": -2, "tags": ["y"]},
    {"_id": "e", "title": "dog", "kind": "Thing"},
]


@pytest.fixture
async def node(tmp_path):
    n = couchpy.open(str(tmp_path / "data"))
    yield n
    await n.aclose()


async def _setup(node, docs=DOCS, ddoc=DDOC):
    db = node.create_db("db")
    await db.put(dict(ddoc))
    await db.bulk_docs([dict(d) for d in docs])
    return db


async def search(node, db, q, index="idx", **kw):
    raw = {"q": q, **kw}
    return await manager.search(node, db, "s", index, params.parse_args(raw, text=False))


def ids(res):
    return [h["id"] for h in res["hits"]]


async def test_hits_fields_and_boolean_logic(node):
    db = await _setup(node)
    r = await search(node, db, "fox")
    assert ids(r) == ["a"] and r["total_hits"] == 1 and r["total_hits_relation"] == "EQUAL_TO"
    assert r["hits"][0]["fields"] == {"title": "The quick brown fox", "kind": "animal", "price": 3.5}
    assert r["hits"][0]["order"][-1] == {"@type": "string", "value": "a"}
    assert set(ids(await search(node, db, "title:running"))) == {"b", "d"}  # english stemming
    assert ids(await search(node, db, "run AND NOT kind:animal")) == ["d"]
    assert ids(await search(node, db, "run -kind:animal")) == ["d"]
    assert set(ids(await search(node, db, "kind:thing OR fox"))) == {"a", "c", "d"}
    assert ids(await search(node, db, "kind:Thing")) == ["e"]  # string fields are exact
    assert ids(await search(node, db, "NOT fox")) == []  # Lucene: purely negative matches nothing
    assert (await search(node, db, "*:*"))["total_hits"] == 5
    assert ids(await search(node, db, '"red car"')) == ["c"]
    assert ids(await search(node, db, '"car red"')) == []
    assert ids(await search(node, db, '"car red"~2')) == ["c"]
    assert set(ids(await search(node, db, "qu* OR ca?"))) == {"a", "c", "d"}
    assert ids(await search(node, db, "tag:x")) == ["a"]
    assert ids(await search(node, db, "nofield:x OR fox")) == ["a"]
    assert ids(await search(node, db, "price:[0 TO 10]", sort="price")) == ["a", "b"]
    assert ids(await search(node, db, "price:{3.5 TO Infinity]", sort="price")) == ["b", "c"]
    assert ids(await search(node, db, "price:[-Infinity TO 0]")) == ["d"]
    assert ids(await search(node, db, "price:100")) == ["c"]
    # stored-only values come back, never match
    assert (await search(node, db, "car"))["hits"][0]["fields"]["note"] == "s1"
    assert ids(await search(node, db, "note:s1")) == []


async def test_ranking_sanity(node):
    db = await _setup(node)
    r = await search(node, db, "run OR dog")
    # 'b' says run three times and dogs once: it ranks first
    assert ids(r)[0] == "b"
    scores = [h["order"][0]["value"] for h in r["hits"]]
    assert scores == sorted(scores, reverse=True)
    boosted = await search(node, db, "car^10 OR fox")
    assert ids(boosted)[0] in ("c", "d")


async def test_sort_forms(node):
    db = await _setup(node)
    assert ids(await search(node, db, "*:*", sort="price<double>")) == ["d", "a", "b", "c", "e"]
    assert ids(await search(node, db, "*:*", sort="-price")) == ["c", "b", "a", "d", "e"]
    assert ids(await search(node, db, "*:*", sort=["kind<string>", "-price<double>"])) == ["e", "b", "a", "c", "d"]
    r = await search(node, db, "*:*", sort=["-kind", "price"])
    assert ids(r) == ["d", "c", "a", "b", "e"]
    assert r["hits"][0]["order"] == [{"@type": "string", "value": "thing"}, {"@type": "double", "value": -2.0},
                                     {"@type": "string", "value": "d"}]
    with pytest.raises(QueryParseError):
        await search(node, db, "*:*", sort="kind<double>")


async def test_bookmark_pages_every_hit_once(node):
    docs = [{"_id": f"d{i:03}", "title": "word " * (i % 7 + 1) + ("odd" if i % 2 else "even"),
             "kind": "k%d" % (i % 3), "price": i % 11} for i in range(120)]
    db = await _setup(node, docs)
    for sort in (None, "price", "-kind", ["kind", "-price"]):
        seen: list[str] = []
        bookmark = None
        for _ in range(50):
            kw = {"limit": 7, "sort": sort} if sort else {"limit": 7}
            if bookmark:
                kw["bookmark"] = bookmark
            r = await search(node, db, "word", **kw)
            assert r["total_hits"] == 120
            if not r["hits"]:
                assert r["bookmark"] == bookmark  # the end: the same bookmark back
                break
            seen += ids(r)
            bookmark = r["bookmark"]
        assert sorted(seen) == sorted(d["_id"] for d in docs), sort
        assert len(seen) == len(set(seen))


async def test_counts_and_ranges(node):
    db = await _setup(node)
    r = await search(node, db, "*:*", counts=["kind", "tag", "nofield"],
                     ranges={"price": [{"label": "cheap", "min": 0, "max": 10},
                                       {"label": "cheap_excl", "min": 0, "max": 10, "max_inclusive": False},
                                       {"label": "all", "min": None, "max": None}]})
    assert r["counts"] == {"kind": {"animal": 2, "thing": 2, "Thing": 1}, "tag": {"x": 1, "y": 2}, "nofield": {}}
    assert r["ranges"] == {"price": {"cheap": 2, "cheap_excl": 1, "all": 4}}
    r = await search(node, db, "run", counts=["kind"])
    assert r["counts"] == {"kind": {"animal": 1, "thing": 1}} and r["ranges"] is None


async def test_incremental_updates_deletes_and_new_fields(node):
    db = await _setup(node)
    assert ids(await search(node, db, "fox")) == ["a"]
    a = db.get("a")
    await db.put({**a, "title": "a slow turtle"})
    await db.put({"_id": "c", "_rev": db.get("c")["_rev"], "_deleted": True})
    await db.put({"_id": "f", "title": "another fox"})
    assert ids(await search(node, db, "fox")) == ["f"]
    assert ids(await search(node, db, "turtle")) == ["a"]
    assert ids(await search(node, db, "car")) == ["d"]
    # update=false answers from the index as it is
    await db.put({"_id": "g", "title": "fox three"})
    assert ids(await search(node, db, "fox", update=False)) == ["f"]
    assert set(ids(await search(node, db, "fox"))) == {"f", "g"}
    # a field name the index has not seen yet: the schema grows, nothing is lost
    ddoc = db.get("_design/s")
    await db.put({**ddoc, "nouveau": {"idx": {"index": INDEX.replace(
        "if (doc.secret)", "if (typeof doc.color == 'string') index('string','color',doc.color);\n  if (doc.secret)"),
        "default_analyzer": "english"}}})
    await db.put({"_id": "h", "title": "blue fox", "color": "blue"})
    assert ids(await search(node, db, "color:blue")) == ["h"]
    assert set(ids(await search(node, db, "fox"))) == {"f", "g", "h"}


async def test_purge_removes_from_index(node):
    db = await _setup(node)
    assert ids(await search(node, db, "fox")) == ["a"]
    rev = db.get("a")["_rev"]
    await db.purge({"a": [rev]})
    assert ids(await search(node, db, "fox")) == []
    assert (await search(node, db, "*:*"))["total_hits"] == 4


async def test_errors(node):
    db = await _setup(node)
    with pytest.raises(NotFound):
        await search(node, db, "fox", index="nope")
    with pytest.raises(NotFound):
        await manager.search(node, db, "missing", "idx", params.parse_args({"q": "x"}, False))
    for q in ["fox AND", "(fox", "[1 TO", '"open', "price:abc"]:
        with pytest.raises(QueryParseError):
            await search(node, db, q)
    for raw in [{}, {"q": "x", "limit": "0"}, {"q": "x", "limit": "a"}, {"q": "x", "sort": "[1]"},
                {"q": "x", "counts": "\"kind\""}, {"q": "x", "ranges": "[]"}, {"q": "x", "bookmark": "!!"},
                {"q": "x", "include_docs": "yes"}]:
        with pytest.raises(QueryParseError):
            params.parse_args(raw, text=True)
    with pytest.raises(CouchError) as e:
        await db.put({"_id": "_design/bad", "nouveau": {"i": {"index": "function(doc) { syntax error"}}})
    assert e.value.status == 400 and e.value.error == "compilation_error"
    with pytest.raises(BadRequest):
        await db.put({"_id": "_design/bad", "nouveau": {"i": {"index": "function(doc){}", "default_analyzer": "klingon"}}})


async def test_index_function_errors_leave_the_document_out(node):
    src = """function(doc){ index('text','default', doc.title); if (doc.bad == 1) index('double','n','x');
      if (doc.bad == 2) index('text','_x','y'); if (doc.bad == 3) throw new Error('boom'); }"""
    db = await _setup(node, [{"_id": f"d{i}", "title": "same", "bad": i} for i in range(5)],
                      {"_id": "_design/s", "nouveau": {"idx": {"index": src}}})
    assert sorted(ids(await search(node, db, "same"))) == ["d0", "d4"]


async def test_survives_reopen_and_catches_up(tmp_path):
    path = str(tmp_path / "data")
    node = couchpy.open(path)
    db = await _setup(node)
    assert ids(await search(node, db, "fox")) == ["a"]
    await db.put({"_id": "z", "title": "fox in the box"})
    await node.aclose()
    node = couchpy.open(path)
    try:
        db = node.get_db("db")
        info = (await manager.info(node, db, "s", "idx"))["search_index"]
        assert info["update_seq"] == 6 and info["num_docs"] == 5  # indexed before, not yet `z`
        assert sorted(ids(await search(node, db, "fox"))) == ["a", "z"]
    finally:
        await node.aclose()


async def test_crash_states_are_never_wrong(tmp_path):
    """The state file behind the Tantivy commit (a crash between the two) replays; a lost or
    damaged state file rebuilds."""
    path = str(tmp_path / "data")
    node = couchpy.open(path)
    db = await _setup(node)
    await search(node, db, "fox")
    ixdir = db.directory / "nouveau"
    (sigdir,) = list(ixdir.iterdir())
    old_state = (sigdir / "state.json").read_bytes()
    a = db.get("a")
    await db.put({**a, "title": "turtle"})
    assert ids(await search(node, db, "turtle")) == ["a"]
    await node.aclose()
    # the commit happened, the state write did not
    (sigdir / "state.json").write_bytes(old_state)
    node = couchpy.open(path)
    db = node.get_db("db")
    assert ids(await search(node, db, "turtle")) == ["a"] and ids(await search(node, db, "fox")) == []
    assert (await search(node, db, "*:*"))["total_hits"] == 5
    await node.aclose()
    (sigdir / "state.json").write_bytes(b"{garbage")
    node = couchpy.open(path)
    db = node.get_db("db")
    assert ids(await search(node, db, "turtle")) == ["a"]
    assert (await search(node, db, "*:*"))["total_hits"] == 5
    await node.aclose()
    shutil.rmtree(sigdir / "tantivy")
    node = couchpy.open(path)
    db = node.get_db("db")
    assert (await search(node, db, "*:*"))["total_hits"] == 5
    await node.aclose()


async def test_cleanup_and_delete(node):
    db = await _setup(node)
    await search(node, db, "fox")
    root = db.directory / "nouveau"
    assert len(list(root.iterdir())) == 1
    await db.put({**db.get("_design/s"), "nouveau": {"idx": {"index": INDEX, "default_analyzer": "standard"}}})
    await search(node, db, "fox")
    assert len(list(root.iterdir())) == 2
    await manager.cleanup(node, db)
    assert len(list(root.iterdir())) == 1
    await node.delete_db("db")
    assert not root.exists()


# ------------------------------------------------------------------ property

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "zeta"]
KINDS = ["k1", "k2", "K1"]


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_property_term_queries_equal_brute_force(tmp_path_factory, data):
    docs = data.draw(st.lists(st.fixed_dictionaries({
        "title": st.lists(st.sampled_from(WORDS), min_size=0, max_size=5).map(" ".join),
        "kind": st.sampled_from(KINDS),
        "price": st.integers(-5, 5),
    }), min_size=0, max_size=25))
    edits = data.draw(st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["delete", "retitle"]),
                                         st.sampled_from(WORDS)), max_size=6))
    queries = data.draw(st.lists(st.one_of(
        st.sampled_from(WORDS).map(lambda w: ("default", w)),
        st.sampled_from(KINDS).map(lambda k: ("kind", k)),
        st.tuples(st.integers(-6, 6), st.integers(-6, 6)).map(lambda r: ("price", r)),
        st.tuples(st.sampled_from(WORDS), st.sampled_from(WORDS)).map(lambda p: ("and", p)),
        st.tuples(st.sampled_from(WORDS), st.sampled_from(KINDS)).map(lambda p: ("not", p)),
    ), min_size=1, max_size=6))
    src = """function(doc){ index('text','default',doc.title); index('string','kind',doc.kind);
              index('double','price',doc.price); }"""
    path = tmp_path_factory.mktemp("prop")

    def matches(doc, q):
        kind, arg = q
        words = doc["title"].split()
        if kind == "default":
            return arg in words
        if kind == "kind":
            return doc["kind"] == arg
        if kind == "price":
            lo, hi = min(arg), max(arg)
            return lo <= doc["price"] <= hi
        if kind == "and":
            return arg[0] in words and arg[1] in words
        return arg[0] in words and doc["kind"] != arg[1]

    def lucene(q):
        kind, arg = q
        if kind == "default":
            return arg
        if kind == "kind":
            return f"kind:{arg}"
        if kind == "price":
            return f"price:[{min(arg)} TO {max(arg)}]"
        if kind == "and":
            return f"{arg[0]} AND {arg[1]}"
        return f"{arg[0]} AND NOT kind:{arg[1]}"

    async def run():
        node = couchpy.open(str(path))
        try:
            db = node.create_db("p")
            await db.put({"_id": "_design/s", "nouveau": {"idx": {"index": src}}})
            live = {}
            if docs:
                res = await db.bulk_docs([{"_id": f"d{i:02}", **d} for i, d in enumerate(docs)])
                live = {r["id"]: {**d, "_rev": r["rev"]} for r, d in zip(res, docs)}
            for q in queries[:2]:  # index before the edits too: the edits are incremental
                await search(node, db, lucene(q))
            for n, op, word in edits:
                docid = f"d{n:02}"
                if docid not in live:
                    continue
                if op == "delete":
                    await db.put({"_id": docid, "_rev": live.pop(docid)["_rev"], "_deleted": True})
                else:
                    d = {**live[docid], "title": word}
                    r = await db.put({"_id": docid, **d})
                    live[docid] = {**d, "_rev": r["rev"]}
            for q in queries:
                got = set()
                bookmark = None
                for _ in range(10):
                    kw = {"limit": 10}
                    if bookmark:
                        kw["bookmark"] = bookmark
                    r = await search(node, db, lucene(q), **kw)
                    if not r["hits"]:
                        break
                    got |= set(ids(r))
                    bookmark = r["bookmark"]
                want = {i for i, d in live.items() if matches(d, q)}
                assert got == want, (lucene(q), got, want)
                assert r["total_hits"] == len(want)
        finally:
            await node.aclose()

    asyncio.run(run())


async def test_shortcut_pages_equal_the_full_ordering(node):
    """The shortcuts (top hits with no tie at the page boundary, `*:*` by sequence) give the pages
    ordering every hit gives (a sort of two relevance keys takes the full path)."""
    rng = random.Random(3)
    docs = [{"_id": f"d{i:03}", "title": " ".join(rng.choice(["alpha", "beta", "gamma"]) for _ in range(rng.randint(1, 6)))}
            for i in range(80)]
    db = await _setup(node, docs)

    async def pages(q, sort):
        out, bookmark = [], None
        for _ in range(40):
            kw = {"limit": 6}
            if sort:
                kw["sort"] = sort
            if bookmark:
                kw["bookmark"] = bookmark
            r = await search(node, db, q, **kw)
            if not r["hits"]:
                return out
            out.append(ids(r))
            bookmark = r["bookmark"]
        raise AssertionError("too many pages")

    for q in ["alpha", "beta OR gamma", "alpha^2 gamma", "*:*"]:
        quick = await pages(q, None)
        full = await pages(q, ["relevance", "relevance"])
        assert quick == full, q
        assert sum(len(p) for p in quick) == len({i for p in quick for i in p})


_QCHARS = st.sampled_from(list('abcfoxrunpricekind:*?~^"()[]{}+-!&|\\ TONDAR0123456789.') + ["AND", "OR", "NOT", " TO "])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(q=st.one_of(st.sampled_from(["fox", "*:*", "run OR car", "price:[0 TO 50]", "kind:thing"]),
                  st.lists(_QCHARS, max_size=14).map("".join)),
       bookmark=st.one_of(st.none(), st.just([["x"], 1]), st.just([[1.5], 2 ** 70]), st.just([[None], -1]),
                          st.just([[1, 2], 3]), st.just([[], 0])),
       sort=st.sampled_from([None, "price", "-kind", "kind<double>", "-<score>", '["kind", "price"]']),
       limit=st.sampled_from([1, 3, 10 ** 9]))
def test_any_request_is_answered_or_a_400(tmp_path_factory, q, bookmark, sort, limit):
    """Whatever the query text, sort and (forged) bookmark: an answer or a 400, never a crash."""
    global _FUZZ
    if _FUZZ is None:
        path = tmp_path_factory.mktemp("fuzz")

        async def setup():
            n = couchpy.open(str(path))
            db = await _setup(n)
            await search(n, db, "*:*")
            return n, db
        loop = asyncio.new_event_loop()
        _FUZZ = (loop, *loop.run_until_complete(setup()))
    loop, n, db = _FUZZ
    raw = {"q": q, "limit": limit}
    if sort:
        raw["sort"] = orjson.loads(sort) if sort.startswith("[") else sort
    if bookmark is not None:
        raw["bookmark"] = base64.urlsafe_b64encode(json.dumps(bookmark).encode()).decode()

    async def go():
        try:
            args = params.parse_args(raw, text=False)
            r = await manager.search(n, db, "s", "idx", args)
            assert len(r["hits"]) <= min(limit, r["total_hits"])
        except CouchError as e:
            assert e.status == 400, (q, e.reason)
    loop.run_until_complete(go())


_FUZZ = None


async def test_concurrent_first_requests_open_one_index(node):
    """Requests arriving together at an index not open yet share one opening (two objects
    creating one directory at once trampled each other's files)."""
    db = await _setup(node)
    results = await asyncio.gather(*[search(node, db, "fox OR car") for _ in range(6)],
                                   *[manager.info(node, db, "s", "idx") for _ in range(3)])
    for r in results[:6]:
        assert sorted(ids(r)) == ["a", "c", "d"]
    assert len({id(manager._indexes.of(db)[k]) for k in manager._indexes.of(db)}) == 1
