'use strict';
// PouchDB and a couchpy database with a conflict policy: concurrent edits on the PouchDB side and
// on couchpy make a conflict on couchpy when pushed; couchpy resolves it, and a plain sync brings
// the resolution (merged revision and the deletion of the other branch) back to PouchDB, which
// then holds the same single leaf.
//
// argv: remoteDbUrl tmpDir (the remote database exists and has its policy). Prints both sides.

const path = require('path');
const PouchDB = require('pouchdb');
const { main, waitFor } = require('./lib');

main(async ([remoteUrl, tmp]) => {
  const remote = new PouchDB(remoteUrl, { skip_setup: true });
  const local = new PouchDB(path.join(tmp, 'policy-local'));
  await remote.put({ _id: 'doc', tags: ['base'], n: 1 });
  await PouchDB.sync(local, remote);
  const base = await local.get('doc');
  await local.put({ ...base, tags: [...base.tags, 'local'], n: 5 });
  await remote.put({ ...base, tags: [...base.tags, 'remote'], n: 3 });
  await PouchDB.replicate(local, remote);  // the conflict reaches couchpy
  const resolved = await waitFor(async () => {
    const d = await remote.get('doc', { conflicts: true });
    return d._conflicts === undefined && d.tags.length === 3 ? d : null;
  }, 'the resolution on couchpy');
  await PouchDB.sync(local, remote);
  const l = await local.get('doc', { conflicts: true, revs: true });
  const r = await remote.get('doc', { conflicts: true, revs: true });
  const leaves = (await local.get('doc', { open_revs: 'all' })).filter((x) => x.ok && !x.ok._deleted);
  return { resolved, local: l, remote: r, localLiveLeaves: leaves.length };
});
