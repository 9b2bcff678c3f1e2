"""Erlang's term order over JSON values as CouchDB holds them (its "ejson"), as a Python sort key.

CouchDB sorts some things with Erlang's built-in comparison rather than view collation, e.g. the
values one document emits under one key. In ejson numbers are numbers, `true`/`false`/`null` are
atoms, strings are binaries, arrays are lists and objects are `{[{Key, Value}, ...]}` tuples, and
Erlang orders number < atom < tuple < list < binary; atoms by name, binaries bytewise, lists
element by element (a prefix first), one-element tuples by their element.
"""

from __future__ import annotations

from typing import Any

_NUMBER, _ATOM, _OBJECT, _ARRAY, _STRING = range(5)


def term_key(value: Any) -> tuple:
    """A key that sorts JSON values as Erlang sorts their ejson terms."""
    if value is None:
        return (_ATOM, "null")
    if value is True:
        return (_ATOM, "true")
    if value is False:
        return (_ATOM, "false")
    if isinstance(value, (int, float)):
        return (_NUMBER, value)
    if isinstance(value, str):
        return (_STRING, value.encode("utf-8", "surrogatepass"))
    if isinstance(value, list):
        return (_ARRAY, [term_key(v) for v in value])
    if isinstance(value, dict):
        # the proplist: a list of {Key, Value} pairs in the object's order
        return (_OBJECT, [(k.encode("utf-8", "surrogatepass"), term_key(v)) for k, v in value.items()])
    raise TypeError(f"not a JSON value: {type(value).__name__}")
