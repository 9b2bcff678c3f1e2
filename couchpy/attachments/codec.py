"""Attachment encodings: digests, base64, gzip, and which content types get compressed.

A digest is CouchDB's `md5-<base64 of the 16-byte MD5>` of the bytes *as stored*: of the content
for a body stored as sent, of the gzip stream for a body stored gzip-encoded. CouchDB's replicator
checks what it receives against the digest, so this is the only digest that interoperates.

Compressible types are stored gzip-encoded (`[attachments] compressible_types`, glob patterns like
`text/*`); everything else is stored as sent. Gzip here is streaming (zlib with the gzip wrapper,
level 8 and zlib's default window and memory level: byte for byte what CouchDB writes, so the same
content gets the same digest on both), and decoding bounds each output piece so a tiny "zip bomb"
cannot expand in memory at once.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import zlib
from collections.abc import Iterator

from ..errors import BadRequest

DEFAULT_COMPRESSIBLE = "text/*, application/javascript, application/json, application/xml"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's "gzip wrapper" mode
DECODE_PIECE = 1 << 20  # bound of one decoded output piece


def digest_of(md5_raw: bytes) -> str:
    return "md5-" + base64.b64encode(md5_raw).decode("ascii")


def md5_of_digest(digest: str) -> bytes | None:
    """The raw MD5 named by `md5-<base64>`, or None if it is not such a digest."""
    if not isinstance(digest, str) or not digest.startswith("md5-"):
        return None
    try:
        raw = base64.b64decode(digest[4:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 else None


def decode_base64(data: object, name: str) -> bytes:
    """Inline attachment data; 400 for anything that is not base64 (as CouchDB)."""
    if not isinstance(data, str):
        raise BadRequest(f"Invalid attachment data for {name}")
    try:
        # Whitespace (line-wrapped base64 from some clients) is tolerated, other junk is not.
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"Invalid attachment data for {name}") from exc


class _DecodedText(str):
    """Inline base64 `data` already decoded: the same text, carrying its bytes (`raw`).

    Equal to the text it replaces and written by orjson and json as that text, so a body holding
    it reads, serializes and is measured as the client sent it. Copied or pickled, it becomes
    plain text again: the bytes never leave the write that decoded them."""

    raw: bytes = b""

    def __reduce__(self):
        return (str, (str(self),))


def inline_bytes(entry: dict, name: str) -> bytes:
    """The bytes of an inline attachment entry's `data`, decoded once per write.

    A write's inline data is read by every check it goes through (in the HTTP handler, for
    CouchDB's order of errors, again in Database._prepare, for library callers and the routes
    that do not check first) and then by the step that stores it (couchpy.attachments.hooks). The
    first decodes it, with decode_base64's errors, and puts the text back in the entry as a
    `_DecodedText`; the later ones take its bytes. The bytes ride on the very text they decode,
    so an entry whose `data` was replaced since is decoded anew, never given stale bytes. The
    price: until stored, a write holds its attachments' bytes beside their text (a _bulk_docs
    request, those of all its documents, all checked before the first is stored)."""
    data = entry.get("data")
    if type(data) is _DecodedText:
        return data.raw
    raw = decode_base64(data, name)
    kept = _DecodedText(data)
    kept.raw = raw
    entry["data"] = kept
    return raw


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_type_patterns(setting: str | None) -> list[str]:
    text = DEFAULT_COMPRESSIBLE if setting is None else setting
    return [p.strip().lower() for p in text.split(",") if p.strip()]


def is_compressible(content_type: str | None, patterns: list[str]) -> bool:
    if not content_type:
        return False
    base = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(base, p) for p in patterns)


def new_gzip(level: int = 8):
    return zlib.compressobj(max(0, min(9, level)), zlib.DEFLATED, GZIP_WBITS)


class Gunzip:
    """Push-style gzip decoder: feed encoded pieces, get decoded pieces of bounded size."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(GZIP_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data:
                out = self._d.decompress(data, DECODE_PIECE)
                if out:
                    yield out
                data = self._d.unconsumed_tail
        except zlib.error as exc:
            raise BadRequest("Invalid gzip-encoded attachment data") from exc

    def finish(self) -> bytes:
        try:
            tail = self._d.flush()
        except zlib.error as exc:
            raise BadRequest("Invalid gzip-encoded attachment data") from exc
        if not self._d.eof:
            raise BadRequest("Truncated gzip-encoded attachment data")
        return tail


def gunzip_pieces(chunks) -> Iterator[bytes]:
    """Decode a gzip stream given as an iterable of byte chunks, in bounded pieces."""
    g = Gunzip()
    for chunk in chunks:
        yield from g.feed(chunk)
    tail = g.finish()
    if tail:
        yield tail


class StreamDigest:
    """MD5 and length of a byte stream fed piece by piece."""

    __slots__ = ("_md5", "length")

    def __init__(self) -> None:
        self._md5 = hashlib.md5()
        self.length = 0

    def update(self, data: bytes) -> None:
        self._md5.update(data)
        self.length += len(data)

    def raw(self) -> bytes:
        return self._md5.digest()

    def digest(self) -> str:
        return digest_of(self._md5.digest())
