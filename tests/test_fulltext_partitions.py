"""Nouveau searches over one partition, as CouchDB 3.4.3 routes them: `/{db}/_partition/{p}/
_design/{d}/_nouveau/{i}` is the database-wide search with `partition=p` in its query string
(CouchDB's Nouveau ANDs the query with the document's partition, indexed for every document of a
partitioned database). A `partition` in the query string of the database-wide route does the
same; in a database that is not partitioned no document has a partition, so it finds nothing.

The CouchDB peer runs without Nouveau's Java service, so these search results are checked
against what the documents say, not against CouchDB; the routing errors CouchDB answers before
searching are compared with it (tests/test_partitions_parity.py)."""

from __future__ import annotations

import uuid

import pytest

INDEX = """function(doc){
  if (typeof doc.title == 'string') { index('text','default',doc.title); index('text','title',doc.title,{store:true}); }
  if (typeof doc.kind == 'string') index('string','kind',doc.kind,{store:true});
  if (typeof doc.price == 'number') index('double','price',doc.price);
}"""
# partitions with characters a regular expression would read as operators
PARTS = ["a", "x.y*z<", "é"]
DOCS = [{"_id": f"{p}:{i}", "title": f"red fox {i}" if i % 2 else f"blue car {i}",
         "kind": "animal" if i % 2 else "thing", "price": i * 10 + n}
        for n, p in enumerate(PARTS) for i in range(1, 6)]
DOCS += [{"_id": "ax:1", "title": "red fox lookalike", "kind": "animal", "price": 1},  # not partition a
         {"_id": "_design/other", "title": "red fox"}]


async def _get(client, path: str, **params) -> tuple[int, dict]:
    async with client.get(path, params=params) as r:
        return r.status, await r.json()


async def _post(client, path: str, body: dict, **params) -> tuple[int, dict]:
    async with client.post(path, json=body, params=params) as r:
        return r.status, await r.json()


@pytest.fixture
async def pdb(client):
    name = "fts-part-" + uuid.uuid4().hex[:10]
    async with client.put(f"/{name}", params={"partitioned": "true"}) as r:
        assert r.status == 201
    async with client.put(f"/{name}/_design/s", json={"nouveau": {"idx": {"index": INDEX}}}) as r:
        assert r.status == 201, await r.text()
    async with client.post(f"/{name}/_bulk_docs", json={"docs": DOCS}) as r:
        assert r.status == 201
    yield name
    async with client.delete(f"/{name}"):
        pass


def _ids(body: dict) -> list[str]:
    return [h["id"] for h in body["hits"]]


def _part(p: str) -> str:
    return "/_partition/" + p.replace("*", "%2A").replace("<", "%3C")


async def test_search_of_a_partition_finds_its_documents_only(client, pdb):
    every = sorted(d["_id"] for d in DOCS if not d["_id"].startswith("_"))
    status, body = await _get(client, f"/{pdb}/_design/s/_nouveau/idx", q="*:*", limit=100)
    assert status == 200 and sorted(_ids(body)) == every
    for p in PARTS:
        mine = sorted(d["_id"] for d in DOCS if d["_id"].startswith(p + ":"))
        status, body = await _get(client, f"/{pdb}{_part(p)}/_design/s/_nouveau/idx", q="*:*", limit=100)
        assert (status, sorted(_ids(body)), body["total_hits"]) == (200, mine, 5)
        # a term query, facets and ranges count the partition's matches only
        status, body = await _get(client, f"/{pdb}{_part(p)}/_design/s/_nouveau/idx", q="fox",
                                  counts='["kind"]', ranges='{"price":[{"label":"all","min":0,"max":1000}]}')
        fox = sorted(d["_id"] for d in DOCS if d["_id"].startswith(p + ":") and "fox" in d["title"])
        assert sorted(_ids(body)) == fox and body["total_hits"] == len(fox) == 3
        assert body["counts"] == {"kind": {"animal": 3}} and body["ranges"] == {"price": {"all": 3}}


async def test_partition_search_keeps_the_scores_and_pages(client, pdb):
    """Relevance is the query's alone (the partition filters, as a constant adds nothing to the
    order); bookmarks page through the partition; POST takes the partition from the route."""
    _, every = await _get(client, f"/{pdb}/_design/s/_nouveau/idx", q="fox OR car", limit=100)
    score = {h["id"]: h["order"][0]["value"] for h in every["hits"]}
    _, part = await _get(client, f"/{pdb}/_partition/a/_design/s/_nouveau/idx", q="fox OR car", limit=100)
    assert {h["id"]: h["order"][0]["value"] for h in part["hits"]} == {i: score[i] for i in _ids(part)}
    seen: list[str] = []
    body = {"q": "*:*", "limit": 2, "sort": "price<double>", "include_docs": True}
    for _ in range(5):  # bounded: 5 documents, 2 a page
        status, page = await _post(client, f"/{pdb}/_partition/a/_design/s/_nouveau/idx", body)
        assert status == 200
        if not page["hits"]:
            break
        assert all(h["doc"]["_id"] == h["id"] for h in page["hits"])
        seen += _ids(page)
        body["bookmark"] = page["bookmark"]
    assert seen == [f"a:{i}" for i in range(1, 6)]


async def test_partition_in_the_query_string(client, pdb):
    """The database-wide route reads `partition` from its query string, for GET and POST (a
    POSTed body's `partition` is not read, as in CouchDB)."""
    route = f"/{pdb}/_design/s/_nouveau/idx"
    _, scoped = await _get(client, f"/{pdb}/_partition/a/_design/s/_nouveau/idx", q="red")
    _, by_query = await _get(client, route, q="red", partition="a")
    assert _ids(by_query) == _ids(scoped) and sorted(_ids(scoped)) == ["a:1", "a:3", "a:5"]
    _, posted = await _post(client, route, {"q": "red"}, partition="a")
    assert _ids(posted) == _ids(scoped)
    _, body_only = await _post(client, route, {"q": "red", "partition": "a"})
    assert "ax:1" in _ids(body_only) and body_only["total_hits"] == 10
    _, none = await _get(client, route, q="red", partition="zz")
    assert none["hits"] == [] and none["total_hits"] == 0


async def test_partition_routes_answer_as_couchdb(client, pdb):
    info_path = f"/{pdb}/_partition/a/_design/s/_nouveau_info/idx"
    status, info = await _get(client, info_path)
    assert status == 200 and info == (await _get(client, f"/{pdb}/_design/s/_nouveau_info/idx"))[1]
    conflict = (400, {"error": "bad_request", "reason": "Conflicting value for `partition` in query string"})
    assert await _get(client, f"/{pdb}/_partition/a/_design/s/_nouveau/idx", q="*:*", partition="b") == conflict
    assert await _get(client, info_path, partition="b") == conflict
    assert (await _get(client, f"/{pdb}/_partition/a/_design/s/_nouveau/nope", q="*:*"))[0] == 404
    assert (await _get(client, f"/{pdb}/_partition/a/_design/s/_nouveau/idx"))[1]["error"] == "query_parse_error"
    async with client.delete(f"/{pdb}/_partition/a/_design/s/_nouveau/idx") as r:
        assert r.status == 405


async def test_database_not_partitioned(client, db):
    async with client.put(f"/{db}/_design/s", json={"nouveau": {"idx": {"index": INDEX}}}) as r:
        assert r.status == 201
    async with client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": "a:1", "title": "red fox"}]}) as r:
        assert r.status == 201
    status, body = await _get(client, f"/{db}/_partition/a/_design/s/_nouveau/idx", q="*:*")
    assert (status, body) == (400, {"error": "bad_request", "reason": "database is not partitioned"})
    # no document of a database that is not partitioned has a partition (Nouveau indexes none)
    _, body = await _get(client, f"/{db}/_design/s/_nouveau/idx", q="*:*", partition="a")
    assert body["total_hits"] == 0
    _, body = await _get(client, f"/{db}/_design/s/_nouveau/idx", q="*:*")
    assert body["total_hits"] == 1


def test_partition_searches_go_to_the_worker_holding_the_indexes():
    """With `--workers`, full-text indexes live in worker 0 only; the other workers forward the
    requests that reach them, partition searches included."""
    from http_api import workers

    for path in ("/db/_design/s/_nouveau/idx", "/db/_partition/a/_design/s/_nouveau/idx",
                 "/db/_partition/a/_design/s/_nouveau_info/idx", "/db/_nouveau_cleanup"):
        assert workers._PRIMARY.match(path), path
    for path in ("/db/_partition/a/_all_docs", "/db/_partition/a/_design/s/_view/v", "/db/_partition/a"):
        assert not workers._PRIMARY.match(path), path
