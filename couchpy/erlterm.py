"""JSON values as CouchDB sees them: Erlang terms, printed and compared as Erlang does.

CouchDB decodes JSON into Erlang terms (strings are binaries, objects `{[{Key, Value}]}`) and
formats some reasons with `~w` (`<<120>>` for "x") and others with `~p` (`<<"x">>`). Clients
compare reasons, so couchpy prints them the same way. Where CouchDB compares two decoded values
(Mango's `$eq`, a single key against a range) it uses Erlang's equality, which `equal` copies.
"""

from __future__ import annotations

from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f",
            "\v": "\\v", "\x1b": "\\e"}


def _float(x: float) -> str:
    # Erlang prints the shortest round-tripping digits, always with a fraction: 1.0e20, 0.1
    text = repr(x)
    if "e" in text:
        mantissa, exp = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{int(exp)}"
    return text


def _scalar(value: Any) -> str | None:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    return None


def w(value: Any) -> str:
    """Erlang's `~w`: binaries as their bytes."""
    got = _scalar(value)
    if got is not None:
        return got
    if isinstance(value, str):
        return "<<" + ",".join(str(b) for b in value.encode()) + ">>"
    if isinstance(value, list):
        return "[" + ",".join(w(v) for v in value) + "]"
    return "{[" + ",".join("{" + w(k) + "," + w(v) + "}" for k, v in value.items()) + "]}"


def _printable(s: str) -> bool:
    return all(32 <= ord(c) < 127 or c in _ESCAPES for c in s)


def p(value: Any) -> str:
    """Erlang's `~p` (on one line): printable binaries as quoted text."""
    got = _scalar(value)
    if got is not None:
        return got
    if isinstance(value, str):
        if _printable(value):
            return '<<"' + "".join(_ESCAPES.get(c, c) for c in value) + '">>'
        return w(value)
    if isinstance(value, list):
        return "[" + ",".join(p(v) for v in value) + "]"
    return "{[" + ",".join("{" + p(k) + "," + p(v) + "}" for k, v in value.items()) + "]}"


def equal(a: Any, b: Any, numbers_by_value: bool = False) -> bool:
    """Erlang's equality of two decoded JSON values: exact (`=:=`: `1`, `1.0` and `true` all
    differ) or, with `numbers_by_value`, `==` (1 == 1.0, at any depth). An object's members are
    compared in order, so objects with the same members in another order differ either way."""
    if numbers_by_value and _is_number(a) and _is_number(b):
        return a == b
    ta, tb = type(a), type(b)
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(equal(x, y, numbers_by_value) for x, y in zip(a, b))
    if ta is dict:
        return len(a) == len(b) and all(
            ka == kb and equal(va, vb, numbers_by_value) for (ka, va), (kb, vb) in zip(a.items(), b.items())
        )
    return a == b


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
