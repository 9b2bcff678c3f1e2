"""The npm `pouchdb` client stores and reads attachments on a couchpy server: putAttachment
(creating and updating documents), getAttachment, get with {attachments: true} (inline base64 and
binary), removeAttachment, inline attachments via put, and a replication of attachments from
couchpy to a local PouchDB and back to a new couchpy database (bytes and digests compared)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.nodeenv import NODE_DIR, node_modules

pytestmark = [pytest.mark.node]

SCRIPT = r"""
'use strict';
const NM = process.env.COUCHPY_NODE_MODULES;
const PouchDB = require(NM + '/pouchdb');
const [url, dbname, tmp, dataFile] = process.argv.slice(2);
const info = (e) => ({ status: e.status, name: e.name, message: e.message });
(async () => {
  const out = {};
  const db = new PouchDB(url + '/' + dbname);
  const data = require('fs').readFileSync(dataFile);
  out.put1 = await db.putAttachment('doc', 'dir/att.bin', data, 'application/octet-stream');
  out.put2 = await db.putAttachment('doc', 'note.txt', out.put1.rev, Buffer.from('hello pouch'), 'text/plain');
  const got = await db.getAttachment('doc', 'dir/att.bin');
  out.gotHex = Buffer.from(got).toString('hex');
  out.note = Buffer.from(await db.getAttachment('doc', 'note.txt')).toString();
  out.withAtts = await db.get('doc', { attachments: true });
  const bin = await db.get('doc', { attachments: true, binary: true });
  out.binaryHex = Buffer.from(bin._attachments['dir/att.bin'].data).toString('hex');
  out.plain = await db.get('doc');
  out.inline = await db.put({ _id: 'inline', k: 1, _attachments: {
    'x.txt': { content_type: 'text/plain', data: Buffer.from('inline text').toString('base64') } } });
  out.inlineGot = Buffer.from(await db.getAttachment('inline', 'x.txt')).toString();
  out.removed = await db.removeAttachment('doc', 'note.txt', out.put2.rev);
  out.afterRemove = await db.get('doc');
  try { await db.getAttachment('doc', 'note.txt'); out.removedGet = 'found'; }
  catch (e) { out.removedGet = info(e); }
  // Replicate to a local PouchDB and back to a fresh remote database.
  const local = new PouchDB(tmp + '/local');
  out.pull = await local.replicate.from(db);
  out.localAtt = Buffer.from(await local.getAttachment('doc', 'dir/att.bin')).toString('hex');
  const back = new PouchDB(url + '/' + dbname + '-back');
  out.push = await local.replicate.to(back);
  out.backDoc = await back.get('doc');
  out.backAtt = Buffer.from(await back.getAttachment('doc', 'dir/att.bin')).toString('hex');
  out.backInline = await back.get('inline', { attachments: true });
  await back.destroy();
  await db.destroy();
  await local.destroy();
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n' + JSON.stringify(e) + '\n'); process.exit(1); });
"""


def test_pouchdb_attachments(server, tmp_path: Path) -> None:
    nm = node_modules()
    script = tmp_path / "pouch_atts.js"
    script.write_text(SCRIPT)
    data = os.urandom(300_000)
    (tmp_path / "data.bin").write_bytes(data)
    dbname = "pouch-atts-" + uuid.uuid4().hex[:8]
    proc = subprocess.run(
        ["node", str(script), server.url, dbname, str(tmp_path), str(tmp_path / "data.bin")],
        capture_output=True, text=True, timeout=180, cwd=str(NODE_DIR),
        env=dict(os.environ, COUCHPY_NODE_MODULES=str(nm)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    digest = "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()
    assert out["put1"]["ok"] is True and out["put1"]["rev"].startswith("1-")
    assert out["put2"]["rev"].startswith("2-")
    assert bytes.fromhex(out["gotHex"]) == data
    assert out["note"] == "hello pouch"
    inline = out["withAtts"]["_attachments"]
    assert base64.b64decode(inline["dir/att.bin"]["data"]) == data
    assert inline["dir/att.bin"]["digest"] == digest
    assert bytes.fromhex(out["binaryHex"]) == data
    stubs = out["plain"]["_attachments"]
    assert stubs["dir/att.bin"] == {"content_type": "application/octet-stream", "revpos": 1,
                                    "digest": digest, "length": len(data), "stub": True}
    assert stubs["note.txt"]["revpos"] == 2
    assert out["inlineGot"] == "inline text"
    assert out["removed"]["rev"].startswith("3-")
    assert set(out["afterRemove"]["_attachments"]) == {"dir/att.bin"}
    assert out["removedGet"]["status"] == 404
    assert out["pull"]["ok"] is True and out["pull"]["docs_written"] == 2
    assert bytes.fromhex(out["localAtt"]) == data
    assert out["push"]["ok"] is True and out["push"]["docs_written"] == 2
    assert out["backDoc"]["_rev"] == out["afterRemove"]["_rev"]
    assert out["backDoc"]["_attachments"]["dir/att.bin"]["digest"] == digest
    assert bytes.fromhex(out["backAtt"]) == data
    assert base64.b64decode(out["backInline"]["_attachments"]["x.txt"]["data"]) == b"inline text"
