"""Bringing attachment digests written by earlier couchpy versions to CouchDB's.

Earlier versions named a body stored gzip-encoded by the MD5 of its *decoded* bytes (in the blob
record's key and in every stub of the documents referring to it). CouchDB names it by the MD5 of
the gzip bytes, and its replicator refuses bodies that do not match, so such data could not be
replicated to CouchDB. The old records carry the MD5 of their stored bytes ("emd5"), so nothing
has to be read back or recompressed.

On the first open of a database by this version, in one durable write transaction:

- every old gzip record `b"d" + md5(decoded)` moves to `b"g" + md5(stored)` (when that key is
  already taken, the same bytes are stored twice: the old copy's chunks are dropped);
- every stored revision body whose stubs name an old digest is rewritten with the new one.
  Revision ids stay as they are (they are names the revision already has elsewhere);
- the marker `b"v"` records the scheme, so later opens cost one read.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from .. import bodycodec, jsonutil
from .codec import digest_of

VERSION_KEY = b"v"
SCHEME = b"2"
_IDX = struct.Struct(">I")


def _chunk_key(blob_id: bytes, n: int) -> bytes:
    return b"c" + blob_id + _IDX.pack(n)


def _stored_md5(txn: Any, dbi: Any, rec: dict) -> bytes:
    """MD5 of a record's stored chunks (for records too old to carry it)."""
    h = hashlib.md5()
    blob_id = bytes.fromhex(rec["id"])
    for n in range(rec["n"]):
        h.update(txn.get(_chunk_key(blob_id, n), db=dbi) or b"")
    return h.digest()


def _legacy_records(txn: Any, dbi: Any) -> list[tuple[bytes, dict]]:
    out = []
    cur = txn.cursor(db=dbi)
    if cur.set_range(b"d"):
        for key, raw in cur:
            if not key.startswith(b"d"):
                break
            rec = jsonutil.loads(raw)
            if rec.get("enc") == "gzip":
                out.append((key, rec))
    return out


def _rename_records(txn: Any, dbi: Any) -> dict[str, str]:
    renamed: dict[str, str] = {}
    for key, rec in _legacy_records(txn, dbi):
        old_md5 = key[1:]
        new_md5 = bytes.fromhex(rec["emd5"]) if "emd5" in rec else _stored_md5(txn, dbi, rec)
        new_key = b"g" + new_md5
        if txn.get(new_key, db=dbi) is None:
            moved = {k: v for k, v in rec.items() if k != "emd5"}
            moved["imd5"] = old_md5.hex()
            txn.put(new_key, jsonutil.dumps(moved), db=dbi)
        else:
            blob_id = bytes.fromhex(rec["id"])
            for n in range(rec["n"]):
                txn.delete(_chunk_key(blob_id, n), db=dbi)
        txn.delete(key, db=dbi)
        renamed[digest_of(old_md5)] = digest_of(new_md5)
    return renamed


def rename_digests(body: dict, renamed: dict[str, str]) -> bool:
    """Replace old digests in a body's stubs (in place); True if anything changed."""
    atts = body.get("_attachments")
    changed = False
    if isinstance(atts, dict):
        for entry in atts.values():
            if isinstance(entry, dict) and entry.get("digest") in renamed:
                entry["digest"] = renamed[entry["digest"]]
                changed = True
    return changed


def _rewrite_bodies(txn: Any, bodies_dbi: Any, renamed: dict[str, str], codec: bodycodec.Codec) -> int:
    """Stored bodies are read and written through the database's codec: a body may be compressed,
    and its stubs are then invisible in the stored bytes."""
    changed: list[tuple[bytes, bytes]] = []
    cur = txn.cursor(db=bodies_dbi)
    for key, stored in cur:
        raw = codec.decode(stored)
        if b'"_attachments"' not in raw:
            continue
        body = jsonutil.loads(raw)
        if rename_digests(body, renamed):
            changed.append((key, codec.encode(jsonutil.dumps(body))))
    for key, raw in changed:
        txn.put(key, raw, db=bodies_dbi)
    return len(changed)


def migrate_in(txn: Any, bodies_dbi: Any, atts_dbi: Any, codec: bodycodec.Codec = bodycodec.PLAIN) -> int:
    """Run the migration inside a write transaction; returns how many digests were renamed."""
    if txn.get(VERSION_KEY, db=atts_dbi) == SCHEME:
        return 0
    renamed = _rename_records(txn, atts_dbi)
    if renamed:
        _rewrite_bodies(txn, bodies_dbi, renamed, codec)
    txn.put(VERSION_KEY, SCHEME, db=atts_dbi)
    return len(renamed)


def migrate(store: Any, bodies_dbi: Any, atts_dbi: Any, codec: bodycodec.Codec = bodycodec.PLAIN) -> int:
    """Migrate a database's store if it has not been yet (one read when it has)."""
    with store.read() as txn:
        if txn.get(VERSION_KEY, db=atts_dbi) == SCHEME:
            return 0
    return store.write(lambda txn: migrate_in(txn, bodies_dbi, atts_dbi, codec))
