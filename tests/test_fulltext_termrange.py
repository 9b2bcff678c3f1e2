"""Term ranges on `string` and `text` fields (`kind:[apple TO melon}`), compared with a brute-force
scan: bounds of any characters (quoted in the query), open ends, inclusive and exclusive, and the
code-point order Lucene's byte order gives. couchpy.fulltext.termrange builds them."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings, strategies as st

import couchpy
from couchpy.fulltext import manager, params

SRC = """function(doc){ if (doc.kind) index('string','kind',doc.kind);
                      if (doc.title) index('text','title',doc.title); }"""
# letters on both sides of the ASCII/Unicode border, and the characters Tantivy's parser refused
CHARS = st.sampled_from(list('abcAZ mz"\\]}[{:*é€\U0001F600') + ["\x00", "\n"])
WORDS = st.text(CHARS, min_size=1, max_size=4)  # an empty string is not indexed


def _quoted(bound: str | None) -> str:
    return "*" if bound is None else '"' + bound.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _inside(v: str, lo: str | None, hi: str | None, lo_incl: bool, hi_incl: bool) -> bool:
    if lo is not None and (v < lo or (v == lo and not lo_incl)):
        return False
    return hi is None or v < hi or (v == hi and hi_incl)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(WORDS, min_size=1, max_size=12), data=st.data())
def test_string_ranges_match_a_scan(tmp_path_factory, kinds, data):
    # bounds are often the indexed values themselves: where inclusive and exclusive differ
    bound = st.none() | WORDS | st.sampled_from(kinds)
    ranges = data.draw(st.lists(st.tuples(bound, bound, st.booleans(), st.booleans()), min_size=4, max_size=8))
    path = tmp_path_factory.mktemp("ranges")

    async def run():
        node = couchpy.open(str(path))
        try:
            db = node.create_db("r")
            await db.put({"_id": "_design/s", "nouveau": {"idx": {"index": SRC}}})
            await db.bulk_docs([{"_id": f"d{i:02}", "kind": k} for i, k in enumerate(kinds)])
            for lo, hi, lo_incl, hi_incl in ranges:
                q = f"kind:{'[' if lo_incl else '{'}{_quoted(lo)} TO {_quoted(hi)}{']' if hi_incl else '}'}"
                res = await manager.search(node, db, "s", "idx", params.parse_args({"q": q, "limit": 200}, text=False))
                got = sorted(h["id"] for h in res["hits"])
                want = sorted(f"d{i:02}" for i, k in enumerate(kinds) if _inside(k, lo, hi, lo_incl, hi_incl))
                assert got == want, (q, kinds)
        finally:
            await node.aclose()

    asyncio.run(run())


async def test_text_field_ranges_compare_lowercased_terms(tmp_path):
    """A text field's terms are its analyzer's (lowercased words): the bounds are lowercased too."""
    node = couchpy.open(str(tmp_path))
    try:
        db = node.create_db("t")
        await db.put({"_id": "_design/s", "nouveau": {"idx": {"index": SRC}}})
        await db.bulk_docs([{"_id": "a", "title": "Apple pie"}, {"_id": "b", "title": "Melon"},
                            {"_id": "c", "title": "zebra"}])

        async def ids(q):
            res = await manager.search(node, db, "s", "idx", params.parse_args({"q": q}, text=False))
            return sorted(h["id"] for h in res["hits"])
        assert await ids("title:[A TO N]") == ["a", "b"]  # apple, melon (and pie)
        assert await ids("title:{melon TO *]") == ["a", "c"]  # pie, zebra
        assert await ids("title:[* TO *]") == ["a", "b", "c"]
    finally:
        await node.aclose()
