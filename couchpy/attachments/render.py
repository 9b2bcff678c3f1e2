"""How a stored document's attachments are shown to a reader.

Stored bodies hold stubs. A reader may ask for the bodies inline (`attachments=true`: base64
`data`), only for attachments changed since revisions it already has (`atts_since`), to be told
how each is stored (`att_encoding_info`), or -- for multipart replies -- for `follows: true`
entries whose bodies are sent after the JSON, in their stored encoding.

Field order as CouchDB writes it: content_type, revpos, digest, then length + stub | length +
follows | data, then encoding + encoded_length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import CouchError
from .access import blobs_for
from .blobstore import BlobMeta
from .codec import encode_base64


@dataclass
class Follower:
    """An attachment body to send after the JSON of a multipart reply."""

    name: str
    content_type: str
    meta: BlobMeta


def atts_since_pos(db: Any, doc: dict, since: list) -> int:
    """Generation of the newest revision in doc's history named in `since` (0 if none):
    attachments with a revpos up to it are already known to the reader."""
    wanted = {r for r in since if isinstance(r, str)}
    if not wanted:
        return 0
    revisions = doc.get("_revisions")
    if not isinstance(revisions, dict):
        revisions = db.get(doc["_id"], rev=doc["_rev"], revs=True).get("_revisions") or {}
    start = revisions.get("start", 0)
    for i, h in enumerate(revisions.get("ids", [])):
        if f"{start - i}-{h}" in wanted:
            return start - i
    return 0


def _after(revpos: Any, since: int) -> bool:
    """Whether an attachment came in after generation `since`. A replicated revision may carry
    any JSON as revpos (CouchDB keeps it); Erlang orders every non-number after the numbers."""
    if isinstance(revpos, (int, float)) and not isinstance(revpos, bool):
        return revpos > since
    return True


def stored_meta(db: Any, stub: dict) -> BlobMeta:
    """The blob record of a stored stub (500 if the body is missing: the store is damaged)."""
    length = stub.get("length")
    meta = blobs_for(db).meta(stub.get("digest", ""), length if isinstance(length, int) else None)
    if meta is None:
        raise CouchError("attachment body is missing from the store", error="internal_server_error", status=500)
    return meta


def render(
    db: Any,
    doc: dict,
    *,
    attachments: bool = False,
    atts_since: list | None = None,
    encoding_info: bool = False,
    follows: bool = False,
) -> tuple[dict, list[Follower]]:
    """The document with its attachments shaped as asked, and the bodies that follow it."""
    atts = doc.get("_attachments")
    if not atts:
        return doc, []
    if atts_since is not None:
        attachments = True
    encoding_info = encoding_info or follows
    since = atts_since_pos(db, doc, atts_since) if atts_since else 0
    blobs = blobs_for(db)
    out: dict[str, dict] = {}
    followers: list[Follower] = []
    for name, stub in atts.items():
        send = attachments and _after(stub.get("revpos", 0), since)
        meta = stored_meta(db, stub) if (send or encoding_info) else None
        e: dict[str, Any] = {"content_type": stub.get("content_type"), "revpos": stub.get("revpos"),
                             "digest": stub.get("digest")}
        if not send:
            e["length"] = stub.get("length")
            e["stub"] = True
        elif follows:
            e["length"] = stub.get("length")
            e["follows"] = True
            followers.append(Follower(name, stub.get("content_type") or "application/octet-stream", meta))
        else:
            e["data"] = encode_base64(blobs.read_all(meta))
        if encoding_info and meta is not None and meta.encoding != "identity":
            e["encoding"] = meta.encoding
            e["encoded_length"] = meta.encoded_length
        out[name] = e
    rendered = dict(doc)
    rendered["_attachments"] = out
    return rendered, followers
