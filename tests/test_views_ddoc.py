"""Design documents as index definitions: signatures, validation, compile check on save."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import couchpy
from couchpy.errors import BadRequest
from couchpy.query_server import CompilationError
from couchpy.views import ddoc, manager

VIEWS = {"a": {"map": "function(doc) { emit(doc.a, 1); }", "reduce": "_count"},
         "lib": {"util": "exports.x = 1;"}}


def test_signature_is_content_addressed():
    s1 = ddoc.parse({"_id": "_design/one", "views": VIEWS})
    s2 = ddoc.parse({"_id": "_design/two", "_rev": "3-x", "views": dict(reversed(list(VIEWS.items())))})
    assert s1.sig == s2.sig  # same views, another design doc: one shared index
    assert [v.name for v in s1.views] == ["a"] and s1.lib == {"util": "exports.x = 1;"}
    s3 = ddoc.parse({"views": {**VIEWS, "a": {"map": VIEWS["a"]["map"], "reduce": "_sum"}}})
    assert s3.sig != s1.sig
    s4 = ddoc.parse({"views": VIEWS, "options": {"include_design": True}})
    assert s4.sig != s1.sig and s4.include_design
    raw = ddoc.parse({"views": {"a": {**VIEWS["a"], "options": {"collation": "raw"}}}})
    assert raw.views[0].collation == "raw" and raw.sig != s1.sig


@pytest.mark.parametrize("bad", [
    {"views": []},
    {"views": {"a": {"reduce": "_sum"}}},
    {"views": {"a": {"map": 1}}},
    {"views": {"a": {"map": "function(doc) {}", "reduce": "_median"}}},
    {"language": 3, "views": {}},
])
def test_invalid_design_docs(bad):
    with pytest.raises(BadRequest) as exc:
        ddoc.parse(bad)
    assert exc.value.error == "invalid_design_doc"


def test_validate_design_doc_compiles(tmp_path):
    node = couchpy.open(tmp_path)
    try:
        manager.validate_design_doc(node, {"_id": "_design/x", "views": VIEWS})
        with pytest.raises(CompilationError) as exc:
            manager.validate_design_doc(node, {"_id": "_design/x", "views": {"v": {"map": "function(doc) {"}}})
        assert exc.value.status == 400 and "'v' view" in exc.value.reason
        with pytest.raises(CompilationError):
            manager.validate_design_doc(node, {"views": {"v": {"map": "function(doc) {}", "reduce": "function(k, v {"}}})
        # Mango index design documents have no code to compile
        manager.validate_design_doc(node, {"language": "query", "views": {"i": {"map": {"fields": {"a": "asc"}}}}})
    finally:
        manager.pool_for(node).close()
        node.close()


async def test_changes_filter_helpers(tmp_path):
    from couchpy.errors import NotFound

    node = couchpy.open(tmp_path)
    try:
        db = node.create_db("f")
        await db.put({"_id": "_design/app",
                      "filters": {"even": "function(doc, req) { return doc.n % 2 === 0; }"},
                      "views": {"big": {"map": "function(doc) { if (doc.n > 2) emit(doc.n, null); }"}}})
        docs = [{"_id": str(i), "n": i} for i in range(5)]
        assert await manager.filter_docs(node, db, "app/even", docs, {"query": {}}) == [True, False, True, False, True]
        assert await manager.view_filter(node, db, "app/big", docs) == [False, False, False, True, True]
        with pytest.raises(NotFound):
            await manager.filter_docs(node, db, "app/nope", docs, {})
        with pytest.raises(NotFound):
            await manager.view_filter(node, db, "app/nope", docs)
    finally:
        manager.pool_for(node).close()
        await node.aclose()


def _gone(pids: list[int], within_s: float = 10.0) -> bool:
    """Whether every process in pids has exited (and been reaped) within the time given."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{pid}") for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("closing", ["aclose", "close"])
def test_a_closed_node_stops_its_query_server_workers(tmp_path, closing):
    """A node's query-server workers end with the node (library use opens and closes nodes;
    before, each closed node's workers lived until a garbage collection)."""
    async def build() -> tuple[couchpy.Node, list[int]]:
        node = couchpy.open(tmp_path)
        db = node.create_db("db")
        await db.put({"_id": "d", "n": 1})
        await db.put({"_id": "_design/v", "views": {"n": {"map": "function(doc) { emit(doc.n, null); }"}}})
        assert (await manager.query_view(node, db, "v", "n", {}, True))["rows"] == [{"id": "d", "key": 1, "value": None}]
        pids = manager.pool_for(node).worker_pids("javascript")
        assert pids
        if closing == "aclose":
            await node.aclose()
        return node, pids

    node, pids = asyncio.run(build())
    if closing == "close":
        node.close()
    assert _gone(pids), pids

