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

from .errors import BadRequest

# A run of 19+ digits may be an integer orjson cannot hold; the check may also hit digits inside a
# string, which only costs the slow path.
_LONG_DIGITS = re.compile(rb"\d{19,}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid constant {name}")


def loads(data: bytes | str) -> Any:
    """Parse JSON; raise BadRequest for anything that is not valid JSON."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if not data.strip():
        raise BadRequest("Request body must be a JSON object" if not data else "invalid UTF-8 JSON")
    if _LONG_DIGITS.search(data):
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("invalid UTF-8 JSON") from exc
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("invalid UTF-8 JSON") from exc


def dumps(obj: Any) -> bytes:
    """Serialize compactly, keeping key order and big integers."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        # Integers beyond 64 bits: the standard library writes them exactly.
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def dumps_sorted(obj: Any) -> bytes:
    """Canonical form (sorted keys), used where equal content must give equal bytes."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(
            obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
        ).encode()
