"""Database compaction: a new environment with only what is live, written while the database
keeps serving, then swapped in (couchpy.envswap).

What is live: every document's by-id record and by-sequence entry, the bodies of its leaf
revisions (the revision tree itself is already stemmed to `revs_limit` by every write), the
attachment blobs those bodies (or uploads in flight) refer to, `_local` documents and meta.

1. copy (online): documents in id order, a chunk per short read transaction of the live
   environment. The update sequence seen before the first chunk is remembered: whatever changes
   after it is caught up below, so chunks need not come from one snapshot.
2. catch up (online): documents changed since, found in the by-sequence index, until few remain.
3. final (exclusive): inside one write transaction of the live environment, so no write can
   come between: the documents purged since the copy began (a purge that removes a whole
   document leaves no sequence for the catch-up to find, so the copy would bring it back), the
   last changes, `_local` documents, meta (sizes recounted), uploads in flight and sub-databases
   compaction does not know; then the copy is synced, sealed and swapped in, and the same
   transaction marks the old environment retired (couchpy.storage.RETIRED_KEY) as it commits.
   Other server processes that still have the old environment open move to the new one when
   they see the mark (couchpy.storage.Store `follow`); LMDB's writer lock, which every process
   shares, keeps their writes out of the old environment from the last copy to the mark, and the
   swap lock held until the commit keeps them from opening the new one before the mark is there.

Keys are appended in order where they come in order (MDB_APPEND fills pages completely; LMDB's
own compact copy keeps half-empty pages as they are, which is most of what updates leave).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lmdb
import orjson

from . import bodycodec, envswap, jsonutil, partition_sizes, partitions, purge, sizes, timeseq
from .attachments.access import blobs_for
from .attachments.blobstore import RECORD_PREFIXES, SUBDB as ATTACHMENTS, BlobMeta, _ckey, _ukey
from .attachments.codec import md5_of_digest
from .docinfo import DocInfo, body_key, docs_key, id_of, seq_key
from .storage import RETIRED_KEY, Store, retire
from .updates import META_KEY

CHUNK = 500  # documents per read transaction of the live environment
FINAL_BELOW = 500  # changes left over for the exclusive phase
KNOWN = {"docs", "seqs", "bodies", "local", "meta", ATTACHMENTS, partition_sizes.SUBDB}
_SEQ = struct.Struct(">Q")

Progress = Callable[[dict[str, Any]], None]


def _put(txn: lmdb.Transaction, key: bytes, value: bytes, db) -> None:
    """Append when the key sorts last (full pages), otherwise an ordinary put."""
    if not txn.put(key, value, db=db, append=True):
        txn.put(key, value, db=db)


class _Doc:
    """One document as read from an environment: its record and its leaves' bodies, each as
    (key, JSON, what the copy stores: re-encoded with `encode`, or as read)."""

    __slots__ = ("key", "raw", "info", "id", "bodies")

    def __init__(self, txn: lmdb.Transaction, key: bytes, raw: bytes, bodies_db, decode: bodycodec.Codec,
                 encode: bodycodec.Codec | None = None) -> None:
        self.key, self.raw = key, raw  # the by-id index key (couchpy.docinfo.docs_key) and record
        self.id = id_of(key, raw)
        self.info = DocInfo.decode(self.id.decode(), raw)
        keys = sorted(body_key(self.info.id, rev) for rev in self.info.leaves())
        self.bodies = []
        for k in keys:
            v = txn.get(k, db=bodies_db)
            if v is not None:
                json = decode.decode(v)
                self.bodies.append((k, json, v if encode is None else encode.encode(json)))


class Compactor:
    def __init__(self, db: Any, progress: Progress | None = None) -> None:
        self.db = db
        self.src: Store = db.store
        self.directory: Path = db.store.path.parent
        self.progress = progress or (lambda fields: None)
        self.dst: Store | None = None
        self.seq = 0  # every change up to this sequence is in the copy
        self.purge_seq = 0  # every purge up to this purge sequence is in the copy
        self.external = 0
        self.codec = bodycodec.PLAIN  # how the copy stores bodies (see `_train`)
        self.live_bodies = 0  # key and value bytes of the bodies in the copy
        self.blobs: set[bytes] = set()  # md5s of the blobs in the copy
        # each partition's counts in the copy (couchpy.partition_sizes): recounted, since the
        # copy stores bodies its own way (sizes.active)
        self.partitions: dict[str, partition_sizes.Counts] | None = {} if db.partitioned else None
        self._wanted: set[bytes] = set()  # md5s the copied bodies refer to
        self.done = 0
        self.total = 0
        self.cancelled = threading.Event()

    # ---------------------------------------------------------------- helpers
    def _h(self, store: Store, name: str):
        return store.db(name)

    def _report(self, **extra: Any) -> None:
        total = max(self.total, self.done, 1)
        self.progress({"changes_done": self.done, "total_changes": total,
                       "progress": min(100, self.done * 100 // total), **extra})

    # ---------------------------------------------------------------- phases 1 and 2 (a thread)
    def copy(self) -> None:
        """Phases 1 and 2, on a worker thread, while the database serves."""
        with envswap.swap_lock(self.directory, exclusive=True):
            envswap.discard_copy(self.directory, retire=retire)
        names = self.src.subdb_names()
        self.dst = Store(self.directory / envswap.NEW, tuple(names),
                         map_size=self.src.env.info()["map_size"], durable=False)
        with self.src.read() as txn:
            meta = jsonutil.loads(txn.get(META_KEY, db=self._h(self.src, "meta")) or b"{}")
        self.seq = meta.get("update_seq", 0)
        self.purge_seq = meta.get("purge_seq", 0)
        self.total = meta.get("doc_count", 0) + meta.get("doc_del_count", 0)
        self._report(phase="document_copy")
        self._train()
        after: bytes | None = None
        while True:
            self._check()
            with self.src.read() as txn:
                docs = self._read_docs(txn, after)
            if not docs:
                break
            self._write_copied(docs)
            after = docs[-1].key
            self.done += len(docs)
            self._report(phase="document_copy")
        self._copy_blobs(self._wanted - self.blobs)
        while True:  # catch up until what is left is small enough to do exclusively
            self._check()
            with self.src.read() as txn:
                left = self._pending(txn)
                if left <= FINAL_BELOW:
                    break
                self._catch_up(txn, limit=CHUNK)
            self._report(phase="document_copy", retry=True)

    def _train(self) -> None:
        """A dictionary for the copy's bodies, trained on the database's first documents (unless
        `[couchdb] file_compression = none`)."""
        setting = (self.db.config.get("couchdb", "file_compression") or "").strip().lower()
        if setting == "none":
            return
        samples: list[bytes] = []
        with self.src.read() as txn:
            cur = txn.cursor(db=self._h(self.src, "docs"))
            bodies = self._h(self.src, "bodies")
            ok = cur.first()
            while ok and len(samples) < bodycodec.SAMPLES:
                samples += [json for _, json, _ in _Doc(txn, cur.key(), cur.value(), bodies, self.db.codec).bodies]
                ok = cur.next()
        dictionary = bodycodec.train(samples)
        if dictionary is not None:
            self.codec = bodycodec.Codec(dictionary)

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise RuntimeError("compaction cancelled")

    def _read_docs(self, txn: lmdb.Transaction, after: bytes | None) -> list[_Doc]:
        cur = txn.cursor(db=self._h(self.src, "docs"))
        ok = cur.set_range(after) if after is not None else cur.first()
        if ok and after is not None and cur.key() == after:
            ok = cur.next()
        bodies = self._h(self.src, "bodies")
        out = []
        while ok and len(out) < CHUNK:
            out.append(_Doc(txn, cur.key(), cur.value(), bodies, self.db.codec, self.codec))
            ok = cur.next()
        return out

    def _note_bodies(self, doc: _Doc, sign: int = 1) -> None:
        if self.partitions is not None and (partition := partitions.partition_of(doc.info.id)) is not None:
            counts = partition_sizes.doc_counts(doc.info.deleted, doc.bodies)
            self.partitions[partition] = self.partitions.get(partition, partition_sizes.ZERO) + (
                counts if sign > 0 else -counts)
        for key, json, stored in doc.bodies:
            self.external += sign * sizes.body_external(json)
            self.live_bodies += sign * sizes.stored(key, stored)
            if sign > 0 and sizes.ATTACHMENTS in json:
                self._wanted.update(_md5s(json))

    def _write_copied(self, docs: list[_Doc]) -> None:
        d_docs, d_seqs, d_bodies = (self._h(self.dst, n) for n in ("docs", "seqs", "bodies"))

        def put(txn: lmdb.Transaction) -> None:
            for doc in docs:
                _put(txn, doc.key, doc.raw, d_docs)
                txn.put(seq_key(doc.info.seq), doc.id, db=d_seqs)
                for k, _, v in doc.bodies:
                    _put(txn, k, v, d_bodies)

        self.dst.write(put)
        for doc in docs:
            self._note_bodies(doc)

    def _pending(self, txn: lmdb.Transaction) -> int:
        meta = jsonutil.loads(txn.get(META_KEY, db=self._h(self.src, "meta")) or b"{}")
        return meta.get("update_seq", 0) - self.seq

    def _catch_up(self, txn: lmdb.Transaction, limit: int | None) -> None:
        """Copy the documents changed after `self.seq` (at most `limit` changes), replacing what
        the copy holds of them."""
        cur = txn.cursor(db=self._h(self.src, "seqs"))
        ok = cur.set_range(seq_key(self.seq + 1))
        s_docs, s_bodies = self._h(self.src, "docs"), self._h(self.src, "bodies")
        docs: list[_Doc] = []
        last = self.seq
        while ok and (limit is None or len(docs) < limit):
            last = _SEQ.unpack(cur.key())[0]
            key = docs_key(cur.value())
            raw = txn.get(key, db=s_docs)
            if raw is not None:
                docs.append(_Doc(txn, key, raw, s_bodies, self.db.codec, self.codec))
            ok = cur.next()
        if not docs:
            self.seq = max(self.seq, last)
            return
        d_docs, d_seqs, d_bodies = (self._h(self.dst, n) for n in ("docs", "seqs", "bodies"))

        def replace(dtxn: lmdb.Transaction) -> list[_Doc]:
            replaced = []
            for doc in docs:
                old_raw = dtxn.get(doc.key, db=d_docs)
                if old_raw is not None:
                    old = _Doc(dtxn, doc.key, old_raw, d_bodies, self.codec)
                    dtxn.delete(seq_key(old.info.seq), db=d_seqs)
                    for k, _, _ in old.bodies:
                        dtxn.delete(k, db=d_bodies)
                    replaced.append(old)
                dtxn.put(doc.key, doc.raw, db=d_docs)
                dtxn.put(seq_key(doc.info.seq), doc.id, db=d_seqs)
                for k, _, v in doc.bodies:
                    dtxn.put(k, v, db=d_bodies)
            return replaced

        for old in self.dst.write(replace):
            self._note_bodies(old, -1)
        for doc in docs:
            self._note_bodies(doc)
        self.seq = last
        self.done += len(docs)
        self.total += len(docs)
        self._copy_blobs(self._wanted - self.blobs, txn)

    def _drop_purged(self, txn: lmdb.Transaction) -> None:
        """Remove from the copy the documents purges removed from the live environment since the
        copy began. A document a purge only trimmed got a new sequence: the catch-up replaces it."""
        s_docs = self._h(self.src, "docs")
        found = list(purge.purged_since(txn, self._h(self.src, purge.SUBDB), self.purge_seq))
        if found and found[0][0] == self.purge_seq + 1:
            keys = {docs_key(docid.encode()) for _, docid in found}
        elif found or self._purge_seq_now(txn) > self.purge_seq:
            # purge infos past the limit were dropped before this phase read them: check every
            # document of the copy against the live environment instead
            with self.dst.read() as dtxn:
                keys = {key for key, _ in dtxn.cursor(db=self._h(self.dst, "docs"))}
        else:
            return
        gone = {key for key in keys if txn.get(key, db=s_docs) is None}
        self.purge_seq = self._purge_seq_now(txn)
        if not gone:
            return
        d_docs, d_seqs, d_bodies = (self._h(self.dst, n) for n in ("docs", "seqs", "bodies"))

        def drop(dtxn: lmdb.Transaction) -> list[_Doc]:
            dropped = []
            for key in sorted(gone):
                raw = dtxn.get(key, db=d_docs)
                if raw is None:
                    continue
                old = _Doc(dtxn, key, raw, d_bodies, self.codec)
                dtxn.delete(seq_key(old.info.seq), db=d_seqs)
                for k, _, _ in old.bodies:
                    dtxn.delete(k, db=d_bodies)
                dtxn.delete(key, db=d_docs)
                dropped.append(old)
            return dropped

        for old in self.dst.write(drop):
            self._note_bodies(old, -1)

    def _purge_seq_now(self, txn: lmdb.Transaction) -> int:
        return jsonutil.loads(txn.get(META_KEY, db=self._h(self.src, "meta")) or b"{}").get("purge_seq", 0)

    # ---------------------------------------------------------------- attachments
    def _copy_blobs(self, md5s: Iterable[bytes], txn: lmdb.Transaction | None = None,
                    uploads: Iterable[bytes] = ()) -> None:
        """Copy blobs (by md5) and uploads in flight (by blob id) with their chunks."""
        md5s, uploads = sorted(md5s), sorted(uploads)
        if not md5s and not uploads:
            return
        s_att, d_att = self._h(self.src, ATTACHMENTS), self._h(self.dst, ATTACHMENTS)
        reading = contextlib.nullcontext(txn) if txn is not None else self.src.read()
        with reading as rtxn:
            # a blob's record (one per stored encoding) and its chunks
            records = [(m, p + m, raw) for m in md5s for p in RECORD_PREFIXES
                       if (raw := rtxn.get(p + m, db=s_att)) is not None]
            keys = [k for _, k, _ in records]
            for m, _, raw in records:
                meta = BlobMeta.from_json(m, raw)
                keys += [_ckey(meta.blob_id, i) for i in range(meta.nchunks)]
            keys += [_ukey(b) for b in uploads]
            for blob_id in uploads:
                cur = rtxn.cursor(db=s_att)
                prefix = b"c" + blob_id
                if cur.set_range(prefix):
                    keys += [k for k in _iter_prefix(cur, prefix)]
            # Chunks can be large: copy them in bounded write transactions of the copy.
            batch: list[tuple[bytes, bytes]] = []
            size = 0
            for k in sorted(set(keys)):
                v = rtxn.get(k, db=s_att)
                if v is None:
                    continue
                batch.append((k, v))
                size += len(v)
                if size > 8 << 20:
                    self._put_all(d_att, batch)
                    batch, size = [], 0
            self._put_all(d_att, batch)
        self.blobs.update(m for m, _, _ in records)

    def _put_all(self, dbi, items: list[tuple[bytes, bytes]]) -> None:
        if items:
            self.dst.write(lambda t: [_put(t, k, v, dbi) for k, v in items])

    # ---------------------------------------------------------------- phase 3 (exclusive)
    def final(self, txn: lmdb.Transaction) -> dict:
        """In a write transaction of the live environment (no write can come between): the last
        changes and everything without a sequence; returns the meta the copy holds."""
        self._drop_purged(txn)
        while self._pending(txn) > 0:
            before = self.seq
            self._catch_up(txn, limit=None)
            if self.seq == before:
                break
        pinned, uploading = blobs_for(self.db).in_use()
        self._copy_blobs(pinned - self.blobs, txn, uploads=uploading)
        for name in ["local", "meta", *sorted(set(self.dst._handles) - KNOWN)]:
            self._replace_subdb(txn, name)
        raw = txn.get(META_KEY, db=self._h(self.src, "meta"))
        meta = jsonutil.loads(raw) if raw is not None else dict(self.db.meta)  # never written yet
        meta["external_size"] = self.external
        meta["live_body_size"] = self.live_bodies
        if self.partitions is not None:
            meta[partition_sizes.READY] = True
        packed = jsonutil.dumps(meta)
        dictionary = self.codec.dictionary
        totals = self.partitions

        def put_meta(t: lmdb.Transaction) -> None:
            if totals is not None:
                partition_sizes.write_all(t, self._h(self.dst, partition_sizes.SUBDB), totals)
            t.put(META_KEY, packed, db=self._h(self.dst, "meta"))
            if dictionary is None:
                t.delete(bodycodec.DICT_KEY, db=self._h(self.dst, "meta"))
            else:
                t.put(bodycodec.DICT_KEY, dictionary, db=self._h(self.dst, "meta"))

        self.dst.write(put_meta)
        self.dst.sync()
        self.done = self.total
        self._report(phase="document_copy")
        return meta

    def _replace_subdb(self, txn: lmdb.Transaction, name: str) -> None:
        items = list(txn.cursor(db=self._h(self.src, name)))
        if name == "meta":  # the mark this transaction puts into the environment it retires
            items = [(k, v) for k, v in items if k != RETIRED_KEY]
        if name == timeseq.SUBDB:  # old time buckets merge into coarser ones (couchpy.timeseq)
            merged = timeseq.coarsen([(timeseq.decode_key(k), timeseq.decode_entry(v)) for k, v in items],
                                     int(self.db.clock() * 1000))
            items = [(timeseq.encode_key(k), timeseq.encode_entry(e)) for k, e in merged]
        dbi = self._h(self.dst, name)

        def put(t: lmdb.Transaction) -> None:
            t.drop(dbi, delete=False)
            for k, v in items:
                _put(t, k, v, dbi)

        self.dst.write(put)

    def close(self) -> None:
        if self.dst is not None:
            self.dst.close()
            self.dst = None


def _iter_prefix(cur: lmdb.Cursor, prefix: bytes):
    for k in cur.iternext(keys=True, values=False):
        if not k.startswith(prefix):
            break
        yield k


def _md5s(raw: bytes) -> set[bytes]:
    atts = orjson.loads(raw).get("_attachments") or {}
    out = set()
    for entry in atts.values():
        if isinstance(entry, dict):
            md5 = md5_of_digest(entry.get("digest"))
            if md5 is not None:
                out.add(md5)
    return out


async def compact(db: Any, progress: Progress | None = None) -> None:
    """Compact `db` online; returns when the compacted environment is in place."""
    loop = asyncio.get_running_loop()
    report = progress or (lambda fields: None)
    compactor = Compactor(db, lambda fields: loop.call_soon_threadsafe(report, fields))
    directory = compactor.directory
    installed = False

    def final(txn: lmdb.Transaction) -> dict:
        """The exclusive phase, then the swap, in one write transaction of the old environment
        (under the swap lock: see `compact`)."""
        nonlocal installed
        # The mark first: an error anywhere below aborts the transaction and the mark with it;
        # after the renames nothing can fail but the commit. (`final` copies meta without it.)
        txn.put(RETIRED_KEY, b"1", db=compactor.src.db("meta"))
        meta = compactor.final(txn)
        compactor.close()
        envswap.seal(directory / envswap.NEW)
        envswap.install(directory)
        installed = True
        return meta

    async def adopt(meta: dict) -> None:
        # after the commit, before any later write of this process: move to the new environment
        # (synchronous on the event loop, so no request of the loop is inside; readers in other
        # threads are waited for)
        db.store.reopen(generation)
        db.apply_meta(meta)

    generation = db.store.generation
    try:
        with envswap.compacting(directory):
            await loop.run_in_executor(None, compactor.copy)
            await db.writer.run_exclusive(final, then=adopt,
                                          holding=lambda: envswap.swap_lock(directory, exclusive=True))
    finally:
        compactor.close()
        if installed:
            # also when the commit that marks the old environment failed: then `recover` below
            # marks it, once this process no longer has it open
            db.store.reopen(generation)
        await loop.run_in_executor(None, _clean_up, directory, installed)


def _clean_up(directory: Path, installed: bool) -> None:
    """Remove the replaced environment (marked retired first, if it is not yet) or the copy."""
    with envswap.swap_lock(directory, exclusive=True):
        if installed:
            envswap.recover(directory, retire=retire)
        else:
            envswap.discard_copy(directory, retire=retire)
