"""The sizes CouchDB reports for a database, as couchpy counts them.

- `external`: the uncompressed size of what is live: the JSON of every leaf revision's body
  (without `_attachments`) plus the identity length of the attachments it refers to (CouchDB
  counts an attachment's stored length: the same unless it is stored gzipped). Kept up to date by every write
  (`meta["external_size"]`) and recounted exactly by compaction.
- `active`: the bytes of what is live on disk: the stored leaf bodies (`meta["live_body_size"]`,
  key and value bytes, kept by every write and recounted by compaction) plus the pages in use by
  everything else (by-id and by-sequence indexes, attachments, `_local` documents). Bodies are
  counted by bytes, not pages: updates leave body pages half empty, and that slack is exactly
  what compaction gives back. A database written before this count existed reports its pages
  in use until its first compaction.
- `file`: the size of the environment file.

So `file - active` is what a compaction gives back, and auto-compaction compares the two.
"""

from __future__ import annotations

from . import jsonutil

ATTACHMENTS = b'"_attachments"'


def body_external(raw: bytes) -> int:
    """External size of one stored body (JSON bytes), as CouchDB counts it: the JSON of the
    body without `_attachments`, plus the length of each attachment."""
    if ATTACHMENTS not in raw:
        return len(raw)
    body = jsonutil.loads(raw)
    atts = body.pop("_attachments", None)
    size = len(jsonutil.dumps(body))
    if isinstance(atts, dict):
        for entry in atts.values():
            if isinstance(entry, dict) and isinstance(entry.get("length"), int):
                size += entry["length"]
    return size


def stored(key: bytes, raw: bytes) -> int:
    """What one stored body costs in its page (key, value and LMDB's node header)."""
    return len(key) + len(raw) + 8
