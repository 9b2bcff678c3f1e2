'use strict';
// The npm `pouchdb` package (node build) using a server as a remote database.
//
//   node pouchdb_client.js SCENARIO BASE_URL DBNAME [TMPDIR]
//
// BASE_URL may carry credentials (http://admin:pw@127.0.0.1:PORT); PouchDB sends them as Basic
// auth. Each scenario works in database DBNAME (PouchDB creates it), reports what it observed as
// JSON (tests/test_pouchdb_client.py asserts on it) and destroys the database at the end.
// Expected failures (404, 409) are reported, not thrown, via errorInfo().
const { main, errorInfo } = require('./lib');
const PouchDB = require('pouchdb');

async function expectError(promise) {
  try {
    const value = await promise;
    return { unexpectedSuccess: value };
  } catch (err) {
    return errorInfo(err);
  }
}

function pad(i) {
  return String(i).padStart(3, '0');
}

const scenarios = {
  // put / get / post / update / remove, one document at a time.
  async crud(db) {
    const out = {};
    out.infoBefore = await db.info();
    out.put1 = await db.put({ _id: 'doc1', n: 1, nested: { list: [1, 'two', null], t: true } });
    out.get1 = await db.get('doc1');
    out.put2 = await db.put(Object.assign({}, out.get1, { n: 2 }));
    out.stalePut = await expectError(db.put({ _id: 'doc1', _rev: out.put1.rev, n: 99 }));
    out.createExisting = await expectError(db.put({ _id: 'doc1', n: 100 }));
    out.getRevs = await db.get('doc1', { revs: true });
    out.post = await db.post({ posted: true });
    out.getPosted = await db.get(out.post.id);
    const weirdId = 'a/b ü?&#%+ "x"';
    out.weirdId = weirdId;
    out.putWeird = await db.put({ _id: weirdId, w: 1 });
    out.getWeird = await db.get(weirdId);
    out.remove = await db.remove(await db.get('doc1'));
    out.getRemoved = await expectError(db.get('doc1'));
    out.getMissing = await expectError(db.get('never-existed'));
    out.recreate = await db.put({ _id: 'doc1', n: 3 });
    out.getRecreated = await db.get('doc1');
    out.infoAfter = await db.info();
    return out;
  },

  // _bulk_docs and _all_docs.
  async bulk(db) {
    const out = {};
    const docs = [];
    for (let i = 0; i < 100; i++) docs.push({ _id: 'doc-' + pad(i), n: i });
    out.bulk = await db.bulkDocs(docs);
    out.allIds = (await db.allDocs()).rows.map((r) => r.id);
    out.all = await db.allDocs({ limit: 0 });
    out.range = await db.allDocs({ include_docs: true, startkey: 'doc-010', endkey: 'doc-019' });
    out.rangeExclusive = await db.allDocs({ startkey: 'doc-010', endkey: 'doc-019',
                                            inclusive_end: false });
    out.keys = await db.allDocs({ keys: ['doc-005', 'missing', 'doc-001'], include_docs: true });
    out.descending = await db.allDocs({ descending: true, limit: 3 });
    out.skip = await db.allDocs({ skip: 95 });
    // Update 0..9: doc-000 with a stale (missing) rev -> a conflict row, the others succeed.
    const current = await db.allDocs({ keys: docs.slice(0, 10).map((d) => d._id) });
    const updates = current.rows.map((r, i) => ({ _id: r.id, _rev: r.value.rev, n: i + 1000 }));
    updates[0] = { _id: 'doc-000', n: -1 };
    out.bulkUpdate = await db.bulkDocs(updates);
    // Delete 90..99.
    const tail = await db.allDocs({ startkey: 'doc-090' });
    out.bulkDelete = await db.bulkDocs(tail.rows.map((r) => ({ _id: r.id, _rev: r.value.rev,
                                                               _deleted: true })));
    out.afterDelete = await db.allDocs({ limit: 0 });
    out.deletedKey = await db.allDocs({ keys: ['doc-095'] });
    out.updated = await db.get('doc-005');
    out.info = await db.info();
    return out;
  },

  // _changes: normal feed, options, and PouchDB's live feed (longpoll over HTTP).
  async changes(db) {
    const out = {};
    for (const id of ['a', 'b', 'c', 'd', 'e']) await db.put({ _id: id, v: id });
    const b = await db.get('b');
    await db.put(Object.assign({}, b, { v: 'b2' }));
    await db.remove(await db.get('c'));
    out.all = await db.changes({ since: 0 });
    out.withDocs = await db.changes({ since: 0, include_docs: true });
    out.limited = await db.changes({ since: 0, limit: 2 });
    out.since = await db.changes({ since: out.limited.last_seq });
    out.descending = await db.changes({ descending: true });
    out.docIds = await db.changes({ doc_ids: ['a', 'e', 'zzz'] });

    // Live: start at "now", write two docs once the feed runs, wait for both.
    const seen = [];
    const feed = db.changes({ live: true, since: 'now', include_docs: true });
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('live changes: timed out, saw ' +
                                                      JSON.stringify(seen))), 15000);
      feed.on('change', (change) => {
        seen.push({ id: change.id, doc: change.doc, seq: change.seq });
        if (seen.some((c) => c.id === 'live-2')) {
          clearTimeout(timer);
          resolve();
        }
      });
      feed.on('error', (err) => { clearTimeout(timer); reject(err); });
    });
    await new Promise((r) => setTimeout(r, 300));
    await db.put({ _id: 'live-1', live: 1 });
    await new Promise((r) => setTimeout(r, 100));
    await db.put({ _id: 'live-2', live: 2 });
    await done;
    feed.cancel();
    out.live = seen;
    return out;
  },

  // Conflicting branches made with new_edits=false, then seen and resolved through PouchDB.
  async conflicts(db) {
    const out = {};
    out.bulk = await db.bulkDocs([
      { _id: 'c', _rev: '1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', side: 'a' },
      { _id: 'c', _rev: '1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', side: 'b' },
    ], { new_edits: false });
    out.get = await db.get('c', { conflicts: true });
    out.openRevs = await db.get('c', { open_revs: 'all' });
    out.loser = await db.get('c', { rev: '1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' });
    out.allDocs = await db.allDocs({ include_docs: true, conflicts: true });
    // Resolve: delete the losing branch.
    out.resolve = await db.remove('c', '1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    out.afterResolve = await db.get('c', { conflicts: true });
    // An edit on the winner after resolution is a plain update.
    out.update = await db.put(Object.assign({}, out.afterResolve, { side: 'b2' }));
    // Making the winner lose: delete it; the other branch (a deleted leaf) stays deleted, so
    // the document reads as deleted.
    out.deleteWinner = await db.remove('c', out.update.rev);
    out.getDeleted = await expectError(db.get('c'));
    return out;
  },

  // A local PouchDB (LevelDB in TMPDIR) replicating both ways with the server.
  async replicate(db, { tmp }) {
    const out = {};
    const local = new PouchDB(require('path').join(tmp, 'local-db'));
    const docs = [];
    for (let i = 0; i < 60; i++) docs.push({ _id: 'r-' + pad(i), n: i });
    await local.bulkDocs(docs);
    out.push = await PouchDB.replicate(local, db);
    out.remoteAfterPush = await db.allDocs({ include_docs: true });
    // Change things on the server, replicate back.
    const r5 = await db.get('r-005');
    await db.put(Object.assign({}, r5, { n: 500 }));
    await db.remove(await db.get('r-006'));
    await db.put({ _id: 'from-server', s: true });
    out.pull = await PouchDB.replicate(db, local);
    out.localR5 = await local.get('r-005');
    out.localR6 = await expectError(local.get('r-006'));
    out.localFromServer = await local.get('from-server');
    // Concurrent edits of one doc on both sides -> the same conflict on both after a sync.
    const a = await local.get('r-007');
    const b = await db.get('r-007');
    await local.put(Object.assign({}, a, { side: 'local' }));
    await db.put(Object.assign({}, b, { side: 'remote' }));
    out.sync = await PouchDB.sync(local, db);
    out.localConflict = await local.get('r-007', { conflicts: true });
    out.remoteConflict = await db.get('r-007', { conflicts: true });
    // Incremental: a second push moves nothing (checkpoint in _local on both sides).
    out.pushAgain = await PouchDB.replicate(local, db);
    await local.destroy();
    return out;
  },
  // Attachments through PouchDB: inline base64 on put, putAttachment with a Buffer, reads back.
  async attachments(db) {
    const out = {};
    const crypto = require('crypto');
    const bin = Buffer.alloc(70000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7919) % 251;
    out.binMd5 = 'md5-' + crypto.createHash('md5').update(bin).digest('base64');
    out.put = await db.put({ _id: 'att', _attachments: {
      'hello.txt': { content_type: 'text/plain', data: Buffer.from('hello world').toString('base64') },
    } });
    out.stub = await db.get('att');
    out.putBin = await db.putAttachment('att', 'blob.bin', out.put.rev, bin, 'application/octet-stream');
    const back = await db.getAttachment('att', 'blob.bin');
    out.binBack = { length: back.length,
                    md5: 'md5-' + crypto.createHash('md5').update(back).digest('base64') };
    out.textBack = (await db.getAttachment('att', 'hello.txt')).toString('utf8');
    const inline = await db.get('att', { attachments: true });
    out.inlineText = Buffer.from(inline._attachments['hello.txt'].data, 'base64').toString('utf8');
    out.inlineBinLength = Buffer.from(inline._attachments['blob.bin'].data, 'base64').length;
    out.afterPut = await db.get('att');
    out.removeAtt = await db.removeAttachment('att', 'hello.txt', out.putBin.rev);
    out.afterRemove = await db.get('att');
    out.missingAtt = await expectError(db.getAttachment('att', 'hello.txt'));
    return out;
  },

  // Map/reduce views through db.query().
  async views(db) {
    const out = {};
    const docs = [];
    for (let i = 0; i < 30; i++) docs.push({ _id: 'v-' + pad(i), n: i, tag: 'tag-' + (i % 3) });
    await db.bulkDocs(docs);
    await db.put({ _id: '_design/app', views: {
      by_tag: { map: 'function (doc) { if (doc.tag) emit(doc.tag, doc.n); }', reduce: '_sum' },
      by_n: { map: 'function (doc) { if (typeof doc.n === "number") emit(doc.n, null); }' },
    } });
    out.grouped = await db.query('app/by_tag', { group: true });
    out.total = await db.query('app/by_tag');
    out.key = await db.query('app/by_tag', { key: 'tag-1', reduce: false, include_docs: true });
    out.range = await db.query('app/by_n', { startkey: 5, endkey: 9 });
    out.descLimit = await db.query('app/by_n', { descending: true, limit: 3 });
    // Incremental: change a doc, the view follows.
    const d = await db.get('v-000');
    await db.put(Object.assign({}, d, { tag: 'tag-9' }));
    out.afterUpdate = await db.query('app/by_tag', { key: 'tag-9', reduce: false });
    return out;
  },

  // Mango through pouchdb-find: createIndex, find with selector, sort, fields, limit.
  async find(db) {
    PouchDB.plugin(require('pouchdb-find'));
    const out = {};
    const docs = [];
    for (let i = 0; i < 40; i++) docs.push({ _id: 'f-' + pad(i), n: i, kind: i % 2 ? 'odd' : 'even' });
    await db.bulkDocs(docs);
    out.createIndex = await db.createIndex({ index: { fields: ['n'] }, ddoc: 'by-n', name: 'n-idx' });
    out.createAgain = await db.createIndex({ index: { fields: ['n'] }, ddoc: 'by-n', name: 'n-idx' });
    out.indexes = await db.getIndexes();
    out.range = await db.find({ selector: { n: { $gte: 10, $lt: 15 } }, sort: ['n'],
                                fields: ['_id', 'n'] });
    out.combined = await db.find({ selector: { n: { $gt: 30 }, kind: 'odd' }, sort: [{ n: 'desc' }],
                                   limit: 3 });
    out.noIndex = await db.find({ selector: { kind: 'even', n: { $lt: 6 } } });
    return out;
  },
};

main(async ([scenario, baseUrl, dbName, tmp]) => {
  if (!scenarios[scenario]) throw new Error('unknown scenario ' + scenario);
  const db = new PouchDB(baseUrl.replace(/\/$/, '') + '/' + encodeURIComponent(dbName));
  try {
    return await scenarios[scenario](db, { tmp });
  } finally {
    await db.destroy().catch(() => {});
  }
});
