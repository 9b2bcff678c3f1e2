"""Several server processes on one port and one data directory (`couchpy serve --workers N`).

Each worker serves every request it can itself: documents, `_changes`, views and Mango read and
write the shared LMDB environments directly. What exists once per node lives in worker 0 (the
replicator's scheduler and its `_replicator` watcher, the automatic compactor, database
compaction, full-text indexes), so the other workers forward those requests to it, unchanged
(the same credentials, authorized again there), over a UNIX socket in the data directory
(`socket_path`). A database compaction marks the environment it replaces retired, and the other
workers' stores move to the new one when they find the mark (couchpy.compactor, couchpy.storage). `/_active_tasks` is
answered by worker 0 for the whole node: its own tasks and those each other worker lists (a view
build a query started there). Any worker answers the node's metrics (`_stats`, `_prometheus`,
`_system`) by asking every other one for its own figures (`ask_others`, the one place that asks
every worker). A configuration change made through one worker (the INI file) is
applied by every worker (`follow_config`).

A request that a worker forwards carries `FORWARDED`, so it is answered where it arrives; one
that asks a worker for its own figures also carries `ASK`, and is not counted in the metrics (it
is no client's request). Both headers are honoured only on a worker's UNIX socket (`forwarded`,
`asked`): over TCP a client's are ignored, and they are never passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yarl
from aiohttp import web

from couchpy.errors import Unavailable
from couchpy.lockout_shared import SharedLockout

from .responses import error_response

log = logging.getLogger("couchpy.workers")

FORWARDED = "X-Couchpy-Worker-Forwarded"
ASK = "X-Couchpy-Worker-Ask"
_OURS = {FORWARDED.lower(), ASK.lower()}
CONFIG_POLL_SECONDS = 0.5
WORKER_HEADER = "X-Couchpy-Worker"
SOCKETS_DIR = ".workers"
LOCKOUT_DIR = "lockout"  # under SOCKETS_DIR: the node's failed-login table (SharedLockout)
MAX_SOCKET_PATH = 100  # bytes; sun_path holds 108 on Linux
PEER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5)
TASKS_TIMEOUT = aiohttp.ClientTimeout(total=5)

# Requests only worker 0 can answer for the whole node.
_PRIMARY = re.compile(r"^/(_active_tasks|_replicate|_scheduler(/.*)?|[^/]+/_compact"
                      r"|[^_/][^/]*(/_partition/[^/]+)?/_design/[^/]+/_nouveau(_info)?/.*"
                      r"|[^_/][^/]*/_nouveau_cleanup)$")
# hop-by-hop headers, and those aiohttp sets again for the body it sends
_DROP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade",
         "proxy-connection", "te", "trailer"}


def socket_path(data_dir: Path, index: int) -> str:
    """Where worker `index` listens for the others: a socket file in the data directory or, when
    that path is too long for a UNIX socket address (108 bytes on Linux), in a directory of this
    user's under the temporary directory, named after the data directory. (Not Linux's abstract
    namespace: uvloop cannot connect to it, and any local user could.)"""
    path = Path(data_dir).resolve() / SOCKETS_DIR / f"{index}.sock"
    if len(os.fsencode(path)) < MAX_SOCKET_PATH:
        return str(path)
    digest = hashlib.sha256(os.fsencode(Path(data_dir).resolve())).hexdigest()[:32]
    short = Path(tempfile.gettempdir()) / f"couchpy-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    if short.stat().st_uid != os.getuid():
        raise RuntimeError(f"{short} belongs to another user")
    return str(short / f"{index}.sock")


def shared_lockout(node) -> SharedLockout:
    """The failed-login table every worker of the node counts in."""
    return SharedLockout(Path(node.path).resolve() / SOCKETS_DIR / LOCKOUT_DIR)


class Peers:
    """This worker's client of the other workers' sockets."""

    def __init__(self, node) -> None:
        self.node = node
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    def session(self, index: int) -> aiohttp.ClientSession:
        s = self._sessions.get(index)
        if s is None or s.closed:
            connector = aiohttp.UnixConnector(path=socket_path(self.node.path, index))
            s = aiohttp.ClientSession(connector=connector, timeout=PEER_TIMEOUT, auto_decompress=False)
            self._sessions[index] = s
        return s

    async def close(self) -> None:
        for s in self._sessions.values():
            await s.close()
        self._sessions.clear()


def from_worker(request: web.Request) -> bool:
    """Whether the request came over this worker's UNIX socket, from another worker of the node
    (a client reaches the workers over TCP only)."""
    transport = request.transport
    return transport is not None and isinstance(transport.get_extra_info("sockname"), str)


def forwarded(request: web.Request) -> bool:
    """A request another worker sent on: answered here, as it is."""
    return FORWARDED in request.headers and from_worker(request)


def asked(request: web.Request) -> bool:
    """Another worker asking this one for its own figures (`ask_others`)."""
    return ASK in request.headers and from_worker(request)


def _forward_headers(request: web.Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP and k.lower() not in _OURS}
    headers[FORWARDED] = str(request.app["node"].worker_index)
    return headers


async def forward(request: web.Request, index: int) -> web.StreamResponse:
    """Send the request to worker `index` and stream its answer back."""
    peers: Peers = request.app["worker_peers"]
    body = await request.read() if request.can_read_body else None
    url = yarl.URL("http://worker" + request.raw_path, encoded=True)  # as the client sent it
    async with peers.session(index).request(request.method, url, headers=_forward_headers(request),
                                            data=body, allow_redirects=False) as upstream:
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in upstream.headers.items():
            if k.lower() not in _DROP:
                resp.headers.add(k, v)
        request["forward_started"] = True
        await resp.prepare(request)
        async for chunk in upstream.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


def asks_others(request: web.Request) -> bool:
    """Whether this request is answered for the whole node by asking the other workers: this
    worker is one of several, and the request is not itself such a question."""
    return "worker_peers" in request.app and not forwarded(request)


async def ask_others(request: web.Request, path: str) -> list[Any]:
    """`GET path` of every other worker, with the request's credentials (authorized again there):
    the JSON answers of those that answer 200 within TASKS_TIMEOUT. A worker that does not (it is
    being restarted) is left out, so a sum over the answers is the live workers'."""
    node = request.app["node"]
    peers: Peers = request.app["worker_peers"]
    headers = {**_forward_headers(request), ASK: "1"}

    async def one(index: int) -> Any:
        with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
            async with peers.session(index).get("http://worker" + path, headers=headers,
                                                timeout=TASKS_TIMEOUT) as r:
                if r.status == 200:
                    return orjson.loads(await r.read())
        return None

    answers = await asyncio.gather(*(one(i) for i in range(node.workers) if i != node.worker_index))
    return [a for a in answers if a is not None]


async def _other_tasks(request: web.Request) -> list:
    """The tasks every other worker lists (a worker that does not answer in time lists none)."""
    return [task for rows in await ask_others(request, "/_active_tasks") if isinstance(rows, list) for task in rows]


@web.middleware
async def workers_middleware(request: web.Request, handler) -> web.StreamResponse:
    node = request.app["node"]
    if not forwarded(request) and _PRIMARY.match(request.path):
        if not node.primary:
            try:
                return await forward(request, 0)
            except (aiohttp.ClientConnectionError, OSError):
                if request.get("forward_started"):
                    raise  # the answer had begun: the connection is cut, as worker 0's was
                # worker 0 is being restarted by the supervisor (this middleware is outside the
                # one that renders errors, so the answer is made here)
                return error_response(503, Unavailable.error, "The node's worker 0 is not answering; try again shortly")
        if request.path == "/_active_tasks" and request.method == "GET":
            resp = await handler(request)
            if resp.status == 200 and isinstance(resp, web.Response) and resp.body is not None:
                rows = orjson.loads(resp.body) + await _other_tasks(request)
                resp.body = orjson.dumps(rows) + b"\n"
            return resp
    return await handler(request)


async def _add_worker_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[WORKER_HEADER] = str(request.app["node"].worker_index)


def _config_stamp(path: Path | None) -> tuple[int, int] | None:
    try:
        st = path.stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st else None


async def follow_config(app: web.Application) -> None:
    """Apply a configuration change another worker made (`/_node/{node}/_config` writes the INI
    file, replacing it whole): the file is looked at every CONFIG_POLL_SECONDS and, when it
    changed, read again and applied as `_config/_reload` does."""
    from .node_api import apply_setting  # the handlers' module; imported late to keep this one small

    config = app["node"].config
    seen = _config_stamp(config.path)
    while True:
        await asyncio.sleep(CONFIG_POLL_SECONDS)
        stamp = _config_stamp(config.path)
        if stamp is None or stamp == seen:
            continue
        seen = stamp
        try:
            config.reload()
            for section in config.sections():
                for key in config.section(section):
                    apply_setting(app, section, key)
        except Exception:  # noqa: BLE001 - a bad edit must not stop following later ones
            log.exception("applying the configuration file's change failed")


def install(app: web.Application) -> None:
    """Make `app` one of several workers of its node (node.shared)."""
    node = app["node"]
    app["worker_peers"] = Peers(node)
    app.on_response_prepare.append(_add_worker_header)

    following: list[asyncio.Task] = []  # not an app key: the app is frozen once it starts

    async def start(app: web.Application) -> None:
        following.append(asyncio.get_running_loop().create_task(follow_config(app)))

    async def close(app: web.Application) -> None:
        for task in following:
            task.cancel()
        await app["worker_peers"].close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)
