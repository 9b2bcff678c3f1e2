"""A real couchpy server in a subprocess, for tests that talk to it over loopback.

    with CouchpyServer(tmp_path) as srv:
        srv.url     # http://admin:<pw>@127.0.0.1:<port>
        srv.base    # http://127.0.0.1:<port>
        srv.auth    # aiohttp.BasicAuth
        srv.kill()  # SIGKILL, as a crash
        srv.start() # same data dir, same port

The admin password is written in plain text into the data directory's couchpy.ini, as a user
would; the server replaces it by its PBKDF2 hash on start (tests use fewer iterations to start fast).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def open_fds(pid: int) -> tuple[int | None, int | None]:
    """(open descriptors, of which sockets) of a process: a leak of connections shows apart from
    the database files that open databases hold."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None, None
    sockets = 0
    for name in names:
        with contextlib.suppress(OSError):
            sockets += os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:")
    return len(names), sockets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CouchpyServer:
    def __init__(self, tmp_path: Path, port: int | None = None, config: dict[str, dict[str, str]] | None = None,
                 name: str = "node", args: list[str] | None = None):
        self.args = list(args or [])  # extra `couchpy serve` options
        self.data_dir = Path(tmp_path) / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.user = "admin"
        self.password = secrets.token_hex(8)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "server.log"
        sections = {"admins": {self.user: self.password}, "couch_httpd_auth": {"iterations": "1000"}}
        for section, values in (config or {}).items():
            sections.setdefault(section, {}).update(values)
        lines = []
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {v}" for k, v in values.items()]
            lines.append("")
        (self.data_dir / "couchpy.ini").write_text("\n".join(lines))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}"

    @property
    def auth(self) -> aiohttp.BasicAuth:
        return aiohttp.BasicAuth(self.user, self.password)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        """The server's command line (a subclass may run it under a wrapper)."""
        # one process unless the test asks for workers: a test looks into the server by its pid
        workers = [] if "--workers" in self.args else ["--workers", "1"]
        return [sys.executable, "-m", "couchpy_cli", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port), *workers, *self.args]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """The server's environment variables (a subclass may add its own)."""
        return env

    def start(self, timeout: float = 30) -> CouchpyServer:
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), env=self.environment(env),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"couchpy exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base + "/_up", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"couchpy did not start in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> CouchpyServer:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
