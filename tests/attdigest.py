"""The digest CouchDB gives an attachment body, computed independently of couchpy's code:
MD5 of the bytes as stored, which for a compressible type is the gzip stream CouchDB writes
(zlib level 8, gzip wrapper, default window and memory level)."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import zlib

COMPRESSIBLE = ("text/*", "application/javascript", "application/json", "application/xml")


def gzip_as_couchdb(data: bytes) -> bytes:
    z = zlib.compressobj(8, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


def md5_digest(data: bytes) -> str:
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


def couchdb_digest(data: bytes, content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    if any(fnmatch.fnmatchcase(base, p) for p in COMPRESSIBLE):
        return md5_digest(gzip_as_couchdb(data))
    return md5_digest(data)
