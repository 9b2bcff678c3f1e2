"""Built-in reduces answered as CouchDB 3.4.3 answers them (same requests to both servers)."""

from __future__ import annotations

import json

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)


def F(text: str) -> tuple:
    """A JSON float as written (so that 115.0 and 115 differ, as they do on the wire)."""
    return ("float", text)


async def test_stats_keep_integers_integral(peer, pdb):
    for i in range(40):
        await put_doc(peer, pdb, f"d{i:02}", {"v": i % 7, "f": (i % 5) / 2, "o": {"sum": 3, "count": 2, "min": 1,
                                                                                  "max": 2, "sumsqr": 5}})
    await put_doc(peer, pdb, "_design/d", {"views": {
        "ints": {"map": "function(doc){ if (doc.v !== undefined) emit(doc.v, doc.v / 1); }", "reduce": "_stats"},
        "floats": {"map": "function(doc){ if (doc.f !== undefined) emit(doc.v, doc.f); }", "reduce": "_stats"},
        "objects": {"map": "function(doc){ if (doc.o) emit(doc.v, doc.o); }", "reduce": "_stats"},
    }})

    async def value(view: str, **params) -> list:
        async with peer.get(f"/{pdb}/_design/d/_view/{view}", params=params) as r:
            assert r.status == 200, await r.text()
            return json.loads(await r.text(), parse_float=F)["rows"]

    assert await value("ints") == [{"key": None, "value": {"sum": 115, "count": 40, "min": 0, "max": 6, "sumsqr": 485}}]
    assert (await value("ints", group="true"))[1] == {
        "key": 1, "value": {"sum": 6, "count": 6, "min": 1, "max": 1, "sumsqr": 6}}
    assert (await value("floats"))[0]["value"] == {"sum": F("40.0"), "count": 40, "min": 0, "max": 2,
                                                   "sumsqr": F("60.0")}
    assert await value("objects") == [{"key": None, "value": {"sum": 120, "count": 80, "min": 1, "max": 2,
                                                               "sumsqr": 200}}]


async def test_a_group_level_given_decides_over_group_true(peer, pdb):
    """`group_level`, when given, decides the grouping, also over `group=true`
    (couch_mrview_util:determine_group_level): `group_level=0` with `group=true` reads a map view
    (met by the differential tester's ninth run), and reduces a reduce view whole."""
    await put_doc(peer, pdb, "a", {"x": 1})
    await put_doc(peer, pdb, "b", {"x": 2})
    await put_doc(peer, pdb, "_design/d", {"views": {
        "map": {"map": "function(doc) { emit(doc.x, null); }"},
        "sum": {"map": "function(doc) { emit(doc.x, doc.x); }", "reduce": "_sum"}}})
    async with peer.post(f"/{pdb}/_design/d/_view/map?group_level=0", json={"group": True}) as r:
        assert r.status == 200, await r.text()
        assert [row["key"] for row in (await r.json())["rows"]] == [1, 2]
    async with peer.get(f"/{pdb}/_design/d/_view/sum", params={"group": "true", "group_level": "0"}) as r:
        assert (await r.json())["rows"] == [{"key": None, "value": 3}]
    async with peer.post(f"/{pdb}/_design/d/_view/map?group_level=1", json={"group": True}) as r:
        assert (r.status, (await r.json())["reason"]) == (400, "Invalid use of grouping on a map view.")
