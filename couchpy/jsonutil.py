"""JSON exactly as written.

orjson is ten times faster than the standard library, but it turns integers beyond 64 bits into
floats on load and refuses them on dump, while CouchDB keeps `18446744073709551616` as written. So:
orjson first, and the standard library (which keeps arbitrary-precision ints) only for the rare
bodies that carry a long run of digits. NaN/Infinity are rejected, as they are not JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from . import floatfmt
from .errors import BadRequest

# A run of 19+ digits may be an integer orjson cannot hold; the check may also hit digits inside a
# string, which only costs the slow path. Mapping every byte to "0" (digit) or " " and looking for
# nineteen zeros runs at C speed: ~30x faster than a regex over the body.
_DIGIT_MAP = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_DIGIT_RUN = b"0" * 19


def _has_long_digit_run(data: bytes) -> bool:
    return len(data) >= 19 and _DIGIT_RUN in data.translate(_DIGIT_MAP)
# A \uD800-\uDFFF escape: the stdlib accepts a lone surrogate that orjson (rightly) refuses.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid constant {name}")


# Deeper values could be parsed but not written back (the stdlib encoder recurses), so a stored
# document would fail on every read; no real document nests this deep.
MAX_DEPTH = 512


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        cur, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(cur, dict):
            stack.extend((v, depth + 1) for v in cur.values() if isinstance(v, (dict, list)))
        elif isinstance(cur, list):
            stack.extend((v, depth + 1) for v in cur if isinstance(v, (dict, list)))
    return False


def _finite_float(text: str) -> float:
    # 1e999 overflows to infinity: orjson refuses it, so must the slow path (it cannot be written back).
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range {text}")
    return value


def loads(data: bytes | str) -> Any:
    """Parse JSON; raise BadRequest for anything that is not valid JSON."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if not data.strip():
        raise BadRequest("Request body must be a JSON object" if not data else "invalid UTF-8 JSON")
    if _has_long_digit_run(data):
        try:
            value = json.loads(
                data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
            )
            if _SURROGATE_ESCAPE.search(data):
                # Rare: check that every string is encodable text (no lone surrogate).
                json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeError, RecursionError) as exc:
            raise BadRequest("invalid UTF-8 JSON") from exc
    else:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadRequest("invalid UTF-8 JSON") from exc
    # Cheap pre-checks: bytes.count is C speed, and orjson.dumps (C speed too) only fails beyond
    # 255 levels (or on a big integer); only then is the value walked in Python.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH:
        try:
            orjson.dumps(value)
        except TypeError:
            if _too_deep(value):
                raise BadRequest(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    return value


def dumps(obj: Any) -> bytes:
    """Serialize compactly, keeping key order and big integers, numbers in CouchDB's text.

    CouchDB writes a float as JavaScript writes the number, `.0` on a whole one
    (couchpy/floatfmt.py): `1e+20` as `100000000000000000000.0`, `-0.0` as `0.0`. orjson writes
    the same shortest digits but switches to exponent form earlier; one search of its output
    finds the rare body that may hold such a number, and only that one is walked. An integer
    beyond orjson's 64 bits is written exactly, as a raw fragment."""
    return _dumps(obj, signed_zero=False)


def dumps_stored(obj: Any) -> bytes:
    """A body as it is stored: `dumps`, but a negative zero keeps its sign (`-0.0`).

    CouchDB keeps the parsed term, `-0.0` included, and only its encoder writes `0.0`; an edit
    that makes a revision from the stored body (COPY, an attachment added or removed) hashes the
    sign. So couchpy stores the sign, and `readable` writes `0.0` wherever a stored body's bytes
    go out as they are."""
    return _dumps(obj, signed_zero=True)


def _dumps(obj: Any, signed_zero: bool) -> bytes:
    try:
        raw = orjson.dumps(obj)
    except TypeError:
        try:  # an integer beyond 64 bits: as a fragment
            return orjson.dumps(_couchdb_numbers(obj, signed_zero)[1])
        except (TypeError, RecursionError):  # nested deeper than orjson goes (or not JSON: raises again)
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if floatfmt.differs_from_orjson(raw):
        try:
            changed, value = _couchdb_numbers(obj, signed_zero)
        except RecursionError:  # only near orjson's own depth limit: its text stands
            return raw
        if changed:
            return orjson.dumps(value)
    return raw


def readable(stored: bytes) -> bytes:
    """A stored body's JSON as CouchDB writes it: a negative zero as `0.0` (`dumps_stored`).
    One search of the bytes; only a body that may hold one (or the text `-0.0` in a string, or
    a number such as -0.05) is parsed and written again."""
    if b"-0.0" not in stored:
        return stored
    return dumps(loads(stored))


def _couchdb_numbers(value: Any, signed_zero: bool) -> tuple[bool, Any]:
    """(whether a number is written otherwise, `value` with each float CouchDB writes otherwise
    and each integer beyond 64 bits as a raw JSON fragment); `signed_zero` keeps `-0.0`."""
    kind = type(value)
    if kind is float:
        if signed_zero and value == 0.0:
            return False, value  # orjson writes the sign
        text = floatfmt.couchdb_float(value)
        if text.encode() == orjson.dumps(value):
            return False, value
        return True, orjson.Fragment(text)
    if kind is int:
        if -(1 << 63) <= value < (1 << 64):
            return False, value
        return True, orjson.Fragment(str(value))
    if isinstance(value, dict):
        items = [(k, _couchdb_numbers(v, signed_zero)) for k, v in value.items()]
        if any(c for _, (c, _) in items):
            return True, {k: v for k, (_, v) in items}
    elif isinstance(value, (list, tuple)):
        items = [_couchdb_numbers(v, signed_zero) for v in value]
        if any(c for c, _ in items):
            return True, [v for _, v in items]
    return False, value


def dumps_line(obj: Any) -> bytes:
    """`dumps` plus the newline CouchDB ends its bodies with (written by orjson: no extra copy)."""
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return dumps(obj) + b"\n"
    if floatfmt.differs_from_orjson(raw):
        return dumps(obj) + b"\n"
    return raw


def dumps_sorted(obj: Any) -> bytes:
    """Canonical form (sorted keys), used where equal content must give equal bytes."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(
            obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
        ).encode()
