"""A database of this node as a replication endpoint, calling the engine directly.

Same behaviour as the HTTP endpoint without HTTP in between: the engine's `revs_diff`, `open_revs`
(latest=true, with `_revisions`), `bulk_docs(new_edits=False)` and `_local` documents. Sequences are
the engine's integers; `"<n>-<tag>"` strings handed back (e.g. from an HTTP-rendered checkpoint) are
accepted too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from couchpy import tombstones
from couchpy.attachments import hooks
from couchpy.attachments.access import blobs_for
from couchpy.attachments.blobstore import aiter_pieces
from couchpy.attachments.mime import AttachmentPart
from couchpy.attachments.render import render
from couchpy.changes import ChangesOptions, collect
from couchpy.errors import CouchError, NotFound, PreconditionFailed
from couchpy.mango.selector import compile_selector

from .attachments import RevisionWithBodies
from .errors import DbNotFound, PermanentError, TransientError


def _since(seq: Any) -> int:
    if isinstance(seq, bool):
        return 0
    if isinstance(seq, int):
        return max(seq, 0)
    if isinstance(seq, str):
        head = seq.split("-", 1)[0]
        if head.isascii() and head.isdigit():
            return int(head)
    if isinstance(seq, list) and seq and isinstance(seq[0], int):
        return seq[0]
    return 0


def _selector_matcher(selector: dict[str, Any]):
    try:
        return compile_selector(selector)
    except CouchError as exc:
        raise PermanentError(f"invalid selector: {exc.reason}", "bad_request") from None


class LocalEndpoint:
    def __init__(self, node: Any, name: str):
        self.node = node
        self.name = name
        self.display = name

    def _db(self):
        try:
            return self.node.get_db(self.name)
        except NotFound:
            raise DbNotFound(f"Database {self.name} does not exist") from None

    async def info(self) -> dict[str, Any]:
        return self._db().info()

    async def create(self, params: dict[str, Any] | None = None) -> None:
        try:
            res = self.node.create_db(self.name)
            if asyncio.iscoroutine(res):
                await res
        except PreconditionFailed:
            pass

    async def changes(
        self,
        since: Any,
        limit: int,
        *,
        feed: str = "normal",
        timeout_ms: int = 10000,
        doc_ids: list[str] | None = None,
        selector: dict[str, Any] | None = None,
        filter: str | None = None,
        query_params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        db = self._db()
        start = _since(since)
        if feed == "longpoll" and db.update_seq <= start:
            await db.wait_for_change(start, timeout_ms / 1000.0)
        opts = ChangesOptions(since=start, limit=limit, all_docs_style=True)
        if doc_ids is not None:
            opts.filter_name, opts.doc_ids = "_doc_ids", doc_ids
        elif selector is not None:
            _selector_matcher(selector)  # an invalid selector fails the job permanently
            opts.filter_name, opts.selector = "_selector", selector
        elif filter:
            opts.filter_name = filter
            opts.view = (query_params or {}).get("view")
            opts.extra["req"] = {"query": dict(query_params or {}), "method": "GET", "body": "undefined",
                                 "userCtx": {"db": db.name, "name": None, "roles": ["_admin"]}}
        try:
            pairs, last, _ = await collect(db, opts, start)
        except CouchError as exc:
            # a server error (a filter function that threw) is the source's failure, as a 500
            # from a remote source's _changes is: the job crashes and is retried later
            failure = TransientError if exc.status >= 500 else PermanentError
            raise failure(f"filter {filter!r}: {exc.reason}", exc.error, exc.status) from None
        rows = []
        for seq, row in pairs:
            row["seq"] = seq  # the job hands sequences back as they came; plain ints locally
            rows.append(row)
        out: dict[str, Any] = {"results": rows, "last_seq": last}
        horizon = tombstones.horizon_of(db)
        if tombstones.expired_marker(horizon, start):  # as the HTTP feed marks it
            out["couchpy_tombstones_expired"] = {"since": start, "horizon": horizon}
        return out

    async def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, Any]:
        return self._db().revs_diff(revs) if revs else {}

    async def bulk_get(self, reqs: list[dict[str, Any]], attachments: bool = True) -> list[dict[str, Any]]:
        db = self._db()
        by_id: dict[str, list[str]] = {}
        since: dict[str, list[str]] = {}
        for r in reqs:
            by_id.setdefault(r["id"], []).append(r["rev"])
            for a in r.get("atts_since") or []:
                if a not in since.setdefault(r["id"], []):
                    since[r["id"]].append(a)
        docs: list[dict[str, Any]] = []
        for docid, revs in by_id.items():
            for row in db.open_revs(docid, revs, latest=True, with_revs=True):
                if "ok" in row:
                    docs.append(_inline_attachments(db, row["ok"], since.get(docid)) if attachments else row["ok"])
        return docs

    async def open_revs_stream(self, docid: str, revs: list[str], atts_since: list[str]) -> AsyncIterator[RevisionWithBodies]:
        """As HttpEndpoint.open_revs_stream, straight from the blob store (stored encoding)."""
        db = self._db()
        blobs = blobs_for(db)
        for row in db.open_revs(docid, revs, latest=True, with_revs=True):
            if "ok" not in row:
                continue
            doc, followers = render(db, row["ok"], attachments=True, atts_since=atts_since or None, follows=True)
            yield doc, [AttachmentPart(f.name, f.content_type, f.meta.encoded_length, f.meta.encoding,
                                       aiter_pieces(blobs.iter_stored(f.meta))) for f in followers]

    async def write_doc(self, doc: dict[str, Any], parts: list[AttachmentPart]) -> dict[str, Any] | None:
        """Write one revision with new_edits=false, its bodies streamed into the blob store."""
        try:
            await self._db().put(doc, new_edits=False, followers={p.name: p.chunks for p in parts})
        except DbNotFound:
            raise
        except CouchError as exc:
            return {"id": doc.get("_id"), "rev": doc.get("_rev"), "error": exc.error, "reason": exc.reason}
        return None

    async def bulk_docs(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not docs:
            return []
        out = await self._db().bulk_docs(docs, new_edits=False)
        return [row for row in out if isinstance(row, dict) and "error" in row]

    async def get_design(self, ddoc_id: str) -> dict[str, Any] | None:
        try:
            return self._db().get("_design/" + ddoc_id)
        except NotFound:
            return None

    async def get_local(self, local_id: str) -> dict[str, Any] | None:
        try:
            return self._db().get_local("_local/" + local_id)
        except NotFound:
            return None

    async def put_local(self, local_id: str, body: dict[str, Any]) -> None:
        db = self._db()
        doc = {k: v for k, v in body.items() if k not in ("_id", "_rev")}
        doc["_id"] = "_local/" + local_id
        current = await self.get_local(local_id)
        if current is not None:
            doc["_rev"] = current["_rev"]
        try:
            await db.put(doc)
        except CouchError as exc:
            raise PermanentError(f"checkpoint on {self.name}: {exc.reason}", exc.error) from None

    async def close(self) -> None:
        return None


def _inline_attachments(db: Any, doc: dict[str, Any], atts_since: list[str] | None) -> dict[str, Any]:
    """Attachment stubs -> inline data, except those the target already has (atts_since)."""
    atts = doc.get("_attachments")
    if not atts:
        return doc
    return hooks.inline_data(db, doc, atts_since or None)
