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


# Every revision id hashes its document's body through here, inside the write transaction, so the
# writer is a flat loop over a list of byte strings with precomputed headers (a few µs a body).
_HEAD4 = struct.Struct(">BI").pack   # BINARY, LIST, LARGE_TUPLE, LARGE_BIG: tag and a 32-bit length
_HEAD2 = struct.Struct(">BH").pack   # STRING, ATOM: tag and a 16-bit length
_INT = struct.Struct(">Bi").pack
_FLOAT = struct.Struct(">Bd").pack
_SMALL = [bytes((SMALL_INTEGER, i)) for i in range(256)]
_NIL = bytes((NIL,))
_PAIR = bytes((SMALL_TUPLE, 2))
_OBJECT = bytes((SMALL_TUPLE, 1))


def _atom(name: str) -> bytes:
    data = name.encode("latin-1")
    return _HEAD2(ATOM, len(data)) + data


_TRUE, _FALSE, _NULL = _atom("true"), _atom("false"), _atom("null")


def _integer(n: int, add) -> None:
    if 0 <= n <= 255:
        add(_SMALL[n])
    elif -(2**31) <= n < 2**31:
        add(_INT(INTEGER, n))
    else:
        magnitude = abs(n)
        digits = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
        head = struct.pack(">BB", SMALL_BIG, len(digits)) if len(digits) < 256 else _HEAD4(LARGE_BIG, len(digits))
        add(head + bytes((1 if n < 0 else 0,)) + digits)


def _list(items: list, add) -> None:
    if not items:
        add(_NIL)
    elif type(items[0]) is int and len(items) < 65536 and all(type(i) is int and 0 <= i <= 255 for i in items):
        # a list of bytes is written as a string (how jiffy's [1,2,3] reaches the hash)
        add(_HEAD2(STRING, len(items)) + bytes(items))
    else:
        add(_HEAD4(LIST, len(items)))
        for item in items:
            if type(item) is str:
                data = item.encode("utf-8", "surrogatepass")
                add(_HEAD4(BINARY, len(data)))
                add(data)
            else:
                _term(item, add)
        add(_NIL)


def _tuple(items: tuple, add) -> None:
    add(bytes((SMALL_TUPLE, len(items))) if len(items) < 256 else _HEAD4(LARGE_TUPLE, len(items)))
    for item in items:
        _term(item, add)


def _term(value: Any, add) -> None:
    t = type(value)
    if t is str:
        data = value.encode("utf-8", "surrogatepass")
        add(_HEAD4(BINARY, len(data)))
        add(data)
    elif t is dict:
        # an object: a 1-tuple holding its members as a list of {Key, Value} pairs
        add(_OBJECT)
        if value:
            add(_HEAD4(LIST, len(value)))
            for k, v in value.items():
                add(_PAIR)
                if type(k) is str:
                    data = k.encode("utf-8", "surrogatepass")
                    add(_HEAD4(BINARY, len(data)))
                    add(data)
                else:
                    _term(k, add)
                # the commonest members inline: a call per value is most of the cost
                tv = type(v)
                if tv is str:
                    data = v.encode("utf-8", "surrogatepass")
                    add(_HEAD4(BINARY, len(data)))
                    add(data)
                elif tv is int and 0 <= v <= 255:
                    add(_SMALL[v])
                else:
                    _term(v, add)
        add(_NIL)
    elif t is int:
        _integer(value, add)
    elif value is True:
        add(_TRUE)
    elif value is False:
        add(_FALSE)
    elif value is None:
        add(_NULL)
    elif t is float:
        add(_FLOAT(NEW_FLOAT, value))
    elif t is list:
        _list(value, add)
    elif isinstance(value, Atom):
        add(_atom(value))
    elif t is tuple:
        _tuple(value, add)
    elif isinstance(value, (bytes, bytearray)):
        add(_HEAD4(BINARY, len(value)))
        add(bytes(value))
    elif isinstance(value, str):  # subclasses of the JSON types: as their base type
        _term(str(value), add)
    elif isinstance(value, dict):
        _term(dict(value), add)
    elif isinstance(value, int):
        _term(int(value), add)
    elif isinstance(value, float):
        _term(float(value), add)
    elif isinstance(value, (list, tuple)):
        _term(list(value) if isinstance(value, list) else tuple(value), add)
    else:
        raise TypeError(f"no Erlang term for {type(value).__name__}")


def term_to_binary(value: Any) -> bytes:
    parts = [bytes((VERSION,))]
    _term(value, parts.append)
    return b"".join(parts)
