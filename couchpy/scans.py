"""Range reads over a database's two indexes: documents by id and changes by update sequence.

Each scan reads in bounded chunks, one read transaction per chunk, so that a consumer may await
between rows without holding a transaction (see couchpy.storage). Bound to `Database` as methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from . import longkeys, timeseq
from .docinfo import _SEQ, DocInfo, docs_key, id_of, seq_key


def _entries_from(cur, pos: bytes | None, descending: bool) -> Iterator[tuple[bytes, bytes]]:
    """The by-id entries from the start of `pos`'s group of long ids on (from the first or last
    entry without `pos`), in the scan's direction."""
    if descending:
        if pos is None:
            ok = cur.last()
        else:
            seek = longkeys.seek_high(pos)
            ok = cur.set_range(seek)
            if not ok:
                ok = cur.last()
            elif cur.key() != seek:
                ok = cur.prev()
        return cur.iterprev() if ok else iter(())
    ok = cur.set_range(longkeys.seek_low(pos)) if pos is not None else cur.first()
    return cur.iternext() if ok else iter(())


def _in_id_order(entries: Iterator[tuple[bytes, bytes]], descending: bool) -> Iterator[tuple[bytes, bytes]]:
    """By-id entries in id order: LMDB's order is id order until a long id is met; from there on,
    the rest comes in restore_order's."""
    limit = longkeys.PREFIX
    for key, raw in entries:
        if len(key) > limit:
            yield from longkeys.restore_order(chain([(key, raw)], entries), id_of, descending)
            return
        yield key, raw


def id_chunks(
    db, start: str | None = None, end: str | None = None, descending: bool = False,
    inclusive_end: bool = True, chunk: int = 512,
) -> Iterator[list[tuple[bytes, bytes]]]:
    """The by-id index as chunks of (doc id bytes, stored DocInfo bytes), in id order (UTF-8 byte
    order = code point order), one read transaction per chunk.

    Long ids are stored under a prefix and a digest (couchpy.longkeys): seeks land at the start of
    a bound's group and `restore_order` sorts groups, so rows before the bound are skipped here.
    """
    pos = start.encode() if start is not None else None
    end_b = end.encode() if end is not None else None
    first = True
    while True:
        batch: list[tuple[bytes, bytes]] = []
        more = False
        with db.store.read() as txn:
            skipping = pos is not None
            for key, raw in _in_id_order(_entries_from(txn.cursor(db=db._docs), pos, descending), descending):
                if skipping:  # seeks land at a group's start: pass the ids before the bound
                    if descending:
                        if key > pos or (not first and key == pos):
                            continue
                    elif key < pos or (not first and key == pos):
                        continue
                    skipping = False
                if end_b is not None:
                    if descending:
                        if key < end_b or (not inclusive_end and key == end_b):
                            break
                    elif key > end_b or (not inclusive_end and key == end_b):
                        break
                batch.append((key, raw))
                if len(batch) >= chunk:
                    more = True
                    break
        if batch:
            yield batch
        if not more:
            return
        pos = batch[-1][0]
        first = False


def iter_docinfos(
    db, start: str | None = None, end: str | None = None, descending: bool = False,
    inclusive_end: bool = True, chunk: int = 512,
) -> Iterator[DocInfo]:
    """Doc infos in id order, read in bounded chunks."""
    for batch in id_chunks(db, start, end, descending, inclusive_end, chunk):
        for key, raw in batch:
            yield DocInfo.decode(key.decode(), raw)


def count_live_before(db, key: str, descending: bool = False) -> int:
    """How many non-deleted docs sort before `key` (for _all_docs `offset`).

    LMDB keeps no order statistics, so this counts. Paging through a database (each page
    starting where the last ended) would count from the start every time; instead the last answer
    is remembered for the current update seq and counting goes on from there.
    """
    kb = key.encode()
    memo = getattr(db, "_offset_memo", None)
    n, start = 0, None
    if memo is not None and memo[0] == db.update_seq and memo[1] == descending:
        if (not descending and memo[2] <= kb) or (descending and memo[2] >= kb):
            n, start = memo[3], memo[2]
    with db.store.read() as txn:
        entries = _in_id_order(_entries_from(txn.cursor(db=db._docs), start, descending), descending)
        n += _count_live(entries, start, kb, descending)
    db._offset_memo = (db.update_seq, descending, kb, n)
    return n


def count_live_before_capped(db, key: str, descending: bool, cap: int) -> int:
    """`count_live_before`, counting no further than `cap`: a listing whose `offset` CouchDB
    clamps to its `total_rows` (`_design_docs`) need not count a whole database."""
    kb, n = key.encode(), 0
    if cap <= 0:
        return 0
    with db.store.read() as txn:
        for docid, raw in _in_id_order(_entries_from(txn.cursor(db=db._docs), None, descending), descending):
            if docid <= kb if descending else docid >= kb:
                break
            n += raw[:1] == b"L"
            if n >= cap:
                break
    return n


def _count_live(entries, start: bytes | None, kb: bytes, descending: bool) -> int:
    """Live documents from a seek at `start`'s group on (ids past `start` passed) up to `kb`
    excluded, in id order."""
    n = 0
    for docid, raw in entries:
        if start is not None and (docid > start if descending else docid < start):
            continue
        if docid <= kb if descending else docid >= kb:
            return n
        n += raw[:1] == b"L"
    return n


def seq_chunks(db, since: int = 0, descending: bool = False,
               chunk: int = 512) -> Iterator[list[tuple[int, bytes, bytes]]]:
    """The by-sequence index after `since` as chunks of (seq, doc id bytes, stored DocInfo bytes),
    one read transaction per chunk: the raw material of every changes listing."""
    pos = since
    while True:
        batch: list[tuple[int, bytes, bytes]] = []
        with db.store.read() as txn:
            cur = txn.cursor(db=db._seqs)
            if descending:
                ok = cur.set_range(seq_key(pos)) if pos != since else cur.last()
                if ok and pos != since and cur.key() >= seq_key(pos):
                    ok = cur.prev()
                elif not ok and pos != since:
                    ok = cur.last()
            else:
                ok = cur.set_range(seq_key(pos + 1))
            get, docs, unpack = txn.get, db._docs, _SEQ.unpack
            limit = longkeys.PREFIX
            if ok and not descending:
                # the common direction: let LMDB's iterator drive the loop
                ok = False
                for key, docid in cur.iternext():
                    raw = get(docid if len(docid) <= limit else docs_key(docid), db=docs)
                    if raw is not None:
                        batch.append((unpack(key)[0], docid, raw))
                    if len(batch) >= chunk:
                        ok = True
                        break
            while ok and descending and len(batch) < chunk:
                seq = unpack(cur.key())[0]
                if seq <= since:
                    ok = False
                    break
                docid = cur.value()
                raw = get(docs_key(docid), db=docs)
                if raw is not None:
                    batch.append((seq, docid, raw))
                ok = cur.prev()
        if batch:
            yield batch
        if not ok or not batch:
            return
        pos = batch[-1][0]


def changes_since(db, since: int = 0, limit: int | None = None, descending: bool = False,
                  chunk: int = 512) -> Iterator[DocInfo]:
    """Doc infos in update-sequence order after `since`; each document once, at its latest seq."""
    yielded = 0
    for batch in seq_chunks(db, since, descending, chunk):
        for seq, docid, raw in batch:
            yield DocInfo.decode(docid.decode(), raw, seq)
            yielded += 1
            if limit is not None and yielded >= limit:
                return


def count_changes_after(db, seq: int) -> int:
    """Entries of the by-sequence index after `seq` (the `pending` of a limited feed).

    A replicator reads the feed page by page, asking this after each page: the count is carried
    from the previous answer (same update seq, earlier position) minus the page just passed, so a
    whole replication costs one pass instead of one per page.
    """
    memo = getattr(db, "_pending_memo", None)
    with db.store.read() as txn:
        cur = txn.cursor(db=db._seqs)
        if memo is not None and memo[0] == db.update_seq and memo[1] <= seq:
            n = memo[2]
            ok = cur.set_range(seq_key(memo[1] + 1))
            while ok and _SEQ.unpack(cur.key())[0] <= seq:
                n -= 1
                ok = cur.next()
        else:
            n = 0
            ok = cur.set_range(seq_key(seq + 1))
            while ok:
                n += 1
                ok = cur.next()
    db._pending_memo = (db.update_seq, seq, n)
    return n


def _time_entries(db, key: int, inclusive: bool) -> tuple[list[timeseq.Entry], timeseq.Entry | None]:
    """The (at most two) time-index entries just below `key` (or at it, when inclusive), in key
    order, and the oldest entry of all."""
    out: list[timeseq.Entry] = []
    with db.store.read() as txn:
        cur = txn.cursor(db=db.store.db(timeseq.SUBDB))
        first = timeseq.decode_entry(cur.value()) if cur.first() else None
        if first is None:
            return out, None
        target = key + 1 if inclusive else key
        ok = cur.prev() if cur.set_range(timeseq.encode_key(target)) else cur.last()
        while ok and len(out) < 2:
            out.insert(0, timeseq.decode_entry(cur.value()))
            ok = cur.prev()
    return out, first


def seq_since_time(db, t_ms: int) -> int:
    """`since` for a time: every change committed at or after it comes after this sequence."""
    before, _ = _time_entries(db, t_ms, inclusive=False)
    return timeseq.since_seq(before, t_ms)


def seq_until_time(db, t_ms: int) -> int:
    """`until` for a time: every change committed at or before it has at most this sequence."""
    upto, first = _time_entries(db, t_ms, inclusive=True)
    return timeseq.until_seq(upto, t_ms, first, db.update_seq)
