"""How a view row is stored (format 3). Pure, no I/O.

A row's *row key* orders it: `partition prefix + collate key + raw(docid) + emit number (4
bytes)`, CouchDB's (key, docid) order, the emit number telling apart the rows one document emits
under one key.

- a row key of at most `longkeys.PREFIX` bytes is stored as itself, value
  `marshal((key, docid, value))`;
- a longer one is stored under `longkeys.ordered(row key)`, value
  `marshal((key, docid, value, row key))`: the full row key restores the order (query.py).

The JSON key is in the value because the collate encoding of a string is an ICU sort key, which
cannot be turned back into the string. The id could be cut back out of the row key instead of
being stored in the value (about a fifth of a row for uuid ids), but doing that per row in
Python made map queries a third slower, so the value keeps it.

The back-index (`ids`, keyed by `longkeys.point(UTF-8 id)`) gives, per document, what its rows'
row keys need beyond the document, (view, collate key, emit number) per row, packed as bytes
(`pack_back`: a few bytes per row besides the collate key, where format 2 kept each whole row
key in marshal); `back_rowkeys` rebuilds the row keys. For an id too long to be its own key, the
value names it.

An index in format 2 is not read: a format 3 index has a new signature (ddoc.py), so it is built
from scratch beside the old one, which `_view_cleanup` removes, as for any change of a view's
definition.
"""

from __future__ import annotations

import marshal
from typing import Any

from .. import longkeys

_LEN_MAX = 0xFFFF


def row_key(pp: bytes, ek: bytes, rid: bytes, n: int) -> bytes:
    """The row key of emit number `n` of the document with raw id `rid` (collate.raw_string)
    under collate key `ek` (after the partition prefix `pp`, b"" for a global view)."""
    return pp + ek + rid + n.to_bytes(4, "big")


def pack(key: Any, docid: str, value: Any, rk: bytes) -> tuple[bytes, bytes]:
    """(stored row key, stored value) of a row."""
    if len(rk) <= longkeys.PREFIX:
        return rk, marshal.dumps((key, docid, value))
    return longkeys.ordered(rk), marshal.dumps((key, docid, value, rk))


def row_of(_rk: bytes, raw: bytes) -> tuple[Any, str, Any]:
    """(key, docid, value) of a stored row."""
    t = marshal.loads(raw)
    return t[0], t[1], t[2]


def full_rowkey(_stored: bytes, raw: bytes) -> bytes:
    """The row key of a long row (longkeys.restore_order)."""
    return marshal.loads(raw)[3]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, i
        shift += 7


def pack_back(entries: list[tuple[int, bytes, int]], docid: str | None) -> bytes:
    """The back-index value of a document: 0x00, or 0x01 + varint length + its UTF-8 id when the
    back-index key is not the id itself (`docid`, else None); then per row the view byte, the
    emit number and the collate key's length as varints, and the collate key."""
    if docid is None:
        parts = [b"\x00"]
    else:
        raw = docid.encode("utf-8", "surrogatepass")
        parts = [b"\x01", _varint(len(raw)), raw]
    for j, ek, n in entries:
        parts += (bytes([j]), _varint(n), _varint(len(ek)), ek)
    return b"".join(parts)


def _unpack_back(raw: bytes) -> tuple[bytes | None, list[tuple[int, bytes, int]]]:
    i = 1
    docid = None
    if raw[0] == 1:
        n, i = _read_varint(raw, 1)
        docid, i = raw[i:i + n], i + n
    out = []
    end = len(raw)
    while i < end:
        j = raw[i]
        n, i = _read_varint(raw, i + 1)
        size, i = _read_varint(raw, i)
        out.append((j, raw[i:i + size], n))
        i += size
    return docid, out


def back_rowkeys(raw: bytes, pp: bytes, rid: bytes) -> list[tuple[int, bytes]]:
    """(view, stored row key) of each row a back-index value names."""
    return [(j, longkeys.ordered(row_key(pp, ek, rid, n))) for j, ek, n in _unpack_back(raw)[1]]


def back_docid(key: bytes, raw: bytes) -> str:
    """The document id of a back-index entry."""
    docid = _unpack_back(raw)[0]
    return (key if docid is None else docid).decode("utf-8", "surrogatepass")
