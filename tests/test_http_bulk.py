"""_bulk_docs, _bulk_get, _revs_diff and _missing_revs through a real couchpy server.

Reference: CouchDB 3.x api/database/bulk-api, api/database/misc (_revs_diff, _missing_revs),
the replication protocol docs, and chttpd_db.erl (row shapes, whole-request validation).
"""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
async def db(client):
    name = f"bulk-{uuid.uuid4().hex[:12]}"
    assert (await client.put(f"/{name}")).status == 201
    yield name
    await client.delete(f"/{name}")


async def bulk(client, db, docs, status=201, **extra):
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": docs, **extra})
    body = await resp.json()
    assert resp.status == status, (resp.status, body)
    return body


def h(rev):
    return rev.split("-", 1)[1]


# --------------------------------------------------------------------------- _bulk_docs


async def test_bulk_create_update_delete(client, db):
    rows = await bulk(client, db, [{"_id": "a", "v": 1}, {"_id": "b", "v": 2}, {"v": 3}])
    assert [r["ok"] for r in rows] == [True, True, True]
    assert [r["id"] for r in rows[:2]] == ["a", "b"]
    assert re.fullmatch(r"[0-9a-f]{32}", rows[2]["id"])  # generated id for a doc without _id
    assert all(r["rev"].startswith("1-") for r in rows)
    a, b = rows[0]["rev"], rows[1]["rev"]
    doc = await (await client.get(f"/{db}/{rows[2]['id']}")).json()
    assert doc["v"] == 3

    rows = await bulk(client, db, [{"_id": "a", "_rev": a, "v": 10}, {"_id": "b", "_rev": b, "_deleted": True}])
    assert rows[0]["ok"] and rows[0]["rev"].startswith("2-")
    assert rows[1]["ok"] and rows[1]["rev"].startswith("2-")
    assert (await (await client.get(f"/{db}/a")).json())["v"] == 10
    resp = await client.get(f"/{db}/b")
    assert resp.status == 404 and (await resp.json())["reason"] == "deleted"


async def test_bulk_conflict_rows(client, db):
    (first,) = await bulk(client, db, [{"_id": "c", "v": 1}])
    rows = await bulk(client, db, [
        {"_id": "c", "v": 2},  # no rev: conflict
        {"_id": "c", "_rev": "1-" + "0" * 32, "v": 2},  # wrong rev: conflict
        {"_id": "fresh", "v": 1},
    ])
    assert rows[0] == {"id": "c", "error": "conflict", "reason": "Document update conflict."}
    assert rows[1]["id"] == "c" and rows[1]["error"] == "conflict"
    assert rows[2]["ok"] is True and rows[2]["id"] == "fresh"
    assert (await (await client.get(f"/{db}/c")).json())["_rev"] == first["rev"]


async def test_bulk_same_doc_twice_in_one_request(client, db):
    rows = await bulk(client, db, [{"_id": "twice", "v": 1}, {"_id": "twice", "v": 2}])
    assert sum(1 for r in rows if r.get("ok")) == 1
    assert sum(1 for r in rows if r.get("error") == "conflict") == 1


async def test_bulk_empty_and_bad_bodies(client, db):
    assert await bulk(client, db, []) == []
    for payload in ({}, {"docs": "nope"}, {"docs": {}}):
        resp = await client.post(f"/{db}/_bulk_docs", json=payload)
        assert resp.status == 400, payload
        assert (await resp.json())["error"] == "bad_request"
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [], "new_edits": "no"})
    assert resp.status == 400


async def test_bulk_invalid_documents_reject_the_request(client, db):
    # chttpd_db validates every document before writing any (couch_db:doc_from_json_obj_validate)
    for bad, error in [
        ({"_id": "_illegal"}, "illegal_docid"),
        ({"_id": "ok", "_unknown": 1}, "doc_validation"),
        ({"_id": "ok", "_rev": "garbage"}, "bad_request"),
        ("not an object", "bad_request"),
    ]:
        resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": "good"}, bad]})
        assert resp.status == 400, bad
        assert (await resp.json())["error"] == error, bad
    assert (await client.get(f"/{db}/good")).status == 404


async def test_bulk_local_docs(client, db):
    rows = await bulk(client, db, [{"_id": "_local/x", "v": 1}])
    assert rows == [{"ok": True, "id": "_local/x", "rev": "0-1"}]
    rows = await bulk(client, db, [{"_id": "_local/x", "_rev": "0-1", "v": 2}])
    assert rows[0]["rev"] == "0-2"


async def test_bulk_new_edits_false_with_revisions(client, db):
    docs = [
        {"_id": "r", "_rev": "3-" + "c" * 32, "v": "c",
         "_revisions": {"start": 3, "ids": ["c" * 32, "b" * 32, "a" * 32]}},
        {"_id": "r", "_rev": "2-" + "d" * 32, "v": "d",
         "_revisions": {"start": 2, "ids": ["d" * 32, "a" * 32]}},
        {"_id": "s", "_rev": "1-" + "e" * 32, "v": "e"},
    ]
    rows = await bulk(client, db, docs, new_edits=False)
    assert rows == []  # CouchDB reports only failures for replicated writes
    doc = await (await client.get(f"/{db}/r", params={"revs": "true", "conflicts": "true"})).json()
    assert doc["_rev"] == "3-" + "c" * 32  # the longer branch wins
    assert doc["_revisions"] == {"start": 3, "ids": ["c" * 32, "b" * 32, "a" * 32]}
    assert doc["_conflicts"] == ["2-" + "d" * 32]
    # replaying the same histories changes nothing
    assert await bulk(client, db, docs, new_edits=False) == []
    info = await (await client.get(f"/{db}")).json()
    assert info["doc_count"] == 2
    # a local edit continues the winning branch
    (row,) = await bulk(client, db, [{"_id": "r", "_rev": "3-" + "c" * 32, "v": "next"}])
    assert row["rev"].startswith("4-")


async def test_bulk_new_edits_false_requires_rev(client, db):
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": "norev"}], "new_edits": False})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_bulk_new_edits_false_deleted_leaf(client, db):
    docs = [{"_id": "t", "_rev": "2-" + "f" * 32, "_deleted": True,
             "_revisions": {"start": 2, "ids": ["f" * 32, "a" * 32]}}]
    assert await bulk(client, db, docs, new_edits=False) == []
    resp = await client.get(f"/{db}/t")
    assert resp.status == 404 and (await resp.json())["reason"] == "deleted"
    info = await (await client.get(f"/{db}")).json()
    assert info["doc_del_count"] == 1 and info["doc_count"] == 0


async def test_concurrent_bulk_writers(client, db):
    async def writer(w):
        return await bulk(client, db, [{"_id": f"w{w}-{i}", "i": i} for i in range(20)])

    results = await asyncio.gather(*[writer(w) for w in range(8)])
    assert all(r["ok"] for rows in results for r in rows)
    info = await (await client.get(f"/{db}")).json()
    assert info["doc_count"] == 160


# --------------------------------------------------------------------------- _bulk_get


async def test_bulk_get(client, db):
    (a,) = await bulk(client, db, [{"_id": "a", "v": 1}])
    (a2,) = await bulk(client, db, [{"_id": "a", "_rev": a["rev"], "v": 2}])
    resp = await client.post(f"/{db}/_bulk_get", json={"docs": [
        {"id": "a"},
        {"id": "a", "rev": a["rev"]},
        {"id": "missing"},
        {"id": "a", "rev": "9-" + "9" * 32},
    ]})
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert [r["id"] for r in results] == ["a", "a", "missing", "a"]
    assert results[0]["docs"] == [{"ok": {"_id": "a", "_rev": a2["rev"], "v": 2}}]
    assert results[1]["docs"] == [{"ok": {"_id": "a", "_rev": a["rev"], "v": 1}}]
    assert results[2]["docs"] == [{"error": {"id": "missing", "rev": "undefined", "error": "not_found",
                                             "reason": "missing"}}]
    assert results[3]["docs"] == [{"error": {"id": "a", "rev": "9-" + "9" * 32, "error": "not_found",
                                             "reason": "missing"}}]


async def test_bulk_get_revs_true(client, db):
    (a,) = await bulk(client, db, [{"_id": "a", "v": 1}])
    (a2,) = await bulk(client, db, [{"_id": "a", "_rev": a["rev"], "v": 2}])
    resp = await client.post(f"/{db}/_bulk_get", params={"revs": "true"}, json={"docs": [{"id": "a", "rev": a2["rev"]}]})
    (res,) = (await resp.json())["results"]
    doc = res["docs"][0]["ok"]
    assert doc["_revisions"] == {"start": 2, "ids": [h(a2["rev"]), h(a["rev"])]}


async def test_bulk_get_all_leaves_of_a_conflicted_doc(client, db):
    (a,) = await bulk(client, db, [{"_id": "a", "v": 1}])
    other = "1-" + "0" * 32
    await bulk(client, db, [{"_id": "a", "_rev": other, "v": "o"}], new_edits=False)
    resp = await client.post(f"/{db}/_bulk_get", json={"docs": [{"id": "a"}]})
    (res,) = (await resp.json())["results"]
    assert {d["ok"]["_rev"] for d in res["docs"]} == {a["rev"], other}


async def test_bulk_get_bad_requests(client, db):
    resp = await client.post(f"/{db}/_bulk_get", json={"nodocs": []})
    assert resp.status == 400
    resp = await client.get(f"/{db}/_bulk_get")
    assert resp.status == 405
    resp = await client.post(f"/{db}/_bulk_get", json={"docs": [{"rev": "1-" + "a" * 32}]})
    assert resp.status == 200
    (res,) = (await resp.json())["results"]
    assert res["docs"][0]["error"]["error"] == "bad_request"


# --------------------------------------------------------------------------- _revs_diff / _missing_revs


async def test_revs_diff(client, db):
    (a,) = await bulk(client, db, [{"_id": "a", "v": 1}])
    (a2,) = await bulk(client, db, [{"_id": "a", "_rev": a["rev"], "v": 2}])
    (c,) = await bulk(client, db, [{"_id": "complete", "v": 1}])
    future = "3-" + "f" * 32
    old_missing = "1-" + "0" * 32
    resp = await client.post(f"/{db}/_revs_diff", json={
        "a": [a["rev"], a2["rev"], future, old_missing],
        "unknown": ["1-" + "1" * 32],
        "complete": [c["rev"]],
    })
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"a", "unknown"}  # docs with nothing missing are left out
    assert body["a"]["missing"] == [future, old_missing]
    # leaves of a lower generation than some missing rev may be its ancestors
    assert body["a"]["possible_ancestors"] == [a2["rev"]]
    assert body["unknown"] == {"missing": ["1-" + "1" * 32]}


async def test_revs_diff_empty(client, db):
    resp = await client.post(f"/{db}/_revs_diff", json={})
    assert resp.status == 200
    assert await resp.json() == {}
    resp = await client.get(f"/{db}/_revs_diff")
    assert resp.status == 405


async def test_missing_revs(client, db):
    (a,) = await bulk(client, db, [{"_id": "a", "v": 1}])
    missing = "2-" + "2" * 32
    resp = await client.post(f"/{db}/_missing_revs", json={"a": [a["rev"], missing], "b": ["1-" + "3" * 32]})
    assert resp.status == 200
    assert await resp.json() == {"missing_revs": {"a": [missing], "b": ["1-" + "3" * 32]}}
    resp = await client.post(f"/{db}/_missing_revs", json={"a": [a["rev"]]})
    assert await resp.json() == {"missing_revs": {}}


# --------------------------------------------------------------------------- bounded property


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    branches=st.lists(st.lists(st.sampled_from("0123456789abcdef"), min_size=1, max_size=4), min_size=1, max_size=4),
    order=st.randoms(use_true_random=False),
)
async def test_replicated_histories_converge_in_any_order(server, branches, order):
    """Writing the same set of replicated branches in any order gives the same winner and leaves."""
    import aiohttp

    root = "a" * 32
    docs = []
    for bi, branch in enumerate(branches):
        ids = [c * 32 for c in branch[::-1]] + [root]
        # make every hash unique per branch position so histories are consistent
        ids = [f"{i:02d}{bi:02d}{x[4:]}" if x != root else x for i, x in enumerate(ids)]
        docs.append({"_id": "conv", "_rev": f"{len(ids)}-{ids[0]}", "_revisions": {"start": len(ids), "ids": ids},
                     "b": bi})
    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth) as client:
        outcomes = []
        for attempt in range(2):
            name = f"bulk-conv-{uuid.uuid4().hex[:10]}"
            await client.put(f"/{name}")
            try:
                seq = list(docs)
                order.shuffle(seq)
                for d in seq:  # one request per branch, in shuffled order
                    r = await client.post(f"/{name}/_bulk_docs", json={"docs": [d], "new_edits": False})
                    assert r.status == 201
                resp = await client.get(f"/{name}/conv", params={"open_revs": "all"},
                                        headers={"Accept": "application/json"})
                leaves = sorted(x["ok"]["_rev"] for x in await resp.json())
                winner = (await (await client.get(f"/{name}/conv")).json())["_rev"]
                outcomes.append((leaves, winner))
            finally:
                await client.delete(f"/{name}")
        assert outcomes[0] == outcomes[1]


# --------------------------------------------------------------------------- model-based


OPS = st.lists(
    st.tuples(
        st.sampled_from(["edit", "edit", "delete", "replicate", "stale", "recreate"]),
        st.sampled_from(["x", "y"]),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
async def test_documents_follow_a_revision_tree_model(server, ops):
    """Random edits, deletions, stale updates and replicated branches, checked after every step
    against a model built with couchpy.revtree: status codes, winner, conflicts, leaves, _changes
    and _all_docs."""
    import aiohttp

    from couchpy import revtree

    trees: dict[str, dict] = {}
    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth) as client:
        name = f"bulk-model-{uuid.uuid4().hex[:10]}"
        await client.put(f"/{name}")
        try:
            for op, docid, nonce in ops:
                tree = trees.get(docid, {})
                leaves = revtree.leaves(tree) if tree else []
                winner = revtree.winner(tree) if tree else None
                if op in ("edit", "recreate"):
                    body = {"n": nonce}
                    if op == "edit" and leaves:
                        parent = leaves[nonce % len(leaves)]  # any live leaf may be edited
                        body["_rev"] = parent
                    else:
                        parent = None
                    resp = await client.put(f"/{name}/{docid}", json=body)
                    if parent is None and winner is not None and not tree[winner][1]:
                        assert resp.status == 409  # a live doc needs its rev
                        continue
                    if parent is not None and tree[parent][1]:
                        assert resp.status == 409  # a tombstone is no revision to edit
                        continue
                    assert resp.status == 201, await resp.text()
                    rev = (await resp.json())["rev"]
                    if parent is None and winner is not None:
                        parent = winner  # recreation continues after the deleted winner
                    trees[docid] = revtree.merge(tree, {rev: (parent, False)})
                elif op == "delete":
                    if winner is None or tree[winner][1]:
                        resp = await client.delete(f"/{name}/{docid}", params={"rev": "1-" + "a" * 32})
                        assert resp.status == 404
                        continue
                    resp = await client.delete(f"/{name}/{docid}", params={"rev": winner})
                    assert resp.status == 200
                    rev = (await resp.json())["rev"]
                    trees[docid] = revtree.merge(tree, {rev: (winner, True)})
                elif op == "replicate":
                    base = sorted(tree)[nonce % len(tree)] if tree else None
                    start = revtree.rev_pos(base) + 1 if base else 1
                    h = f"{nonce:032x}"
                    ids = [h] + ([revtree.rev_hash(r) for r in revtree.ancestry(tree, base)] if base else [])
                    deleted = nonce % 3 == 0
                    if f"{start}-{h}" in tree and tree[f"{start}-{h}"][0] != base:
                        # the same revision id again under another parent: never sent by a real
                        # peer (a revision's id hashes its parent's), and a tree keyed by
                        # revision id (couchpy's, this model's) holds one parent for it
                        continue
                    doc = {"_id": docid, "_rev": f"{start}-{h}", "_revisions": {"start": start, "ids": ids},
                           "_deleted": deleted, "n": nonce}
                    resp = await client.post(f"/{name}/_bulk_docs", json={"docs": [doc], "new_edits": False})
                    assert resp.status == 201 and await resp.json() == []
                    trees[docid] = revtree.merge(tree, {f"{start}-{h}": (base, deleted)})
                else:  # stale: an inner (non-leaf) revision
                    inner = [r for r in tree if r not in leaves]
                    if not inner:
                        continue
                    resp = await client.put(f"/{name}/{docid}", json={"_rev": inner[nonce % len(inner)]})
                    assert resp.status == 409
                    continue

                # ---- check the document against the model
                tree = trees[docid]
                winner = revtree.winner(tree)
                resp = await client.get(f"/{name}/{docid}", params={"conflicts": "true", "deleted_conflicts": "true"})
                if tree[winner][1]:
                    assert resp.status == 404 and (await resp.json())["reason"] == "deleted"
                else:
                    doc = await resp.json()
                    assert doc["_rev"] == winner
                    assert sorted(doc.get("_conflicts", [])) == sorted(revtree.conflicts(tree))
                    assert sorted(doc.get("_deleted_conflicts", [])) == sorted(revtree.deleted_conflicts(tree))
                resp = await client.get(f"/{name}/{docid}", params={"open_revs": "all"},
                                        headers={"Accept": "application/json"})
                got = sorted(r["ok"]["_rev"] for r in await resp.json())
                assert got == sorted(revtree.leaves(tree))

            # ---- database-wide views agree with the model
            changes = (await (await client.get(f"/{name}/_changes")).json())["results"]
            assert {r["id"]: r["changes"][0]["rev"] for r in changes} == {
                d: revtree.winner(t) for d, t in trees.items()}
            assert {r["id"] for r in changes if r.get("deleted")} == {
                d for d, t in trees.items() if t[revtree.winner(t)][1]}
            rows = (await (await client.get(f"/{name}/_all_docs")).json())["rows"]
            assert {r["id"]: r["value"]["rev"] for r in rows} == {
                d: revtree.winner(t) for d, t in trees.items() if not t[revtree.winner(t)][1]}
        finally:
            await client.delete(f"/{name}")


async def test_bulk_get_with_attachments_inlines_their_data(client, db):
    import base64

    data = base64.b64encode(b"hello attachment").decode()
    async with client.put(f"/{db}/a", json={"_attachments": {"t.txt": {"content_type": "text/plain", "data": data}}}) as r:
        rev = (await r.json())["rev"]
    async with client.post(f"/{db}/_bulk_get", params={"revs": "true", "attachments": "true"},
                           json={"docs": [{"id": "a", "rev": rev}]}) as r:
        assert r.status == 200
        doc = (await r.json())["results"][0]["docs"][0]["ok"]
    att = doc["_attachments"]["t.txt"]
    assert base64.b64decode(att["data"]) == b"hello attachment"
    assert "stub" not in att and att["revpos"] == 1
    async with client.post(f"/{db}/_bulk_get", json={"docs": [{"id": "a", "rev": rev}]}) as r:
        stub = (await r.json())["results"][0]["docs"][0]["ok"]["_attachments"]["t.txt"]
        assert stub["stub"] is True and "data" not in stub


async def test_copy_keeps_attachments(client, db):
    import base64

    data = base64.b64encode(b"\x00\x01binary").decode()
    async with client.put(f"/{db}/src", json={"v": 1, "_attachments": {"b": {"content_type": "application/octet-stream", "data": data}}}) as r:
        assert r.status == 201
    async with client.request("COPY", f"/{db}/src", headers={"Destination": "dst"}) as r:
        assert r.status == 201, await r.text()
    async with client.get(f"/{db}/dst/b") as r:
        assert await r.read() == b"\x00\x01binary"
    async with client.get(f"/{db}/dst") as r:
        assert (await r.json())["v"] == 1


async def test_listings_with_attachments_true_inline_data(client, db):
    import base64

    data = base64.b64encode(b"listed").decode()
    async with client.put(f"/{db}/a", json={"_attachments": {"t": {"content_type": "text/plain", "data": data}}}) as r:
        assert r.status == 201
    async with client.get(f"/{db}/_all_docs", params={"include_docs": "true", "attachments": "true"}) as r:
        att = (await r.json())["rows"][0]["doc"]["_attachments"]["t"]
        assert base64.b64decode(att["data"]) == b"listed"
    async with client.get(f"/{db}/_changes", params={"include_docs": "true", "attachments": "true"}) as r:
        att = (await r.json())["results"][0]["doc"]["_attachments"]["t"]
        assert base64.b64decode(att["data"]) == b"listed"
    async with client.get(f"/{db}/_all_docs", params={"include_docs": "true"}) as r:
        assert (await r.json())["rows"][0]["doc"]["_attachments"]["t"]["stub"] is True


async def test_bulk_get_latest(client, db):
    # replicators (PouchDB, CouchDB) ask `_bulk_get?revs=true&latest=true`
    (a,) = await bulk(client, db, [{"_id": "a", "v": 1}])
    (a2,) = await bulk(client, db, [{"_id": "a", "_rev": a["rev"], "v": 2}])
    resp = await client.post(f"/{db}/_bulk_get", params={"revs": "true", "latest": "true"},
                             json={"docs": [{"id": "a", "rev": a["rev"]}]})
    (res,) = (await resp.json())["results"]
    (only,) = res["docs"]
    assert only["ok"]["_rev"] == a2["rev"]
    assert only["ok"]["_revisions"]["start"] == 2
