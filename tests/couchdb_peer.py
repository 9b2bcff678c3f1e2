"""A real Apache CouchDB 3.4.3 for tests: the peer couchpy must answer and replicate like.

The release lives beside the repository in `../shared/peers/couchdb/` (override with
`COUCHDB_PEER_DIR`). A missing or broken peer fails the tests that need it; it never skips them,
because a test that silently does not run proves nothing.

    from tests.couchdb_peer import CouchdbPeer

    with CouchdbPeer(tmp_path) as peer:
        peer.url    # http://admin:admin@127.0.0.1:PORT
        peer.base   # http://127.0.0.1:PORT
        peer.auth   # aiohttp.BasicAuth("admin", "admin")
        peer.restart()

The session fixtures `couchdb` and `couchdb2` in conftest.py hand out two independent instances.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = Path(os.environ.get("COUCHDB_PEER_DIR", ROOT.parent / "shared" / "peers" / "couchdb"))
SCRIPT = PEER_DIR / "couchdb.sh"
TARBALL = PEER_DIR / "couchdb-3.4.3.tar.xz"


class CouchdbPeer:
    def __init__(self, directory: Path, admin: str = "admin:admin"):
        self.dir = Path(directory)
        self.admin = admin
        self.user, self.password = admin.split(":", 1)
        self.pid: str | None = None
        self.url = ""

    @property
    def base(self) -> str:
        return "http://" + self.url.split("@", 1)[1]

    @property
    def auth(self) -> aiohttp.BasicAuth:
        return aiohttp.BasicAuth(self.user, self.password)

    def start(self) -> CouchdbPeer:
        if not TARBALL.is_file():
            pytest.fail(f"the real CouchDB peer is missing: {TARBALL} (set COUCHDB_PEER_DIR)",
                        pytrace=False)
        self.dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(SCRIPT), "start", "--dir", str(self.dir), "--admin", self.admin],
                              capture_output=True, text=True, timeout=240)
        if proc.returncode != 0:
            pytest.fail(f"couchdb.sh start failed ({proc.returncode}):\n{proc.stderr[-4000:]}",
                        pytrace=False)
        info = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        self.url, self.pid = info["URL"], info["PID"]
        return self

    def stop(self) -> None:
        if self.pid:
            subprocess.run([str(SCRIPT), "stop", self.pid], capture_output=True, timeout=120)
            self.pid = None

    def restart(self) -> CouchdbPeer:
        self.stop()
        return self.start()

    def __enter__(self) -> CouchdbPeer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
