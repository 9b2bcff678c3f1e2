"""JSON values printed as CouchDB's error reasons print them: as Erlang terms.

CouchDB decodes JSON into Erlang terms (strings are binaries, objects `{[{Key, Value}]}`) and
formats some reasons with `~w` (`<<120>>` for "x") and others with `~p` (`<<"x">>`). Clients
compare reasons, so couchpy prints them the same way.
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
