"""POST /{db}/_purge, _purged_infos_limit, _purged_infos: the same requests to couchpy and to
Apache CouchDB 3.4.3 (fixtures `peer`/`pdb`), answered the same; views and Mango indexes drop
purged documents without a rebuild."""

from __future__ import annotations

import asyncio

import pytest

from tests.parity import pdb, peer, put_doc  # noqa: F401  (pytest fixtures)

JSON = {"Content-Type": "application/json"}


async def _purge(peer, db: str, body) -> tuple[int, dict]:
    async with peer.post(f"/{db}/_purge", json=body) as r:
        return r.status, await r.json()


async def _get(peer, path: str, **params) -> tuple[int, dict]:
    async with peer.get(path, params=params, headers={"Accept": "application/json"}) as r:
        return r.status, await r.json()


async def _conflicted(peer, db: str) -> tuple[str, str]:
    """Document `d` with 1-x -> 2-<edit> and a replicated sibling 2-aaaa; (rev 1, edited rev 2)."""
    r1 = await put_doc(peer, db, "d", {"v": 1})
    r2 = await put_doc(peer, db, "d", {"_rev": r1, "v": 2})
    sibling = {"_id": "d", "_rev": "2-aaaa", "v": 3, "_revisions": {"start": 2, "ids": ["aaaa", r1.split("-")[1]]}}
    async with peer.post(f"/{db}/_bulk_docs", json={"new_edits": False, "docs": [sibling]}) as r:
        assert r.status == 201
    return r1, r2


async def test_purge_of_one_branch_leaves_the_other(peer, pdb):
    r1, r2 = await _conflicted(peer, pdb)
    status, body = await _purge(peer, pdb, {"d": [r1, "2-aaaa", "9-zz"]})
    # only a leaf is purged: 1-x is an ancestor of r2 and 9-zz is unknown
    assert (status, body) == (201, {"purge_seq": None, "purged": {"d": ["2-aaaa"]}})
    status, revs = await _get(peer, f"/{pdb}/d", open_revs="all")
    assert [row["ok"]["_rev"] for row in revs] == [r2]
    _, doc = await _get(peer, f"/{pdb}/d", revs="true", conflicts="true")
    assert doc["_revisions"]["ids"] == [r2.split("-")[1], r1.split("-")[1]] and "_conflicts" not in doc
    status, body = await _get(peer, f"/{pdb}/d", rev="2-aaaa")
    assert (status, body) == (404, {"error": "not_found", "reason": "missing"})


async def test_purge_whole_document(peer, pdb):
    rev = await put_doc(peer, pdb, "a", {})
    await put_doc(peer, pdb, "b", {})
    _, before = await _get(peer, f"/{pdb}")
    status, body = await _purge(peer, pdb, {"a": [rev], "zz": ["1-x"]})
    assert (status, body) == (201, {"purge_seq": None, "purged": {"a": [rev], "zz": []}})
    assert await _get(peer, f"/{pdb}/a") == (404, {"error": "not_found", "reason": "missing"})
    _, info = await _get(peer, f"/{pdb}")
    assert (info["doc_count"], info["doc_del_count"]) == (1, 0)
    seq = lambda s: int(s.split("-")[0])  # noqa: E731
    assert seq(info["purge_seq"]) == seq(before["purge_seq"]) + 2  # one per document named
    assert seq(info["update_seq"]) > seq(before["update_seq"])
    _, changes = await _get(peer, f"/{pdb}/_changes")
    assert [row["id"] for row in changes["results"]] == ["b"]
    _, rows = await _get(peer, f"/{pdb}/_all_docs")
    assert [row["id"] for row in rows["rows"]] == ["b"]
    _, infos = await _get(peer, f"/{pdb}/_purged_infos")
    assert infos == {"purged_infos": [{"id": "a", "revs": [rev]}, {"id": "zz", "revs": ["1-x"]}]}
    # the same id can be written again, from nothing
    async with peer.put(f"/{pdb}/a", json={}) as r:
        assert r.status == 201 and (await r.json())["rev"] == rev


async def test_purge_of_a_deleted_document(peer, pdb):
    rev = await put_doc(peer, pdb, "x", {})
    async with peer.delete(f"/{pdb}/x", params={"rev": rev}) as r:
        tomb = (await r.json())["rev"]
    assert (await _purge(peer, pdb, {"x": [tomb]}))[1]["purged"] == {"x": [tomb]}
    _, info = await _get(peer, f"/{pdb}")
    assert (info["doc_count"], info["doc_del_count"]) == (0, 0)
    _, changes = await _get(peer, f"/{pdb}/_changes")
    assert changes["results"] == []


@pytest.mark.parametrize("body,reason", [
    ([], "Request body must be a JSON object"),
    ({"x": "1-a"}, "Invalid list of revisions"),
    ({"x": [1]}, "Invalid rev format"),
])
async def test_purge_bad_bodies(peer, pdb, body, reason):
    assert await _purge(peer, pdb, body) == (400, {"error": "bad_request", "reason": reason})


async def test_purge_requests_shape(peer, pdb):
    assert await _purge(peer, pdb, {}) == (201, {"purge_seq": None, "purged": {}})
    async with peer.post(f"/{pdb}/_purge", data=b"{}") as r:
        assert r.status == 415
        assert await r.json() == {"error": "bad_content_type", "reason": "Content-Type must be application/json"}
    async with peer.post(f"/{pdb}/_purge", data=b"junk", headers=JSON) as r:
        assert (r.status, await r.json()) == (400, {"error": "bad_request", "reason": "invalid UTF-8 JSON"})
    async with peer.get(f"/{pdb}/_purge") as r:
        assert (r.status, await r.json()) == (405, {"error": "method_not_allowed", "reason": "Only POST allowed"})
    assert await _purge(peer, "no-such-db-purge", {}) == (404, {"error": "not_found",
                                                                "reason": "Database does not exist."})


async def test_purged_infos_limit(peer, pdb):
    assert await _get(peer, f"/{pdb}/_purged_infos_limit") == (200, 1000)
    for bad in (0, -1, "5"):
        async with peer.put(f"/{pdb}/_purged_infos_limit", json=bad) as r:
            assert (r.status, await r.json()) == (400, {"error": "bad_request",
                                                        "reason": "`purged_infos_limit` must be positive integer"})
    async with peer.put(f"/{pdb}/_purged_infos_limit", json=5) as r:
        assert (r.status, await r.json()) == (200, {"ok": True})
    assert await _get(peer, f"/{pdb}/_purged_infos_limit") == (200, 5)
    async with peer.post(f"/{pdb}/_purged_infos_limit") as r:
        assert (r.status, await r.json()) == (405, {"error": "method_not_allowed", "reason": "Only GET,PUT allowed"})


async def test_views_and_mango_drop_purged_documents(peer, pdb):
    ddoc = {"views": {"v": {"map": "function(doc){ emit(doc.v, null); }"}}}
    async with peer.put(f"/{pdb}/_design/d", json=ddoc) as r:
        assert r.status == 201
    async with peer.post(f"/{pdb}/_index", json={"index": {"fields": ["v"]}, "name": "byv"}) as r:
        assert r.status == 200
    gone = await put_doc(peer, pdb, "gone", {"v": 10})
    r1 = await put_doc(peer, pdb, "d", {"v": 1})
    r2 = await put_doc(peer, pdb, "d", {"_rev": r1, "v": 3})
    # a replicated sibling that loses to r2 (a smaller revision id of the same generation)
    sibling = {"_id": "d", "_rev": "2-0000", "v": 2, "_revisions": {"start": 2, "ids": ["0000", r1.split("-")[1]]}}
    async with peer.post(f"/{pdb}/_bulk_docs", json={"new_edits": False, "docs": [sibling]}) as r:
        assert r.status == 201
    view = f"/{pdb}/_design/d/_view/v"
    _, rows = await _get(peer, view)
    assert [(row["id"], row["key"]) for row in rows["rows"]] == [("d", 3), ("gone", 10)]
    async with peer.post(f"/{pdb}/_find", json={"selector": {"v": {"$gt": 0}}, "fields": ["_id", "v"]}) as r:
        assert (await r.json())["docs"] == [{"_id": "d", "v": 3}, {"_id": "gone", "v": 10}]
    await _purge(peer, pdb, {"gone": [gone], "d": [r2]})
    # the indexes catch up: the purged document's rows go, the purged branch's winner is replaced
    _, rows = await _get(peer, view)
    assert [(row["id"], row["key"]) for row in rows["rows"]] == [("d", 2)]
    async with peer.post(f"/{pdb}/_find", json={"selector": {"v": {"$gt": 0}}, "fields": ["_id", "v"]}) as r:
        assert (await r.json())["docs"] == [{"_id": "d", "v": 2}]


async def test_purged_infos_kept_up_to_the_limit(client, db):
    async with client.put(f"/{db}/_purged_infos_limit", json=2) as r:
        assert r.status == 200
    for i in range(4):
        async with client.post(f"/{db}/_purge", json={f"x{i}": ["1-a"]}) as r:
            assert r.status == 201
    async with client.get(f"/{db}/_purged_infos") as r:
        assert await r.json() == {"purged_infos": [{"id": "x2", "revs": ["1-a"]}, {"id": "x3", "revs": ["1-a"]}]}


async def test_purge_survives_compaction(client, db):
    async with client.put(f"/{db}/keep", json={}) as r:
        assert r.status == 201
    async with client.put(f"/{db}/drop", json={}) as r:
        rev = (await r.json())["rev"]
    async with client.post(f"/{db}/_purge", json={"drop": [rev]}) as r:
        assert r.status == 201
    async with client.get(f"/{db}") as r:
        before = await r.json()
    async with client.post(f"/{db}/_compact", json={}) as r:
        assert r.status == 202
    for _ in range(100):
        async with client.get(f"/{db}") as r:
            info = await r.json()
        if not info["compact_running"] and info["sizes"]["file"] != before["sizes"]["file"]:
            break
        await asyncio.sleep(0.1)
    assert (info["purge_seq"], info["doc_count"], info["update_seq"]) == (
        before["purge_seq"], 1, before["update_seq"])
    async with client.get(f"/{db}/_purged_infos") as r:
        assert await r.json() == {"purged_infos": [{"id": "drop", "revs": [rev]}]}
    async with client.get(f"/{db}/drop") as r:
        assert r.status == 404


async def test_an_index_lagging_behind_the_purged_infos_limit_sees_every_purge(peer, pdb):
    """Purges an index has not seen yet, beyond `purged_infos_limit`: the index (a view and a
    Mango index) still drops the purged documents when it next catches up."""
    async with peer.put(f"/{pdb}/_purged_infos_limit", json=2) as r:
        assert r.status == 200
    async with peer.put(f"/{pdb}/_design/d", json={"views": {"v": {"map": "function(doc){ emit(doc.v, null); }"}}}) as r:
        assert r.status == 201
    async with peer.post(f"/{pdb}/_index", json={"index": {"fields": ["v"]}, "name": "byv", "ddoc": "byv"}) as r:
        assert r.status == 200
    revs = {f"d{i}": await put_doc(peer, pdb, f"d{i}", {"v": i}) for i in range(6)}
    view = f"/{pdb}/_design/d/_view/v"
    selector = {"selector": {"v": {"$gte": 0}}, "fields": ["_id"], "use_index": "byv"}
    _, rows = await _get(peer, view)
    assert len(rows["rows"]) == 6  # both indexes are built now
    async with peer.post(f"/{pdb}/_find", json=selector) as r:
        assert len((await r.json())["docs"]) == 6
    for i in range(5):  # one request each: five purge infos, of which two are kept
        assert (await _purge(peer, pdb, {f"d{i}": [revs[f"d{i}"]]}))[0] == 201
    _, rows = await _get(peer, view)
    assert [row["id"] for row in rows["rows"]] == ["d5"]
    async with peer.post(f"/{pdb}/_find", json=selector) as r:
        assert (await r.json())["docs"] == [{"_id": "d5"}]


async def test_lowering_the_purged_infos_limit_drops_infos_at_once(client, db):
    """couchpy keeps no more purge infos than the limit at any time (CouchDB drops the excess at
    its next compaction)."""
    for i in range(4):
        async with client.post(f"/{db}/_purge", json={f"x{i}": ["1-a"]}) as r:
            assert r.status == 201
    async with client.put(f"/{db}/_purged_infos_limit", json=1) as r:
        assert (r.status, await r.json()) == (200, {"ok": True})
    async with client.get(f"/{db}/_purged_infos") as r:
        assert await r.json() == {"purged_infos": [{"id": "x3", "revs": ["1-a"]}]}
    async with client.get(f"/{db}/_purged_infos_limit") as r:
        assert await r.json() == 1
