"""Content-addressed, chunked attachment bodies in a database's LMDB environment.

Every attachment body is stored once per database, keyed by its digest, as a run of fixed-size
chunks, so a body of any size streams in and out in bounded memory. The digest is CouchDB's: the
MD5 of the bytes *as stored*, i.e. of the gzip stream for a body stored gzip-encoded (CouchDB's
replicator checks the bytes it receives against it, so nothing else interoperates). All keys live
in the one named sub-database `attachments`, distinguished by a one-byte prefix:

    b"d" + md5(16)              -> record (JSON) of a body stored as sent (identity): id, length,
                                   chunk count and chunk size, creation time
    b"g" + md5(16)              -> record of a body stored gzip-encoded (also: identity length and
                                   the identity bytes' MD5). A separate prefix because the same
                                   stored bytes may be one attachment's gzip form and another's
                                   plain content (a .gz file uploaded as is); they read differently.
    b"c" + blob id(8) + n(4 BE) -> chunk n of the stored (possibly gzip-encoded) bytes
    b"u" + blob id(8)           -> "an upload is writing chunks under this id" (crash leftovers)
    b"v"                        -> digest scheme of this store (see couchpy.attachments.migrate)

Writing. A body arrives piece by piece. Chunks are committed in batches of a few MB each in their
own write transaction (one LMDB transaction holds its dirty pages in memory, so one transaction
per body would hold the whole body). Only at the end is the MD5 known: the final transaction
either records the blob under its digest or, if those bytes are already stored, deletes the
chunks just written. Until then nothing refers to the chunks except the `u` marker, so a crash
mid-upload leaves only garbage that compaction removes; nothing already stored is ever touched.

Reading runs on the event loop, one chunk per short read transaction (the Store must be able to
grow the map between reads).

Garbage. A blob no document revision refers to is removed by `cleanup` (called by compaction),
except blobs whose upload is still in flight or that were just stored for a write that has not
committed yet (pinned in memory, see `pin`/`unpin`).
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import jsonutil
from ..errors import BadRequest, TooLarge
from .codec import Gunzip, StreamDigest, digest_of, md5_of_digest, new_gzip
from .residency import drop_mapped_pages

SUBDB = "attachments"
CHUNK_SIZE = 1 << 20  # bytes per stored chunk
BATCH_BYTES = 8 << 20  # bytes of chunks per write transaction while streaming in
OFFLOAD_BYTES = 64 << 10  # pieces at least this big are compressed on a worker thread
DROP_EVERY = 16 << 20  # bytes of chunk reads after which mapped pages are released
PIN_TTL = 3600.0  # a pin older than this no longer protects a blob (its write surely failed)

_IDX = struct.Struct(">I")


@dataclass(frozen=True)
class BlobMeta:
    md5: bytes  # MD5 of the stored bytes: the digest
    blob_id: bytes
    length: int  # identity (decoded) length
    encoded_length: int  # stored length
    encoding: str  # "identity" or "gzip"
    nchunks: int
    chunk_size: int
    identity_md5: bytes | None = None  # MD5 of the decoded bytes when they are stored encoded

    @property
    def digest(self) -> str:
        return digest_of(self.md5)

    @property
    def key(self) -> bytes:
        return record_key(self.md5, self.encoding)

    def to_json(self) -> bytes:
        return jsonutil.dumps(
            {
                "id": self.blob_id.hex(),
                "len": self.length,
                "elen": self.encoded_length,
                "enc": self.encoding,
                "n": self.nchunks,
                "cs": self.chunk_size,
                "t": int(time.time()),
                **({"imd5": self.identity_md5.hex()} if self.identity_md5 else {}),
            }
        )

    @classmethod
    def from_json(cls, md5: bytes, raw: bytes) -> BlobMeta:
        d = jsonutil.loads(raw)
        imd5 = bytes.fromhex(d["imd5"]) if "imd5" in d else None
        return cls(md5, bytes.fromhex(d["id"]), d["len"], d["elen"], d["enc"], d["n"], d["cs"], imd5)


RECORD_PREFIXES = (b"d", b"g")


def record_key(md5: bytes, encoding: str) -> bytes:
    return (b"g" if encoding == "gzip" else b"d") + md5


def _ckey(blob_id: bytes, n: int) -> bytes:
    return b"c" + blob_id + _IDX.pack(n)


def _ukey(blob_id: bytes) -> bytes:
    return b"u" + blob_id


class BlobStore:
    """The attachment bodies of one database.

    `owner` is a couchpy Database (its `store` may be swapped by compaction, so it is looked up on
    every use, and writes go through its writer so they serialize with document writes and the
    compaction swap) or, for tests, a bare couchpy.storage.Store.
    """

    def __init__(self, owner: Any, chunk_size: int = CHUNK_SIZE, batch_bytes: int = BATCH_BYTES):
        self.owner = owner
        self.chunk_size = chunk_size
        self.batch_bytes = batch_bytes
        self._lock = threading.Lock()
        self._uploading: set[bytes] = set()  # blob ids being written by this process
        self._pins: dict[bytes, tuple[int, float]] = {}  # md5 -> (count, last pin time)
        self._read_since_drop = 0

    @property
    def store(self) -> Any:
        return getattr(self.owner, "store", self.owner)

    def _dbi(self, txn: Any = None) -> Any:
        """The `attachments` sub-database handle of the current environment.

        Inside a write transaction the handle must be opened with that transaction (opening it
        on its own would wait for the write lock this thread already holds)."""
        store = self.store
        handle = getattr(store, "_handles", {}).get(SUBDB)
        if handle is not None:
            return handle
        if txn is None:
            return store.db(SUBDB)
        return store.env.open_db(SUBDB.encode(), txn=txn)

    async def _write(self, fn) -> Any:
        """Run fn(txn) in a durable write transaction, off the event loop."""
        writer = getattr(self.owner, "writer", None)
        if writer is not None:
            return await writer.run_exclusive(fn)
        return await asyncio.get_running_loop().run_in_executor(None, self.store.write, fn)

    # ---- reading -------------------------------------------------------------------------
    def meta(self, digest: str, length: int | None = None) -> BlobMeta | None:
        """The record of a stored body named by its digest. `length` (a stub's identity length)
        tells a gzip-stored body from a plain one with the same stored bytes."""
        with self.store.read() as txn:
            return self.meta_in(txn, digest, length)

    def meta_in(self, txn, digest: str, length: int | None = None) -> BlobMeta | None:
        """Same as meta(), inside a caller's transaction (e.g. the writer's)."""
        md5 = md5_of_digest(digest)
        if md5 is None:
            return None
        dbi = self._dbi(txn)
        found = None
        for prefix in RECORD_PREFIXES:
            raw = txn.get(prefix + md5, db=dbi)
            if raw is not None:
                meta = BlobMeta.from_json(md5, raw)
                if length is None or meta.length == length:
                    return meta
                found = found or meta
        return found

    def record(self, key: bytes) -> BlobMeta | None:
        """The record stored under exactly this key (see record_key)."""
        with self.store.read() as txn:
            raw = txn.get(key, db=self._dbi())
        return None if raw is None else BlobMeta.from_json(key[1:], raw)

    def chunk(self, meta: BlobMeta, n: int) -> bytes:
        dbi = self._dbi()
        store = self.store
        with store.read() as txn:
            data = txn.get(_ckey(meta.blob_id, n), db=dbi)
            if data is not None:
                self._read_since_drop += len(data)
                if self._read_since_drop >= DROP_EVERY:
                    # Inside the read: no map resize can run meanwhile (see couchpy.storage).
                    self._read_since_drop = 0
                    drop_mapped_pages(str(store.path / "data.mdb"))
        if data is None:
            raise RuntimeError(f"attachment chunk missing: {meta.digest} #{n}")
        return data

    def iter_stored(self, meta: BlobMeta, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The stored bytes [start, end) (in the stored encoding), one chunk read at a time."""
        end = meta.encoded_length if end is None else min(end, meta.encoded_length)
        if start >= end:
            return
        cs = meta.chunk_size
        for n in range(start // cs, (end - 1) // cs + 1):
            data = self.chunk(meta, n)
            base = n * cs
            lo, hi = max(start - base, 0), min(end - base, len(data))
            yield data if (lo == 0 and hi == len(data)) else data[lo:hi]

    def iter_identity(self, meta: BlobMeta) -> Iterator[bytes]:
        """The decoded bytes, in bounded pieces."""
        if meta.encoding == "identity":
            yield from self.iter_stored(meta)
            return
        g = Gunzip()
        for data in self.iter_stored(meta):
            yield from g.feed(data)
        tail = g.finish()
        if tail:
            yield tail

    def read_all(self, meta: BlobMeta, decode: bool = True) -> bytes:
        return b"".join(self.iter_identity(meta) if decode else self.iter_stored(meta))

    # ---- writing -------------------------------------------------------------------------
    def writer(
        self,
        name: str,
        *,
        compress: bool,
        level: int = 8,
        max_size: int | None = None,
        input_gzip: bool = False,
    ) -> BlobWriter:
        return BlobWriter(self, name, compress=compress, level=level, max_size=max_size, input_gzip=input_gzip)

    async def store_bytes(self, name: str, data: bytes, **kw: Any) -> BlobMeta:
        w = self.writer(name, **kw)
        try:
            await w.write(data)
            return await w.finish()
        except BaseException:
            await w.abort()
            raise

    # ---- pins: blobs stored for a write that has not committed yet -------------------------
    def pin(self, md5: bytes) -> None:
        with self._lock:
            count, _ = self._pins.get(md5, (0, 0.0))
            self._pins[md5] = (count + 1, time.monotonic())

    def unpin(self, md5: bytes) -> None:
        with self._lock:
            count, t = self._pins.get(md5, (0, 0.0))
            if count <= 1:
                self._pins.pop(md5, None)
            else:
                self._pins[md5] = (count - 1, t)

    def in_use(self) -> tuple[set[bytes], set[bytes]]:
        """(md5s of pinned blobs, ids of blobs being uploaded): what compaction must keep though
        no stored body refers to it yet."""
        pinned = self._pinned()
        with self._lock:
            return pinned, set(self._uploading)

    def _pinned(self) -> set[bytes]:
        now = time.monotonic()
        with self._lock:
            return {m for m, (c, t) in self._pins.items() if c > 0 and now - t < PIN_TTL}

    def stats(self) -> dict[str, int]:
        """Counts of blob records and chunks (for tests and db info)."""
        blobs = chunks = 0
        dbi = self._dbi()
        with self.store.read() as txn:
            cur = txn.cursor(db=dbi)
            for k in cur.iternext(keys=True, values=False):
                if k[:1] in RECORD_PREFIXES:
                    blobs += 1
                elif k[:1] == b"c":
                    chunks += 1
        return {"blobs": blobs, "chunks": chunks}


class BlobWriter:
    """Streams one attachment body into the store. Use write()*, then finish() or abort().

    Throughput: while one batch of chunks is being committed (on a worker thread), the next is
    received; for bodies stored as sent, the MD5 is computed on a worker thread too, batch by
    batch in order (hashlib releases the GIL), so the event loop only buffers and slices."""

    def __init__(
        self,
        blobs: BlobStore,
        name: str,
        *,
        compress: bool,
        level: int,
        max_size: int | None,
        input_gzip: bool,
    ):
        self.blobs = blobs
        self.name = name
        self.max_size = max_size
        self.input_gzip = input_gzip
        self.encoding = "gzip" if (compress or input_gzip) else "identity"
        self._gz = new_gzip(level) if (compress and not input_gzip) else None
        self._gunzip = Gunzip() if input_gzip else None
        # Stored as sent: one digest (identity == stored), computed off the loop per batch.
        self._hash_later = self.encoding == "identity"
        self.identity = StreamDigest()  # MD5/length of the decoded bytes
        self.stored = self.identity if self._hash_later else StreamDigest()  # of the stored bytes
        self._received = 0  # identity bytes received (for the size limit)
        self.blob_id = os.urandom(8)
        self._parts: list[bytes] = []  # received bytes not yet cut into chunks
        self._parts_len = 0
        self._pending: list[bytes] = []  # full chunks not yet committed
        self._pending_bytes = 0
        self._flushed = 0  # chunks handed to a flush so far
        self._flush_task: asyncio.Task | None = None
        self._done = False

    def _account_identity(self, data: bytes) -> None:
        self._received += len(data)
        if self.max_size is not None and self._received > self.max_size:
            raise TooLarge(self.name, error="attachment_too_large")
        if not self._hash_later:
            self.identity.update(data)

    def _add_stored(self, data: bytes) -> None:
        if not data:
            return
        if not self._hash_later:
            self.stored.update(data)
        self._parts.append(data)
        self._parts_len += len(data)
        cs = self.blobs.chunk_size
        if self._parts_len >= cs:
            joined = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            full = len(joined) // cs
            for k in range(full):
                self._pending.append(joined[k * cs : (k + 1) * cs])
            self._pending_bytes += full * cs
            rest = joined[full * cs :]
            self._parts = [rest] if rest else []
            self._parts_len = len(rest)

    async def write(self, data: bytes) -> None:
        if not data:
            return
        data = bytes(data)
        if self._gunzip is not None:
            for piece in self._gunzip.feed(data):
                self._account_identity(piece)
            self._add_stored(data)
        else:
            self._account_identity(data)
            if self._gz is not None:
                # zlib releases the GIL: compress big pieces off the event loop.
                if len(data) >= OFFLOAD_BYTES:
                    data = await asyncio.get_running_loop().run_in_executor(None, self._gz.compress, data)
                else:
                    data = self._gz.compress(data)
            self._add_stored(data)
        if self._pending_bytes >= self.blobs.batch_bytes:
            await self._start_flush()

    @property
    def received(self) -> int:
        """Identity bytes received so far."""
        return self._received

    async def wait_committed(self) -> None:
        """Wait until every full chunk handed off so far is committed."""
        await self._wait_flush()

    async def _wait_flush(self) -> None:
        task, self._flush_task = self._flush_task, None
        if task is not None:
            await task

    async def _start_flush(self) -> None:
        """Hand the pending chunks to a background flush (after the previous one finished)."""
        await self._wait_flush()
        chunks, first = self._pending, self._flushed
        self._pending, self._pending_bytes = [], 0
        self._flushed += len(chunks)
        self._flush_task = asyncio.ensure_future(self._flush(chunks, first))

    async def _hash(self, chunks: list[bytes]) -> None:
        if not self._hash_later or not chunks:
            return
        digest = self.identity

        def run() -> None:
            for c in chunks:
                digest.update(c)

        await asyncio.get_running_loop().run_in_executor(None, run)

    async def _flush(self, chunks: list[bytes], first: int) -> None:
        blob_id, blobs = self.blob_id, self.blobs
        with blobs._lock:
            blobs._uploading.add(blob_id)

        def put(txn) -> None:
            dbi = blobs._dbi(txn)
            txn.put(_ukey(blob_id), b"1", db=dbi)
            for i, data in enumerate(chunks):
                txn.put(_ckey(blob_id, first + i), data, db=dbi)

        await asyncio.gather(self._hash(chunks), blobs._write(put))

    async def finish(
        self, expected_digests: Iterable[str] | None = None, defer_small: bool = False
    ) -> BlobMeta | DeferredBlob:
        """Commit the body; returns the blob record (an existing one if these bytes are stored).

        expected_digests: digests the sender announced; the body must match one of them
        (400 otherwise), compared with both the identity and the stored bytes' MD5.
        defer_small: when the whole body is still in memory (nothing committed yet) and not
        stored already, return a DeferredBlob instead of committing it: the caller commits it
        in its own write transaction (the document write), saving one durable commit.
        """
        if self._gunzip is not None:
            tail = self._gunzip.finish()
            if tail:
                self._account_identity(tail)
        if self._gz is not None:
            self._add_stored(self._gz.flush())
            self._gz = None
        if self._parts:
            rest = b"".join(self._parts)
            self._parts, self._parts_len = [], 0
            self._pending.append(rest)
        await self._wait_flush()
        await self._hash(self._pending)
        if expected_digests is not None:
            wanted = {d for d in expected_digests if d}
            if wanted and not (wanted & {self.identity.digest(), self.stored.digest()}):
                raise BadRequest(f"Attachment {self.name} does not match its digest", error="content_md5_mismatch")
        md5 = self.stored.raw()  # the digest names the stored bytes, as CouchDB's
        chunks, first = self._pending, self._flushed
        self._pending = []
        # Chunks handed to flushes are committed by now (the last flush was awaited above).
        total = first + len(chunks)
        meta = BlobMeta(
            md5=md5,
            blob_id=self.blob_id,
            length=self.identity.length,
            encoded_length=self.stored.length,
            encoding=self.encoding,
            nchunks=total,
            chunk_size=self.blobs.chunk_size,
            identity_md5=self.identity.raw() if self.encoding != "identity" else None,
        )
        blobs, blob_id = self.blobs, self.blob_id

        def commit(txn) -> BlobMeta:
            dbi = blobs._dbi(txn)
            raw = txn.get(meta.key, db=dbi)
            if raw is not None:
                # Same bytes already stored: drop what this upload wrote.
                for i in range(first):
                    txn.delete(_ckey(blob_id, i), db=dbi)
                if first:
                    txn.delete(_ukey(blob_id), db=dbi)
                return BlobMeta.from_json(md5, raw)
            for i, data in enumerate(chunks):
                txn.put(_ckey(blob_id, first + i), data, db=dbi)
            txn.put(meta.key, meta.to_json(), db=dbi)
            if first:
                txn.delete(_ukey(blob_id), db=dbi)
            return meta

        # Pin before committing so a concurrent compaction cannot take it before the doc write.
        blobs.pin(md5)
        try:
            existing = blobs.record(meta.key) if first == 0 else None
            if existing is not None:
                result = existing  # already stored, nothing to write
            elif first == 0 and defer_small:
                self._done = True
                return DeferredBlob(meta, chunks)
            else:
                result = await blobs._write(commit)
        except BaseException:
            blobs.unpin(md5)
            raise
        finally:
            with blobs._lock:
                blobs._uploading.discard(blob_id)
        self._done = True
        return result

    async def abort(self) -> None:
        """Remove the chunks this upload committed (the request was rejected)."""
        if self._done:
            return
        self._done = True
        try:
            await self._wait_flush()
        except Exception:  # noqa: BLE001 - a failed flush wrote nothing; still clean up the rest
            pass
        n, blob_id, blobs = self._flushed, self.blob_id, self.blobs
        if n:

            def drop(txn) -> None:
                dbi = blobs._dbi(txn)
                for i in range(n):
                    txn.delete(_ckey(blob_id, i), db=dbi)
                txn.delete(_ukey(blob_id), db=dbi)

            try:
                await blobs._write(drop)
            finally:
                with self.blobs._lock:
                    self.blobs._uploading.discard(blob_id)


@dataclass
class DeferredBlob:
    """A small body kept in memory until the document write that refers to it commits it."""

    meta: BlobMeta
    chunks: list[bytes]

    def commit_in(self, blobs: BlobStore, txn: Any) -> BlobMeta:
        """Write it in the caller's write transaction (unless those bytes are stored by now)."""
        dbi = blobs._dbi(txn)
        raw = txn.get(self.meta.key, db=dbi)
        if raw is not None:
            return BlobMeta.from_json(self.meta.md5, raw)
        for i, data in enumerate(self.chunks):
            txn.put(_ckey(self.meta.blob_id, i), data, db=dbi)
        txn.put(self.meta.key, self.meta.to_json(), db=dbi)
        return self.meta


async def aiter_pieces(it: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Yield from a sync chunk iterator, letting the event loop breathe between chunks."""
    for piece in it:
        yield piece
        await asyncio.sleep(0)
