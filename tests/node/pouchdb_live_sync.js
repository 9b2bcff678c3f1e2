'use strict';
// PouchDB.sync({live: true, retry: true}) between a local PouchDB (LevelDB on disk) and a remote
// couchpy database: edits on either side arrive on the other while the sync keeps running, a
// deletion replicates as a tombstone, and concurrent edits end as the same conflict on both sides.
//
// argv: remoteDbUrl tmpDir. Prints what each side ended with.

const path = require('path');
const PouchDB = require('pouchdb');
const { main, waitFor } = require('./lib');

main(async ([remoteUrl, tmp]) => {
  const remote = new PouchDB(remoteUrl);
  const local = new PouchDB(path.join(tmp, 'live-local'));
  const sync = PouchDB.sync(local, remote, { live: true, retry: true });
  const errors = [];
  sync.on('error', (e) => errors.push(String(e)));
  const out = {};
  try {
    // local -> remote
    let t = Date.now();
    await local.put({ _id: 'from-local', v: 1 });
    await waitFor(() => remote.get('from-local'), 'local write on the remote');
    out.localToRemoteMs = Date.now() - t;
    // remote -> local
    t = Date.now();
    await remote.put({ _id: 'from-remote', v: 2 });
    await waitFor(() => local.get('from-remote'), 'remote write locally');
    out.remoteToLocalMs = Date.now() - t;
    // deletion replicates as a tombstone
    const doc = await local.get('from-remote');
    await local.remove(doc);
    await waitFor(async () => {
      try { await remote.get('from-remote'); return false; } catch (e) { return e.status === 404; }
    }, 'deletion on the remote');
    // concurrent edits while paused: cancel, edit both sides, sync once more
    sync.cancel();
    const base = await remote.get('from-local');
    await waitFor(async () => (await local.get('from-local'))._rev === base._rev, 'same base rev');
    await local.put({ ...base, v: 'local' });
    await remote.put({ ...base, v: 'remote' });
    await PouchDB.sync(local, remote);
    const l = await local.get('from-local', { conflicts: true });
    const r = await remote.get('from-local', { conflicts: true });
    out.conflict = { local: { rev: l._rev, conflicts: l._conflicts || [] },
                     remote: { rev: r._rev, conflicts: r._conflicts || [] } };
    out.remoteIds = (await remote.allDocs()).rows.map((row) => row.id);
    out.localIds = (await local.allDocs()).rows.map((row) => row.id);
  } finally {
    sync.cancel();
  }
  out.errors = errors;
  return out;
});
