"""Servers under benchmark, started as subprocesses on free loopback ports.

Each one is a context manager that yields itself once the server answers `GET /`, exposes
`url` (with credentials when the server needs them), `pid` (for RSS/CPU sampling from
/proc) and stops the process (SIGTERM, then SIGKILL) on exit:

- `CouchpyServer(data_dir)`: `couchpy serve --workers 1` (one process: `pid` is all of the
  server, and the recorded figures stay comparable; `workers=N` for N, benchmarks/workers.py),
  admin credentials written to couchpy.ini;
- `PouchdbServer()`: pouchdb-server 4.2.0 from tests/node (see tests/nodeenv.py);
- `CeilingServer(workdir)`: the bare-aiohttp ceiling, benchmarks/ceiling_server.py.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from tests.nodeenv import node_modules

REPO = Path(__file__).resolve().parent.parent
ADMIN_USER, ADMIN_PASSWORD = "admin", "benchpw"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float,
            auth: tuple[str, str] | None = None) -> None:
    """Poll GET / until it answers 200; raise with the process's exit if it dies first."""
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(url + "/")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class _Subprocess:
    name = "server"
    startup_timeout = 60.0

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _spawn(self, cmd: list[str], cwd: Path, log_path: Path,
               auth: tuple[str, str] | None = None, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        try:
            wait_up(self.base, self.proc, self.startup_timeout, auth)
        except RuntimeError as e:
            stop_process(self.proc)
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name}: {e}\n{tail}") from None

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)


class CouchpyServer(_Subprocess):
    name = "couchpy"

    def __init__(self, data_dir: Path, python: str = sys.executable, repo: Path = REPO, workers: int = 1):
        super().__init__()
        # repo: the checkout whose couchpy runs (another worktree, to compare two commits)
        self.data_dir, self.python, self.repo = Path(data_dir), python, Path(repo)
        self.workers = workers

    @property
    def url(self) -> str:
        return f"http://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{self.port}"

    def __enter__(self) -> "CouchpyServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ini = self.data_dir / "couchpy.ini"
        if not ini.exists():
            # A plain-text password here is hashed by the server on start.
            ini.write_text(f"[admins]\n{ADMIN_USER} = {ADMIN_PASSWORD}\n")
        self.port = free_port()
        cmd = [self.python, "-m", "couchpy_cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--data-dir", str(self.data_dir), "--workers", str(self.workers)]
        self._spawn(cmd, self.repo, self.data_dir / "server.log", (ADMIN_USER, ADMIN_PASSWORD),
                    env={**os.environ, "PYTHONPATH": str(self.repo)})
        return self


class PouchdbServer(_Subprocess):
    name = "pouchdb-server"

    def __init__(self, data_dir: Path):
        super().__init__()
        self.data_dir = Path(data_dir)

    def __enter__(self) -> "PouchdbServer":
        modules = node_modules()  # installs the pinned npm packages once
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        script = modules / "pouchdb-server" / "bin" / "pouchdb-server"
        # cwd = data dir: pouchdb-server writes config.json and log.txt into its cwd.
        self._spawn(["node", str(script), "--host", "127.0.0.1", "--port", str(self.port),
                     "--dir", str(self.data_dir), "-n"], self.data_dir,
                    self.data_dir / "server.log")
        return self


class CeilingServer(_Subprocess):
    name = "ceiling"

    def __init__(self, workdir: Path, python: str = sys.executable):
        super().__init__()
        self.workdir, self.python = Path(workdir), python

    def __enter__(self) -> "CeilingServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._spawn([self.python, "-m", "benchmarks.ceiling_server", "--port", str(self.port)], REPO,
                    self.workdir / "server.log")
        return self


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)


def interleaved(checkouts: list[str], rounds: int) -> Iterator[tuple[int, str, CouchpyServer]]:
    """A fresh couchpy from each checkout in turn (a `git worktree` of each commit to compare),
    `rounds` times over: (round, checkout, the running server)."""
    for rnd in range(1, rounds + 1):
        for checkout in checkouts:
            with temp_dir("bench-ab-") as tmp, CouchpyServer(Path(tmp), repo=Path(checkout).resolve()) as server:
                yield rnd, checkout, server


def one_or_interleaved(ap: argparse.ArgumentParser, argv: list[str] | None,
                       run: Callable[[str, int | None, argparse.Namespace], Awaitable[dict]]) -> int:
    """The command line of a workload run against one server (`--url`) or against couchpy
    checkouts started fresh in interleaved rounds (`--checkouts A,B --rounds N`): one JSON result
    for the first, one JSON line per round (with the load average at its start) for the second.
    `run(url, server pid or None, args)` runs the workload once."""
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--url")
    where.add_argument("--checkouts", help="comma-separated couchpy checkouts to start in turn")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if args.url:
        print(json.dumps(asyncio.run(run(args.url, None, args)), indent=2))
        return 0
    for rnd, checkout, server in interleaved(args.checkouts.split(","), args.rounds):
        load = os.getloadavg()
        res = asyncio.run(run(server.url, server.pid, args))
        print(json.dumps({"round": rnd, "checkout": checkout, "loadavg": load, **res}), flush=True)
    return 0

