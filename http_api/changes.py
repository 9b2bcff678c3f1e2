"""GET/POST /{db}/_changes with feed=normal|longpoll|continuous|eventsource.

A waiting feed sleeps on the database's commit future, so a write wakes every feed at once and an
idle feed costs one suspended task and its socket. Feeds that ask the same question at the same
moment (same `since`, same options: the common case when thousands of clients are all caught up)
share one computation of the new rows, and a plain continuous feed has them written to its
connection by the waker itself: once caught up, by a `ParkedFeed` that outlives this handler
(http_api/parkedfeed.py), or, while its connection is still draining, with its task staying
parked (`_DirectWrite`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
import time
from dataclasses import dataclass, replace

from aiohttp import web

from couchpy import jsonutil, queryvalues, timeseq
from couchpy.changes import ChangesOptions, build_filter, collect, pending, uses_query_server
from couchpy.errors import BadRequest, NotFound, QueryParseError

from . import params
from .access import restricted, visible_id, visible_info
from .changerows import SharedRows, event, expired, expired_header, results_body, sparse_seqs
from .clientwatch import ClientWatch
from .databases import get_db
from .parkedfeed import CLIENTS, CONTINUOUS, EVENTSOURCE, LONGPOLL, park
from .responses import json_response, not_allowed

routes = web.RouteTableDef()

DEFAULT_TIMEOUT_MS = 60000

_SECRET_HEADERS = {"authorization", "cookie", "x-auth-couchdb-token"}


def _since(request: web.Request, body: dict, db) -> int:
    raw = request.query.get("since", body.get("since", 0) if isinstance(body, dict) else 0)
    if raw == "now":
        return db.update_seq
    if timeseq.looks_like_time(raw):
        # CouchDB 3.6: an RFC 3339 time stands for the sequence at that time (couchpy.timeseq)
        try:
            return db.seq_since_time(timeseq.parse_time(raw))
        except ValueError:
            raise BadRequest("Malformed sequence supplied in 'since' parameter.") from None
    if isinstance(raw, str):
        try:
            raw = jsonutil.loads(raw.encode()) if raw[:1] in "[\"" else raw
        except Exception:
            pass
    try:
        return request.app["node"].parse_seq(raw)
    except ValueError:
        raise BadRequest("Malformed sequence supplied in 'since' parameter.") from None


def _until(request: web.Request, body: dict, db) -> int | None:
    """couchpy's `until`: a sequence (as `since` takes it) or an RFC 3339 time; the feed ends
    there. `now` is the database's sequence when the request starts."""
    raw = request.query.get("until", body.get("until") if isinstance(body, dict) else None)
    if raw is None:
        return None
    try:
        if raw == "now":
            return db.update_seq
        if timeseq.looks_like_time(raw):
            return db.seq_until_time(timeseq.parse_time(raw))
        if isinstance(raw, str) and raw[:1] in "[\"":
            raw = jsonutil.loads(raw.encode())
        return request.app["node"].parse_seq(raw)
    except ValueError:
        raise BadRequest("Malformed sequence supplied in 'until' parameter.") from None


def _limit(raw: str) -> int | None:
    """`limit`: any integer, as chttpd reads it. A negative one never runs out (its countdown
    never reaches zero), nor does one larger than any feed: both mean no limit."""
    try:
        value = int(raw)
    except ValueError:
        # CouchDB answers a 500 (badarg) here, an empty value too; a malformed parameter is the
        # client's error
        raise QueryParseError('Invalid value for integer: "limit"') from None
    return None if value < 0 or value > sys.maxsize else value


def _heartbeat(raw: str) -> int:
    if raw == "true":
        return DEFAULT_TIMEOUT_MS
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("Invalid heartbeat value. Expecting a positive integer value (in milliseconds).") from None
    if value <= 0:
        raise BadRequest("The heartbeat value should be a positive integer (in milliseconds).")
    return value


def _timeout(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        # CouchDB: 500 (badarg)
        raise QueryParseError(f"Invalid value for integer: {queryvalues.erl_repr(raw)}") from None
    return max(value, 0)  # CouchDB takes a negative one too: the feed waits for nothing


@dataclass
class _Numbers:
    limit: int | None = None
    heartbeat: int | None = None
    timeout: int | None = None
    seq_interval: int | None = None


def _numbers(request: web.Request) -> _Numbers:
    """The numeric parameters, checked in query-string order as chttpd_db:parse_changes_query
    reads them (the first bad one is the answer; a repeated one's last value counts)."""
    out = _Numbers()
    for name, raw in request.query.items():
        if name == "seq_interval":
            if not (raw.isascii() and raw.isdigit() and int(raw) > 0):
                raise BadRequest("invalid_seq_interval")
            out.seq_interval = int(raw)
        elif name == "limit":
            out.limit = _limit(raw)
        elif name == "heartbeat":
            out.heartbeat = _heartbeat(raw)
        elif name == "timeout":
            out.timeout = _timeout(raw)
    return out


def _options(request: web.Request, body: dict, db, limit: int | None) -> ChangesOptions:
    """The feed's options, checked in CouchDB's order: the filter (its form, its design
    document), then the feed type, then `since`; couchpy's own `style` check comes last."""
    q = request.query
    descending = params.flag(request, "descending")
    style = q.get("style", "main_only")
    opts = ChangesOptions(
        limit=limit,
        descending=descending,
        include_docs=params.flag(request, "include_docs"),
        conflicts=params.flag(request, "conflicts"),
        attachments=params.flag(request, "attachments"),
        all_docs_style=style == "all_docs",
        filter_name=q.get("filter"),
    )
    if opts.filter_name == "_doc_ids":
        # a POST reads them from its body only (and without filter=_doc_ids not at all)
        opts.doc_ids = body.get("doc_ids") if request.method == "POST" else params.json_value(request, "doc_ids")
    elif opts.filter_name == "_selector":
        opts.selector = body.get("selector")
    elif opts.filter_name == "_view":
        opts.view = q.get("view")
    # before the filter's design document is looked into: what it holds is not the reader's to learn
    reader = restricted(request)
    if reader is not None:
        opts.visible = visible_info(db, reader)
        named = opts.view if opts.filter_name == "_view" else opts.filter_name
        if uses_query_server(opts) and isinstance(named, str) and "/" in named:
            # a filter of a design document the reader does not see is as missing as that document
            ddoc = "_design/" + named.split("/", 1)[0]
            if db.get_docinfo(ddoc) is not None and not visible_id(db, reader, ddoc):
                raise NotFound("missing")
    build_filter(db, opts)  # errors as proper JSON answers, before anything is sent
    if q.get("feed", "normal") not in ("normal", "longpoll", "continuous", "eventsource", "websocket"):
        raise BadRequest("Supported `feed` types: normal, continuous, live, longpoll, eventsource")
    # fabric_view_changes get_start_seq: a descending feed starts at the newest change, and
    # `since` is not even read (a malformed one is no error)
    opts.since = 0 if descending else _since(request, body, db)
    opts.until = _until(request, body, db)
    if style not in ("main_only", "all_docs"):
        raise BadRequest("Invalid `style` parameter")
    if uses_query_server(opts):
        # CouchDB's request object, as filter functions see it: `req.query.<param>` above all
        opts.extra["req"] = {
            "method": request.method,
            "path": [p for p in request.path.split("/") if p],
            "query": dict(request.query),
            # credentials never reach user code
            "headers": {k: v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS},
            "body": body if body else "undefined",
            "userCtx": {"db": db.name, **request["user_ctx"].as_json()},
        }
    return opts


class _DirectWrite:
    """A plain continuous feed's wake-up taken by the waker (couchpy.waiters): the shared rows
    after its `since` written to its connection as one HTTP chunk, its task left parked.

    It declines (and the task runs as it would have) whenever the feed has anything else to do:
    the database closing, the client gone (its watch ends the task), a connection not keeping up
    (the transport still holds bytes: the task's own write then waits for the drain, so a slow
    reader gets at most one chunk more than before), or rows that do not reach the current
    sequence. Only for feeds whose rows are shared (`cache_key`: no filter, no `limit`, no
    `until`), as plain JSON lines in a chunked body, uncompressed: then the chunk is exactly what
    aiohttp's writer would send. The task's heartbeat timer runs on from its park: a heartbeat
    may follow a directly written change sooner than `heartbeat` ms after it (a blank line
    more), which is what not rearming a timer for every change costs."""

    __slots__ = ("db", "opts", "shared", "transport", "since")

    def __init__(self, db, opts: ChangesOptions, shared: SharedRows, transport: asyncio.Transport):
        self.db, self.opts, self.shared, self.transport = db, opts, shared, transport
        self.since = opts.since

    def __call__(self) -> bool:
        db, transport = self.db, self.transport
        if db.feeds_should_end or transport.is_closing() or transport.get_write_buffer_size():
            return False
        hit = self.shared.get(db, self.opts, self.since)
        if hit is None:
            return False
        _, last, _, chunk = hit
        if chunk:
            transport.write(chunk)
        self.since = last
        # the sequence the rows were read at (`get` just looked): a commit after it wakes the
        # feeds again, so looking again here (per feed) would only cost
        return last >= self.shared.seq


def _shared(request: web.Request, db) -> SharedRows:
    memo = request.app["changes_memo"]
    shared = memo.get(id(db))
    if shared is None or shared[0] is not db:
        shared = (db, SharedRows())
        memo[id(db)] = shared
        db.add_close_hook(lambda key=id(db): memo.pop(key, None))
    return shared[1]


async def changes(request: web.Request) -> web.StreamResponse:
    db = get_db(request)
    body: dict = {}
    if request.method == "POST":
        params.require_json(request)
        raw = await request.read()
        if raw.strip():
            body = jsonutil.loads(raw)
            if not isinstance(body, dict):
                raise BadRequest("Request body must be a JSON object")
    numbers = _numbers(request)
    opts = _options(request, body, db, numbers.limit)
    feed = request.query.get("feed", "normal")
    heartbeat, timeout = numbers.heartbeat, numbers.timeout
    if timeout is None:
        timeout = None if heartbeat else DEFAULT_TIMEOUT_MS

    if feed == "normal" or (feed == "longpoll" and opts.descending):
        # chttpd_db: a normal feed is tagged by the database's state alone (not by the query), and
        # a client that has that state already gets a 304
        etag = _feed_etag(db)
        if feed == "normal" and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag, "Cache-Control": "must-revalidate"})
        pairs, last, limited = await collect(db, opts, opts.since)
        return json_response({
            "results": sparse_seqs([row for _, row in pairs], opts.limit, numbers.seq_interval),
            "last_seq": db.node.format_seq(db, last),
            "pending": pending(db, opts, opts.since, pairs, limited),
            **expired(db, opts.since),
        }, headers={"ETag": etag, **expired_header(db, opts.since)} if feed == "normal" else expired_header(db, opts.since))
    # the request's pinning scope keeps the database open while the feed waits; the watch ends
    # the feed (and so releases both) as soon as its client leaves
    metrics = request.app["node"].metrics
    metrics.inc(CLIENTS)  # chttpd_db: counted while the feed runs, however it ends
    watch = ClientWatch(request)
    parked = False
    try:
        if feed == "longpoll":
            resp, parked = await _longpoll(request, db, opts, heartbeat, timeout, numbers.seq_interval, watch)
        else:
            resp, parked = await _stream(request, db, opts, heartbeat, timeout, feed == "eventsource", watch)
        return resp
    finally:
        watch.release()
        if not parked:  # a parked feed counts its own end
            metrics.inc(CLIENTS, -1)


def _feed_etag(db) -> str:
    digest = hashlib.md5(f"{db.name}\0{db.node.format_seq(db, db.update_seq)}".encode()).digest()
    return '"' + base64.b32encode(digest).decode().rstrip("=") + '"'


async def _longpoll(request, db, opts, heartbeat, timeout, seq_interval: int | None,
                    watch: ClientWatch) -> tuple[web.StreamResponse, bool]:
    """The feed's response, and whether it was parked (http_api/parkedfeed.py): a feed with
    nothing to answer yet whose rows need no query server waits without its handler."""
    deadline = None if timeout is None else time.monotonic() + timeout / 1000
    resp = None
    since = opts.since
    parkable = request.method != "HEAD" and opts.until is None and not uses_query_server(opts)
    while True:
        if db.feeds_should_end:  # deleted while we waited
            pairs, last, limited = [], since, False
            break
        pairs, last, limited = await collect(db, opts, since)
        if pairs or opts.limit == 0 or _reached(opts, last):  # limit=0 answers at once, as CouchDB does
            break
        since = last
        wait = _next_wait(deadline, heartbeat)
        if wait is not None and wait <= 0:
            break
        if parkable:
            if resp is None:
                resp = await _start(request, db, opts)
            parkable = _chunked(resp)
            if parkable and park(request, db, opts, _shared(request, db), since, 0, heartbeat, deadline,
                                 LONGPOLL, opts.limit, seq_interval):
                return resp, True
        with watch:
            await db.wait_for_change(since, wait)
        if db.update_seq <= since and heartbeat and (deadline is None or time.monotonic() < deadline):
            if resp is None:
                resp = await _start(request, db, opts)
            await resp.write(b"\n")
    payload = results_body(db, [row for _, row in pairs], last, pending(db, opts, since, pairs, limited),
                           opts.limit, seq_interval, opts.since)
    if resp is None:
        return web.Response(body=payload, content_type="application/json",
                            headers={"Cache-Control": "must-revalidate", **expired_header(db, opts.since)}), False
    await resp.write(payload)
    await resp.write_eof()
    return resp, False


async def _start(request: web.Request, db, opts: ChangesOptions, eventsource: bool = False) -> web.StreamResponse:
    """A feed's response, its head sent."""
    ctype = "text/event-stream" if eventsource else "application/json"
    resp = web.StreamResponse(headers={"Content-Type": ctype, "Cache-Control": "must-revalidate",
                                       **expired_header(db, opts.since)})
    await resp.prepare(request)
    return resp


def _chunked(resp: web.StreamResponse) -> bool:
    """A body whose chunks a parked feed or `_DirectWrite` may write to the transport itself: its
    bytes are exactly those aiohttp's writer would send."""
    return not resp.compression and resp.headers.get("Transfer-Encoding") == "chunked"


def _reached(opts: ChangesOptions, covered: int) -> bool:
    """A feed with `until` has nothing more to wait for once it covered that sequence."""
    return opts.until is not None and covered >= opts.until


def _next_wait(deadline: float | None, heartbeat: int | None) -> float | None:
    waits = []
    if deadline is not None:
        waits.append(deadline - time.monotonic())
    if heartbeat:
        waits.append(heartbeat / 1000)
    return min(waits) if waits else None


async def _stream(request, db, opts, heartbeat, timeout, eventsource: bool,
                  watch: ClientWatch) -> tuple[web.StreamResponse, bool]:
    """The feed's response, and whether it was parked (http_api/parkedfeed.py): then the feed
    goes on after this handler returns, and the response's end is the parked feed's to write."""
    resp = await _start(request, db, opts, eventsource)
    if request.method == "HEAD":
        return resp, False  # the head only: aiohttp would send what a stream writes even to a HEAD
    shared = _shared(request, db)
    # a feed whose rows are shared may be parked once caught up, and meanwhile have them written
    # by the waker (JSON lines only)
    parkable = opts.cache_key() is not None and request.transport is not None and _chunked(resp)
    direct = _DirectWrite(db, opts, shared, request.transport) if parkable and not eventsource else None
    since = opts.since
    sent = 0
    left = 0  # the final line's `pending`: that of the last listing with rows
    deadline = None if timeout is None else time.monotonic() + timeout / 1000
    while True:
        if db.feeds_should_end:  # deleted while we waited: end the feed as if it timed out
            break
        hit = None if eventsource else shared.get(db, opts, since)
        if hit is not None:
            lines, last, n, _ = hit
            if n:
                if opts.limit is not None and sent + n > opts.limit:
                    hit = None
                else:
                    await resp.write(lines)
                    sent += n
            if hit is not None:
                since = last
        if hit is None:
            # a listing asks only for the rows the limit still allows, so that its `pending`
            # counts from the last row sent, as CouchDB's does
            step = opts if opts.limit is None else replace(opts, limit=opts.limit - sent)
            pairs, last, limited = await collect(db, step, since)
            if pairs or since == opts.since:
                left = pending(db, step, since, pairs, limited)
            for _, row in pairs:
                if eventsource:
                    await resp.write(event(row))
                else:
                    await resp.write(jsonutil.dumps(row) + b"\n")
                sent += 1
            since = last
        if opts.limit is not None and sent >= opts.limit or _reached(opts, since):
            break
        wait = _next_wait(deadline, heartbeat)
        if wait is not None and wait <= 0:
            break
        # caught up: a plain feed lives on without this handler, its task and its request
        if parkable and park(request, db, opts, shared, since, left, heartbeat, deadline,
                             EVENTSOURCE if eventsource else CONTINUOUS):
            return resp, True
        if direct is not None:
            direct.since = since
        with watch:
            await db.wait_for_change(since, wait, direct)
        if direct is not None:
            since = direct.since  # written meanwhile by the waker
        if db.update_seq <= since and heartbeat:
            if deadline is not None and time.monotonic() >= deadline:
                break
            # chttpd_db changes_callback(timeout): an eventsource heartbeat is an event of its own
            await resp.write(b"event: heartbeat\ndata: \n\n" if eventsource else b"\n")
    if eventsource:
        # chttpd_db ends an event stream with nothing more, but for a blank line after a limit
        if opts.limit and sent >= opts.limit:
            await resp.write(b"\n")
    else:
        await resp.write(jsonutil.dumps({"last_seq": db.node.format_seq(db, since), "pending": left}) + b"\n")
    await resp.write_eof()
    return resp, False


def routes_list() -> list:
    return [web.get("/{db}/_changes", changes), web.post("/{db}/_changes", changes),
            not_allowed("/{db}/_changes", "GET,POST,HEAD")]
