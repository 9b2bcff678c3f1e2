"""View key collation as byte strings.

CouchDB orders view rows by their keys using its own collation of JSON values:

    null < false < true < numbers < strings < arrays < objects

numbers by value (1 == 1.0), strings by the Unicode Collation Algorithm as ICU's root collator does it
("a" < "A" < "aa" < "b"), arrays element by element (a prefix sorts first), objects member by member
(key by ICU, then value; a prefix sorts first). With `options.collation = "raw"` a view instead uses
Erlang term order: numbers < false < null < true < objects < arrays < strings, strings by bytes.

LMDB keeps keys in memcmp order, so instead of a comparison function this module *encodes* each key
into bytes whose byte order equals the collation order; indexes store the encoded bytes and every range
or grouping question becomes a byte-range question. The encoding is self-delimiting, which is what
makes composite keys (arrays, objects, key + doc id) work:

- every value starts with a type tag byte, chosen so tags sort in type order;
- arrays and objects end with 0x00, below every tag, so a prefix sorts before its extensions;
- strings are tag + ICU sort key; ICU sort keys contain no 0x00 except their final terminator, so
  comparing two encodings byte by byte compares the sort keys exactly as ICU does;
- numbers are tag + the 8 bytes of the IEEE double made order-preserving (sign bit flipped, negatives
  inverted) + an exact remainder for integers a double cannot hold (beyond 2**53), so that arbitrary
  JSON integers still sort exactly and 1 and 1.0 encode identically (CouchDB treats them as equal);
- raw strings (raw collation, and doc ids) are UTF-8 with 0x00 escaped as 00 FF and a 00 01 end.

Encoded keys are not decoded: indexes keep the original JSON next to them. Sort keys depend on the ICU
version, so indexes record `ICU_VERSION` and are rebuilt when it changes (as CouchDB advises).
"""

from __future__ import annotations

import struct
from typing import Any

import icu

ICU_VERSION: str = f"icu-{icu.ICU_VERSION}/unicode-{icu.UNICODE_VERSION}"

_COLLATOR = icu.Collator.createInstance(icu.Locale.getRoot())
_sort_key = _COLLATOR.getSortKey

# Tags, default (ICU) collation. END (0x00) closes arrays and objects and is below every tag.
END = b"\x00"
T_NULL, T_FALSE, T_TRUE, T_NUM, T_STR, T_ARR, T_OBJ = b"\x02", b"\x03", b"\x04", b"\x05", b"\x06", b"\x07", b"\x08"
# Tags, raw (Erlang term order) collation.
R_NUM, R_FALSE, R_NULL, R_TRUE, R_OBJ, R_ARR, R_STR = b"\x02", b"\x03", b"\x04", b"\x05", b"\x06", b"\x07", b"\x08"

# A byte above every tag: `prefix + HIGH` bounds every encoding that starts with `prefix`.
HIGH = b"\xff"

_pack_d = struct.Struct(">d").pack
_unpack_q = struct.Struct(">Q").unpack
_SIGN = 1 << 63
_ALL = (1 << 64) - 1
_EXACT = b"\x80"  # remainder marker: the double is the exact value (the usual case)
_MAX_EXACT = 1 << 53


def _double_bytes(f: float) -> bytes:
    if f == 0.0:
        f = 0.0  # -0.0 == 0.0
    b = _pack_d(f)
    if b[0] < 0x80:  # positive: set the sign bit
        return _HIGH_BIT[b[0]] + b[1:]
    (n,) = _unpack_q(b)
    return (n ^ _ALL).to_bytes(8, "big")


_HIGH_BIT = [bytes([i | 0x80]) for i in range(128)]


def _remainder(r: int) -> bytes:
    """Order-preserving, self-delimiting encoding of an integer (rarely non-zero)."""
    if r == 0:
        return _EXACT
    mag = abs(r).to_bytes((abs(r).bit_length() + 7) // 8, "big")
    if r > 0:
        return b"\x81" + len(mag).to_bytes(2, "big") + mag
    return b"\x7f" + (0xFFFF - len(mag)).to_bytes(2, "big") + bytes(255 - b for b in mag)


def encode_number(x: int | float) -> bytes:
    """The 9+ bytes after a number tag: same for both collations."""
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            raise ValueError("NaN and Infinity are not JSON")
        return _double_bytes(x) + _EXACT
    if -_MAX_EXACT <= x <= _MAX_EXACT:
        return _double_bytes(float(x)) + _EXACT
    try:
        f = float(x)
        r = x - int(f)
    except OverflowError:
        # Beyond the double range: all such integers share +/-inf and sort by their exact value.
        f = float("inf") if x > 0 else float("-inf")
        r = x
    return _double_bytes(f) + _remainder(r)


def sort_key(s: str) -> bytes:
    """ICU root-collator sort key of a string, ending with its single 0x00."""
    return _sort_key(s)


def raw_string(s: str) -> bytes:
    """Self-delimiting, byte-order-preserving encoding of a string's UTF-8 (raw collation, doc ids)."""
    b = s.encode("utf-8", "surrogatepass")
    if b"\x00" in b:
        b = b.replace(b"\x00", b"\x00\xff")
    return b + b"\x00\x01"


def encode(key: Any) -> bytes:
    """Encode a JSON value so byte order is CouchDB's default (ICU) view collation."""
    out: list[bytes] = []
    _enc(key, out)
    return b"".join(out)


def _enc(v: Any, out: list[bytes]) -> None:
    # Type checks ordered by frequency in real view keys; bool before int (bool is an int).
    t = type(v)
    if t is str:
        out.append(T_STR)
        out.append(_sort_key(v))
    elif t is list or t is tuple:
        out.append(T_ARR)
        for item in v:
            _enc(item, out)
        out.append(END)
    elif v is None:
        out.append(T_NULL)
    elif v is True:
        out.append(T_TRUE)
    elif v is False:
        out.append(T_FALSE)
    elif t is int or t is float:
        out.append(T_NUM)
        out.append(encode_number(v))
    elif t is dict:
        out.append(T_OBJ)
        for k, item in v.items():
            out.append(T_STR)
            out.append(_sort_key(k))
            _enc(item, out)
        out.append(END)
    elif isinstance(v, bool):  # pragma: no cover - subclasses
        out.append(T_TRUE if v else T_FALSE)
    elif isinstance(v, (int, float)):
        out.append(T_NUM)
        out.append(encode_number(v))
    else:
        raise TypeError(f"not a JSON value: {type(v).__name__}")


def encode_raw(key: Any) -> bytes:
    """Encode a JSON value so byte order is CouchDB's raw (Erlang term order) collation."""
    out: list[bytes] = []
    _enc_raw(key, out)
    return b"".join(out)


def _enc_raw(v: Any, out: list[bytes]) -> None:
    t = type(v)
    if t is str:
        out.append(R_STR)
        out.append(raw_string(v))
    elif t is list or t is tuple:
        out.append(R_ARR)
        for item in v:
            _enc_raw(item, out)
        out.append(END)
    elif v is None:
        out.append(R_NULL)
    elif v is True:
        out.append(R_TRUE)
    elif v is False:
        out.append(R_FALSE)
    elif t is int or t is float or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        out.append(R_NUM)
        out.append(encode_number(v))
    elif t is dict:
        out.append(R_OBJ)
        for k, item in v.items():
            out.append(R_STR)
            out.append(raw_string(k))
            _enc_raw(item, out)
        out.append(END)
    else:
        raise TypeError(f"not a JSON value: {type(v).__name__}")


def encoder(collation: str | None) -> Any:
    """The encode function for a view's `options.collation` (None/absent means ICU)."""
    return encode_raw if collation == "raw" else encode


def group_prefix(key: Any, group_level: int | None, enc: Any = encode) -> bytes:
    """Bytes shared by the encodings of exactly the keys in `key`'s group.

    group_level None means group=true (exact keys). With group_level N, an array key is grouped by its
    first N elements: the prefix is the array tag plus those elements without the closing END, which
    every longer array with the same first N elements shares. A shorter array or a non-array is its own
    group (its full encoding). Level 0 is one group for everything (empty prefix).
    """
    if group_level is None:
        return enc(key)
    if group_level == 0:
        return b""
    if isinstance(key, list) and len(key) >= group_level:
        return enc(key[:group_level])[:-1]
    return enc(key)


def group_key(key: Any, group_level: int | None) -> Any:
    """The key a group is reported under (CouchDB truncates array keys to group_level elements)."""
    if group_level is None:
        return key
    if group_level == 0:
        return None
    if isinstance(key, list):
        return key[:group_level]
    return key


# --- A direct comparison function, CouchDB's less_json, used as the reference in tests and for
# --- sorting small in-memory lists (e.g. `keys=` results) without encoding.


def _type_rank(v: Any) -> int:
    if v is None:
        return 1
    if v is False:
        return 2
    if v is True:
        return 3
    if isinstance(v, (int, float)):
        return 4
    if isinstance(v, str):
        return 5
    if isinstance(v, list):
        return 6
    return 7


def compare(a: Any, b: Any) -> int:
    """-1/0/1 as CouchDB's default collation compares two JSON values (no encoding involved)."""
    ra, rb = _type_rank(a), _type_rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra <= 3:
        return 0
    if ra == 4:
        return (a > b) - (a < b)
    if ra == 5:
        return _COLLATOR.compare(a, b)
    if ra == 6:
        for x, y in zip(a, b):
            c = compare(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    ia, ib = list(a.items()), list(b.items())
    for (ka, va), (kb, vb) in zip(ia, ib):
        c = _COLLATOR.compare(ka, kb) or compare(va, vb)
        if c:
            return c
    return (len(ia) > len(ib)) - (len(ia) < len(ib))
