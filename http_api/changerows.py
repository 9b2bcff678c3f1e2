"""A `_changes` feed's rows as they go out: JSON lines, EventSource events, a longpoll body.

Every feed kind renders the same listing (couchpy.changes) its own way: a continuous feed as one
JSON object a line, an EventSource feed as `data:`/`id:` events, normal and longpoll feeds as one
`{"results": [...], "last_seq": ..., "pending": ...}` object. Feeds that ask the same question at
the same moment (the same `since` and options, no per-feed filter: thousands of caught-up clients
of one database) share one listing and one rendering per commit (`SharedRows`), so a write that
wakes them all is read and serialized once, not once a feed.
"""

from __future__ import annotations

from dataclasses import replace

from couchpy import jsonutil, tombstones
from couchpy.changes import ChangesOptions, collect_sync, pending

# the limit a feed without one counts down from (couch_changes' #changes_args default)
DEFAULT_LIMIT = 10**15


def chunk(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk (empty when there is nothing: an empty chunk ends a body)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def event(row: dict) -> bytes:
    """One change as an EventSource event (chttpd_db changes_callback, eventsource)."""
    return b"data: " + jsonutil.dumps(row) + b"\nid: " + jsonutil.dumps(row["seq"]) + b"\n\n"


def sparse_seqs(rows: list[dict], limit: int | None, interval: int | None) -> list[dict]:
    """`seq_interval=N`: as fabric_view_changes, a row carries its `seq` only when the limit left
    (counting down from the request's, or CouchDB's default) is a multiple of N; the others `null`."""
    if not interval:
        return rows
    left = DEFAULT_LIMIT if limit is None else limit
    return [row if (left - i) % interval == 0 else {**row, "seq": None} for i, row in enumerate(rows)]


def expired(db, since: int) -> dict:
    """couchpy's marker for a reader whose `since` is below the tombstone-expiry horizon: it may
    have missed deletions this database no longer lists (couchpy.tombstones). Last in the
    object, after what CouchDB's replicator reads."""
    horizon = tombstones.horizon_of(db)
    if not tombstones.expired_marker(horizon, since):
        return {}
    return {"couchpy_tombstones_expired": {"since": db.node.format_seq(db, since),
                                           "horizon": db.node.format_seq(db, horizon)}}


def expired_header(db, since: int) -> dict:
    horizon = tombstones.horizon_of(db)
    if not tombstones.expired_marker(horizon, since):
        return {}
    return {"X-Couchpy-Tombstones-Expired": db.node.format_seq(db, horizon)}


def results_body(db, rows: list[dict], last: int, left: int, limit: int | None, interval: int | None,
                 origin: int) -> bytes:
    """A normal or longpoll feed's body; `origin` is the `since` the client asked from."""
    return jsonutil.dumps({"results": sparse_seqs(rows, limit, interval),
                           "last_seq": db.node.format_seq(db, last),
                           "pending": left, **expired(db, origin)}) + b"\n"


def collect_rows(db, opts: ChangesOptions, since: int) -> tuple[list[dict], int, bool]:
    pairs, last, limited = collect_sync(db, opts, since)
    return [row for _, row in pairs], last, limited


class SharedRows:
    """Per-database memo of the rows after (since, options) for the current update_seq, for the
    feeds whose rows are shared (`ChangesOptions.cache_key`): the rows' JSON lines, the last
    sequence they cover, their count, and the lines framed as one HTTP chunk (empty when there
    are no rows); and, asked for separately, the same rows as one chunk of events."""

    def __init__(self):
        self.seq = -1
        self.entries: dict[tuple, tuple[bytes, int, int, bytes]] = {}
        self.events: dict[tuple, tuple[int, bytes]] = {}
        # one ChangesOptions for all the parked feeds that share rows (at most 16 per database:
        # the key is four flags), instead of one each (~0.3 KB)
        self.options: dict[tuple, ChangesOptions] = {}

    def intern(self, opts: ChangesOptions) -> ChangesOptions:
        """An equivalent of `opts` for `get` (which takes `since` apart), shared by the feeds
        asking the same; `opts` itself when its rows are not shared."""
        key = opts.cache_key()
        if key is None:
            return opts
        return self.options.setdefault(key[1:], opts)

    def _fresh(self, db) -> None:
        seq = db.update_seq  # once: with several workers each read asks LMDB for its last txnid
        if self.seq != seq:
            self.seq, self.entries, self.events = seq, {}, {}

    def get(self, db, opts: ChangesOptions, since: int) -> tuple[bytes, int, int, bytes] | None:
        key = opts.cache_key()
        if key is None:
            return None
        key = (since,) + key[1:]
        self._fresh(db)
        hit = self.entries.get(key)
        if hit is None:
            rows, last, _ = collect_rows(db, opts, since)
            lines = b"".join(jsonutil.dumps(r) + b"\n" for r in rows)
            hit = (lines, last, len(rows), chunk(lines))
            self.entries[key] = hit
        return hit

    def get_events(self, db, opts: ChangesOptions, since: int) -> tuple[int, bytes]:
        """The last sequence covered and the rows after `since` as one chunk of events, for a
        feed whose rows are shared."""
        key = opts.cache_key()
        assert key is not None
        key = (since,) + key[1:]
        self._fresh(db)
        hit = self.events.get(key)
        if hit is None:
            rows, last, _ = collect_rows(db, opts, since)
            hit = (last, chunk(b"".join(event(r) for r in rows)))
            self.events[key] = hit
        return hit

    def longpoll(self, db, opts: ChangesOptions, since: int, limit: int | None, interval: int | None,
                 origin: int, final: bool) -> tuple[bytes | None, int]:
        """A waiting longpoll feed's body once there are rows after `since` (or, `final`, at its
        end, with none), else None; and the last sequence covered. `opts` without its `limit`:
        the common case (PouchDB's `limit=100`, a commit of fewer rows) renders the shared lines;
        any other listing is the feed's own."""
        if opts.cache_key() is not None and not interval:
            lines, last, n, _ = self.get(db, opts, since)  # type: ignore[misc]
            if limit is None or n <= limit:
                if not n and not final:
                    return None, last
                tail = jsonutil.dumps({"last_seq": db.node.format_seq(db, last), "pending": 0,
                                       **expired(db, origin)})
                # the lines are `dumps` of each row (no raw newline inside one): the same bytes
                # `results_body` writes, without parsing or serializing a row again
                return b'{"results":[' + lines.rstrip(b"\n").replace(b"\n", b",") + b"]," + tail[1:] + b"\n", last
        step = replace(opts, limit=limit)
        pairs, last, limited = collect_sync(db, step, since)
        if not pairs and not final:
            return None, last
        left = pending(db, step, since, pairs, limited)
        return results_body(db, [row for _, row in pairs], last, left, limit, interval, origin), last
