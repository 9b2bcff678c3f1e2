"""The member types CouchDB requires of a design document when it is saved.

As couch_mrview:validate_ddoc_fields: a list of paths, each checked in turn, every step a member
name (or `any` member of an object) and the types its value may have; a member that is absent
passes. The first failing step is reported with its dotted path, as in "`views.v.map` field must
have string type"; then every view must have a `map` ("View `v` must contain map function").
Pure: no I/O, so the order of the checks is the whole behaviour.
"""

from __future__ import annotations

from typing import Any

from couchpy.errors import BadRequest

ANY = object()  # a step over every member of an object

_OF_FUNCTIONS = ("object", "string")  # shows, lists, updates, filters: functions or their objects


def _paths(map_type: str) -> list[list[tuple[Any, tuple[str, ...]]]]:
    return [
        [("filters", ("object",)), (ANY, _OF_FUNCTIONS)],
        [("language", ("string",))],
        [("lists", ("object",)), (ANY, _OF_FUNCTIONS)],
        [("options", ("object",))],
        [("rewrites", ("string", "array"))],
        [("shows", ("object",)), (ANY, _OF_FUNCTIONS)],
        [("updates", ("object",)), (ANY, _OF_FUNCTIONS)],
        [("validate_doc_update", ("string",))],
        [("views", ("object",)), ("lib", ("object",))],
        [("views", ("object",)), (ANY, ("object",)), ("map", (map_type,))],
        [("views", ("object",)), (ANY, ("object",)), ("reduce", ("string",))],
    ]


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _type_name(types: tuple[str, ...]) -> str:
    # CouchDB's join builds the list backwards: ("object", "string") reads "string or object"
    return " or ".join(reversed(types))


def _first_fault(obj: Any, path: list, done: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(the dotted path, the types wanted) of the first step of `path` that fails under `obj`."""
    if not path or not isinstance(obj, dict):
        return None
    (key, types), rest = path[0], path[1:]
    if key is ANY:
        for name in obj:
            fault = _first_fault(obj, [(name, types), *rest], done)
            if fault is not None:
                return fault
        return None
    if key not in obj:
        return None
    value = obj[key]
    if not any(_has_type(value, t) for t in types):
        return (*done, key), types
    return _first_fault(value, rest, (*done, key))


def check(ddoc: dict) -> None:
    """Raise CouchDB's 400 invalid_design_doc for the first member of the wrong type, then for
    the first view without a map function."""
    map_type = "object" if ddoc.get("language") == "query" else "string"
    for path in _paths(map_type):
        fault = _first_fault(ddoc, path, ())
        if fault is not None:
            where, types = fault
            raise BadRequest(f"`{'.'.join(where)}` field must have {_type_name(types)} type",
                             error="invalid_design_doc")
    views = ddoc.get("views")
    if isinstance(views, dict):
        for name, view in views.items():
            if name != "lib" and isinstance(view, dict) and "map" not in view:
                raise BadRequest(f"View `{name}` must contain map function", error="invalid_design_doc")
