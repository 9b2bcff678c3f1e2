"""Applying a group of edits inside one LMDB write transaction (run by the writer thread).

Three kinds of write: an edit (`new_edits=true`: the client names the revision it changes; a new
revision id is computed; anything but a current leaf is a conflict), a replicated revision
(`new_edits=false`: the given history is merged into the tree, making branches where histories
diverge), and `_local` documents (no history, revisions `0-N`). Each updates the by-id record, moves
the document's single entry in the by-sequence index, and keeps the counts in `meta`.

These functions must not change anything outside the transaction and `meta`: the writer may redo
the whole group after growing the map. Bound to `Database` as methods.
"""

from __future__ import annotations

import lmdb
import orjson

from . import docrules, jsonutil, partition_sizes, partitions, revtree, timeseq
from .attachments import hooks as att_hooks
from .docinfo import DocInfo, body_key, docs_key, local_key, local_record, seq_key
from .errors import BadRequest, Conflict, CouchError

META_KEY = b"meta"


def apply_updates(db, txn: lmdb.Transaction, batch: list[tuple[list[dict], bool, bool]], meta: dict) -> list[list]:
    results: list[list] = []
    first_seq = meta["update_seq"] + 1
    partition_sizes.ensure(db, txn, meta)
    for docs, new_edits, adopt_missing in batch:
        res = []
        written: set[str] = set()  # ids this request wrote: they keep one sequence (store_doc)
        # as CouchDB: which partitions are full is decided once, before the request writes
        full = partition_sizes.full_partitions(db, txn, (d["_id"] for d in docs), meta) if new_edits else frozenset()
        for doc in docs:
            try:
                if doc["_id"].startswith("_local/"):
                    res.append(write_local(db, txn, doc, new_edits))
                elif new_edits:
                    res.append(write_edit(db, txn, doc, meta, adopt_missing, written, full))
                else:
                    res.append(write_replicated(db, txn, doc, meta, written))
            except CouchError as exc:
                res.append(exc)
        results.append(res)
    note_commit(db, txn, first_seq, meta["update_seq"])
    txn.put(META_KEY, jsonutil.dumps(meta), db=db._meta_db)
    return results


def note_commit(db, txn: lmdb.Transaction, first_seq: int, last_seq: int) -> None:
    """Record in the time index (couchpy.timeseq) that this transaction wrote sequences
    first_seq..last_seq now: in the same transaction, so the index never names an uncommitted
    sequence nor misses a committed one."""
    if last_seq < first_seq:
        return
    handle = db.store.db(timeseq.SUBDB)
    cur = txn.cursor(db=handle)
    last_key = last = None
    if cur.last():
        last_key, last = timeseq.decode_key(cur.key()), timeseq.decode_entry(cur.value())
    width = max(db.config.get_int("couchdb", "time_seq_bucket_seconds", timeseq.DEFAULT_BUCKET_SECONDS) or 0, 1) * 1000
    key, entry = timeseq.record(last_key, last, int(db.clock() * 1000), width, first_seq, last_seq)
    txn.put(timeseq.encode_key(key), timeseq.encode_entry(entry), db=handle)


def write_edit(db, txn, doc: dict, meta: dict, adopt_missing: bool = False,
               written: set[str] | None = None, full: frozenset[str] = frozenset()) -> dict:
    """An edit of the revision `_rev` (or `_revisions`' head) names, or a new document.

    `adopt_missing`: the edit skips the checks CouchDB runs before writing (see
    `validation.checks_skipped`), so, as there, a history that is not in the tree is merged into
    it when it extends a leaf or the document does not exist: the named revisions become
    ancestors without bodies (`missing`) of the new one.

    `full`: the partitions at their size limit; an edit there may not make the document larger
    (couchpy.partition_sizes).
    """
    docid = doc["_id"]
    body, deleted = docrules.split_body(doc)
    info = db.get_docinfo(docid, txn)
    # `_revisions` names the revision edited (its head) as `_rev` does, as CouchDB reads it
    history = docrules.revisions_path(doc) if isinstance(doc.get("_revisions"), dict) else None
    rev = history[0] if history else doc.get("_rev")
    adopted: list[str] = []
    if info is None:
        if rev is not None:
            if not adopt_missing:
                raise Conflict()
            adopted = history or [rev]
        parent, tree = rev, {}
    else:
        tree = info.tree
        if rev is not None and rev not in tree and adopt_missing and not info.deleted:
            # couch_db_updater merges the path: accepted where it extends a leaf
            known = next((r for r in history or [rev] if r in tree), None)
            if known is None or known not in revtree.leaf_set(tree):
                raise Conflict()
            adopted, parent = history or [rev], rev
        elif rev is not None:
            # a tombstone is no revision to edit (CouchDB: 409), though recreating the document
            # without a rev continues it
            if rev not in tree or rev not in info.leaves() or tree[rev][1]:
                raise Conflict()
            parent = rev
        elif info.deleted and not deleted:
            parent = info.rev  # recreating a deleted document continues its tombstone
        else:
            raise Conflict()
    if "_attachments" in body:
        # Only a body with attachments needs its parent's (to resolve stubs and revpos).
        parent_body = db.read_body(docid, parent, txn) if parent and not adopted else None
        new_pos = revtree.rev_pos(parent) + 1 if parent else 1
        att_hooks.finalize(db, txn, body, parent_body, new_pos, new_edits=True, docid=docid)
    new = docrules.new_rev(parent, deleted, body)
    if new in tree:
        raise Conflict()
    tree = revtree.add_path(tree, adopted, False) if adopted else dict(tree)
    tree[new] = (parent, deleted)
    store_doc(db, txn, docid, info, revtree.stem(tree, meta["revs_limit"]), {new: body}, meta, written,
              refuse_growth=partitions.partition_of(docid) in full)
    return {"ok": True, "id": docid, "rev": new}

def write_replicated(db, txn, doc: dict, meta: dict, written: set[str] | None = None) -> None:
    """new_edits=false: merge the given history into the tree, keeping every branch."""
    docid = doc["_id"]
    body, deleted = docrules.split_body(doc)
    path = docrules.revisions_path(doc)
    info = db.get_docinfo(docid, txn)
    tree = info.tree if info else {}
    if path[0] in tree:
        return None  # already have this revision: nothing to do
    if "_attachments" in body:
        parent_body = None
        for anc in path[1:]:
            if anc in tree:
                parent_body = db.read_body(docid, anc, txn)
                break
        att_hooks.finalize(db, txn, body, parent_body, revtree.rev_pos(path[0]), new_edits=False, docid=docid)
    merged = revtree.stem(revtree.add_path(tree, path, deleted), meta["revs_limit"])
    store_doc(db, txn, docid, info, merged, {path[0]: body}, meta, written)
    return None

def store_doc(db, txn, docid: str, old: DocInfo | None, tree: revtree.Tree,
               bodies: dict[str, dict], meta: dict, written: set[str] | None = None,
               refuse_growth: bool = False) -> None:
    """Store a document's new tree and bodies under a new sequence.

    `written`: the ids the current request already wrote in this transaction. A second edit of
    one of them keeps the sequence the first gave it, as in CouchDB (its updater merges a
    request's edits of one id into one update): the state between was never committed, so no
    feed, checkpoint or index can have seen that sequence name anything else.

    `refuse_growth`: the document's partition is full (couchpy.partition_sizes): refuse the
    change, before anything is written, if it makes the document's leaves larger.
    """
    win = revtree.winner(tree)
    deleted = tree[win][1]
    # Revisions that stop being leaves stop counting as live data; their bodies stay (readable
    # by rev) until compaction drops them.
    gone = []
    if old is not None:
        still = revtree.leaf_set(tree)
        gone = db.stored_bodies(txn, docid, (rev for rev in revtree.leaf_set(old.tree) if rev not in still))
    added = []
    for rev, body in bodies.items():
        raw = jsonutil.dumps_stored(body)
        added.append((body_key(docid, rev), raw, db.codec.encode(raw)))
    change = partition_sizes.doc_counts(deleted, added)
    if old is not None:
        change = change - partition_sizes.doc_counts(old.deleted, gone)
    if refuse_growth and change.external > 0:
        raise partition_sizes.PartitionOverflow(docid)

    if written is not None and docid in written and old is not None:
        seq = old.seq
    else:
        meta["update_seq"] += 1
        seq = meta["update_seq"]
    if written is not None:
        written.add(docid)
    if old is not None:
        txn.delete(seq_key(old.seq), db=db._seqs)
    meta["doc_count"] += change.doc_count
    meta["doc_del_count"] += change.doc_del_count
    meta["external_size"] = meta.get("external_size", 0) + change.external
    if "live_body_size" in meta:
        meta["live_body_size"] += change.active
    if docid.startswith("_design/"):
        meta["ddoc_seq"] = seq  # design functions changed (validators are cached by this)
    partition_sizes.note(db, txn, meta, docid, change)
    for bkey, _, stored in added:
        txn.put(bkey, stored, db=db._bodies)
    key = docid.encode()
    txn.put(seq_key(seq), key, db=db._seqs)
    txn.put(docs_key(key), DocInfo(docid, win, deleted, seq, tree).encode(), db=db._docs)

def write_local(db, txn, doc: dict, new_edits: bool = True) -> dict:
    """A `_local` document keeps no history and is never in conflict, as in CouchDB
    (couch_db_updater): a write replaces it with revision `0-(N+1)` for a given `0-N` (`0-1`
    without one; exactly `0-N` when replicated), and a deletion removes it, whatever its rev."""
    docid = doc["_id"]
    key = local_key(docid)
    if doc.get("_deleted"):
        txn.delete(key, db=db._local)
        return {"ok": True, "id": docid, "rev": "0-0"}
    rev = doc.get("_rev")
    n = 0
    if rev is not None:
        pos, _, tail = rev.partition("-")
        if pos != "0" or not (tail.isascii() and tail.isdigit()):
            # CouchDB answers a 500 for a well-formed rev not of the form 0-N
            raise BadRequest("Invalid rev format")
        n = int(tail)
    if new_edits or rev is None:
        n += 1
    # `_access` stays (per-document access; only access databases accept it)
    body = {k: v for k, v in doc.items() if not k.startswith("_") or k == "_access"}
    new = f"0-{n}"
    txn.put(key, local_record(docid, new, body), db=db._local)
    return {"ok": True, "id": docid, "rev": new}
