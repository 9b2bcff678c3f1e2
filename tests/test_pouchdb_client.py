"""The npm `pouchdb` package, in Node, using couchpy as its remote database.

PouchDB is the most common JavaScript client of CouchDB; these tests run its real code
(tests/node/pouchdb_client.js) against a couchpy server subprocess and assert on what it
observed: document CRUD, _bulk_docs, _all_docs, _changes (including PouchDB's live feed),
conflicting revisions, a local PouchDB replicating both ways with couchpy, attachments,
map/reduce views through db.query(), and Mango through the pouchdb-find plugin.

Set COUCHPY_TEST_PEER=pouchdb-server to run the same scenarios against pouchdb-server 4.2.0
instead: that checks the scenarios themselves against an independent implementation (a few
assertions that pin CouchDB-specific details are skipped there). COUCHPY_TEST_REMOTE_URL=<url>
runs them against an already running server (e.g. Apache CouchDB, or couchpy by hand).
"""
from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nodeenv import PouchdbServer, node_modules, run_node

pytestmark = [pytest.mark.node]

AGAINST_POUCHDB_SERVER = os.environ.get("COUCHPY_TEST_PEER") == "pouchdb-server"
REMOTE_URL = os.environ.get("COUCHPY_TEST_REMOTE_URL")
REV = re.compile(r"^(\d+)-[0-9a-f]{32}$")


@pytest.fixture
def remote_url(request: pytest.FixtureRequest) -> Iterator[str]:
    node_modules()      # skip early (before starting a server) when npm is unreachable
    if REMOTE_URL:
        yield REMOTE_URL
    elif AGAINST_POUCHDB_SERVER:
        with PouchdbServer() as peer:
            yield peer.url
    else:
        yield request.getfixturevalue("server").url


def scenario(name: str, url: str, tmp_path: Path) -> dict[str, Any]:
    """Run one scenario of pouchdb_client.js in a database of its own; returns what it saw."""
    dbname = f"pouchdb-{name}-{uuid.uuid4().hex[:8]}"
    out = run_node("pouchdb_client.js", name, url, dbname, tmp_path, timeout=120)
    assert isinstance(out, dict)
    out["dbname"] = dbname
    return out


def gen(rev: str) -> int:
    m = REV.match(rev)
    assert m, f"not a CouchDB revision: {rev!r}"
    return int(m.group(1))


def test_crud(remote_url: str, tmp_path: Path) -> None:
    r = scenario("crud", remote_url, tmp_path)
    assert r["infoBefore"]["db_name"] == r["dbname"]
    assert r["infoBefore"]["doc_count"] == 0

    assert r["put1"]["ok"] is True and r["put1"]["id"] == "doc1" and gen(r["put1"]["rev"]) == 1
    assert r["get1"] == {"_id": "doc1", "_rev": r["put1"]["rev"], "n": 1,
                         "nested": {"list": [1, "two", None], "t": True}}
    assert gen(r["put2"]["rev"]) == 2
    for stale in (r["stalePut"], r["createExisting"]):
        assert stale["status"] == 409 and stale["name"] == "conflict", stale

    revs = r["getRevs"]
    assert revs["n"] == 2 and revs["_rev"] == r["put2"]["rev"]
    assert revs["_revisions"] == {"start": 2, "ids": [r["put2"]["rev"].split("-")[1],
                                                      r["put1"]["rev"].split("-")[1]]}

    assert r["post"]["ok"] is True and r["post"]["id"] and gen(r["post"]["rev"]) == 1
    assert r["getPosted"] == {"_id": r["post"]["id"], "_rev": r["post"]["rev"], "posted": True}

    assert r["putWeird"]["id"] == r["weirdId"]
    assert r["getWeird"]["_id"] == r["weirdId"] and r["getWeird"]["w"] == 1

    assert r["remove"]["ok"] is True and gen(r["remove"]["rev"]) == 3
    assert r["getRemoved"]["status"] == 404 and r["getRemoved"]["name"] == "not_found"
    assert r["getMissing"]["status"] == 404 and r["getMissing"]["name"] == "not_found"
    if not AGAINST_POUCHDB_SERVER:      # pouchdb-server says "missing" for both
        assert r["getRemoved"]["reason"] == "deleted"
        assert r["getMissing"]["reason"] == "missing"

    # Re-creating a deleted doc continues its revision history.
    assert gen(r["recreate"]["rev"]) == 4
    assert r["getRecreated"] == {"_id": "doc1", "_rev": r["recreate"]["rev"], "n": 3}
    assert r["infoAfter"]["doc_count"] == 3        # doc1, the posted doc, the weird id


def test_bulk_docs_and_all_docs(remote_url: str, tmp_path: Path) -> None:
    r = scenario("bulk", remote_url, tmp_path)
    ids = [f"doc-{i:03d}" for i in range(100)]
    assert [row["id"] for row in r["bulk"]] == ids
    assert all(row["ok"] is True and gen(row["rev"]) == 1 for row in r["bulk"])
    assert r["allIds"] == ids
    assert r["all"]["total_rows"] == 100 and r["all"]["rows"] == []

    rows = r["range"]["rows"]
    assert [row["id"] for row in rows] == ids[10:20]
    assert [row["doc"]["n"] for row in rows] == list(range(10, 20))
    assert all(row["key"] == row["id"] and row["value"]["rev"] == row["doc"]["_rev"]
               for row in rows)
    assert [row["id"] for row in r["rangeExclusive"]["rows"]] == ids[10:19]

    keys = r["keys"]["rows"]
    assert keys[0]["id"] == "doc-005" and keys[0]["doc"]["n"] == 5
    assert keys[1] == {"key": "missing", "error": "not_found"}
    assert keys[2]["id"] == "doc-001" and keys[2]["doc"]["n"] == 1

    assert [row["id"] for row in r["descending"]["rows"]] == ["doc-099", "doc-098", "doc-097"]
    assert [row["id"] for row in r["skip"]["rows"]] == ids[95:]

    upd = r["bulkUpdate"]
    assert upd[0]["id"] == "doc-000" and upd[0]["status"] == 409 and upd[0]["name"] == "conflict"
    assert all(row["ok"] is True and gen(row["rev"]) == 2 for row in upd[1:])
    assert r["updated"]["n"] == 1005 and gen(r["updated"]["_rev"]) == 2

    assert len(r["bulkDelete"]) == 10
    assert all(row["ok"] is True and gen(row["rev"]) == 2 for row in r["bulkDelete"])
    assert r["afterDelete"]["total_rows"] == 90
    deleted = r["deletedKey"]["rows"][0]
    assert deleted["id"] == "doc-095" and deleted["value"]["deleted"] is True
    assert r["info"]["doc_count"] == 90
    if not AGAINST_POUCHDB_SERVER:      # pouchdb-server's info has no doc_del_count
        assert r["info"]["doc_del_count"] == 10


def test_changes(remote_url: str, tmp_path: Path) -> None:
    r = scenario("changes", remote_url, tmp_path)
    # One row per document, in the order of each doc's latest change.
    results = r["all"]["results"]
    assert [c["id"] for c in results] == ["a", "d", "e", "b", "c"]
    by_id = {c["id"]: c for c in results}
    assert gen(by_id["b"]["changes"][0]["rev"]) == 2
    assert by_id["c"].get("deleted") is True and gen(by_id["c"]["changes"][0]["rev"]) == 2
    assert not any(c.get("deleted") for c in results if c["id"] != "c")
    assert r["all"]["last_seq"] == results[-1]["seq"]

    docs = {c["id"]: c["doc"] for c in r["withDocs"]["results"]}
    assert docs["b"]["v"] == "b2" and docs["a"]["v"] == "a"
    assert docs["c"]["_deleted"] is True

    assert [c["id"] for c in r["limited"]["results"]] == ["a", "d"]
    assert [c["id"] for c in r["since"]["results"]] == ["e", "b", "c"]
    assert [c["id"] for c in r["descending"]["results"]] == ["c", "b", "e", "d", "a"]
    assert [c["id"] for c in r["docIds"]["results"]] == ["a", "e"]

    live = r["live"]
    assert [c["id"] for c in live] == ["live-1", "live-2"]
    assert live[0]["doc"]["live"] == 1 and live[1]["doc"]["live"] == 2


def test_conflicts_visible_and_resolvable(remote_url: str, tmp_path: Path) -> None:
    r = scenario("conflicts", remote_url, tmp_path)
    a, b = "1-" + "a" * 32, "1-" + "b" * 32
    assert r["bulk"] == []      # new_edits=false: no per-doc rows on success
    # The winner is the higher revision id on equal generations; the other is a conflict.
    assert r["get"] == {"_id": "c", "_rev": b, "side": "b", "_conflicts": [a]}
    open_revs = sorted((x["ok"]["_rev"], x["ok"]["side"]) for x in r["openRevs"])
    assert open_revs == [(a, "a"), (b, "b")]
    assert r["loser"] == {"_id": "c", "_rev": a, "side": "a"}
    row = r["allDocs"]["rows"][0]
    assert row["value"]["rev"] == b and row["doc"]["_conflicts"] == [a]

    assert r["resolve"]["ok"] is True and gen(r["resolve"]["rev"]) == 2
    assert r["afterResolve"] == {"_id": "c", "_rev": b, "side": "b"}     # no _conflicts
    assert gen(r["update"]["rev"]) == 2 and gen(r["deleteWinner"]["rev"]) == 3
    assert r["getDeleted"]["status"] == 404


def test_local_pouchdb_replicates_both_ways(remote_url: str, tmp_path: Path) -> None:
    r = scenario("replicate", remote_url, tmp_path)
    push = r["push"]
    assert push["ok"] is True and push["status"] == "complete"
    assert push["docs_written"] == 60 and push["doc_write_failures"] == 0
    remote_docs = {row["id"]: row["doc"]["n"] for row in r["remoteAfterPush"]["rows"]}
    assert remote_docs == {f"r-{i:03d}": i for i in range(60)}

    pull = r["pull"]
    assert pull["ok"] is True and pull["docs_written"] == 3 and pull["doc_write_failures"] == 0
    assert r["localR5"]["n"] == 500 and gen(r["localR5"]["_rev"]) == 2
    assert r["localR6"]["status"] == 404
    assert r["localFromServer"]["s"] is True

    sync = r["sync"]
    assert sync["push"]["docs_written"] == 1 and sync["pull"]["docs_written"] == 1
    local, remote = r["localConflict"], r["remoteConflict"]
    # Both sides agree on the winner and on the conflicting revision.
    assert local["_rev"] == remote["_rev"] and gen(local["_rev"]) == 2
    assert local["_conflicts"] == remote["_conflicts"] and len(local["_conflicts"]) == 1
    assert {local["side"]} <= {"local", "remote"} and local["side"] == remote["side"]

    again = r["pushAgain"]
    assert again["ok"] is True and again["docs_read"] == 0 and again["docs_written"] == 0


def test_attachments(remote_url: str, tmp_path: Path) -> None:
    r = scenario("attachments", remote_url, tmp_path)
    stub = r["stub"]["_attachments"]["hello.txt"]
    assert stub["stub"] is True and stub["length"] == 11 and stub["content_type"] == "text/plain"
    # text/plain is stored gzip-compressed, and the digest is the MD5 of the stored bytes, as Apache
    # CouchDB 3.4.3 answers for the same attachment; pouchdb-server digests the plain bytes.
    assert stub["digest"] == ("md5-XrY7u+Ae7tCTyyK7j1rNww==" if AGAINST_POUCHDB_SERVER
                              else "md5-7mkg+nM0HN26sZkLN8KVSA==")
    assert gen(r["putBin"]["rev"]) == 2
    assert r["binBack"] == {"length": 70000, "md5": r["binMd5"]}
    assert r["textBack"] == "hello world" and r["inlineText"] == "hello world"
    assert r["inlineBinLength"] == 70000
    atts = r["afterPut"]["_attachments"]
    assert set(atts) == {"hello.txt", "blob.bin"}
    assert atts["blob.bin"]["digest"] == r["binMd5"] and atts["blob.bin"]["revpos"] == 2
    assert atts["hello.txt"]["revpos"] == 1
    assert gen(r["removeAtt"]["rev"]) == 3
    assert set(r["afterRemove"]["_attachments"]) == {"blob.bin"}
    assert r["missingAtt"]["status"] == 404


def test_views_through_query(remote_url: str, tmp_path: Path) -> None:
    r = scenario("views", remote_url, tmp_path)
    sums = {t: sum(i for i in range(30) if i % 3 == t) for t in range(3)}
    assert r["grouped"]["rows"] == [{"key": f"tag-{t}", "value": sums[t]} for t in range(3)]
    assert r["total"]["rows"] == [{"key": None, "value": sum(range(30))}]
    rows = r["key"]["rows"]
    assert [row["id"] for row in rows] == [f"v-{i:03d}" for i in range(1, 30, 3)]
    assert all(row["key"] == "tag-1" and row["doc"]["n"] == row["value"] for row in rows)
    assert r["key"]["total_rows"] == 30
    if not AGAINST_POUCHDB_SERVER:      # pouchdb-server reports offset 0 for every query
        assert r["key"]["offset"] == 10 and r["range"]["offset"] == 5
    assert [(row["key"], row["id"]) for row in r["range"]["rows"]] == \
        [(i, f"v-{i:03d}") for i in range(5, 10)]
    assert [row["key"] for row in r["descLimit"]["rows"]] == [29, 28, 27]
    assert [(row["id"], row["value"]) for row in r["afterUpdate"]["rows"]] == [("v-000", 0)]


def test_mango_through_pouchdb_find(remote_url: str, tmp_path: Path) -> None:
    r = scenario("find", remote_url, tmp_path)
    assert r["createIndex"] == {"result": "created", "id": "_design/by-n", "name": "n-idx"}
    assert r["createAgain"]["result"] == "exists"
    indexes = {i["name"]: i for i in r["indexes"]["indexes"]}
    assert indexes["n-idx"]["def"]["fields"] == [{"n": "asc"}]
    assert indexes["n-idx"]["ddoc"] == "_design/by-n" and "_all_docs" in indexes
    assert r["range"]["docs"] == [{"_id": f"f-{i:03d}", "n": i} for i in range(10, 15)]
    assert [d["n"] for d in r["combined"]["docs"]] == [39, 37, 35]
    assert all(d["kind"] == "odd" and gen(d["_rev"]) == 1 for d in r["combined"]["docs"])
    assert sorted(d["n"] for d in r["noIndex"]["docs"]) == [0, 2, 4]


def test_pouchdb_server_helper_starts_and_cleans_up(tmp_path: Path) -> None:
    """tests.nodeenv.PouchdbServer, which replication tests use as a peer: up, usable, gone."""
    import json
    import urllib.request

    node_modules()
    with PouchdbServer() as peer:
        with urllib.request.urlopen(peer.url + "/") as resp:
            assert json.loads(resp.read())["version"] == "4.2.0"
        out = run_node("pouchdb_client.js", "crud", peer.url, "helper-check", tmp_path)
        assert out["getRecreated"]["n"] == 3
        data_dir, proc = peer.data_dir, peer.proc
        assert data_dir is not None and data_dir.is_dir() and proc is not None
    assert proc.poll() is not None          # the process is gone
    assert not data_dir.exists()            # and so is its temporary data directory
