"""Comparing two normalised answers and naming the class of a difference.

A class is what one fix removes: the endpoint, and what differs (the status pair with the error
names, a header, or the first differing place in the body with what kind of difference it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Difference:
    endpoint: str
    status: int  # couchpy's status (for status differences: the first of the pair)
    kind: str  # "status", "header", "body"
    where: str  # header name or JSON path ("rows[].value")
    what: str  # "200 vs 400 bad_request", "missing", "extra", "type int vs float", "value"
    couchpy: Any
    couchdb: Any

    @property
    def klass(self) -> str:
        if self.kind == "status":
            return f"{self.endpoint} | status | {self.what}"
        return f"{self.endpoint} [{self.status}] | {self.kind} {self.where} | {self.what}"


def _error_name(body: Any) -> str:
    return body.get("error", "") if isinstance(body, dict) else ""


def _first_body_difference(a: Any, b: Any, path: str) -> tuple[str, str, Any, Any] | None:
    if type(a) is not type(b):
        return path or ".", f"type {type(a).__name__} vs {type(b).__name__}", a, b
    if isinstance(a, dict):
        for k in a:
            if k not in b:
                return f"{path}.{k}", "extra", a[k], None
        for k in b:
            if k not in a:
                return f"{path}.{k}", "missing", None, b[k]
        for k in a:
            found = _first_body_difference(a[k], b[k], f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for x, y in zip(a, b):
            found = _first_body_difference(x, y, path + "[]")
            if found:
                return found
        if len(a) != len(b):
            return path or ".", f"length {len(a)} vs {len(b)}", len(a), len(b)
        return None
    if a != b:
        return path or ".", "value", a, b
    return None


def differences(endpoint: str, mine: dict, theirs: dict) -> list[Difference]:
    """What differs between couchpy's (`mine`) and CouchDB's (`theirs`) normalised answers."""
    if mine["status"] != theirs["status"]:
        what = (f"{mine['status']} {_error_name(mine['body'])} vs "
                f"{theirs['status']} {_error_name(theirs['body'])}").replace("  ", " ")
        return [Difference(endpoint, mine["status"], "status", "", what, mine["body"], theirs["body"])]
    out = []
    for name in sorted(set(mine["headers"]) | set(theirs["headers"])):
        a, b = mine["headers"].get(name), theirs["headers"].get(name)
        if a != b:
            what = "missing" if a is None else "extra" if b is None else "value"
            out.append(Difference(endpoint, mine["status"], "header", name, what, a, b))
    found = _first_body_difference(mine["body"], theirs["body"], "")
    if found:
        where, what, a, b = found
        if where.endswith(".reason") and what == "value":
            where = f"{where} ({_error_name(mine['body'])})"
        out.append(Difference(endpoint, mine["status"], "body", where, what, a, b))
    return out
