"""View rows stored once (couchpy.views.rows, format 3): the layout's pure parts, and an index
kept up to date through random writes answering exactly as a brute-force evaluation and as an
index built from scratch, over mixed-type keys, long keys and long ids, across a restart and a
compaction."""

from __future__ import annotations

import asyncio
import json
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import couchpy
from couchpy import collate, longkeys
from couchpy.views import manager, rows

ids = st.one_of(st.text(min_size=1, max_size=12), st.text(alphabet="ab\x00é", min_size=1, max_size=6),
                st.builds(lambda s, n: s * n, st.sampled_from(["x", "é", "\x00"]), st.integers(150, 700)))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60),
                    st.floats(allow_nan=False, allow_infinity=False, width=32).filter(lambda f: f != int(f)),
                    st.text(max_size=8), st.sampled_from(["a", "A", "aa", "b", "é", "x" * 600]))
keys = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.sampled_from(["a", "b", "B"]), inner, max_size=2)),
                    max_leaves=5)


@given(key=keys, docid=ids, n=st.integers(0, 300), value=scalars)
@settings(max_examples=200, deadline=None)
def test_a_stored_row_gives_back_its_key_id_and_value(key, docid, n, value):
    rk = rows.row_key(b"", collate.encode(key), collate.raw_string(docid), n)
    stored, raw = rows.pack(key, docid, value, rk)
    assert stored == longkeys.ordered(rk)
    got = rows.row_of(stored, raw)
    assert got[1] == docid and got[0] == key and (got[2] == value or value != value)


@given(a=st.tuples(keys, ids, st.integers(0, 70000)), b=st.tuples(keys, ids, st.integers(0, 70000)))
@settings(max_examples=200, deadline=None)
def test_row_keys_order_as_key_then_id_then_emit_number(a, b):
    def rk(t):
        return rows.row_key(b"", collate.encode(t[0]), collate.raw_string(t[1]), t[2])

    def parts(t):
        return (collate.encode(t[0]), collate.raw_string(t[1]), t[2])

    if parts(a) != parts(b):
        assert (rk(a) < rk(b)) == (parts(a) < parts(b))


@given(entries=st.lists(st.tuples(st.integers(0, 255), keys, st.integers(0, 1000)), max_size=5), docid=ids,
       partitioned=st.booleans())
@settings(max_examples=200, deadline=None)
def test_back_index_entries_rebuild_the_row_keys(entries, docid, partitioned):
    raw_id = docid.encode("utf-8", "surrogatepass")
    did = longkeys.point(raw_id)
    pp = b"\x06p\x00" if partitioned else b""
    rid = collate.raw_string(docid)
    packed = rows.pack_back([(j, collate.encode(k), n) for j, k, n in entries], docid if did != raw_id else None)
    assert rows.back_rowkeys(packed, pp, rid) == [
        (j, longkeys.ordered(rows.row_key(pp, collate.encode(k), rid, n))) for j, k, n in entries]
    assert rows.back_docid(did, packed) == docid


# ---------------------------------------------------------------- an index against brute force

MAP = "function(doc) { if (doc.rows) for (var i = 0; i < doc.rows.length; i++) emit(doc.rows[i][0], doc.rows[i][1]); }"
VIEWS = {"all": {"map": MAP}, "count": {"map": MAP, "reduce": "_count"}, "sum": {"map": MAP, "reduce": "_sum"},
         "stats": {"map": MAP, "reduce": "_stats"}}
# the same views under another signature: an index built from scratch over the same documents
FRESH = {name: {**v, "map": v["map"] + " "} for name, v in VIEWS.items()}

doc_rows = st.lists(st.tuples(keys, st.integers(-50, 50)), max_size=3)
ops = st.lists(st.tuples(st.integers(0, 11), st.one_of(st.none(), doc_rows)), min_size=1, max_size=14)


async def _query(node, db, ddoc, view, **params):
    return await manager.query_view(node, db, ddoc, view, {k: json.dumps(v) for k, v in params.items()}, True)


def _sort_key(row):
    return collate.encode(row["key"]), collate.raw_string(row["id"])


async def _answers(node, db, ddoc):
    out = {"all": (await _query(node, db, ddoc, "all"))}
    for q in ({}, {"group": True}, {"descending": True, "group_level": 1, "limit": 3}):
        for view in ("count", "sum", "stats"):
            out[f"{view}{q}"] = await _query(node, db, ddoc, view, **q)
    out["desc"] = await _query(node, db, ddoc, "all", descending=True, skip=1, limit=5)
    return out


def _as_javascript_emits(key):
    """The key as the JavaScript map function hands it back: every number is a double, and a double
    is printed with its shortest digits (2**60 comes back as 1152921504606847000)."""
    if isinstance(key, bool) or key is None or isinstance(key, str):
        return key
    if isinstance(key, int) and abs(key) > 2**53:
        return int(Decimal(repr(float(key))))
    if isinstance(key, list):
        return [_as_javascript_emits(k) for k in key]
    if isinstance(key, dict):
        return {k: _as_javascript_emits(v) for k, v in key.items()}
    return key


def _check_brute(answer, model):
    got = answer["all"]["rows"]
    assert got == sorted(got, key=_sort_key)
    expected = sorted(((collate.encode(_as_javascript_emits(k)), docid, v) for docid, rs in model.items() for k, v in rs),
                      key=lambda t: (t[0], collate.raw_string(t[1]), t[2]))
    assert [(collate.encode(r["key"]), r["id"], r["value"]) for r in got] == expected
    assert answer["all"]["total_rows"] == len(expected)
    assert answer["count{}"]["rows"] == ([{"key": None, "value": len(expected)}] if expected else [])
    assert answer["sum{}"]["rows"] == ([{"key": None, "value": sum(v for _, _, v in expected)}] if expected else [])


@given(rounds=st.lists(ops, min_size=1, max_size=2),
       docids=st.lists(ids.filter(lambda s: not s.startswith("_")), min_size=12, max_size=12, unique=True))
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@example(rounds=[[(0, [(-(2**60), 1), ([2**55], 2)])]], docids=[f"d{i}" for i in range(12)])  # beyond a double
def test_an_updated_index_answers_as_brute_force_and_as_a_fresh_build(rounds, docids):
    async def run(tmp: Path) -> None:
        node = couchpy.open(tmp)
        db = node.create_db("db")
        await db.put({"_id": "_design/v", "views": VIEWS})
        model: dict[str, list] = {}
        revs: dict[str, str] = {}
        for round_ in rounds:
            for i, rs in round_:
                docid = docids[i]
                if rs is None and docid not in model:
                    continue  # a deletion of a document that is not there
                doc = {"_id": docid} if rs is None else {"_id": docid, "rows": [[k, v] for k, v in rs]}
                if docid in revs:
                    doc["_rev"] = revs[docid]
                if rs is None:
                    doc["_deleted"] = True
                r = (await db.bulk_docs([doc]))[0]
                assert "rev" in r, (doc, r)
                revs[docid] = r["rev"]
                if rs is None:
                    model.pop(docid, None)
                    del revs[docid]  # created again from scratch
                else:
                    model[docid] = list(rs)
            _check_brute(await _answers(node, db, "v"), model)  # incremental updates
        updated = await _answers(node, db, "v")
        await db.put({"_id": "_design/fresh", "views": FRESH})
        assert await _answers(node, db, "fresh") == updated
        await node.aclose()
        node = couchpy.open(tmp)  # a restart: the back-index still finds every row it wrote
        db = node.get_db("db")
        assert await _answers(node, db, "v") == updated
        for docid, rev in list(revs.items())[:4]:
            if docid in model:  # every live document's revision is in revs
                await db.put({"_id": docid, "_rev": rev, "_deleted": True})
                del model[docid]
        ix = manager.index_by_name(node, db, "v")
        _check_brute(await _answers(node, db, "v"), model)
        await manager.compact_index(node, db, ix)
        _check_brute(await _answers(node, db, "v"), model)
        await node.aclose()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))


def test_a_first_build_leaves_full_pages(tmp_path):
    """A first build of many documents is rewritten in key order: its file holds little more
    than its live pages, and what a full-pages copy keeps is what the build wrote."""
    async def run() -> None:
        node = couchpy.open(tmp_path)
        db = node.create_db("db")
        docs = [{"_id": f"{(i * 7919) % 10007:05d}-{i}", "rows": [[["k", i % 37, f"s{i % 11}"], i]]}
                for i in range(6000)]
        for i in range(0, len(docs), 1000):
            await db.bulk_docs(docs[i:i + 1000])
        await db.put({"_id": "_design/v", "views": VIEWS})
        first = await _answers(node, db, "v")
        ix = manager.index_by_name(node, db, "v")
        assert ix.store.file_size() <= 1.1 * ix.store.used_bytes()
        _check_brute(first, {d["_id"]: [tuple(r) for r in d["rows"]] for d in docs})
        await node.aclose()

    asyncio.run(run())
