"""A waiting `_changes` feed (continuous, EventSource or longpoll) that outlives its HTTP handler.

An idle feed waiting inside its aiohttp handler holds ~14 KB: aiohttp's parsed
request, parser, protocol and message queue, the connection's and the request's tasks, the
middlewares' and the handler's suspended frames, the response, a future and a timer
(docs/benchmarks.md). Once a feed has sent its headers and caught up, what is left for it to do
is small. A continuous one writes each commit's rows (the chunk `SharedRows` frames once for
every feed asking the same), a blank line every `heartbeat` ms, and its `last_seq` line and the
body's end at its timeout or when the database goes; an EventSource one the same as events (a
heartbeat event, and nothing at the end); a longpoll one its whole body at the first commit
with rows for it, or at its timeout, after blank lines as heartbeats. So its handler hands the
connection to a `ParkedFeed` (the transport's protocol from then on) and returns, and aiohttp
lets go of the connection and of everything it held for it. A feed that ends at its timeout
(or, longpoll, with its answer) keeps the connection alive for the client's next request, as
CouchDB does after a feed: it goes back to aiohttp when that request's first bytes arrive (or
at once, when some were sent behind the feed), not when the feed ends. A thousand longpoll feeds
answered by one commit are then a thousand writes, and the cost of a new aiohttp handler for
each comes with each client's next request, spread over the time they take to send them, not
before the last feed has its answer. An idle kept-alive connection is closed after aiohttp's
keep-alive timeout, or when the server stops. A feed that ends because its database or the
server goes closes its connection.

How aiohttp (3.14, `web_protocol.RequestHandler`, `http_writer.StreamWriter`) is made to let go
of a connection without writing to it or closing it; `park` relies on exactly these:

- `request.protocol` is aiohttp's RequestHandler, and its `transport` attribute (aiohttp's
  `BaseProtocol.transport`, public) is set to None first. aiohttp's writer then refuses to write
  the response's end when the handler returns (`StreamWriter._write` raises
  ClientConnectionResetError when `protocol.transport` is None); `finish_response` takes that as a
  client that left mid-response (nothing logged, no keep-alive), and `force_close()` closes only a
  transport it still has.
- `RequestHandler.connection_lost(None)` (asyncio's Protocol method), called by hand: the Server
  drops the connection from its list when the connection's task ends, the keep-alive timer is
  cancelled, the parser dropped, and `start()` (marked force-closed) ends instead of waiting for a
  next request. It also sets the request's payload an exception: the body was read already.
- `BaseProtocol.writing_paused` (public): a connection aiohttp is waiting to drain is not parked.
- `transport.set_protocol` (asyncio's and uvloop's transports): data, loss and the writing flow
  control reach the parked feed from then on; `is_reading`/`resume_reading`, as aiohttp may have
  paused reading for requests pipelined behind the feed's.
- `RequestHandler._manager`, the `web.Server` that made it: the protocol factory aiohttp's
  listening socket calls for a new connection. Calling it, and `connection_made(transport)` on
  what it returns, is how a kept-alive connection goes back to aiohttp after the feed; the bytes
  of requests sent behind the feed meanwhile (kept, up to `PIPELINED_MAX`) follow through
  `data_received`. Without a manager the feed closes the connection at its end.
- `RequestHandler.keepalive_timeout` (public): how long an idle kept-alive connection stays open.

aiohttp's Server no longer knows the connection: when the server stops, `Node.begin_shutdown`
wakes every feed and a parked one ends as it would at its timeout, and `close_idle` closes the
connections ended feeds keep alive. The request is counted and
logged (http_api/node_api.py's middleware) when its handler returns, that is when the feed
parks: a 200 that took the time to catch up. `clients_requesting_changes` counts the feed until
it ends.

A continuous or EventSource feed parks only when its rows are shared (no filter, no limit, no
until), a longpoll one when its rows need no query server (a built-in filter and a `limit` are
its own to apply); each only ascending, in a chunked uncompressed body, when nothing is left in
its transport's buffer. Any other feed stays in its handler, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from couchpy import jsonutil
from couchpy.changes import ChangesOptions
from couchpy.coarsetimer import CoarseTimer

from .changerows import SharedRows, chunk

log = logging.getLogger("couchpy.http")

# CouchDB's count of running feeds (chttpd_db), decremented by a parked feed when it ends
CLIENTS = ("couchdb", "httpd", "clients_requesting_changes")

# what a parked feed is: its rows' framing, its heartbeat (one HTTP chunk), how it ends
CONTINUOUS, EVENTSOURCE, LONGPOLL = 0, 1, 2
_HEARTBEATS = {
    CONTINUOUS: chunk(b"\n"),  # a blank line
    LONGPOLL: chunk(b"\n"),
    EVENTSOURCE: chunk(b"event: heartbeat\ndata: \n\n"),  # chttpd_db: an event of its own
}
_END = b"0\r\n\r\n"  # the empty chunk that ends a chunked body
# requests a client sends behind its feed are kept for aiohttp up to this much; past it the
# connection is closed at the feed's end instead of being kept alive
PIPELINED_MAX = 64 << 10

# the parked feeds' heartbeats and timeouts: a loop timer per 50 ms in which some are due, not
# one per feed (~0.45 KB each); a heartbeat or a timeout's end comes up to 50 ms late
_CLOCK: CoarseTimer[ParkedFeed] = CoarseTimer(lambda feed: feed._tick(), grain=0.05)

# the application's key for its set of ended feeds whose connections wait, kept alive, for their
# clients' next requests: closed by `close_idle` when the server stops. An application without
# one (no such set) closes a feed's connection at its end.
IDLE_KEY = "idle_feeds"


class ParkedFeed(asyncio.Protocol):
    """The transport's protocol and the database's listener (couchpy.waiters) for one parked
    feed. Slots: thousands of these may be open for as long as their clients like."""

    __slots__ = ("db", "opts", "shared", "transport", "since", "left", "heartbeat", "deadline",
                 "timer", "metrics", "paused", "owed", "ended", "server", "pipelined", "kind", "limit",
                 "interval", "origin", "idle", "keepalive")

    def __init__(self, db: Any, opts: ChangesOptions, shared: SharedRows, transport: asyncio.Transport,
                 since: int, left: int, heartbeat: int | None, deadline: float | None, metrics: Any,
                 server: Callable[[], asyncio.Protocol] | None = None, kind: int = CONTINUOUS,
                 limit: int | None = None, interval: int | None = None, origin: int = 0,
                 idle: set[ParkedFeed] | None = None, keepalive: float = 0) -> None:
        self.db, self.opts, self.shared, self.transport = db, opts, shared, transport
        self.kind = kind
        # a longpoll feed's `limit` and `seq_interval` (its `opts` has no limit: see `park`), and
        # the `since` it was asked from (for couchpy's tombstone-expiry marker in its body)
        self.limit, self.interval, self.origin = limit, interval, origin
        self.server = server  # aiohttp's protocol factory, for the connection after the feed
        self.pipelined: bytes | None = None  # requests sent behind the feed, for aiohttp
        self.since, self.left = since, left
        self.heartbeat = heartbeat / 1000 if heartbeat else None  # seconds
        self.deadline = deadline  # time.monotonic(), as the handler counted it
        self.timer: int | None = None  # the feed's slot in _CLOCK
        self.metrics = metrics
        self.paused = False  # the transport's buffer is above its high-water mark
        self.owed = False  # a commit came while paused: its rows are written on resume
        self.ended = False
        # the application's set of kept-alive ended feeds (this one in it while it is one), and
        # aiohttp's keep-alive timeout for them (0: none)
        self.idle, self.keepalive = idle, keepalive

    # ------------------------------------------------------------------ the database's listener

    def on_commit(self) -> bool:
        if self.ended:
            return False
        try:
            if self.db.feeds_should_end:  # deleted, or the server stopping: as at a timeout
                self._finish(catch_up=False)
                return False
            if self.kind == LONGPOLL:
                return not self._answer(final=False)
            if self.paused:
                # a slow reader: no more than the transport's high-water mark and one chunk are
                # buffered for it; what it missed is read and written when it drains
                self.owed = True
            else:
                self._write_rows()
            return True
        except Exception:  # noqa: BLE001 - a feed that cannot go on ends; the others go on
            self._abort()
            return False

    def _write_rows(self) -> None:
        self.owed = False
        if self.kind == EVENTSOURCE:
            last, rows = self.shared.get_events(self.db, self.opts, self.since)
        else:
            hit = self.shared.get(self.db, self.opts, self.since)
            assert hit is not None  # a parked continuous feed's rows are always shared (`cache_key`)
            _, last, _, rows = hit
        if rows:
            self.transport.write(rows)
        self.since = last

    def _answer(self, final: bool) -> bool:
        """A longpoll feed's body and end, once there are rows for it (or, `final`, anyway);
        whether it ended."""
        db = self.db
        if db.feeds_should_end:  # its database is gone or the server stopping: nothing more
            body = jsonutil.dumps({"results": [], "last_seq": db.node.format_seq(db, self.since),
                                   "pending": 0}) + b"\n"
        else:
            body, self.since = self.shared.longpoll(db, self.opts, self.since, self.limit, self.interval,
                                                    self.origin, final)
            if body is None:
                return False
        self.transport.write(chunk(body) + _END)
        self._close(keep=not db.feeds_should_end)
        return True

    # ------------------------------------------------------------------ heartbeat and timeout

    def arm(self) -> None:
        """The timer for the next heartbeat or the timeout, whichever comes first."""
        waits = []
        if self.deadline is not None:
            waits.append(self.deadline - time.monotonic())
        if self.heartbeat is not None:
            waits.append(self.heartbeat)
        if waits:
            self.timer = _CLOCK.add(self, min(waits))

    def _tick(self) -> None:
        self.timer = None
        if self.ended:
            if self._leave_idle():  # kept alive, and no request came within the keep-alive timeout
                self.transport.close()
            return
        try:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self._finish(catch_up=True)
                return
            # chttpd_db changes_callback(timeout); a connection still draining needs none
            if self.heartbeat is not None and not self.paused:
                self.transport.write(_HEARTBEATS[self.kind])
            self.arm()
        except Exception:  # noqa: BLE001
            self._abort()

    # ------------------------------------------------------------------ the end

    def _finish(self, catch_up: bool) -> None:
        """The feed's end: at a timeout (`catch_up`) its last rows, then a continuous feed's
        `last_seq` line (an EventSource feed's body ends with nothing more, a longpoll feed's is
        its answer) and the body's end; the connection kept alive after a timeout."""
        if self.kind == LONGPOLL:
            self._answer(final=True)
            return
        db = self.db
        if catch_up and not db.feeds_should_end and (self.owed or db.update_seq > self.since):
            self._write_rows()
        end = _END
        if self.kind == CONTINUOUS:
            line = jsonutil.dumps({"last_seq": db.node.format_seq(db, self.since), "pending": self.left}) + b"\n"
            end = chunk(line) + _END
        self.transport.write(end)
        self._close(keep=catch_up and not db.feeds_should_end)

    def _close(self, keep: bool) -> None:
        """After the body's end: the feed lets go, and its connection is kept alive (handed back
        to aiohttp now if a request came behind the feed, else when one comes) or closed once
        its buffer is written."""
        transport = self.transport
        keep = keep and self._keep_alive()
        self._release()
        if not keep:
            transport.close()
        elif self.pipelined is not None:
            self._hand_back()
        else:
            self._wait_for_request()

    def _keep_alive(self) -> bool:
        pipelined = self.pipelined
        return (self.server is not None and self.idle is not None and not self.transport.is_closing()
                and (pipelined is None or len(pipelined) <= PIPELINED_MAX))

    def _wait_for_request(self) -> None:
        """Idle and kept alive: aiohttp gets the connection with the client's next request's
        first bytes (`data_received`); closed after its keep-alive timeout."""
        self.idle.add(self)  # type: ignore[union-attr]
        if self.keepalive > 0:
            self.timer = _CLOCK.add(self, self.keepalive)

    def _leave_idle(self) -> bool:
        """No longer waiting for a request: out of the idle set, its keep-alive timer stopped;
        whether it was waiting."""
        idle = self.idle
        if idle is None or self not in idle:
            return False
        idle.discard(self)
        if self.timer is not None:
            _CLOCK.remove(self, self.timer)
            self.timer = None
        return True

    def _hand_back(self) -> None:
        """The connection to a new aiohttp RequestHandler, as a kept-alive one after a response,
        with the bytes of the requests sent since the feed's end."""
        transport, pipelined = self.transport, self.pipelined
        self.pipelined = None
        self._leave_idle()
        try:
            protocol = self.server()  # type: ignore[misc]
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            if self.paused:  # its answer is still draining: aiohttp's writer waits for it
                protocol.pause_writing()
            if pipelined:
                protocol.data_received(pipelined)
        except Exception:  # noqa: BLE001 - the feed has ended; its connection goes
            log.exception("a parked feed's connection could not be kept alive")
            transport.abort()

    def _abort(self) -> None:
        """In an `except` block: the feed can not go on (its client sees the connection cut)."""
        log.exception("a parked continuous feed failed")
        self.transport.abort()
        self._release()

    def _release(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.db.unlisten(self)
        if self.timer is not None:
            _CLOCK.remove(self, self.timer)
            self.timer = None
        self.db.unpin()
        self.metrics.inc(CLIENTS, -1)

    # ------------------------------------------------------------------ the transport's protocol

    def connection_lost(self, exc: BaseException | None) -> None:
        self._release()  # the client left: let go at once (tests/test_feed_disconnect.py)
        self._leave_idle()

    def data_received(self, data: bytes) -> None:
        # a request sent behind the feed: aiohttp answers it once the feed ends at its timeout
        # (past PIPELINED_MAX, or if the feed ends otherwise, the connection is closed instead);
        # the client's next request after the feed's end: aiohttp takes the connection now
        pipelined = self.pipelined
        if pipelined is None or len(pipelined) <= PIPELINED_MAX:
            self.pipelined = data if pipelined is None else pipelined + data
        if self.ended and self._leave_idle():
            self._hand_back()

    def eof_received(self) -> bool | None:
        return None  # the client half-closed: close, as aiohttp's protocol does

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.owed and not self.ended:
            try:
                self._write_rows()
            except Exception:  # noqa: BLE001
                self._abort()


def close_idle(idle: set[ParkedFeed]) -> None:
    """The server stops: close the connections its ended feeds keep alive (as aiohttp closes
    its own idle ones)."""
    for feed in list(idle):
        feed._leave_idle()
        feed.transport.close()


def park(request: web.Request, db: Any, opts: ChangesOptions, shared: SharedRows, since: int, left: int,
         heartbeat: int | None, deadline: float | None, kind: int = CONTINUOUS,
         limit: int | None = None, interval: int | None = None) -> bool:
    """Hand a caught-up feed's connection to a ParkedFeed; False (nothing done) when it can not
    be parked now. The caller returns its prepared response at once after True (and does not
    count the feed's end: the parked feed does). A longpoll feed gives its `limit` and
    `seq_interval` apart from `opts`, so that feeds differing only in them share rows."""
    protocol = request.protocol
    transport = request.transport
    if (transport is None or transport.is_closing() or transport.get_write_buffer_size()
            or protocol.writing_paused or opts.descending or db.feeds_should_end):
        return False
    if kind == LONGPOLL:
        opts = replace(opts, limit=None)
    feed = ParkedFeed(db, shared.intern(opts), shared, transport, since, left, heartbeat, deadline,
                      request.app["node"].metrics,
                      # a client that asked for `Connection: close` (or HTTP/1.0) gets it closed
                      getattr(protocol, "_manager", None) if request.keep_alive else None,
                      kind, limit, interval, opts.since, request.app.get(IDLE_KEY),
                      getattr(protocol, "keepalive_timeout", 0))
    protocol.transport = None  # first: neither aiohttp's writer nor its force_close touch it now
    transport.set_protocol(feed)
    protocol.connection_lost(None)
    if not transport.is_reading():
        # aiohttp pauses reading while requests are queued behind this one (pipelined): a
        # parked feed must keep reading, or it would not see its client leave
        transport.resume_reading()
    db.pin()  # as the request's pinning scope did: the LRU must not close the database under it
    db.listen(feed)
    feed.arm()
    if db.update_seq > since:  # committed after the handler's listing: no wake-up will say so
        feed.on_commit()
    return True
