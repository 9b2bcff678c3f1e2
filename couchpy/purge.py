"""Purge: removing leaf revisions from documents as if they had never been written.

One purge request is applied in one exclusive write transaction (`Database.purge`): each named
document's tree loses the named leaves (`revtree.purge`), their bodies are deleted (attachment
blobs no body refers to any more go at the next compaction, as for any dropped body), and
a document with no revision left is removed from the by-id and by-sequence indexes and the
counts. Every request, whatever it removed, gets one purge sequence per document named (kept in
the `purged` sub-database as CouchDB's purge infos, the oldest dropped beyond
`purged_infos_limit`) and moves `update_seq` on, so that view and Mango indexes notice and catch
up by reading the purge infos after their own `purge_seq` (`purged_since`).
A document that keeps revisions gets a new sequence of its own, as any update.

These functions run inside the write transaction and change nothing outside it and `meta`.
"""

from __future__ import annotations

from collections.abc import Iterator

import lmdb
import orjson

from . import jsonutil, partition_sizes, revtree
from .docinfo import body_key, docs_key, seq_key
from .errors import BadRequest
from .updates import META_KEY, note_commit, store_doc

SUBDB = "purged"
DEFAULT_LIMIT = 1000


def validate(body: object) -> dict[str, list[str]]:
    """A `_purge` request body as CouchDB checks it: {docid: [rev, ...]}."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    for revs in body.values():
        if not isinstance(revs, list):
            raise BadRequest("Invalid list of revisions")
        if not all(isinstance(r, str) and revtree.parse_rev(r) for r in revs):
            raise BadRequest("Invalid rev format")
    return body


def apply_purge(db, txn: lmdb.Transaction, purged_db, requests: dict[str, list[str]], meta: dict) -> dict:
    """Purge `requests` ({docid: [rev, ...]}); {docid: [revs purged]} in request order."""
    out: dict[str, list[str]] = {}
    meta.setdefault("purged_infos_limit", DEFAULT_LIMIT)
    first_seq = meta["update_seq"] + 1
    bumped = False
    partition_sizes.ensure(db, txn, meta)
    for docid, revs in requests.items():
        meta["purge_seq"] += 1
        txn.put(seq_key(meta["purge_seq"]), orjson.dumps({"id": docid, "revs": revs}), db=purged_db)
        info = db.get_docinfo(docid, txn)
        if info is None:
            out[docid] = []
            continue
        tree, gone = revtree.purge(info.tree, revs)
        out[docid] = gone
        if not gone:
            continue
        if tree:
            # store_doc moves the document to a new sequence and uncounts the bodies of
            # revisions that stop being leaves, so the bodies go after it
            store_doc(db, txn, docid, info, tree, {}, meta)
            bumped = True
        else:
            _remove_doc(db, txn, info, meta)
        for rev in gone:
            txn.delete(body_key(docid, rev), db=db._bodies)
    if not bumped:
        meta["update_seq"] += 1  # every purge moves the sequence on, as CouchDB's does
    note_commit(db, txn, first_seq, meta["update_seq"])
    trim(txn, purged_db, meta)
    txn.put(META_KEY, jsonutil.dumps(meta), db=db._meta_db)
    return out


def _remove_doc(db, txn: lmdb.Transaction, info, meta: dict) -> None:
    txn.delete(seq_key(info.seq), db=db._seqs)
    txn.delete(docs_key(info.id.encode()), db=db._docs)
    bodies = db.stored_bodies(txn, info.id, revtree.leaf_set(info.tree))
    gone = partition_sizes.doc_counts(info.deleted, bodies)
    meta["doc_count"] -= gone.doc_count
    meta["doc_del_count"] -= gone.doc_del_count
    meta["external_size"] = meta.get("external_size", 0) - gone.external
    if "live_body_size" in meta:
        meta["live_body_size"] -= gone.active
    partition_sizes.note(db, txn, meta, info.id, -gone)


def trim(txn: lmdb.Transaction, purged_db, meta: dict) -> None:
    """Keep the newest `purged_infos_limit` purge infos."""
    excess = txn.stat(purged_db)["entries"] - meta["purged_infos_limit"]
    if excess <= 0:
        return
    cur = txn.cursor(db=purged_db)
    cur.first()
    for _ in range(excess):
        cur.delete()


def infos(txn: lmdb.Transaction, purged_db) -> list[dict]:
    """The purge infos kept, as `_purged_infos` lists them (by document id, then purge order)."""
    rows = [orjson.loads(v) for v in txn.cursor(db=purged_db).iternext(keys=False, values=True)]
    return sorted(rows, key=lambda r: r["id"])


def purged_since(txn: lmdb.Transaction, purged_db, purge_seq: int) -> Iterator[tuple[int, str]]:
    """(purge sequence, document id) of the purges after `purge_seq`, in order."""
    cur = txn.cursor(db=purged_db)
    if cur.set_range(seq_key(purge_seq + 1)):
        for key, value in cur:
            yield int.from_bytes(key, "big"), orjson.loads(value)["id"]
