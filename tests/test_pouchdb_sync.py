"""npm PouchDB's live two-way sync with couchpy (continuous, both directions)."""

from __future__ import annotations

import uuid

import pytest

from tests.nodeenv import node_modules, run_node

pytestmark = [pytest.mark.node]


def test_live_sync_both_ways_with_conflicts_and_deletions(server, tmp_path):
    node_modules()  # skips with a clear message when npm is unreachable
    url = f"{server.url}/live-{uuid.uuid4().hex[:8]}"
    out = run_node("pouchdb_live_sync.js", url, str(tmp_path), timeout=120)
    assert out["errors"] == []
    # each edit crossed over while the live sync ran (generous bound for a loaded machine)
    assert out["localToRemoteMs"] < 10000 and out["remoteToLocalMs"] < 10000
    # the deletion replicated: both sides list only the surviving document
    assert out["remoteIds"] == out["localIds"] == ["from-local"]
    # concurrent edits: the same winner and the same conflict on both sides
    c = out["conflict"]
    assert c["local"]["rev"] == c["remote"]["rev"]
    assert c["local"]["conflicts"] == c["remote"]["conflicts"] and len(c["local"]["conflicts"]) == 1
