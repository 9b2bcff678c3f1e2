"""A couchpy server in the test's own process and event loop.

For tests that need to see inside the server while it answers real HTTP on loopback: count the
tasks it runs, wrap one of its functions, hold its event loop. Tests that need a server as a
client sees it use tests/serverproc.py (its own process) instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from couchpy.node import Node
from couchpy_cli import prepare_config
from http_api.app import make_app

from .serverproc import free_port

ADMIN, PASSWORD = "admin", "secret"


@dataclass(frozen=True)
class InProcess:
    port: int
    node: Node
    auth: aiohttp.BasicAuth = aiohttp.BasicAuth(ADMIN, PASSWORD)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve(data_dir: Path, keepalive_timeout: float = 75) -> AsyncIterator[InProcess]:
    """A node on `data_dir` (admin/secret, cheap password hashing) served on a free port until
    the block ends; then the server and the node are closed. `keepalive_timeout`: aiohttp's, for
    idle kept-alive connections (seconds)."""
    (data_dir / "couchpy.ini").write_text(
        f"[admins]\n{ADMIN} = {PASSWORD}\n[chttpd_auth]\niterations = 1000\n")
    config, _ = prepare_config(data_dir, None)
    node = Node(data_dir, config)
    node.ensure_system_dbs()
    runner = web.AppRunner(make_app(node), access_log=None, handle_signals=False, shutdown_timeout=5,
                           keepalive_timeout=keepalive_timeout)
    await runner.setup()
    try:
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        yield InProcess(port, node)
    finally:
        await runner.cleanup()
        await node.aclose()
