"""`?w=` on a node alone, as Apache CouchDB 3.4.3 alone answers it: there a database has one copy
(`n = 1`), so a write asking for more copies is answered 202 Accepted (its `_bulk_docs` rows
`"accepted": true`). The same requests go to couchpy's single-node server and to the real
CouchDB; both answers are compared, and CouchDB's are spelled out for the main cases."""

from __future__ import annotations

import uuid

import aiohttp


async def _scenario(s: aiohttp.ClientSession) -> list:
    db = "wq-" + uuid.uuid4().hex[:12]
    out: list = []

    async def req(method: str, path: str, **kw):
        async with s.request(method, f"/{db}{path}", **kw) as r:
            body = await r.json(content_type=None)
        shape = [(row.get("id"), row.get("error"), row.get("accepted")) for row in body] \
            if isinstance(body, list) else (body.get("error"), body.get("accepted"))
        out.append((method, path.split("&rev=")[0], kw.get("json", {}).get("w") if isinstance(kw.get("json"), dict) else None,
                    r.status, shape))
        return body

    async with s.put(f"/{db}?q=1") as r:
        assert r.status == 201
    try:
        await req("PUT", "/a?w=2", json={"v": 1})
        await req("PUT", "/a1?w=1", json={"v": 1})
        await req("PUT", "/a0?w=0", json={"v": 1})
        await req("PUT", "/a3?w=3", json={"v": 1})
        await req("PUT", "/a3?w=2", json={"v": 1})  # a conflict stays a 409
        await req("PUT", "/_design/d?w=2", json={"views": {}})
        await req("POST", "?w=2", json={"_id": "p"})
        await req("POST", "/_bulk_docs?w=2", json={"docs": [{"_id": "b1"}, {"_id": "b2"}]})
        await req("POST", "/_bulk_docs", json={"docs": [{"_id": "b3"}], "w": 2})
        await req("POST", "/_bulk_docs?w=1", json={"docs": [{"_id": "b4"}], "w": 2})  # the body's first
        await req("POST", "/_bulk_docs?w=2", json={"docs": [{"_id": "b5"}], "w": 1})
        await req("POST", "/_bulk_docs", json={"docs": [{"_id": "b6"}], "w": "2"})  # a string: passed over
        await req("POST", "/_bulk_docs?w=2", json={"docs": [{"_id": "b1"}, {"_id": "b7"}]})  # a conflict row
        await req("POST", "/_bulk_docs?w=2", json={"docs": [{"_id": "b1"}]})  # nothing written
        await req("POST", "/_bulk_docs?w=2", json={"docs": [{"_id": "_local/bl"}, {"_id": "b8"}]})
        await req("POST", "/_bulk_docs?w=2", json={"docs": [{"_id": "r", "_rev": "1-abc"}], "new_edits": False})
        gone = await req("PUT", "/del?w=1", json={})
        await req("DELETE", f"/del?w=2&rev={gone['rev']}")
        await req("PUT", "/_local/l?w=2", json={"v": 1})
        await req("DELETE", "/_local/l?w=2")
        await req("PUT", "/nd?w=2&new_edits=false", json={"_rev": "1-abcd"})
        await req("PUT", "/bt?w=2&batch=ok", json={"v": 1})
        base = await req("PUT", "/att?w=1", json={})
        with_att = await req("PUT", f"/att/n.txt?w=2&rev={base['rev']}", data=b"hello",
                             headers={"Content-Type": "text/plain"})
        await req("DELETE", f"/att/n.txt?w=2&rev={with_att['rev']}")  # answers as without w
        await req("COPY", "/att?w=2", headers={"Destination": "att2"})  # answers as without w
    finally:
        async with s.delete(f"/{db}"):
            pass
    return out


async def test_w_beyond_the_one_copy_is_202_as_couchdb_alone_answers(client, couch_client):
    ours, theirs = await _scenario(client), await _scenario(couch_client)
    status = {(m, p, w): st for m, p, w, st, _ in theirs}
    # what CouchDB 3.4.3 alone answered
    assert status[("PUT", "/a?w=2", None)] == 202 and status[("PUT", "/a1?w=1", None)] == 201
    assert status[("PUT", "/a0?w=0", None)] == 201 and status[("PUT", "/a3?w=2", None)] == 409
    assert status[("POST", "?w=2", None)] == 202 and status[("POST", "/_bulk_docs?w=2", None)] in (201, 202)
    assert status[("POST", "/_bulk_docs?w=1", 2)] == 202 and status[("POST", "/_bulk_docs?w=2", 1)] == 201
    assert status[("PUT", "/_local/l?w=2", None)] == 202 and status[("DELETE", "/_local/l?w=2", None)] == 202
    assert status[("PUT", "/nd?w=2&new_edits=false", None)] == 201
    assert status[("DELETE", "/del?w=2", None)] == 202 and status[("DELETE", "/att/n.txt?w=2", None)] == 200
    assert [st for m, _, _, st, _ in theirs if m == "COPY"] == [201]
    assert ours == theirs
