"""The changes feed as data: which documents changed after a sequence, shaped as CouchDB rows.

Transport (normal, longpoll, continuous, eventsource) is the HTTP layer's business; this module
decides what a row is: `{"seq", "id", "changes": [{"rev"}...], "deleted"?, "doc"?}`, with
`style=all_docs` listing every leaf, and filters (`_doc_ids`, `_design`, `_selector`, `_view`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from dataclasses import dataclass, field
from typing import Any

from . import revtree
from .errors import BadRequest, NotFound


@dataclass
class ChangesOptions:
    since: int = 0
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

    def cache_key(self) -> tuple | None:
        """Options under which rows may be shared between feeds (no per-feed filters)."""
        if self.filter_name is not None or self.limit is not None or self.descending:
            return None
        return (self.since, self.include_docs, self.conflicts, self.all_docs_style, self.attachments)


def build_filter(db, opts: ChangesOptions) -> Callable[[Any, dict | None], bool] | None:
    """A predicate over (DocInfo, doc-or-None); None when everything passes."""
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
        try:
            from .mango.selector import compile_selector
        except ImportError as exc:  # pragma: no cover - the Mango module ships with the engine
            raise BadRequest("_selector filter is not available") from exc
        match = compile_selector(opts.selector)
        return lambda info, doc: doc is not None and match(doc)
    if name == "_view":
        raise BadRequest("filter=_view is not supported yet", error="bad_request")
    if "/" in name:
        ddoc = name.split("/", 1)[0]
        try:
            db.get("_design/" + ddoc)
        except NotFound:
            raise NotFound("missing") from None
        raise BadRequest("JavaScript filter functions are not supported yet", error="bad_request")
    raise BadRequest("`filter` parameter is not correctly formatted.")


def change_rows(db, opts: ChangesOptions, since: int | None = None, chunk: int = 256) -> Iterator[tuple[int, dict]]:
    """(seq, row) for every change after `since` (opts.since by default) passing the filter.

    Documents are read a chunk at a time in one transaction; with `include_docs` and no filter
    that needs the parsed document, they are spliced as raw JSON (orjson.Fragment).
    """
    pred = build_filter(db, opts)
    parsed = opts.filter_name == "_selector" or (opts.include_docs and opts.attachments)
    start = opts.since if since is None else since
    infos = db.changes_since(start, None, opts.descending)
    while True:
        batch = list(islice(infos, chunk))
        if not batch:
            return
        if parsed:
            docs = db.load_docs(batch, opts.conflicts)
        elif opts.include_docs:
            docs = db.load_doc_fragments(batch, opts.conflicts)
        else:
            docs = [None] * len(batch)
        for info, doc in zip(batch, docs):
            if pred is not None and not pred(info, doc):
                continue
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
                    from .attachments.hooks import inline_data

                    doc = inline_data(db, doc)
                row["doc"] = doc
            yield info.seq, row
