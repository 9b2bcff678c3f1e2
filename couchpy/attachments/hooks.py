"""What the engine calls so that documents carry attachments.

Write path of one revision:

1. `prepare(db, doc, followers)` -- on the event loop, before the write is queued. Every
   `_attachments` entry that brings bytes (inline base64 `data`, or `follows: true` with the bytes
   supplied by a multipart reader through `followers`) is streamed into the BlobStore, and the
   entry becomes a *prepared* entry: content_type, digest, length, and a private mark. The mark's
   value is a per-process secret, so a client cannot make an entry look prepared. Stubs
   (`stub: true`) pass through untouched. Errors here (bad base64, too large, digest mismatch)
   reject the request before anything is written to a document.
2. `finalize(db, txn, body, parent_body, new_pos, new_edits)` -- in the write transaction, for
   each new revision body. Prepared entries become stored stubs with `revpos` = the new
   generation (or, for replicated revisions, the revpos the source sent, 0 if none). Client
   stubs are replaced by the parent's entry of that name; a stub the parent does not have (or
   whose revpos disagrees) fails with 412 missing_stub. An attachment omitted from the body is
   simply gone.
3. Compaction (couchpy.compactor) copies only the bodies that kept revisions refer to.

Stored stubs look exactly like CouchDB's: {content_type, revpos, digest, length, stub: true}.
The encoding a body is stored in is a property of the blob, looked up when it matters.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterable, Iterable
from typing import Any

from ..errors import BadRequest, CouchError, PreconditionFailed
from .access import blobs_for, settings_for
from .blobstore import DeferredBlob
from .codec import inline_bytes, md5_of_digest
from .render import render

MARK = "_couchpy_prepared"
DEFERRED = "_couchpy_deferred"
_TOKEN = secrets.token_hex(16)
# Small bodies are committed by finalize() in the document's own write transaction.
DEFER_MAX = 4 << 20


class _DeferredRef(str):
    """Carries a DeferredBlob inside a prepared entry. A str, so that anything serializing the
    document before the write (it should not) sees a harmless string, not an error."""

    blob: Any = None

    @classmethod
    def of(cls, blob: Any) -> "_DeferredRef":
        ref = cls("deferred")
        ref.blob = blob
        return ref


class _FinalizedAtts(dict):
    """The `_attachments` of a body finalize() already processed (a redone transaction calls
    finalize again on the same body; it must not treat its own output as client stubs)."""


def is_prepared(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get(MARK) == _TOKEN


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or name == "":
        raise BadRequest("Attachment name must be a non-empty string")
    if name.startswith("_"):
        raise BadRequest(f"Attachment name '{name}' starts with prohibited character '_'")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest("Attachment name is not UTF-8 encoded") from exc
    return name


def check_names(doc: dict) -> None:
    """The names of a body's attachments, checked once the whole body has been read
    (chttpd_db:validate_attachment_names, after couch_doc:from_json_obj)."""
    atts = doc.get("_attachments")
    if isinstance(atts, dict):
        for name, entry in atts.items():
            if isinstance(entry, dict):
                validate_name(name)


def prepared_entry(content_type: str, meta) -> dict:
    if isinstance(meta, DeferredBlob):
        entry = prepared_entry(content_type, meta.meta)
        entry[DEFERRED] = _DeferredRef.of(meta)
        return entry
    return {"content_type": content_type, "digest": meta.digest, "length": meta.length, MARK: _TOKEN}


async def _as_chunks(source: Any) -> AsyncIterable[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    async for chunk in source:
        yield chunk


async def store_stream(
    db: Any,
    name: str,
    content_type: str | None,
    source: Any,
    *,
    input_gzip: bool = False,
    expected_digests: Iterable[str] | None = None,
) -> dict:
    """Stream one body (bytes or async iterable of bytes) into the db; returns a prepared entry."""
    settings = settings_for(db)
    ctype = content_type or "application/octet-stream"
    writer = blobs_for(db).writer(
        name,
        compress=settings.compress(ctype),
        level=settings.level,
        max_size=settings.max_size,
        input_gzip=input_gzip,
    )
    try:
        async for chunk in _as_chunks(source):
            await writer.write(chunk)
        meta = await writer.finish(expected_digests, defer_small=writer.received <= DEFER_MAX)
    except BaseException:
        await writer.abort()
        raise
    return prepared_entry(ctype, meta)


def _follower(followers: Any, name: str) -> Any:
    if followers is None:
        return None
    if hasattr(followers, "get"):
        return followers.get(name)
    return None


async def prepare(db: Any, doc: dict, followers: Any = None) -> None:
    """Store the bytes an edit brings and turn its entries into prepared entries (see module doc)."""
    atts = doc.get("_attachments")
    if atts is None:
        return
    if not isinstance(atts, dict):
        raise BadRequest("_attachments must be an object")
    for name, entry in list(atts.items()):
        if not isinstance(entry, dict):
            del atts[name]  # CouchDB passes such an entry by (couch_doc:transfer_fields)
            continue
        validate_name(name)
        if is_prepared(entry):
            continue
        entry.pop(MARK, None)
        entry.pop(DEFERRED, None)
        if entry.get("stub") is True:
            continue
        ctype = entry.get("content_type")
        if ctype is not None and not isinstance(ctype, str):
            raise BadRequest(f"Attachment {name}: content_type must be a string")
        if "data" in entry:
            data = inline_bytes(entry, name)  # decoded already when the write was checked
            new = await store_stream(db, name, ctype, data)
        elif entry.get("follows") is True:
            source = _follower(followers, name)
            if source is None:
                raise BadRequest(f"Attachment {name} says it follows, but no body was sent")
            gz = str(entry.get("encoding", "identity")).lower() == "gzip"
            digest = entry.get("digest")
            new = await store_stream(
                db, name, ctype, source, input_gzip=gz,
                expected_digests=[digest] if isinstance(digest, str) else None,
            )
            if "length" in entry and not gz and entry["length"] != new["length"]:
                raise BadRequest(f"Attachment {name}: length does not match the body sent")
        else:
            raise BadRequest(f"Invalid attachment data for {name}")  # CouchDB's words
        if "revpos" in entry:
            new["revpos"] = entry["revpos"]  # finalize() decides whether it is kept
        atts[name] = new


def check_local(doc: dict) -> None:
    """A `_local` document's attachments are read as any document's (couch_doc:from_json_obj):
    a bad name or data is refused, though nothing is stored."""
    atts = doc.get("_attachments")
    if not isinstance(atts, dict):
        return
    for name, entry in atts.items():
        if not isinstance(entry, dict):
            continue
        validate_name(name)
        if entry.get("stub") is True or entry.get("follows") is True:
            continue
        if "data" not in entry:
            raise BadRequest(f"Invalid attachment data for {name}")
        inline_bytes(entry, name)


def _stub(entry: dict, revpos: Any) -> dict:
    return {
        "content_type": entry.get("content_type", "application/octet-stream"),
        "revpos": revpos,
        "digest": entry["digest"],
        "length": entry["length"],
        "stub": True,
    }


def finalize(
    db: Any,
    txn: Any,
    body: dict,
    parent_body: dict | None,
    new_pos: int,
    new_edits: bool,
    docid: str | None = None,
) -> None:
    """Turn the body's `_attachments` into stored stubs, inside the write transaction.

    A new edit gives every attachment it brings revpos = new_pos. A replicated revision
    (new_edits=false) keeps the revpos its source sent, whatever JSON value it is, and without
    one gets couch_att's default 0, as CouchDB 3.4.3 stores them: the revision was made
    elsewhere, and only its source knows where its attachments came in."""
    atts = body.get("_attachments")
    if isinstance(atts, _FinalizedAtts):
        return
    if not atts:
        body.pop("_attachments", None)
        return
    parent_atts = (parent_body or {}).get("_attachments") or {}
    blobs = None
    out = _FinalizedAtts()
    for name, entry in atts.items():
        if is_prepared(entry):
            if blobs is None:
                blobs = blobs_for(db)
            ref = entry.get(DEFERRED)
            if isinstance(ref, _DeferredRef) and ref.blob is not None:
                ref.blob.commit_in(blobs, txn)
            elif blobs.meta_in(txn, entry["digest"]) is None:
                # Only a compaction racing this write can do this; the client may retry.
                raise CouchError(f"Attachment {name} body vanished before commit", error="conflict", status=409)
            out[name] = _stub(entry, new_pos if new_edits else entry.get("revpos", 0))
            md5 = md5_of_digest(entry["digest"])
            if md5 is not None:
                blobs.unpin(md5)
        elif isinstance(entry, dict) and entry.get("stub") is True:
            parent = parent_atts.get(name)
            given = entry.get("revpos")
            if parent is None or (given is not None and given != parent.get("revpos")):
                where = f" in {docid}" if docid else ""
                raise PreconditionFailed(f"Invalid attachment stub{where} for {name}", error="missing_stub")
            out[name] = dict(parent)
        else:
            raise BadRequest(f"Attachment {name} was not prepared before the write")
    body["_attachments"] = out


def inline_data(db: Any, doc: dict, atts_since: list | None = None) -> dict:
    """A copy of a stored document with its attachment bodies inline (base64 `data`), as
    `GET ?attachments=true` (and `atts_since`) shows them; for replication and _bulk_get."""
    return render(db, doc, attachments=True, atts_since=atts_since)[0]


def reattach(db: Any, atts: dict) -> dict:
    """Stubs of stored attachments of this database -> prepared entries, so that another document
    (COPY) or a new revision can carry them without sending the bytes again."""
    blobs = blobs_for(db)
    out: dict = {}
    for name, stub in atts.items():
        meta = None
        if isinstance(stub, dict):
            length = stub.get("length")
            meta = blobs.meta(stub.get("digest", ""), length if isinstance(length, int) else None)
        if meta is None:
            raise BadRequest(f"Attachment {name} is not stored in this database")
        blobs.pin(meta.md5)
        out[name] = prepared_entry(stub.get("content_type") or "application/octet-stream", meta)
    return out
