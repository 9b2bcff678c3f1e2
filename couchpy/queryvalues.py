"""Query-string values read as CouchDB reads them, and its error reasons for bad ones.

Two readers coexist in CouchDB 3.4.3. View-like listings (`_all_docs`, `_design_docs`, views:
couch_mrview_http) read booleans case-insensitively as `true`/`false` and refuse anything else;
their errors quote the offending value as Erlang's `~p` prints a string. Document reads, `_changes`
and `_bulk_get` (chttpd) only ask whether a flag is exactly `true`: any other value means false.
"""

from __future__ import annotations

import re

from . import erlterm
from .errors import QueryParseError

_INTEGER = re.compile(r"[+-]?[0-9]+")
_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f",
            13: "\\r", 27: "\\e"}


def erl_repr(value: str) -> str:
    """How Erlang's `~p` prints `value` as a list of code points (unicode printable range)."""
    if not value:
        return "[]"
    if all(32 <= ord(c) < 127 or ord(c) >= 160 or ord(c) in _ESCAPES for c in value):
        return '"' + value.translate(_ESCAPES) + '"'
    return "[" + ",".join(str(ord(c)) for c in value) + "]"


def view_bool(raw: str) -> bool:
    low = raw.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    raise QueryParseError(f"Invalid boolean parameter: {erl_repr(raw)}")


def view_int(raw: str) -> int:
    if not _INTEGER.fullmatch(raw):
        raise QueryParseError(f"Invalid value for integer: {erl_repr(raw)}")
    return int(raw)


def view_pos_int(raw: str) -> int:
    n = view_int(raw)
    if n < 0:
        raise QueryParseError(f"Invalid value for positive integer: {erl_repr(raw)}")
    return n


def chttpd_flag(raw: str | None, default: bool = False) -> bool:
    """On when exactly `true`; a flag on by default (`new_edits`) is off only when `false`."""
    if raw is None:
        return default
    return raw != "false" if default else raw == "true"


def erl_term(value: object) -> str:
    """How Erlang's `~p` prints a JSON value as CouchDB decodes it (strings are binaries, printed
    with `erl_repr`'s unicode-printable rule; every other value as erlterm prints it)."""
    if isinstance(value, str):
        return "<<" + erl_repr(value) + ">>" if value else "<<>>"
    return erlterm.p(value)


def body_bool(value: object) -> bool:
    """A flag given as a JSON member of a view request's body: a boolean, or its text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    shown = _bytes_repr(value) if isinstance(value, str) else erl_term(value)
    raise QueryParseError(f"Invalid boolean parameter: {shown}")


def _bytes_repr(value: str) -> str:
    """`~p` of a JSON string CouchDB turned into a list of its UTF-8 bytes (binary_to_list)
    before parsing it; the printed text is taken back as UTF-8, as its bytes are sent."""
    shown = erl_repr(value.encode("utf-8").decode("latin-1"))
    return shown.encode("latin-1").decode("utf-8", "replace")


def body_pos_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise QueryParseError(f"Invalid value for integer: {erl_term(value)}")
    if value < 0:
        raise QueryParseError(f"Invalid value for positive integer: {erl_term(value)}")
    return value
