"""The changes feed as data: which documents changed after a sequence, shaped as CouchDB rows.

Transport (normal, longpoll, continuous, eventsource) is the HTTP layer's business; this module
decides what a row is: `{"seq", "id", "changes": [{"rev"}...], "deleted"?, "doc"?}`, with
`style=all_docs` listing every leaf, and filters (`_doc_ids`, `_design`, `_selector`, `_view`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice
from dataclasses import dataclass, field
from typing import Any

from . import revtree
from .attachments.hooks import inline_data
from .errors import BadRequest, NotFound
from .mango.selector import compile_selector
from .views import manager


@dataclass
class ChangesOptions:
    since: int = 0
    # couchpy extension: the feed ends at this sequence (changes after it are left out, and a
    # continuous or longpoll feed answers instead of waiting once it is reached)
    until: int | None = None
    limit: int | None = None
    descending: bool = False
    include_docs: bool = False
    conflicts: bool = False
    all_docs_style: bool = False
    filter_name: str | None = None
    doc_ids: list[str] | None = None
    selector: dict | None = None
    view: str | None = None
    attachments: bool = False  # with include_docs: attachment bodies inline
    extra: dict[str, Any] = field(default_factory=dict)
    # per-document access (couchpy.access): the documents the reader may see; the others are
    # left out before any filter (user code included) looks at them
    visible: Callable[[Any], bool] | None = None

    def cache_key(self) -> tuple | None:
        """Options under which rows may be shared between feeds (no per-feed filters)."""
        if (self.filter_name is not None or self.limit is not None or self.descending
                or self.visible is not None or self.until is not None):
            return None
        return (self.since, self.include_docs, self.conflicts, self.all_docs_style, self.attachments)


def uses_query_server(opts: ChangesOptions) -> bool:
    """Design-document filters (`ddoc/name`) and `_view` run user code in a query server."""
    name = opts.filter_name
    return name == "_view" or (name is not None and not name.startswith("_") and "/" in name)


def build_filter(db, opts: ChangesOptions) -> Callable[[Any, dict | None], bool] | None:
    """A predicate over (DocInfo, doc-or-None) for the built-in filters; None when everything
    passes or when the filter runs in a query server (see `change_rows_async`)."""
    name = opts.filter_name
    if name is None:
        return None
    if name == "_doc_ids":
        if not isinstance(opts.doc_ids, list) or not all(isinstance(d, str) for d in opts.doc_ids):
            raise BadRequest("`doc_ids` filter parameter is not a list of doc ids.")
        wanted = set(opts.doc_ids)
        return lambda info, doc: info.id in wanted
    if name == "_design":
        return lambda info, doc: info.id.startswith("_design/")
    if name == "_selector":
        if not isinstance(opts.selector, dict):
            raise BadRequest("Selector must be specified in POST payload")
        match = compile_selector(opts.selector)
        return lambda info, doc: doc is not None and match(doc)
    if name == "_view":
        if not isinstance(opts.view, str) or "/" not in opts.view:
            raise BadRequest("`view` filter parameter is not provided.")
        ddoc, view = opts.view.split("/", 1)
        _check_function(db, ddoc, "views", view)
        return None
    if name.startswith("_"):
        raise BadRequest("unknown builtin filter name")
    ddoc, _, fname = name.partition("/")
    if ddoc and fname:
        _check_function(db, ddoc, "filters", fname)
        return None
    raise BadRequest("`filter` must be of the form `designname/filtername`")


def _check_function(db, ddoc: str, kind: str, fname: str) -> None:
    """The design document and its function must be there before the feed starts, as
    couch_changes:configure_filter checks them (404 naming the first missing key)."""
    try:
        doc = db.get("_design/" + ddoc)
    except NotFound:
        raise NotFound("missing") from None
    functions = doc.get(kind)
    if not isinstance(functions, dict):
        raise NotFound(f"missing json key: {kind}")
    if fname not in functions:
        raise NotFound(f"missing json key: {fname}")


def _load(db, opts: ChangesOptions, batch: list, parsed: bool) -> list:
    if parsed:
        return db.load_docs(batch, opts.conflicts)
    if opts.include_docs:
        return db.load_doc_fragments(batch, opts.conflicts)
    return [None] * len(batch)


def _row(db, opts: ChangesOptions, info, doc) -> dict[str, Any]:
    revs = revtree.leaves(info.tree) if opts.all_docs_style else [info.rev]
    row: dict[str, Any] = {
        "seq": db.node.format_seq(db, info.seq),
        "id": info.id,
        "changes": [{"rev": r} for r in revs],
    }
    if info.deleted:
        row["deleted"] = True
    if opts.include_docs:
        if doc is None:
            doc = {"_id": info.id, "_rev": info.rev, "_deleted": True}
        elif opts.attachments and isinstance(doc, dict) and doc.get("_attachments"):
            doc = inline_data(db, doc)
        row["doc"] = doc
    return row


def change_rows(db, opts: ChangesOptions, since: int | None = None, chunk: int = 256) -> Iterator[tuple[int, dict]]:
    """(seq, row) for every change after `since` (opts.since by default) passing a built-in filter,
    up to `opts.until`."""
    rows = _change_rows(db, opts, since, chunk)
    if opts.until is None:
        return rows
    return _until(rows, opts.until, opts.descending)


def _until(rows: Iterator[tuple[int, dict]], until: int, descending: bool) -> Iterator[tuple[int, dict]]:
    for seq, row in rows:
        if seq > until:
            if descending:
                continue  # a descending listing reaches `until` from above
            return
        yield seq, row


def _change_rows(db, opts: ChangesOptions, since: int | None = None, chunk: int = 256) -> Iterator[tuple[int, dict]]:
    """See `change_rows`.

    Documents are read a chunk at a time in one transaction; with `include_docs` and no filter
    that needs the parsed document, they are spliced as raw JSON (orjson.Fragment).
    """
    pred = build_filter(db, opts)
    start = opts.since if since is None else since
    if pred is None and not opts.include_docs and not opts.all_docs_style and opts.visible is None:
        yield from _plain_rows(db, opts, start, chunk)
        return
    parsed = opts.filter_name == "_selector" or (opts.include_docs and opts.attachments)
    infos = db.changes_since(start, None, opts.descending)
    if opts.visible is not None:
        infos = filter(opts.visible, infos)
    while batch := list(islice(infos, chunk)):
        for info, doc in zip(batch, _load(db, opts, batch, parsed)):
            if pred is None or pred(info, doc):
                yield info.seq, _row(db, opts, info, doc)


def _plain_rows(db, opts: ChangesOptions, start: int, chunk: int) -> Iterator[tuple[int, dict]]:
    """The common listing (no filter, no documents, winners only) straight from the stored
    bytes: the winner is the head of the stored DocInfo, so no JSON is parsed."""
    tag = db.node.format_seq(db, 0)[1:]  # "-<node tag>": the opaque part of every seq
    for batch in db.seq_chunks(start, opts.descending, chunk):
        for seq, docid, raw in batch:
            cut = raw.index(b"\x00")
            row = {"seq": f"{seq}{tag}", "id": docid.decode(), "changes": [{"rev": raw[1:cut].decode()}]}
            if raw[0] == 68:  # b"D": the winner is a deletion
                row["deleted"] = True
            yield seq, row


async def change_rows_async(db, opts: ChangesOptions, since: int | None = None,
                            chunk: int = 256) -> AsyncIterator[tuple[int, dict]]:
    """As `change_rows`, for filters that run in a query server: each chunk of documents goes to
    the filter in one call, off the event loop. Deleted documents are filtered too (their
    tombstone body with `_deleted: true`), as CouchDB passes them."""
    build_filter(db, opts)  # validates the filter and its design document
    node = db.node
    infos = db.changes_since(opts.since if since is None else since, None, opts.descending)
    if opts.visible is not None:
        infos = filter(opts.visible, infos)
    while batch := list(islice(infos, chunk)):
        docs = db.load_docs(batch, opts.conflicts)
        docs = [d if d is not None else {"_id": i.id, "_rev": i.rev, "_deleted": True} for i, d in zip(batch, docs)]
        if opts.filter_name == "_view":
            keep = await manager.view_filter(node, db, opts.view, docs)
        else:
            keep = await manager.filter_docs(node, db, opts.filter_name, docs, opts.extra.get("req") or {})
        for info, doc, ok in zip(batch, docs, keep):
            if opts.until is not None and info.seq > opts.until:
                if opts.descending:
                    continue
                return
            if ok:
                yield info.seq, _row(db, opts, info, doc)


def _covered(db, opts: ChangesOptions, rows: list, since: int, snapshot: int, limited: bool) -> int:
    """The last sequence a listing covers: its last row's, or -- when it scanned to the end --
    the database's (the documents a filter dropped are covered too)."""
    if opts.descending:
        # a descending listing starts at the newest change (with no row it covers everything);
        # one that scanned to the end enumerated down to the oldest change, whatever its filter kept
        if limited or _looks_up(opts):
            return rows[-1][0] if rows else snapshot
        return _oldest_seq(db, snapshot)
    last = rows[-1][0] if rows else since
    if not limited:
        last = max(last, snapshot if opts.until is None else min(snapshot, opts.until))
    return last


def _oldest_seq(db, default: int) -> int:
    for batch in db.seq_chunks(0, False, 1):
        return batch[0][0]
    return default


def collect_sync(db, opts: ChangesOptions, since: int) -> tuple[list[tuple[int, dict]], int, bool]:
    """The changes after `since` as (seq, row) pairs, the last sequence covered, and whether the
    limit cut the listing short (built-in filters only: no query server, no awaiting)."""
    snapshot = db.update_seq
    rows = change_rows(db, opts, since)
    if opts.limit is None:
        taken = list(rows)
        return taken, _covered(db, opts, taken, since, snapshot, False), False
    taken = list(islice(rows, opts.limit))
    limited = len(taken) >= opts.limit
    return taken, _covered(db, opts, taken, since, snapshot, limited), limited


async def collect(db, opts: ChangesOptions, since: int) -> tuple[list[tuple[int, dict]], int, bool]:
    """`collect_sync` for any filter, including those that run in a query server."""
    if not uses_query_server(opts) or opts.limit == 0:
        return collect_sync(db, opts, since)
    snapshot = db.update_seq
    taken: list[tuple[int, dict]] = []
    async for item in change_rows_async(db, opts, since):
        taken.append(item)
        if opts.limit is not None and len(taken) >= opts.limit:
            return taken, _covered(db, opts, taken, since, snapshot, True), True
    return taken, _covered(db, opts, taken, since, snapshot, False), False


# CouchDB looks up the documents of a `_doc_ids` filter naming at most this many ids (and every
# design document for `_design`) instead of scanning the by-sequence index
# (couch_changes:can_optimize, changes_doc_ids_optimization_threshold).
DOC_IDS_LOOKUP_MAX = 100


def _looks_up(opts: ChangesOptions) -> bool:
    if opts.filter_name == "_design":
        return True
    return opts.filter_name == "_doc_ids" and isinstance(opts.doc_ids, list) and len(opts.doc_ids) <= DOC_IDS_LOOKUP_MAX


def pending(db, opts: ChangesOptions, since: int, rows: list[tuple[int, dict]], limited: bool) -> int:
    """CouchDB's `pending` after a listing from `since`: the by-sequence entries its enumeration
    has not reached (fabric_rpc counts down from the entries after `since`, one per document
    enumerated, and reports the count at the last row sent).

    A listing that ran to the end enumerated everything (0), unless its filter looked the
    documents up: then only those were enumerated, and the rest still counts as pending. One cut
    short by `limit` stopped at its last row; `limit=0` enumerated nothing.
    """
    if opts.limit == 0:
        return db.count_changes_after(since)
    if _looks_up(opts):
        return max(db.count_changes_after(since) - len(rows), 0)
    if not limited or not rows:
        return 0
    last = rows[-1][0]
    if opts.descending:
        return db.count_changes_after(0) - db.count_changes_after(last - 1)
    if opts.until is not None:  # what is left before `until`
        return max(db.count_changes_after(last) - db.count_changes_after(opts.until), 0)
    return db.count_changes_after(last)
