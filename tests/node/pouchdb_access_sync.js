'use strict';
// npm PouchDB as a plain user of an access database (cookie session): it pulls exactly the
// documents whose _access lists the user, pushes its own, and cannot push a document naming
// someone else.
//
// argv: serverBase user password db otherUser tmpDir. Prints what happened.

const path = require('path');
const PouchDB = require('pouchdb');
const { main, errorInfo } = require('./lib');

main(async ([base, user, password, db, otherUser, tmp]) => {
  const login = await fetch(base + '/_session', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: user, password }),
  });
  const cookie = (login.headers.get('set-cookie') || '').split(';')[0];
  const withCookie = (url, opts) => {
    opts.headers.set('Cookie', cookie);
    return PouchDB.fetch(url, opts);
  };
  const out = { loginStatus: login.status };
  const remote = new PouchDB(base + '/' + db, { fetch: withCookie, skip_setup: true });
  const local = new PouchDB(path.join(tmp, 'access-local'));
  const pull = await PouchDB.replicate(remote, local);
  out.pull = { ok: pull.ok, docs_written: pull.docs_written, doc_write_failures: pull.doc_write_failures };
  out.localIds = (await local.allDocs()).rows.map((r) => r.id);
  out.localChanges = (await local.changes()).results.map((r) => [r.id, !!r.deleted]).sort();
  const local_docs = await local.allDocs({ include_docs: true });
  out.localBodies = local_docs.rows.map((r) => r.doc);

  await local.put({ _id: 'from-' + user, v: 1 });
  await local.put({ _id: 'forged-' + user, v: 1, _access: [otherUser] });
  try {
    const push = await PouchDB.replicate(local, remote);
    out.push = { ok: push.ok, docs_written: push.docs_written, doc_write_failures: push.doc_write_failures,
                 errors: (push.errors || []).map((e) => e.name || e.error) };
  } catch (e) { out.push = errorInfo(e); }
  // a second pull after the push: nothing new but what the user may see
  const again = await PouchDB.replicate(remote, local);
  out.pullAgain = { ok: again.ok, docs_written: again.docs_written };
  out.finalIds = (await local.allDocs()).rows.map((r) => r.id);
  return out;
});
