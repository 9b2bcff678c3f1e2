"""Which revisions carry attachment bodies the target lacks, and the shape those travel in.

A revision fetched without attachment bodies (`_bulk_get`, stubs only) can be written with
`_bulk_docs` when the target already has every attachment it names: those with a `revpos` up to
the newest generation among the target's possible ancestors (`atts_since`). The others are
fetched again as multipart (`open_revs` with the bodies that follow) and written one by one as
multipart/related `PUT ?new_edits=false`, streamed from source to target, as CouchDB's own
replicator does: a document with big attachments never sits whole in memory, nor in base64.

    RevisionWithBodies = (doc, parts): the JSON with `follows: true` entries (and `encoding`,
    `encoded_length` when a body travels gzip-encoded) and, in the same order, the bodies
    (couchpy.attachments.mime.AttachmentPart, chunks as an async iterable read once, in order).
"""

from __future__ import annotations

from typing import Any

from couchpy.attachments.mime import AttachmentPart

RevisionWithBodies = tuple[dict[str, Any], list[AttachmentPart]]


def known_generation(atts_since: list[str]) -> int:
    known = 0
    for rev in atts_since:
        head = rev.split("-", 1)[0] if isinstance(rev, str) else ""
        if head.isascii() and head.isdigit():
            known = max(known, int(head))
    return known


def needs_data(doc: dict[str, Any], atts_since: list[str]) -> bool:
    """True when a revision shown with stubs names an attachment the target may not have."""
    atts = doc.get("_attachments")
    if not isinstance(atts, dict) or not atts:
        return False
    known = known_generation(atts_since)
    return any(
        isinstance(a, dict) and a.get("stub") and not (isinstance(a.get("revpos"), int) and a["revpos"] <= known)
        for a in atts.values()
    )


def part_for(name: str, entry: dict[str, Any], chunks: Any) -> AttachmentPart:
    """The body of a `follows: true` entry: as many bytes as travel (encoded_length when gzip)."""
    encoding = entry.get("encoding")
    length = entry.get("encoded_length", entry.get("length")) if encoding == "gzip" else entry.get("length")
    if not isinstance(length, int):
        raise ValueError(f"attachment {name} follows without a length")
    return AttachmentPart(name, entry.get("content_type") or "application/octet-stream", length, encoding, chunks)
