"""The attachment blob store on a real LMDB environment: round trips, dedup, chunking, gzip,
limits, aborts and garbage collection."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchpy.attachments import codec
from couchpy.attachments.blobstore import BlobStore
from couchpy.errors import BadRequest, TooLarge
from couchpy.storage import Store


def md5_digest(data: bytes) -> str:
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


def gzip_as_couchdb(data: bytes) -> bytes:
    """What CouchDB stores for a compressible body: zlib level 8, gzip wrapper, default window."""
    z = zlib.compressobj(8, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "env", ("attachments",))
    yield s
    s.close()


async def put(bs: BlobStore, data: bytes, pieces: int = 1, **kw):
    w = bs.writer("a", compress=kw.pop("compress", False), **kw)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        await w.write(data[i : i + step])
    return await w.finish()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=5000), pieces=st.integers(1, 7), compress=st.booleans())
async def test_round_trip_random_bytes(store, data, pieces, compress):
    bs = BlobStore(store, chunk_size=512, batch_bytes=1024)
    meta = await put(bs, data, pieces, compress=compress)
    # CouchDB's digest: MD5 of the bytes as stored (the gzip stream when compressed)
    assert meta.digest == md5_digest(bs.read_all(meta, decode=False))
    assert meta.digest == md5_digest(gzip_as_couchdb(data) if compress else data)
    assert meta.length == len(data)
    again = bs.meta(meta.digest)
    assert again is not None and again.length == len(data)
    assert bs.read_all(again) == data
    if again.encoding == "gzip":
        assert gzip.decompress(bs.read_all(again, decode=False)) == data


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=3000), a=st.integers(0, 3000), b=st.integers(0, 3000))
async def test_ranges_of_stored_bytes(store, data, a, b):
    bs = BlobStore(store, chunk_size=256, batch_bytes=512)
    meta = await put(bs, data, 3)
    lo, hi = min(a, b), max(a, b)
    assert b"".join(bs.iter_stored(meta, lo, hi)) == data[lo:hi]


async def test_same_bytes_stored_once(store):
    bs = BlobStore(store, chunk_size=1000, batch_bytes=2000)
    data = os.urandom(10_000)
    m1 = await put(bs, data, 10)
    m2 = await put(bs, data, 3)
    assert m1.digest == m2.digest and m1.blob_id == m2.blob_id
    stats = bs.stats()
    assert stats == {"blobs": 1, "chunks": 10}


async def test_compressible_is_gzipped(store):
    bs = BlobStore(store)
    text = b"hello couchpy " * 5000
    meta = await put(bs, text, 4, compress=True)
    assert meta.encoding == "gzip"
    assert meta.encoded_length < len(text) // 10
    assert meta.digest == md5_digest(gzip_as_couchdb(text))  # of the stored (gzip) bytes
    assert meta.identity_md5 == hashlib.md5(text).digest()
    assert bs.read_all(meta) == text


async def test_gzip_input_is_stored_encoded(store):
    bs = BlobStore(store, chunk_size=100, batch_bytes=300)
    text = b"abc" * 1000
    enc = gzip.compress(text)
    meta = await put(bs, enc, 5, input_gzip=True)
    assert meta.encoding == "gzip" and meta.length == len(text)
    assert meta.digest == md5_digest(enc)  # the gzip bytes as received are what is stored
    assert bs.read_all(meta, decode=False) == enc
    assert bs.read_all(meta) == text


async def test_too_large_and_abort_leaves_nothing(store):
    bs = BlobStore(store, chunk_size=100, batch_bytes=200)
    w = bs.writer("big", compress=False, max_size=1000)
    await w.write(b"x" * 600)
    await w.wait_committed()  # chunks are in the store already
    with pytest.raises(TooLarge) as exc:
        await w.write(b"y" * 600)
    assert exc.value.error == "attachment_too_large" and exc.value.status == 413
    await w.abort()
    assert bs.stats() == {"blobs": 0, "chunks": 0}


async def test_digest_mismatch_rejected(store):
    bs = BlobStore(store, chunk_size=100, batch_bytes=200)
    w = bs.writer("x", compress=False)
    await w.write(b"z" * 1000)
    with pytest.raises(BadRequest):
        await w.finish([md5_digest(b"something else")])
    await w.abort()
    assert bs.stats() == {"blobs": 0, "chunks": 0}
    w = bs.writer("x", compress=False)
    await w.write(b"z" * 1000)
    meta = await w.finish([md5_digest(b"z" * 1000)])
    assert meta.length == 1000


def test_codec_base64_and_digests():
    assert codec.decode_base64("aGVs\nbG8=", "a") == b"hello"
    for bad in ("not base64!", "aGVsbG8", 12):
        with pytest.raises(BadRequest):
            codec.decode_base64(bad, "a")
    d = md5_digest(b"x")
    assert codec.md5_of_digest(d) == hashlib.md5(b"x").digest()
    assert codec.md5_of_digest("sha-abc") is None
    pats = codec.parse_type_patterns(None)
    assert codec.is_compressible("text/plain; charset=utf-8", pats)
    assert codec.is_compressible("application/json", pats)
    assert not codec.is_compressible("image/png", pats)


def test_gunzip_bounds_output_pieces():
    bomb = gzip.compress(b"\0" * (20 << 20))
    pieces = list(codec.gunzip_pieces([bomb]))
    assert sum(len(p) for p in pieces) == 20 << 20
    assert max(len(p) for p in pieces) <= codec.DECODE_PIECE


async def test_concurrent_uploads_of_same_and_different_bytes(store):
    import asyncio

    bs = BlobStore(store, chunk_size=1000, batch_bytes=3000)
    same = os.urandom(20_000)
    others = [os.urandom(7_000) for _ in range(4)]

    async def up(data):
        w = bs.writer("c", compress=False)
        for i in range(0, len(data), 1500):
            await w.write(data[i : i + 1500])
            await asyncio.sleep(0)
        return await w.finish()

    metas = await asyncio.gather(*(up(same) for _ in range(5)), *(up(d) for d in others))
    assert len({m.blob_id for m in metas[:5]}) == 1  # one blob won, the others dropped theirs
    assert bs.stats() == {"blobs": 5, "chunks": 20 + 4 * 7}
    for m, data in zip(metas, [same] * 5 + others):
        assert bs.read_all(bs.meta(m.digest)) == data


async def test_same_stored_bytes_plain_and_gzip_stay_apart(store):
    """A .gz file uploaded as is and the text it decodes to, stored compressed, have the same
    stored bytes and so the same digest (as in CouchDB); each still reads as itself."""
    bs = BlobStore(store, chunk_size=100, batch_bytes=300)
    text = b"the same stored bytes " * 40
    gz = gzip_as_couchdb(text)
    plain = await put(bs, gz, 2)
    packed = await put(bs, text, 3, compress=True)
    assert plain.digest == packed.digest == md5_digest(gz)
    assert (plain.encoding, packed.encoding) == ("identity", "gzip")
    assert bs.read_all(bs.meta(plain.digest, len(gz))) == gz
    assert bs.read_all(bs.meta(packed.digest, len(text))) == text
    assert bs.stats()["blobs"] == 2
