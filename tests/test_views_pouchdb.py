"""The npm `pouchdb` client's query() and pouchdb-find's find()/createIndex() against the server."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.nodeenv import node_modules

pytestmark = pytest.mark.node

SCRIPT = r"""
const PouchDB = require('pouchdb');
PouchDB.plugin(require('pouchdb-find'));
(async () => {
  const db = new PouchDB(process.argv[2]);
  const docs = [];
  for (let i = 0; i < 20; i++) docs.push({_id: 'd' + String(i).padStart(2, '0'), n: i, k: ['a', 'b'][i % 2]});
  await db.bulkDocs(docs);
  await db.put({_id: '_design/d', views: {
    by_n: {map: 'function (doc) { emit(doc.n, doc.k); }', reduce: '_count'},
    by_k: {map: 'function (doc) { emit([doc.k, doc.n], 1); }', reduce: '_sum'},
  }});
  const out = {};
  out.range = await db.query('d/by_n', {startkey: 3, endkey: 6, reduce: false});
  out.desc = await db.query('d/by_n', {descending: true, limit: 2, reduce: false, include_docs: true});
  out.keys = await db.query('d/by_n', {keys: [5, 1], reduce: false});
  out.count = await db.query('d/by_n');
  out.grouped = await db.query('d/by_k', {group_level: 1});
  out.created = await db.createIndex({index: {fields: ['n']}, name: 'by-n', ddoc: 'idx'});
  out.again = await db.createIndex({index: {fields: ['n']}, name: 'by-n', ddoc: 'idx'});
  out.found = await db.find({selector: {n: {$gte: 15}, k: 'b'}, sort: ['n'], fields: ['_id', 'n']});
  out.unindexed = await db.find({selector: {k: 'a', n: {$lt: 4}}});
  out.indexes = await db.getIndexes();
  out.deleted = await db.deleteIndex({ddoc: 'idx', name: 'by-n'});
  try { await db.query('d/missing'); out.missing = null; } catch (e) { out.missing = {status: e.status, reason: e.reason}; }
  await db.destroy();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_pouchdb_query_and_find(server, tmp_path):
    modules = node_modules()
    script = tmp_path / "views_client.js"
    script.write_text(SCRIPT)
    url = f"{server.url}/pq-{uuid.uuid4().hex[:10]}"
    env = dict(os.environ, NODE_PATH=str(modules))
    proc = subprocess.run(["node", str(script), url], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(modules.parent))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["key"] for r in out["range"]["rows"]] == [3, 4, 5, 6]
    assert out["range"]["total_rows"] == 20 and out["range"]["offset"] == 3
    assert [r["id"] for r in out["desc"]["rows"]] == ["d19", "d18"]
    assert out["desc"]["rows"][0]["doc"]["n"] == 19
    assert [r["key"] for r in out["keys"]["rows"]] == [5, 1]
    assert out["count"]["rows"] == [{"key": None, "value": 20}]
    assert out["grouped"]["rows"] == [{"key": ["a"], "value": 10}, {"key": ["b"], "value": 10}]
    assert out["created"] == {"result": "created", "id": "_design/idx", "name": "by-n"}
    assert out["again"]["result"] == "exists"
    assert out["found"]["docs"] == [{"_id": "d15", "n": 15}, {"_id": "d17", "n": 17}, {"_id": "d19", "n": 19}]
    assert sorted(d["_id"] for d in out["unindexed"]["docs"]) == ["d00", "d02"]
    assert [i["name"] for i in out["indexes"]["indexes"]] == ["_all_docs", "by-n"]
    assert out["deleted"] == {"ok": True}
    assert out["missing"]["status"] == 404
