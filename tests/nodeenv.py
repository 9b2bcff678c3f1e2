"""Node.js in the test suite: the pinned npm packages, a pouchdb-server peer, and JS scripts.

Some tests need real JavaScript clients and peers: the npm `pouchdb` package as a client of
couchpy, and `pouchdb-server` (PouchDB over LevelDB behind express) as a second,
independent CouchDB-compatible server for replication tests. The packages are pinned in
tests/node/package.json + package-lock.json and installed on first use into
tests/node/node_modules (gitignored), once, even when several pytest processes start at the
same time.

API (everything else in this module is private):

    from tests.nodeenv import node_modules, PouchdbServer, run_node, arun_node

    node_modules() -> Path
        Installs the pinned packages (`npm ci`) unless they already are, and returns the
        node_modules directory. Fails the test (pytest.fail, never a skip: a suite that skips
        what it cannot run would pass without testing) with the reason when node/npm is not
        installed or the npm registry cannot be reached; any other install failure raises.

    with PouchdbServer() as peer:          # optional: PouchdbServer(data_dir=Path(...))
        peer.url    # "http://127.0.0.1:PORT" (no admins: "admin party", no credentials)
        peer.port, peer.pid, peer.data_dir
        peer.stop() # also done at exit of the `with`
    A pouchdb-server 4.2.0 on a free loopback port with its own data directory (temporary
    unless given), already answering `GET /` when the `with` body starts.

    run_node("script.js", *args, timeout=60.0) -> Any
        Runs tests/node/script.js with node (cwd tests/node, args passed as strings) and
        returns the JSON value on the last non-empty line of its stdout. Raises NodeError
        (with stdout/stderr) when it exits non-zero, prints no JSON, or times out.
    await arun_node("script.js", *args, timeout=60.0) -> Any
        The same without blocking the event loop (for tests whose server runs in-process).

Writing a script: `const { main } = require('./lib');  main(async (args) => ({...}));`
lib.js prints the returned value as one JSON line, and on an exception prints a JSON
error description to stderr and exits with status 1. See tests/node/README.md.
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
_STAMP = ".couchpy-installed"          # inside node_modules: sha256 of the lock file installed
_INSTALL_TIMEOUT_S = 900               # a cold `npm ci` takes 1-3 minutes on 2 busy cores
_OFFLINE_MARKERS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
                    "ENETUNREACH", "EHOSTUNREACH", "network request", "network timeout",
                    "request to https://", "socket hang up", "getaddrinfo")

__all__ = ["node_modules", "PouchdbServer", "run_node", "arun_node", "NodeError", "NODE_DIR"]


class NodeError(RuntimeError):
    """A node script failed; carries what it printed."""

    def __init__(self, message: str, stdout: str = "", stderr: str = ""):
        self.stdout, self.stderr = stdout, stderr
        super().__init__(f"{message}\n--- stdout (tail) ---\n{stdout[-3000:]}"
                         f"\n--- stderr (tail) ---\n{stderr[-3000:]}")


def _lock_digest() -> str:
    return hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()


def _installed(digest: str) -> bool:
    try:
        return (NODE_DIR / "node_modules" / _STAMP).read_text().strip() == digest
    except OSError:
        return False


def node_modules() -> Path:
    """Install the pinned npm packages once (file-locked) and return the node_modules path."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node/npm are not installed (Node.js 18+ with npm is needed for this test)")
    digest = _lock_digest()
    target = NODE_DIR / "node_modules"
    if _installed(digest):
        return target
    # The lock lives outside the tree so it never shows up in git status; keyed by the tree's
    # path so that two checkouts do not wait on each other.
    tag = hashlib.sha256(str(NODE_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"couchpy-npm-{tag}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)      # another process may be installing right now
        try:
            if _installed(digest):
                return target
            # --ignore-scripts: the native modules used (leveldown) ship prebuilt binaries that
            # load at run time; install scripts would only try to download or compile things.
            cmd = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
            try:
                proc = subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True,
                                      timeout=_INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"`npm ci` did not finish within {_INSTALL_TIMEOUT_S}s "
                            "(npm registry unreachable or too slow)")
            if proc.returncode != 0:
                out = proc.stdout + proc.stderr
                if any(m.lower() in out.lower() for m in _OFFLINE_MARKERS):
                    pytest.fail("the npm registry is unreachable, so the pinned Node packages "
                                f"could not be installed: {out.strip()[-400:]}")
                raise NodeError(f"`{' '.join(cmd)}` failed in {NODE_DIR}", proc.stdout,
                                proc.stderr)
            (target / _STAMP).write_text(digest + "\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PouchdbServer:
    """pouchdb-server 4.2.0 in a subprocess, on a free loopback port (context manager)."""

    STARTUP_TIMEOUT_S = 60.0

    def __init__(self, data_dir: Path | None = None):
        self._given_dir = data_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.data_dir: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def __enter__(self) -> "PouchdbServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        modules = node_modules()
        if self._given_dir is not None:
            self.data_dir = Path(self._given_dir)
            self.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="pouchdb-server-")
            self.data_dir = Path(self._tmp.name)
        script = modules / "pouchdb-server" / "bin" / "pouchdb-server"
        last_error = ""
        for _attempt in range(3):          # the free port can be taken by someone else meanwhile
            self.port = _free_port()
            log = open(self.data_dir / "pouchdb-server.out", "wb")
            # cwd = data dir: pouchdb-server writes config.json and log.txt into its cwd.
            self.proc = subprocess.Popen(
                ["node", str(script), "--host", "127.0.0.1", "--port", str(self.port),
                 "--dir", str(self.data_dir), "-n"],
                cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
            log.close()
            if self._wait_up():
                return
            last_error = (self.data_dir / "pouchdb-server.out").read_text(errors="replace")
            self._terminate()
        self.stop()
        raise RuntimeError(f"pouchdb-server did not come up:\n{last_error[-3000:]}")

    def _wait_up(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + self.STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as resp:
                    if resp.status == 200 and "express-pouchdb" in json.loads(resp.read()):
                        return True
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.1)
        return False

    def _terminate(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self._terminate()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _script_cmd(script: str, args: tuple[object, ...]) -> list[str]:
    node_modules()
    path = NODE_DIR / script
    if not path.is_file():
        raise FileNotFoundError(path)
    return ["node", str(path), *map(str, args)]


def _parse(cmd: list[str], returncode: int, stdout: str, stderr: str) -> Any:
    if returncode != 0:
        raise NodeError(f"{' '.join(cmd[1:])} exited with status {returncode}", stdout, stderr)
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise NodeError(f"{' '.join(cmd[1:])} printed nothing", stdout, stderr)
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise NodeError(f"{' '.join(cmd[1:])}: last stdout line is not JSON", stdout,
                        stderr) from None


def run_node(script: str, *args: object, timeout: float = 60.0) -> Any:
    """Run tests/node/<script> with node; return the JSON value of its last stdout line."""
    cmd = _script_cmd(script, args)
    try:
        proc = subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise NodeError(f"{' '.join(cmd[1:])} timed out after {timeout}s",
                        _text(e.stdout), _text(e.stderr)) from None
    return _parse(cmd, proc.returncode, proc.stdout, proc.stderr)


async def arun_node(script: str, *args: object, timeout: float = 60.0) -> Any:
    """run_node() for async tests: the event loop keeps running while node does."""
    cmd = await asyncio.to_thread(_script_cmd, script, args)
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=NODE_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise NodeError(f"{' '.join(cmd[1:])} timed out after {timeout}s",
                        out.decode(errors="replace"), err.decode(errors="replace")) from None
    assert proc.returncode is not None
    return _parse(cmd, proc.returncode, out.decode(errors="replace"),
                  err.decode(errors="replace"))


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode(errors="replace")

