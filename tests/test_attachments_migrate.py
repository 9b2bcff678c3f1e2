"""Data written by earlier couchpy versions (gzip-stored bodies named by the MD5 of their decoded
bytes) is migrated on open: records re-keyed, stubs renamed, contents unchanged."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest

import couchpy
from couchpy import bodycodec, jsonutil
from couchpy.attachments import migrate
from couchpy.attachments.access import blobs_for
from couchpy.database import SUBDBS
from couchpy.storage import Store


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def digest(data: bytes) -> str:
    return "md5-" + b64(hashlib.md5(data).digest())


def gzip_as_couchdb(data: bytes) -> bytes:
    z = zlib.compressobj(8, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


def make_legacy(main: "Store", keep_emd5: bool) -> int:
    """Turn a store written by this version back into what earlier versions wrote."""
    atts, bodies = main.db("attachments"), main.db("bodies")
    with main.read() as txn:
        codec = bodycodec.Codec(txn.get(bodycodec.DICT_KEY, db=main.db("meta")))
    renamed = {}

    def undo(txn) -> None:
        for key, raw in list(txn.cursor(db=atts)):
            if key[:1] != b"g":
                continue
            rec = jsonutil.loads(raw)
            identity = bytes.fromhex(rec.pop("imd5"))
            if keep_emd5:
                rec["emd5"] = key[1:].hex()
            txn.delete(key, db=atts)
            txn.put(b"d" + identity, jsonutil.dumps(rec), db=atts)
            renamed["md5-" + b64(key[1:])] = "md5-" + b64(identity)
        for key, stored in list(txn.cursor(db=bodies)):
            body = jsonutil.loads(codec.decode(stored))
            if migrate.rename_digests(body, renamed):
                txn.put(key, codec.encode(jsonutil.dumps(body)), db=bodies)
        txn.delete(migrate.VERSION_KEY, db=atts)

    main.write(undo)
    return len(renamed)


@pytest.mark.parametrize("keep_emd5", [True, False])
async def test_old_gzip_digests_are_migrated_on_open(tmp_path, keep_emd5):
    text = b"hello " * 9 + b"hello"
    binary = bytes(range(256))
    node = couchpy.open(tmp_path / "data")
    db = node.create_db("old")
    await db.put({"_id": "d", "_attachments": {
        "note.txt": {"content_type": "text/plain", "data": b64(text)},
        "b.bin": {"content_type": "application/octet-stream", "data": b64(binary)}}})
    main_dir = db.directory / "main"
    await node.aclose()

    main = Store(main_dir, SUBDBS)
    assert make_legacy(main, keep_emd5) == 1
    with main.read() as txn:
        legacy = jsonutil.loads(txn.get(next(k for k, v in txn.cursor(db=main.db("bodies"))
                                             if b'"_attachments"' in v), db=main.db("bodies")))
    main.close()
    # the old digest was the decoded bytes' MD5 (the value the issue with CouchDB was about)
    assert legacy["_attachments"]["note.txt"]["digest"] == digest(text) == "md5-vWlRKiSe8h1STlamxsnsGA=="

    node = couchpy.open(tmp_path / "data")
    try:
        db = node.get_db("old")
        doc = db.get("d")
        atts = doc["_attachments"]
        assert atts["note.txt"]["digest"] == digest(gzip_as_couchdb(text)) == "md5-t6qPHzaShJHFi1MnI1x4UA=="
        assert atts["b.bin"]["digest"] == digest(binary)
        bs = blobs_for(db)
        meta = bs.meta(atts["note.txt"]["digest"], atts["note.txt"]["length"])
        assert meta.encoding == "gzip" and bs.read_all(meta) == text
        assert meta.identity_md5 == hashlib.md5(text).digest()
        # a new edit keeping the attachment as a stub still resolves it
        await db.put({"_id": "d", "_rev": doc["_rev"], "x": 1, "_attachments": {
            "note.txt": {"stub": True}, "b.bin": {"stub": True}}})
        assert db.get("d")["_attachments"]["note.txt"]["digest"] == atts["note.txt"]["digest"]
    finally:
        await node.aclose()
    main = Store(main_dir, SUBDBS)
    try:
        with main.read() as txn:
            assert txn.get(migrate.VERSION_KEY, db=main.db("attachments")) == migrate.SCHEME
        assert main.write(lambda txn: migrate.migrate_in(txn, main.db("bodies"), main.db("attachments"))) == 0
    finally:
        main.close()


async def test_compressed_bodies_are_migrated_too(tmp_path):
    """A database compacted by this version stores bodies compressed with its own dictionary; the
    migration must still find and rename the stubs inside them."""
    text = b"hello " * 9 + b"hello"
    node = couchpy.open(tmp_path / "data")
    db = node.create_db("old")
    for i in range(300):  # enough documents for compaction to train a dictionary
        await db.put({"_id": f"p{i:04}", "name": f"person {i}", "city": "Lyon", "age": i % 90,
                      "_attachments": {"note.txt": {"content_type": "text/plain", "data": b64(text + str(i).encode())}}})
    await db.compact()
    main_dir = db.directory / "main"
    await node.aclose()

    main = Store(main_dir, SUBDBS)
    with main.read() as txn:
        stored = [v for k, v in txn.cursor(db=main.db("bodies"))]
    assert all(v[:1] == bodycodec.TAG for v in stored), "compaction compresses every body here"
    assert make_legacy(main, keep_emd5=True) == 300
    main.close()

    node = couchpy.open(tmp_path / "data")
    try:
        db = node.get_db("old")
        bs = blobs_for(db)
        for i in (0, 150, 299):
            att = db.get(f"p{i:04}")["_attachments"]["note.txt"]
            assert att["digest"] == digest(gzip_as_couchdb(text + str(i).encode()))
            assert bs.read_all(bs.meta(att["digest"], att["length"])) == text + str(i).encode()
    finally:
        await node.aclose()
