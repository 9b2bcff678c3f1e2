'use strict';
// Shared plumbing for the test scripts run by tests/nodeenv.py:run_node().
//
// main(fn): calls `await fn(argv)` (argv = the script's arguments), prints the value it returns as
// ONE JSON line on stdout and exits 0; on an exception prints {"error": ...} as JSON on stderr and
// exits 1. Scripts must not print anything else to stdout after that (diagnostics: console.error).

function describeError(err) {
  if (err && typeof err === 'object') {
    const out = {};
    for (const k of ['name', 'status', 'error', 'reason', 'message', 'stack']) {
      if (err[k] !== undefined) out[k] = String(err[k]);
    }
    return out;
  }
  return { message: String(err) };
}

// A PouchDB error (404, 409, ...) as plain JSON, for scripts that report expected failures.
function errorInfo(err) {
  return { status: err.status, name: err.name, error: err.error === true ? err.name : err.error,
           reason: err.reason, message: err.message };
}

function main(fn) {
  Promise.resolve()
    .then(() => fn(process.argv.slice(2)))
    .then((result) => {
      process.stdout.write(JSON.stringify(result === undefined ? null : result) + '\n', () => {
        // Live feeds, keep-alive agents etc. must not keep the process alive.
        process.exit(0);
      });
    })
    .catch((err) => {
      process.stderr.write(JSON.stringify({ error: describeError(err) }) + '\n', () => {
        process.exit(1);
      });
    });
}

// Resolves with check()'s first truthy value, polling every 50 ms; rejects after `ms`.
function waitFor(check, what, ms = 20000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = async () => {
      try {
        const v = await check();
        if (v) return resolve(v);
      } catch (e) { /* not there yet */ }
      if (Date.now() - started > ms) return reject(new Error('timed out waiting for ' + what));
      setTimeout(tick, 50);
    };
    tick();
  });
}

module.exports = { main, errorInfo, waitFor };
