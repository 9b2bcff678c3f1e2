"""`/{db}/_conflict_policy` (a couchpy extension) and the node resolving conflicts by it, over HTTP
against a real couchpy server.

Conflicts are made the way replication makes them: `_bulk_docs` with `new_edits=false` bringing
sibling branches. The resolution must look exactly like a client's: the merged body a child of the
winning leaf, every other leaf ended by a deletion, and its revision id the one couchpy computes for
that edit (couchpy.docrules.new_rev), so every node resolving the same leaves writes the same one.
"""

from __future__ import annotations

import base64

import aiohttp
import pytest

from couchpy import conflict_merge, docrules
from tests.interop import name, ok, req, wait_for


async def _branches(peer, db: str, docid: str, bodies: list[dict], base: dict | None = None) -> list[str]:
    """Siblings of generation 2 on a common `1-` root (the root's body `base`), all brought by one
    request (so the resolver meets them together): their revs."""
    root = docrules.new_rev(None, False, base or {})
    docs = [{"_id": docid, "_rev": root, **(base or {})}]
    revs = []
    for i, body in enumerate(bodies):
        h = f"{i + 1:032x}"
        docs.append({"_id": docid, **body, "_rev": f"2-{h}", "_revisions": {"start": 2, "ids": [h, root.split("-")[1]]}})
        revs.append(f"2-{h}")
    await ok(await req(peer, "POST", f"/{db}/_bulk_docs", {"new_edits": False, "docs": docs}), 201)
    return revs


async def _resolved(peer, db: str, docid: str) -> dict | None:
    status, doc = await req(peer, "GET", f"/{db}/{docid}", conflicts="true", deleted_conflicts="true")
    if status == 200 and "_conflicts" not in doc:
        return doc
    return None


async def _live_leaves(peer, db: str, docid: str) -> list[dict]:
    status, rows = await req(peer, "GET", f"/{db}/{docid}", open_revs="all", headers={"Accept": "application/json"})
    assert status == 200, rows
    return [r["ok"] for r in rows if "ok" in r and not r["ok"].get("_deleted")]


async def test_policy_api(server):
    db = name("cpa")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    assert await ok(await req(server, "GET", f"/{db}/_conflict_policy")) == {}
    policy = {"type": "fields", "fields": {"tags": "union", "count": "max", "title": "lww:updated_at"}}
    assert await ok(await req(server, "PUT", f"/{db}/_conflict_policy", policy)) == {"ok": True}
    got = await ok(await req(server, "GET", f"/{db}/_conflict_policy"))
    assert got == {"type": "fields", "fields": {**policy["fields"], "updated_at": "max"}}
    for bad in ([1], {"type": "sum", "field": "n"}, {"type": "max"}, {"type": "fields", "fields": {"a": "avg"}}):
        status, body = await req(server, "PUT", f"/{db}/_conflict_policy", bad)
        assert status == 400 and body["error"] == "bad_request", (bad, status, body)
    status, body = await req(server, "PUT", f"/{db}/_conflict_policy", data_=b"{nope",
                             headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"] == "bad_request"
    assert await ok(await req(server, "GET", f"/{db}/_conflict_policy")) == got  # unchanged by refusals
    status, body = await req(server, "DELETE", f"/{db}/_conflict_policy")
    assert status == 405 and body["error"] == "method_not_allowed"
    status, body = await req(server, "GET", f"/{name('missing')}/_conflict_policy")
    assert status == 404 and body["error"] == "not_found"
    assert await ok(await req(server, "PUT", f"/{db}/_conflict_policy", {})) == {"ok": True}
    assert await ok(await req(server, "GET", f"/{db}/_conflict_policy")) == {}


async def test_only_db_admins_change_the_policy(server):
    db, user = name("cpb"), name("u")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    await ok(await req(server, "PUT", f"/_users/org.couchdb.user:{user}",
                       {"name": user, "password": "pw", "roles": [], "type": "user"}), 201)
    await ok(await req(server, "PUT", f"/{db}/_security", {"members": {"names": [user]}, "admins": {}}))

    class Member:
        base, auth = server.base, aiohttp.BasicAuth(user, "pw")

    class Anonymous:
        base, auth = server.base, None

    assert await ok(await req(Member, "GET", f"/{db}/_conflict_policy")) == {}
    status, body = await req(Member, "PUT", f"/{db}/_conflict_policy", {"type": "max", "field": "n"})
    assert (status, body["error"]) == (403, "forbidden"), body
    status, body = await req(Anonymous, "PUT", f"/{db}/_conflict_policy", {"type": "max", "field": "n"})
    assert (status, body["error"]) == (401, "unauthorized"), body
    assert await ok(await req(server, "GET", f"/{db}/_conflict_policy")) == {}


CASES = [
    ({"type": "last_writer_wins", "field": "updated_at"},
     [{"v": "a", "updated_at": "2026-01-02"}, {"v": "b", "updated_at": "2026-01-03"}, {"v": "c", "updated_at": "2026-01-01"}],
     {"v": "b", "updated_at": "2026-01-03"}),
    ({"type": "max", "field": "n"}, [{"n": 3, "k": 1}, {"n": 9, "k": 2}, {"n": 5, "k": 3}], {"n": 9, "k": 3}),
    ({"type": "min", "field": "n"}, [{"n": 3, "k": 1}, {"n": 9, "k": 2}, {"n": 5, "k": 3}], {"n": 3, "k": 3}),
    ({"type": "union", "field": "tags"}, [{"tags": ["a", "b"]}, {"tags": ["c"]}, {"tags": ["b", "d"], "x": 1}],
     {"tags": ["b", "d", "c", "a"], "x": 1}),
    ({"type": "fields", "fields": {"tags": "union", "count": "max", "title": "lww:updated_at"}},
     [{"tags": ["x"], "count": 1, "title": "first", "updated_at": 5, "other": "o1"},
      {"tags": ["y"], "count": 7, "title": "second", "updated_at": 9, "other": "o2"},
      {"tags": ["x", "z"], "count": 2, "title": "third", "updated_at": 1, "other": "o3"}],
     {"tags": ["x", "z", "y"], "count": 7, "title": "second", "updated_at": 9, "other": "o3"}),
]


@pytest.mark.parametrize("policy,bodies,expected", CASES, ids=[c[0]["type"] for c in CASES])
async def test_each_policy_resolves_like_a_client(server, policy, bodies, expected):
    db = name("cpc")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy", policy))
    revs = await _branches(server, db, "doc", bodies)
    # the winner is the leaf with the greatest id: the last branch made
    assert conflict_merge.merge(conflict_merge.parse_policy(policy), list(zip(revs, bodies))) == expected
    doc = await wait_for(lambda: _resolved(server, db, "doc"), timeout=30)
    body = {k: v for k, v in doc.items() if not k.startswith("_")}
    assert body == expected
    # a child of the winning leaf, with the revision id couchpy gives that edit anywhere
    assert doc["_rev"] == docrules.new_rev(revs[-1], False, expected)
    assert sorted(doc["_deleted_conflicts"]) == sorted(docrules.new_rev(r, True, {}) for r in revs[:-1])
    leaves = await _live_leaves(server, db, "doc")
    assert [leaf["_rev"] for leaf in leaves] == [doc["_rev"]]
    # nothing more happens: the resolved document stays as it is
    status, again = await req(server, "GET", f"/{db}/doc", revs_info="true")
    assert again["_rev"] == doc["_rev"]


async def test_no_policy_no_resolution_and_setting_one_resolves_existing_conflicts(server):
    db = name("cpd")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    revs = await _branches(server, db, "old", [{"n": 1}, {"n": 2}])
    await ok(await req(server, "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "plain", "n": 0}]}), 201)
    status, doc = await req(server, "GET", f"/{db}/old", conflicts="true")
    assert doc["_conflicts"] == [revs[0]]
    seq_before = (await ok(await req(server, "GET", f"/{db}")))["update_seq"]
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy", {"type": "min", "field": "n"}))
    doc = await wait_for(lambda: _resolved(server, db, "old"), timeout=30)
    assert doc["n"] == 1 and doc["_rev"] == docrules.new_rev(revs[1], False, {"n": 1})
    # only the resolution of `old` was written (its merged revision, then the loser's deletion:
    # two writes of one document, two sequences), the document without a conflict untouched
    info = await ok(await req(server, "GET", f"/{db}"))
    assert int(info["update_seq"].split("-")[0]) == int(seq_before.split("-")[0]) + 2
    assert (await ok(await req(server, "GET", f"/{db}/plain")))["_rev"].startswith("1-")


async def test_deleted_branches_are_not_conflicts_and_attachments_stay(server):
    db = name("cpe")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    # a deleted branch alone: nothing to resolve
    d_revs = await _branches(server, db, "d", [{"n": 1}, {"n": 2}])
    await ok(await req(server, "DELETE", f"/{db}/d", rev=d_revs[0]))
    # the winner carries an attachment (brought inline, as a replicator may)
    note = {"note.txt": {"content_type": "text/plain", "data": base64.b64encode(b"hello").decode()}}
    await _branches(server, db, "a", [{"n": 5}, {"n": 1, "_attachments": note}])
    # the policy set afterwards: the resolver reads the database from its start
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy", {"type": "max", "field": "n"}))
    doc = await wait_for(lambda: _resolved(server, db, "a"), timeout=30)
    assert doc["n"] == 5 and doc["_rev"].startswith("3-") and doc["_attachments"]["note.txt"]["stub"]
    status, data = await req(server, "GET", f"/{db}/a/note.txt", raw=True)
    assert (status, data) == (200, b"hello")
    status, doc = await req(server, "GET", f"/{db}/d", deleted_conflicts="true")
    assert doc["_rev"] == d_revs[1] and len(doc["_deleted_conflicts"]) == 1  # `d` comes first: untouched


async def test_javascript_resolve_conflicts_function(server):
    db = name("cpf")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    fn = ("function (docs) { var total = 0, revs = []; docs.forEach(function (d) { total += d.n; revs.push(d._rev); });"
          " return {_id: 'ignored', n: total, revs: revs}; }")
    await ok(await req(server, "PUT", f"/{db}/_design/merge", {"resolve_conflicts": fn}), 201)
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy", {"type": "function", "ddoc": "merge"}))
    revs = await _branches(server, db, "doc", [{"n": 2}, {"n": 3}, {"n": 4}])
    doc = await wait_for(lambda: _resolved(server, db, "doc"), timeout=30)
    # winner first, then the winner order of the rest
    assert {k: v for k, v in doc.items() if not k.startswith("_")} == {"n": 9, "revs": revs[::-1]}
    assert doc["_id"] == "doc"


async def test_a_failing_function_leaves_the_conflict(server):
    db = name("cpg")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    fn = "function (docs) { if (docs[0]._id === 'doc') throw 'no'; return docs[1]; }"
    await ok(await req(server, "PUT", f"/{db}/_design/merge", {"resolve_conflicts": fn}), 201)
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy", {"type": "function", "ddoc": "_design/merge"}))
    await _branches(server, db, "doc", [{"n": 2}, {"n": 3}])
    await _branches(server, db, "doc2", [{"n": 7}, {"n": 8}])
    # doc2 comes later in the by-sequence index: once it is resolved, the resolver went past doc
    doc = await wait_for(lambda: _resolved(server, db, "doc2"), timeout=30)
    assert doc["n"] == 7
    status, stuck = await req(server, "GET", f"/{db}/doc", conflicts="true")
    assert stuck["_rev"] == "2-" + f"{2:032x}" and len(stuck["_conflicts"]) == 1  # left as it was
    status, body = await req(server, "GET", "/")
    assert status == 200  # and the node keeps serving


async def test_python_resolve_conflicts_function(new_server):
    srv = new_server(name="pyqs", config={"query_servers": {"python": "true"}})
    db = "p"
    await ok(await req(srv, "PUT", f"/{db}"), 201)
    src = "def resolve(docs):\n    return {'n': max(d['n'] for d in docs) * 10}\n"
    await ok(await req(srv, "PUT", f"/{db}/_design/m", {"language": "python", "resolve_conflicts": src}), 201)
    await ok(await req(srv, "PUT", f"/{db}/_conflict_policy", {"type": "function", "ddoc": "m"}))
    await _branches(srv, db, "doc", [{"n": 2}, {"n": 3}])
    doc = await wait_for(lambda: _resolved(srv, db, "doc"), timeout=30)
    assert doc["n"] == 30


async def test_values_beyond_64_bits_merge_exactly(server):
    db = name("cph")
    big = 12345678901234567890123456789
    await ok(await req(server, "PUT", f"/{db}"), 201)
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy",
                       {"type": "fields", "fields": {"tags": "union", "n": "max"}}))
    await _branches(server, db, "doc", [{"tags": [big], "n": big}, {"tags": [1, {"b": 1, "a": 2}], "n": 1}])
    doc = await wait_for(lambda: _resolved(server, db, "doc"), timeout=30)
    assert doc["n"] == big and doc["tags"] == [1, {"b": 1, "a": 2}, big]


async def test_a_database_created_again_under_the_same_name_is_resolved(server):
    db = name("cpi")
    await ok(await req(server, "PUT", f"/{db}"), 201)
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy", {"type": "max", "field": "n"}))
    await ok(await req(server, "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": f"x{i}"} for i in range(20)]}), 201)
    await _branches(server, db, "first", [{"n": 1}, {"n": 2}])
    await wait_for(lambda: _resolved(server, db, "first"), timeout=30)
    await ok(await req(server, "DELETE", f"/{db}"))
    await ok(await req(server, "PUT", f"/{db}"), 201)  # its sequence starts again below the old one's
    await ok(await req(server, "PUT", f"/{db}/_conflict_policy", {"type": "max", "field": "n"}))
    await _branches(server, db, "again", [{"n": 4}, {"n": 3}])
    doc = await wait_for(lambda: _resolved(server, db, "again"), timeout=30)
    assert doc["n"] == 4
