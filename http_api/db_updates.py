"""GET /_db_updates: the node's feed of database creations, updates and deletions.

feed=normal|longpoll|continuous|eventsource, `since` (a sequence or `now`), `limit`,
`descending`, `timeout` and `heartbeat` (milliseconds; a feed with a heartbeat ignores `timeout`
and runs until the client leaves, as CouchDB's does), written as CouchDB 3 writes them: a
normal or longpoll answer is `{"results":[` rows `],"last_seq":...}` one row a line (a longpoll
sends its heartbeats inside the open array), a continuous feed one row a line and a closing
`{"last_seq":...}`. Server admins only (a server-level route).
"""

from __future__ import annotations

import time

from aiohttp import web

from couchpy import jsonutil
from couchpy.db_updates import Event
from couchpy.errors import BadRequest

from . import params
from .changes import DEFAULT_TIMEOUT_MS, _next_wait
from .clientwatch import ClientWatch
from .responses import not_allowed

FEEDS = ("normal", "longpoll", "continuous", "eventsource")


def _integer(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("invalid_integer") from None
    if value < 0:
        raise BadRequest("invalid_integer")
    return value


def _since(request: web.Request, current: int) -> int:
    raw = request.query.get("since", "0")
    if raw == "now":
        return current
    try:
        return request.app["node"].parse_seq(raw)
    except ValueError:
        raise BadRequest("Malformed sequence supplied in 'since' parameter.") from None


def _row(node, event: Event) -> bytes:
    return jsonutil.dumps({"db_name": event.db_name, "type": event.type, "seq": _seq(node, event.seq)})


def _seq(node, seq: int) -> str:
    return node.format_seq(None, seq)  # the node's sequences look like its databases'


async def db_updates(request: web.Request) -> web.StreamResponse:
    node = request.app["node"]
    feed = request.query.get("feed", "normal")
    if feed not in FEEDS:
        raise BadRequest("Supported `feed` types: normal, continuous, longpoll, eventsource")
    limit = _integer(request, "limit")
    timeout = _integer(request, "timeout")
    heartbeat_raw = request.query.get("heartbeat")
    heartbeat = DEFAULT_TIMEOUT_MS if heartbeat_raw == "true" else _integer(request, "heartbeat")
    if heartbeat:
        timeout = None  # global_changes_httpd: a heartbeat feed runs until the client leaves
    elif timeout is None:
        timeout = DEFAULT_TIMEOUT_MS
    descending = params.flag(request, "descending")
    feeds = node.db_updates
    since = _since(request, feeds.seq)
    deadline = None if timeout is None else time.monotonic() + timeout / 1000
    headers = {"Content-Type": "text/event-stream" if feed == "eventsource" else "application/json",
               "Cache-Control": "no-cache" if feed == "eventsource" else "must-revalidate"}

    watch = ClientWatch(request)  # the feed ends as soon as its client leaves
    try:
        return await _feed(request, feed, since, limit, descending, deadline, heartbeat, headers, watch)
    finally:
        watch.release()


async def _feed(request: web.Request, feed: str, since: int, limit: int | None, descending: bool,
                deadline: float | None, heartbeat: int | None, headers: dict, watch: ClientWatch) -> web.StreamResponse:
    node = request.app["node"]
    feeds = node.db_updates
    if feed in ("normal", "longpoll"):
        events = feeds.events(since, limit, descending)
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp  # the head only: aiohttp would send what a stream writes even to a HEAD
        await resp.write(b'{"results":[\n')
        while feed == "longpoll" and not events and limit != 0 and not node.closing:
            wait = _next_wait(deadline, heartbeat)
            if wait is not None and wait <= 0:
                break
            with watch:
                await feeds.wait(since, wait)
            events = feeds.events(since, limit, descending)
            if not events and heartbeat and (deadline is None or time.monotonic() < deadline):
                await resp.write(b"\n")
        last = events[-1].seq if events else since
        await resp.write(b",\n".join(_row(node, e) for e in events)
                         + b'\n],\n"last_seq":"' + _seq(node, last).encode() + b'"}\n')
        await resp.write_eof()
        return resp

    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    sent = 0
    while not node.closing:
        events = feeds.events(since, None if limit is None else limit - sent)
        for e in events:
            row = _row(node, e)
            if feed == "eventsource":
                await resp.write(b"data: " + row + b'\nid: "' + _seq(node, e.seq).encode() + b'"\n\n')
            else:
                await resp.write(row + b"\n")
            since = e.seq
        sent += len(events)
        if limit is not None and sent >= limit:
            break
        wait = _next_wait(deadline, heartbeat)
        if wait is not None and wait <= 0:
            break
        with watch:
            await feeds.wait(since, wait)
        if feeds.seq <= since and heartbeat:
            if deadline is not None and time.monotonic() >= deadline:
                break
            await resp.write(b"event: heartbeat\ndata: \n\n" if feed == "eventsource" else b"\n")
    if feed == "continuous":
        await resp.write(b'{"last_seq":"' + _seq(node, since).encode() + b'"}\n')
    await resp.write_eof()
    return resp


def routes_list() -> list:
    return [web.get("/_db_updates", db_updates), not_allowed("/_db_updates", "GET")]
