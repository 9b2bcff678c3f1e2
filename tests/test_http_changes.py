"""/{db}/_changes through a real couchpy server: every feed type, since (including `now` and
handing back opaque sequences), limit/descending/include_docs/conflicts, style=all_docs, the
built-in filters _doc_ids and _design, heartbeats and timeouts.

Reference: CouchDB 3.x api/database/changes and chttpd_db.erl (changes_callback: the exact
framing of continuous and eventsource feeds, `last_seq`/`pending`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest


@pytest.fixture
async def db(client):
    name = f"changes-{uuid.uuid4().hex[:12]}"
    assert (await client.put(f"/{name}")).status == 201
    yield name
    await client.delete(f"/{name}")


async def changes(client, db, status=200, method="GET", body=None, **params):
    enc = {k: (("true" if v else "false") if isinstance(v, bool) else str(v)) for k, v in params.items()}
    if method == "GET":
        resp = await client.get(f"/{db}/_changes", params=enc)
    else:
        resp = await client.post(f"/{db}/_changes", params=enc, json=body if body is not None else {})
    data = await resp.json()
    assert resp.status == status, (resp.status, data)
    return data


async def put(client, db, docid, doc):
    resp = await client.put(f"/{db}/{docid}", json=doc)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["rev"]


def seqnum(seq) -> int:
    return int(str(seq).split("-", 1)[0])


async def test_normal_feed(client, db):
    ra = await put(client, db, "a", {"v": 1})
    rb = await put(client, db, "b", {"v": 1})
    body = await changes(client, db)
    assert set(body) >= {"results", "last_seq", "pending"}
    assert [r["id"] for r in body["results"]] == ["a", "b"]
    assert body["results"][0]["changes"] == [{"rev": ra}]
    assert body["results"][1]["changes"] == [{"rev": rb}]
    for r in body["results"]:
        assert isinstance(r["seq"], str)  # opaque strings, as CouchDB 2+/3 sends
        assert "deleted" not in r
    assert body["last_seq"] == body["results"][-1]["seq"]
    assert body["pending"] == 0
    info = await (await client.get(f"/{db}")).json()
    assert info["update_seq"] == body["last_seq"]


async def test_one_row_per_doc_latest_rev(client, db):
    ra = await put(client, db, "a", {"v": 1})
    await put(client, db, "b", {"v": 1})
    ra2 = await put(client, db, "a", {"v": 2, "_rev": ra})
    body = await changes(client, db)
    assert [r["id"] for r in body["results"]] == ["b", "a"]  # `a` moved to its newest seq
    assert body["results"][1]["changes"] == [{"rev": ra2}]
    seqs = [seqnum(r["seq"]) for r in body["results"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2


async def test_deleted_docs(client, db):
    ra = await put(client, db, "a", {"v": 1})
    resp = await client.delete(f"/{db}/a", params={"rev": ra})
    rd = (await resp.json())["rev"]
    body = await changes(client, db, include_docs=True)
    (row,) = body["results"]
    assert row["deleted"] is True
    assert row["changes"] == [{"rev": rd}]
    assert row["doc"] == {"_id": "a", "_rev": rd, "_deleted": True}


async def test_since_and_opaque_sequences(client, db):
    await put(client, db, "a", {})
    first = await changes(client, db)
    since = first["last_seq"]
    await put(client, db, "b", {})
    await put(client, db, "c", {})
    body = await changes(client, db, since=since)  # hand back the opaque string
    assert [r["id"] for r in body["results"]] == ["b", "c"]
    # numeric forms are accepted too
    body = await changes(client, db, since=seqnum(since))
    assert [r["id"] for r in body["results"]] == ["b", "c"]
    body = await changes(client, db, since=0)
    assert [r["id"] for r in body["results"]] == ["a", "b", "c"]
    body = await changes(client, db, since=body["last_seq"])
    assert body["results"] == []


async def test_since_now(client, db):
    await put(client, db, "a", {})
    body = await changes(client, db, since="now")
    assert body["results"] == []
    info = await (await client.get(f"/{db}")).json()
    assert seqnum(body["last_seq"]) == seqnum(info["update_seq"])


async def test_bad_since(client, db):
    body = await changes(client, db, status=400, since="garbage")
    assert body["error"] == "bad_request"


async def test_limit_and_pending(client, db):
    for i in range(5):
        await put(client, db, f"d{i}", {"i": i})
    body = await changes(client, db, limit=2)
    assert [r["id"] for r in body["results"]] == ["d0", "d1"]
    assert body["last_seq"] == body["results"][-1]["seq"]
    assert body["pending"] == 3
    body = await changes(client, db, limit=2, since=body["last_seq"])
    assert [r["id"] for r in body["results"]] == ["d2", "d3"]
    assert body["pending"] == 1


async def test_descending(client, db):
    for i in range(4):
        await put(client, db, f"d{i}", {"i": i})
    body = await changes(client, db, descending=True)
    assert [r["id"] for r in body["results"]] == ["d3", "d2", "d1", "d0"]
    body = await changes(client, db, descending=True, limit=1)
    assert [r["id"] for r in body["results"]] == ["d3"]


async def test_include_docs_and_conflicts(client, db):
    ra = await put(client, db, "a", {"v": 1})
    other = "1-" + "0" * 32
    r = await client.put(f"/{db}/a", params={"new_edits": "false"}, json={"_rev": other, "v": "o"})
    assert r.status == 201
    body = await changes(client, db, include_docs=True)
    (row,) = body["results"]
    assert row["doc"] == {"_id": "a", "_rev": ra, "v": 1}
    body = await changes(client, db, include_docs=True, conflicts=True)
    assert body["results"][0]["doc"]["_conflicts"] == [other]


async def test_style_all_docs(client, db):
    ra = await put(client, db, "a", {"v": 1})
    other = "1-" + "0" * 32
    await client.put(f"/{db}/a", params={"new_edits": "false"}, json={"_rev": other, "v": "o"})
    body = await changes(client, db)
    assert body["results"][0]["changes"] == [{"rev": ra}]  # main_only: the winner
    body = await changes(client, db, style="all_docs")
    revs = [c["rev"] for c in body["results"][0]["changes"]]
    assert revs[0] == ra and sorted(revs) == sorted([ra, other])
    await changes(client, db, status=400, style="bogus")


async def test_filter_doc_ids(client, db):
    for i in ("a", "b", "c"):
        await put(client, db, i, {})
    body = await changes(client, db, filter="_doc_ids", doc_ids=json.dumps(["c", "a", "zz"]))
    assert [r["id"] for r in body["results"]] == ["a", "c"]
    body = await changes(client, db, method="POST", body={"doc_ids": ["b"]}, filter="_doc_ids")
    assert [r["id"] for r in body["results"]] == ["b"]
    await changes(client, db, status=400, filter="_doc_ids", doc_ids='"notalist"')


async def test_filter_design(client, db):
    await put(client, db, "a", {})
    await put(client, db, "_design/x", {"views": {}})
    await client.put(f"/{db}/_local/l", json={})
    body = await changes(client, db, filter="_design")
    assert [r["id"] for r in body["results"]] == ["_design/x"]
    body = await changes(client, db)
    assert [r["id"] for r in body["results"]] == ["a", "_design/x"]  # never _local docs


async def test_bad_feed_and_method(client, db):
    body = await changes(client, db, status=400, feed="bogus")
    assert body["error"] == "bad_request"
    resp = await client.put(f"/{db}/_changes", json={})
    assert resp.status == 405


async def test_longpoll_returns_at_once_when_behind(client, db):
    await put(client, db, "a", {})
    t0 = time.monotonic()
    body = await changes(client, db, feed="longpoll", timeout=10000)
    assert time.monotonic() - t0 < 2
    assert [r["id"] for r in body["results"]] == ["a"]


async def test_longpoll_woken_at_once_by_a_write(client, db):
    await put(client, db, "before", {})
    task = asyncio.create_task(changes(client, db, feed="longpoll", since="now", timeout=20000))
    await asyncio.sleep(0.5)
    assert not task.done()
    await put(client, db, "wake", {"x": 1})
    t0 = time.monotonic()  # from the acknowledged write (its fsync is not the feed's latency)
    body = await asyncio.wait_for(task, 5)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, elapsed  # woken by the commit, not by a polling loop
    assert [r["id"] for r in body["results"]] == ["wake"]
    assert body["last_seq"] == body["results"][0]["seq"]


async def test_longpoll_timeout(client, db):
    await put(client, db, "a", {})
    t0 = time.monotonic()
    body = await changes(client, db, feed="longpoll", since="now", timeout=400)
    dt = time.monotonic() - t0
    assert 0.3 <= dt < 5, dt
    assert body["results"] == []
    assert seqnum(body["last_seq"]) >= 1


async def test_many_longpolls_all_woken(client, db):
    tasks = [asyncio.create_task(changes(client, db, feed="longpoll", since="now", timeout=20000)) for _ in range(30)]
    await asyncio.sleep(0.5)
    await put(client, db, "one", {})
    bodies = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert all([r["id"] for r in b["results"]] == ["one"] for b in bodies)


async def _read_lines(resp, n, timeout=5.0):
    lines = []
    while len(lines) < n:
        line = await asyncio.wait_for(resp.content.readline(), timeout)
        if not line:
            break
        lines.append(line)
    return lines


async def test_continuous_feed(client, db):
    await put(client, db, "a", {})
    async with client.get(f"/{db}/_changes", params={"feed": "continuous", "timeout": "3000"}) as resp:
        assert resp.status == 200
        (line,) = await _read_lines(resp, 1)
        row = json.loads(line)
        assert row["id"] == "a" and "seq" in row and "changes" in row
        await put(client, db, "b", {})
        t0 = time.monotonic()
        (line,) = await _read_lines(resp, 1)
        assert time.monotonic() - t0 < 1.0
        assert json.loads(line)["id"] == "b"
        rest = await asyncio.wait_for(resp.content.read(), 10)
    tail = [ln for ln in rest.split(b"\n") if ln.strip()]
    last = json.loads(tail[-1])
    assert set(last) == {"last_seq", "pending"}
    assert last["last_seq"] == json.loads(line)["seq"]


async def test_continuous_heartbeat(client, db):
    params = {"feed": "continuous", "since": "now", "heartbeat": "200", "timeout": "1500"}
    async with client.get(f"/{db}/_changes", params=params) as resp:
        assert resp.status == 200
        t0 = time.monotonic()
        first = await asyncio.wait_for(resp.content.readline(), 3)
        assert first == b"\n"  # a heartbeat is an empty line
        assert time.monotonic() - t0 < 1.0
        rest = await asyncio.wait_for(resp.content.read(), 10)
    lines = rest.split(b"\n")
    assert lines.count(b"") >= 2  # more heartbeats before the timeout ended the feed
    assert json.loads([ln for ln in lines if ln.strip()][-1])["pending"] == 0


async def test_continuous_limit_ends_feed(client, db):
    for i in range(3):
        await put(client, db, f"d{i}", {})
    async with client.get(f"/{db}/_changes", params={"feed": "continuous", "limit": "2"}) as resp:
        data = await asyncio.wait_for(resp.content.read(), 10)
    rows = [json.loads(ln) for ln in data.split(b"\n") if ln.strip()]
    assert [r.get("id") for r in rows[:-1]] == ["d0", "d1"]
    assert "last_seq" in rows[-1]


async def test_eventsource_feed(client, db):
    await put(client, db, "a", {})
    async with client.get(f"/{db}/_changes", params={"feed": "eventsource", "timeout": "1000"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        data = await asyncio.wait_for(resp.content.read(), 10)
    events = [e for e in data.decode().split("\n\n") if e.strip()]
    first = events[0].split("\n")
    assert first[0].startswith("data: ")
    row = json.loads(first[0][len("data: "):])
    assert row["id"] == "a"
    assert first[1].startswith("id: ")
    assert json.loads(first[1][len("id: "):]) == row["seq"]  # id is the JSON-encoded seq


async def test_eventsource_woken_by_write(client, db):
    async with client.get(f"/{db}/_changes", params={"feed": "eventsource", "since": "now", "timeout": "5000"}) as resp:
        await asyncio.sleep(0.3)
        await put(client, db, "live", {})
        t0 = time.monotonic()
        line = await asyncio.wait_for(resp.content.readline(), 3)
        assert time.monotonic() - t0 < 1.0
        assert line.startswith(b"data: ")
        assert json.loads(line[len(b"data: "):])["id"] == "live"


async def test_post_changes_with_body_since(client, db):
    await put(client, db, "a", {})
    body = await changes(client, db, method="POST", body={})
    assert [r["id"] for r in body["results"]] == ["a"]


async def test_longpoll_with_filter_waits_for_a_matching_change(client, db):
    task = asyncio.create_task(changes(client, db, feed="longpoll", since="now", timeout=10000,
                                       filter="_doc_ids", doc_ids=json.dumps(["wanted"])))
    await asyncio.sleep(0.3)
    await put(client, db, "other", {})
    await asyncio.sleep(0.5)
    assert not task.done()  # a change the filter rejects does not end the longpoll
    await put(client, db, "wanted", {})
    body = await asyncio.wait_for(task, 5)
    assert [r["id"] for r in body["results"]] == ["wanted"]


async def test_continuous_filtered(client, db):
    params = {"feed": "continuous", "since": "now", "filter": "_design", "timeout": "1500"}
    async with client.get(f"/{db}/_changes", params=params) as resp:
        await asyncio.sleep(0.2)
        await put(client, db, "plain", {})
        await put(client, db, "_design/d", {"views": {}})
        data = await asyncio.wait_for(resp.content.read(), 10)
    rows = [json.loads(ln) for ln in data.split(b"\n") if ln.strip()]
    assert [r["id"] for r in rows[:-1]] == ["_design/d"]
    assert "last_seq" in rows[-1]


async def test_since_beyond_update_seq(client, db):
    await put(client, db, "a", {})
    body = await changes(client, db, since=1000)
    assert body["results"] == []


async def test_descending_with_since(client, db):
    for i in range(4):
        await put(client, db, f"d{i}", {})
    all_rows = (await changes(client, db))["results"]
    # CouchDB 3 (fabric_view_changes get_start_seq): a descending feed starts at the newest change
    # and ignores `since`
    body = await changes(client, db, descending=True, since=all_rows[2]["seq"])
    assert [r["id"] for r in body["results"]] == ["d3", "d2", "d1", "d0"]


async def test_continuous_since_now_then_two_writes(client, db):
    await put(client, db, "old", {})
    async with client.get(f"/{db}/_changes", params={"feed": "continuous", "since": "now", "timeout": "3000"}) as resp:
        await asyncio.sleep(0.2)
        await put(client, db, "n1", {})
        await put(client, db, "n2", {})
        lines = await _read_lines(resp, 2)
    assert [json.loads(ln)["id"] for ln in lines] == ["n1", "n2"]


async def test_many_idle_continuous_feeds_do_not_block(server, client, db):
    """Hundreds of idle continuous feeds: the server keeps answering and one write reaches all.
    (How fast is measured by benchmarks.scale feeds, not asserted here.)"""
    import aiohttp

    async def next_change(resp) -> dict:
        while True:  # heartbeats (empty lines) come while the feeds are being opened on a busy machine
            line = await resp.content.readline()
            if line.strip():
                return json.loads(line)

    n = 300
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth, connector=conn) as feeds:
        resps = []
        for _ in range(n):
            resps.append(await feeds.get(f"/{db}/_changes", params={"feed": "continuous", "since": "now",
                                                                      "heartbeat": "10000", "timeout": "60000"}))
        assert all(r.status == 200 for r in resps)
        assert (await asyncio.wait_for(client.get("/"), 30)).status == 200
        await put(client, db, "broadcast", {})
        changes = await asyncio.wait_for(asyncio.gather(*[next_change(r) for r in resps]), 45)
        assert [c["id"] for c in changes] == ["broadcast"] * n
        for r in resps:
            r.close()


async def test_longpoll_with_heartbeat_still_returns_json(client, db):
    task = asyncio.create_task(client.get(f"/{db}/_changes", params={
        "feed": "longpoll", "since": "now", "heartbeat": "100", "timeout": "10000"}))
    await asyncio.sleep(0.45)
    await put(client, db, "hb", {})
    resp = await asyncio.wait_for(task, 5)
    raw = await asyncio.wait_for(resp.read(), 5)
    body = json.loads(raw)  # heartbeat newlines before the object are JSON whitespace
    assert [r["id"] for r in body["results"]] == ["hb"]


async def test_eventsource_heartbeat(client, db):
    params = {"feed": "eventsource", "since": "now", "heartbeat": "150", "timeout": "1000"}
    async with client.get(f"/{db}/_changes", params=params) as resp:
        data = await asyncio.wait_for(resp.content.read(), 10)
    assert b"event: heartbeat\ndata: \n\n" in data
    assert b"data: {" not in data


async def test_continuous_include_docs(client, db):
    rev = await put(client, db, "full", {"k": [1, 2]})
    async with client.get(f"/{db}/_changes", params={"feed": "continuous", "include_docs": "true",
                                                     "timeout": "500"}) as resp:
        data = await asyncio.wait_for(resp.content.read(), 10)
    rows = [json.loads(ln) for ln in data.split(b"\n") if ln.strip()]
    assert rows[0]["doc"] == {"_id": "full", "_rev": rev, "k": [1, 2]}


async def test_big_integers_in_feeds(client, db):
    raw = b'{"big":18446744073709551616,"z":1,"a":2}'
    r = await client.put(f"/{db}/big", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 201
    text = await (await client.get(f"/{db}/_changes", params={"include_docs": "true"})).read()
    assert b'"big":18446744073709551616,"z":1,"a":2' in text
    async with client.get(f"/{db}/_changes", params={"feed": "continuous", "include_docs": "true",
                                                     "timeout": "300"}) as resp:
        data = await asyncio.wait_for(resp.content.read(), 10)
    assert b'"big":18446744073709551616' in data


async def test_deleting_the_database_ends_its_feeds(client):
    name = f"changes-del-{uuid.uuid4().hex[:10]}"
    await client.put(f"/{name}")
    async with client.get(f"/{name}/_changes", params={"feed": "continuous", "since": "now",
                                                        "heartbeat": "10000"}) as resp:
        await asyncio.sleep(0.2)
        assert (await client.delete(f"/{name}")).status == 200
        data = await asyncio.wait_for(resp.content.read(), 5)  # the feed ends, it does not hang
    assert isinstance(data, bytes)
    assert (await client.get(f"/{name}")).status == 404


async def test_longpoll_limit_and_pending(client, db):
    for i in range(3):
        await put(client, db, f"d{i}", {})
    body = await changes(client, db, feed="longpoll", limit=1, timeout=5000)
    assert [r["id"] for r in body["results"]] == ["d0"]
    assert body["pending"] == 2
