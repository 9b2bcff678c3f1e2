"""Erlang's external term format (`term_to_binary(T, [{minor_version, 1}])`) of JSON values.

CouchDB hashes Erlang terms, not JSON text: a new revision id is the md5 of a term holding the
document body, and a `_local` document's ETag the md5 of another. Reproducing those bytes gives
couchpy the revision ids CouchDB computes for the same edit.

A JSON value is the term jiffy decodes it to: an object `{[{Key, Value}, ...]}` (members in body
order), an array a list, a string a UTF-8 binary, `true`/`false`/`null` atoms, integers and
floats as numbers. Python values stand for those terms here, plus `Atom` and `tuple` for the
terms the hashed structures add around the body.
"""

from __future__ import annotations

import struct
from typing import Any

VERSION = 131
NEW_FLOAT = 70
SMALL_INTEGER = 97
INTEGER = 98
ATOM = 100
SMALL_TUPLE = 104
LARGE_TUPLE = 105
NIL = 106
STRING = 107
LIST = 108
BINARY = 109
SMALL_BIG = 110
LARGE_BIG = 111


class Atom(str):
    """An atom (written as ATOM_EXT: minor version 1 keeps Latin-1 atoms in the old form)."""


def _integer(n: int, out: bytearray) -> None:
    if 0 <= n <= 255:
        out += bytes((SMALL_INTEGER, n))
    elif -(2**31) <= n < 2**31:
        out += struct.pack(">Bi", INTEGER, n)
    else:
        magnitude = abs(n)
        digits = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
        head = struct.pack(">BB", SMALL_BIG, len(digits)) if len(digits) < 256 else struct.pack(">BI", LARGE_BIG, len(digits))
        out += head + bytes((1 if n < 0 else 0,)) + digits


def _list(items: list, out: bytearray) -> None:
    if not items:
        out.append(NIL)
    elif len(items) < 65536 and all(type(i) is int and 0 <= i <= 255 for i in items):
        # a list of bytes is written as a string (how jiffy's [1,2,3] reaches the hash)
        out += struct.pack(">BH", STRING, len(items)) + bytes(items)
    else:
        out += struct.pack(">BI", LIST, len(items))
        for item in items:
            _term(item, out)
        out.append(NIL)


def _tuple(items: tuple, out: bytearray) -> None:
    out += bytes((SMALL_TUPLE, len(items))) if len(items) < 256 else struct.pack(">BI", LARGE_TUPLE, len(items))
    for item in items:
        _term(item, out)


def _term(value: Any, out: bytearray) -> None:
    if value is True or value is False or value is None:
        _term(Atom("null" if value is None else str(value).lower()), out)
    elif isinstance(value, Atom):
        name = value.encode("latin-1")
        out += struct.pack(">BH", ATOM, len(name)) + name
    elif isinstance(value, int):
        _integer(value, out)
    elif isinstance(value, float):
        out += struct.pack(">Bd", NEW_FLOAT, value)
    elif isinstance(value, str):
        _binary(value.encode("utf-8", "surrogatepass"), out)
    elif isinstance(value, (bytes, bytearray)):
        _binary(bytes(value), out)
    elif isinstance(value, dict):
        # an object: a 1-tuple holding its members as a list of {Key, Value} pairs
        _tuple(([(k, v) for k, v in value.items()],), out)
    elif isinstance(value, list):
        _list(value, out)
    elif isinstance(value, tuple):
        _tuple(value, out)
    else:
        raise TypeError(f"no Erlang term for {type(value).__name__}")


def _binary(data: bytes, out: bytearray) -> None:
    out += struct.pack(">BI", BINARY, len(data)) + data


def term_to_binary(value: Any) -> bytes:
    out = bytearray((VERSION,))
    _term(value, out)
    return bytes(out)
