'use strict';
// npm PouchDB logged in as a plain user with a cookie session (POST /_session, then only the
// AuthSession cookie on every request): it live-syncs its own database both ways and is refused
// another user's.
//
// argv: serverBase user password ownDb otherDb tmpDir. Prints what happened.

const path = require('path');
const PouchDB = require('pouchdb');
const { main, errorInfo, waitFor } = require('./lib');

main(async ([base, user, password, ownDb, otherDb, tmp]) => {
  const login = await fetch(base + '/_session', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: user, password }),
  });
  const setCookie = login.headers.get('set-cookie') || '';
  const cookie = setCookie.split(';')[0];
  const out = { loginStatus: login.status, usedCookie: cookie.startsWith('AuthSession=') };
  // every request PouchDB makes carries the session cookie and nothing else
  const withCookie = (url, opts) => {
    opts.headers.set('Cookie', cookie);
    return PouchDB.fetch(url, opts);
  };
  const session = await (await fetch(base + '/_session', { headers: { Cookie: cookie } })).json();
  out.sessionUser = session.userCtx.name;
  out.authenticated = session.info.authenticated;

  const remote = new PouchDB(base + '/' + ownDb, { fetch: withCookie, skip_setup: true });
  const local = new PouchDB(path.join(tmp, 'cookie-local'));
  const sync = PouchDB.sync(local, remote, { live: true, retry: false });
  const errors = [];
  sync.on('error', (e) => errors.push(errorInfo(e)));
  try {
    await local.put({ _id: 'from-local', v: 1 });
    await waitFor(() => remote.get('from-local'), 'local write on the remote');
    await remote.put({ _id: 'from-remote', v: 2 });
    await waitFor(() => local.get('from-remote'), 'remote write locally');
    const doc = await local.get('from-local');
    await local.put({ ...doc, v: 3 });
    await waitFor(async () => (await remote.get('from-local')).v === 3, 'an update on the remote');
    out.remoteIds = (await remote.allDocs()).rows.map((r) => r.id);
    out.localIds = (await local.allDocs()).rows.map((r) => r.id);
  } finally {
    sync.cancel();
  }
  out.errors = errors;

  // another user's database: refused, by direct reads and by replication
  const other = new PouchDB(base + '/' + otherDb, { fetch: withCookie, skip_setup: true });
  // PouchDB's http info() hands back the body whatever the status: report what it got
  try {
    const info = await other.info();
    out.otherInfo = info.error ? { error: info.error, reason: info.reason } : 'allowed';
  } catch (e) { out.otherInfo = errorInfo(e); }
  try { await other.get('secret'); out.otherGet = 'allowed'; } catch (e) { out.otherGet = errorInfo(e); }
  const stolen = new PouchDB(path.join(tmp, 'stolen'));
  try {
    const res = await PouchDB.replicate(other, stolen);
    out.otherReplicate = { ok: res.ok, docs_written: res.docs_written };
  } catch (e) { out.otherReplicate = errorInfo(e); }
  try {
    await PouchDB.replicate(local, other);
    out.otherPush = 'allowed';
  } catch (e) { out.otherPush = errorInfo(e); }
  out.stolenIds = (await stolen.allDocs()).rows.map((r) => r.id);
  return out;
});
