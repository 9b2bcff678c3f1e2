"""_all_docs, _design_docs and _local_docs where couchpy used to answer otherwise than CouchDB
3.4.3: each case runs against both (same requests, same asserted answer)."""

from __future__ import annotations

import json

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)


async def _setup(peer, pdb) -> dict:
    revs = {k: await put_doc(peer, pdb, k, {"v": k}) for k in ("b", "a", "c")}
    revs["_design/d"] = await put_doc(peer, pdb, "_design/d", {"language": "javascript"})
    async with peer.put(f"/{pdb}/_local/x", json={"v": 1}) as r:
        assert r.status == 201
    return revs


def _ids(body: dict) -> list:
    return [row.get("id", row["key"]) for row in body["rows"]]


@pytest.mark.parametrize("how", ["post", "get"])
async def test_keys_come_back_reversed_when_descending(peer, pdb, how):
    await _setup(peer, pdb)
    keys = ["a", "zz", "c", "b"]
    if how == "post":
        req = peer.post(f"/{pdb}/_all_docs", params={"descending": "true"}, json={"keys": keys})
    else:
        req = peer.get(f"/{pdb}/_all_docs", params={"descending": "true", "keys": json.dumps(keys)})
    async with req as r:
        body = await r.json()
    assert _ids(body) == ["b", "c", "zz", "a"]
    assert body["rows"][2] == {"key": "zz", "error": "not_found"}
    async with peer.post(f"/{pdb}/_all_docs", json={"keys": keys, "descending": True, "skip": 1, "limit": 2}) as r:
        assert _ids(await r.json()) == ["c", "zz"]


@pytest.mark.parametrize("params,offset,ids", [
    ({"skip": "10"}, 4, []),
    ({"skip": "10", "descending": "true"}, 4, []),
    ({"skip": "10", "startkey": '"b"'}, 4, []),
    ({"skip": "1", "startkey": '"b"'}, 3, ["c"]),
    ({"skip": "3", "startkey": '"b"', "descending": "true"}, 4, []),
])
async def test_offset_stops_at_the_end_when_skip_passes_it(peer, pdb, params, offset, ids):
    await _setup(peer, pdb)
    async with peer.get(f"/{pdb}/_all_docs", params=params) as r:
        body = await r.json()
    assert (body["total_rows"], body["offset"], _ids(body)) == (4, offset, ids)


async def test_design_docs_offset_and_keys(peer, pdb):
    revs = await _setup(peer, pdb)
    async with peer.get(f"/{pdb}/_design_docs", params={"skip": "10"}) as r:
        assert await r.json() == {"total_rows": 1, "offset": 1, "rows": []}
    async with peer.post(f"/{pdb}/_design_docs", json={"keys": ["_design/d", "_design/nope", "a", "_local/x"]}) as r:
        assert await r.json() == {"total_rows": 1, "offset": None, "rows": [
            {"id": "_design/d", "key": "_design/d", "value": {"rev": revs["_design/d"]}},
            {"key": "_design/nope", "error": "not_found"}]}


async def test_local_docs_keys_outside_the_namespace_have_no_row(peer, pdb):
    await _setup(peer, pdb)
    async with peer.post(f"/{pdb}/_local_docs", json={"keys": ["_local/nope", "_local/x", "a", "_design/d"]}) as r:
        assert await r.json() == {"total_rows": None, "offset": None, "rows": [
            {"key": "_local/nope", "error": "not_found"},
            {"id": "_local/x", "key": "_local/x", "value": {"rev": "0-1"}}]}


# (ids in the database, query) -> (total_rows, offset) as CouchDB 3.4.3 answered them: it counts
# every document before the range's start in the id btree, and clamps the offset to total_rows
DESIGN_OFFSETS = [
    (("a", "b", "c", "_design/x", "_design/y"), {"descending": "true"}, (2, 2)),
    (("a", "_design/x", "_design/y"), {"descending": "true"}, (2, 1)),
    (("_design/x", "_design/y"), {"descending": "true"}, (2, 0)),
    (("a", "b", "c", "d", "e", "_design/x", "_design/y", "_design/z"), {"descending": "true"}, (3, 3)),
    (("A", "B", "_design/x", "a"), {}, (1, 1)),
    (("A", "B", "_design/x", "a"), {"descending": "true"}, (1, 1)),
    (("A", "_design/x", "_design/y", "_design/z"), {"startkey": '"_design/y"'}, (3, 2)),
    (("a", "b", "_design/x", "_design/y", "_design/z"), {"descending": "true", "skip": "1"}, (3, 3)),
]


@pytest.mark.parametrize("ids,query,expected", DESIGN_OFFSETS)
async def test_design_docs_offset_counts_every_document_before(peer, pdb, ids, query, expected):
    async with peer.post(f"/{pdb}/_bulk_docs", json={"docs": [{"_id": i} for i in ids]}) as r:
        assert r.status == 201
    async with peer.get(f"/{pdb}/_design_docs", params=query) as r:
        body = await r.json()
    assert (body["total_rows"], body["offset"]) == expected, body
