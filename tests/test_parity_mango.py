"""_find/_explain where couchpy used to answer otherwise than CouchDB 3.4.3: each case runs
against both (same requests, same asserted answer)."""

from __future__ import annotations

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)


async def _setup(peer, pdb) -> None:
    for docid, a in (("b", 1), ("a", 2), ("c", 3)):
        await put_doc(peer, pdb, docid, {"a": a, "b": 4 - a})
    async with peer.post(f"/{pdb}/_index", json={"index": {"fields": ["a"]}, "ddoc": "ia", "name": "ia"}) as r:
        assert r.status == 200, await r.text()


async def test_find_sorted_descending_on_an_indexed_field(peer, pdb):
    await _setup(peer, pdb)
    for selector in ({"a": {"$gt": 0}}, {"a": {"$gt": 0}, "b": {"$gt": 0}}):
        async with peer.post(f"/{pdb}/_find", json={"selector": selector, "sort": [{"a": "desc"}],
                                                     "fields": ["_id", "a"]}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["docs"] == [{"_id": "c", "a": 3}, {"_id": "a", "a": 2}, {"_id": "b", "a": 1}]


async def test_explain_a_sort_no_index_serves(peer, pdb):
    await _setup(peer, pdb)
    query = {"selector": {"z": {"$gt": 0}}, "sort": [{"z": "desc"}]}
    async with peer.post(f"/{pdb}/_find", json=query) as r:
        assert (r.status, await r.json()) == (400, {
            "error": "no_usable_index", "reason": "No index exists for this sort, try indexing by the sort fields."})
    async with peer.post(f"/{pdb}/_explain", json=query) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["index"] is None and "mrargs" not in body
    assert body["selector"] == {"z": {"$gt": 0}} and body["opts"]["sort"] == {"z": "desc"}
    assert (body["dbname"], body["limit"], body["skip"]) == (pdb, 25, 0)


async def test_warning_of_an_index_named_but_not_used(peer, pdb):
    await _setup(peer, pdb)
    fallback = "No matching index found, create an index to optimize query time."
    for use_index, text in (
            (["ia", "ia"], "_design/ia, ia was not used because it is not a valid index for this query."),
            ("ia", "_design/ia was not used because it does not contain a valid index for this query."),
            (["nope", "x"], "_design/nope, x was not used because it is not a valid index for this query."),
            ("nope", "_design/nope was not used because it does not contain a valid index for this query.")):
        async with peer.post(f"/{pdb}/_find", json={"selector": {"c": {"$gt": 0}}, "use_index": use_index}) as r:
            assert r.status == 200
            assert (await r.json())["warning"] == text + "\n" + fallback


async def test_all_compares_a_whole_list_by_value_and_members_exactly(peer, pdb):
    # `$all: [[...]]` against the whole list is Erlang `==` (1 == 1.0); each member of `$all`
    # against an element is `=:=` (1 =/= 1.0)
    for docid, v in (("f", [1.0, 2]), ("i", [1, 2]), ("n", [[1.0], 2])):
        await put_doc(peer, pdb, docid, {"v": v})
    for arg, expected in (([[1, 2]], ["f", "i"]), ([[1.0, 2.0]], ["f", "i"]), ([1.0], ["f"]), ([1], ["i"]),
                          ([[1]], [])):
        async with peer.post(f"/{pdb}/_find", json={"selector": {"v": {"$all": arg}}, "fields": ["_id"]}) as r:
            assert r.status == 200, await r.text()
            assert sorted(d["_id"] for d in (await r.json())["docs"]) == expected, arg
