"""Conflict policies: how the conflicting leaves of a document merge into one body. Pure, no I/O.

A database may carry a declarative policy (`PUT /{db}/_conflict_policy`, a couchpy extension):

    {"type": "last_writer_wins", "field": "updated_at"}  the whole body of the leaf whose field is greatest
    {"type": "max", "field": "n"} / {"type": "min", ...} the winner's body, the field the greatest / least
    {"type": "union", "field": "tags"}                  the winner's body, the field the union of the arrays
    {"type": "fields", "fields": {"tags": "union", "n": "max", "title": "lww:updated_at"}}
                                                        the winner's body, each named field merged by its rule
                                                        (an lww rule's own field is merged by max unless named)
    {"type": "function", "ddoc": "_design/merge"}       the design document's `resolve_conflicts` function

Only non-deleted leaves take part (a deleted branch is not a conflict, as CouchDB counts them).

Why the result is the same everywhere: the leaves are first put in the revision tree's winner order
(deeper first, then the greater revision id), so the merge never depends on the order leaves were
read, replicated or listed in; values are compared by CouchDB's view collation, and a tie goes to
the leaf first in that order. The merged body is then written as a child of the winner, and
revision ids are a hash of (parent, body) (couchpy.docrules.new_rev): two nodes resolving the same
leaves write the same revision, so replicating their resolutions to each other adds nothing.

Why it stops: a resolution leaves exactly one non-deleted leaf. Merging that leaf alone gives it
back unchanged (`merge` of one leaf is that leaf), and merging a set of leaves together with their
own merge, as the new winner, gives the merge again (every rule is idempotent: a max of values
already including the max, a union including the union, the same last writer). So a node only
writes when replication brought a leaf it has not merged yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import collate, jsonutil
from .errors import BadRequest

FIELD_RULES = ("union", "max", "min")
WHOLE_BODY = "last_writer_wins"
ONE_FIELD = ("max", "min", "union")
FUNCTION = "function"


def _field_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or value.startswith("_"):
        raise BadRequest(f"{what} must be a non-empty field name not starting with `_`")
    return value


def _rule(name: str, value: Any) -> str:
    if isinstance(value, str):
        if value in FIELD_RULES:
            return value
        if value.startswith("lww:"):
            return "lww:" + _field_name(value[4:], f"the field `{name}` orders by")
    raise BadRequest(f"Rule for field `{name}` must be one of union, max, min or lww:<field>")


def parse_policy(obj: Any) -> dict:
    """The policy in its normal form (`{}`: none), or BadRequest saying what is wrong."""
    if not isinstance(obj, dict):
        raise BadRequest("The conflict policy must be a JSON object")
    if not obj:
        return {}
    kind = obj.get("type")
    if kind == WHOLE_BODY or kind in ONE_FIELD:
        return {"type": kind, "field": _field_name(obj.get("field"), "`field`")}
    if kind == "fields":
        fields = obj.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise BadRequest("`fields` must be a non-empty object of field name -> rule")
        rules = {_field_name(k, "A field name"): _rule(k, v) for k, v in fields.items()}
        # The field an lww rule orders by is itself merged by max (unless given a rule): the merged
        # body then carries the time its lww fields were taken at, so a later merge of it with
        # another leaf compares the right times.
        for rule in list(rules.values()):
            if rule.startswith("lww:"):
                rules.setdefault(rule[4:], "max")
        return {"type": "fields", "fields": rules}
    if kind == FUNCTION:
        ddoc = obj.get("ddoc")
        if not isinstance(ddoc, str) or not ddoc or ddoc in ("_design/",):
            raise BadRequest("`ddoc` must name a design document")
        return {"type": FUNCTION, "ddoc": ddoc if ddoc.startswith("_design/") else "_design/" + ddoc}
    raise BadRequest("`type` must be one of last_writer_wins, max, min, union, fields, function")


def order_leaves(leaves: Sequence[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """(rev, body) pairs in the revision tree's winner order: the deeper, then the greater id."""
    def key(item: tuple[str, dict]) -> tuple[int, str]:
        pos, _, h = item[0].partition("-")
        return int(pos), h
    return sorted(leaves, key=key, reverse=True)


_MISSING = object()


def _greatest(values: list[Any], least: bool = False) -> Any:
    """The greatest (least) value by CouchDB collation; the first of equal ones. _MISSING if none."""
    best = _MISSING
    for v in values:
        if v is _MISSING:
            continue
        if best is _MISSING:
            best = v
            continue
        c = collate.compare(v, best)
        if (c < 0) if least else (c > 0):
            best = v
    return best


def canonical(value: Any) -> str:
    """JSON with sorted keys: {a,b} equals {b,a} (the same element of a union, the same policy)."""
    return jsonutil.dumps_sorted(value).decode()


def _union(values: list[Any]) -> Any:
    """The arrays' elements, each once, in order of first appearance (winner's array first)."""
    arrays = [v for v in values if isinstance(v, list)]
    if not arrays:
        return _MISSING
    seen: set[str] = set()
    out: list[Any] = []
    for arr in arrays:
        for item in arr:
            k = canonical(item)
            if k not in seen:
                seen.add(k)
                out.append(item)
    return out


def _last_writer(ordered: list[tuple[str, dict]], field: str) -> dict:
    """The body of the leaf whose `field` is greatest (missing counts least); first of equal ones."""
    best = ordered[0][1]
    best_v = best.get(field, _MISSING)
    for _, body in ordered[1:]:
        v = body.get(field, _MISSING)
        if v is _MISSING:
            continue
        if best_v is _MISSING or collate.compare(v, best_v) > 0:
            best, best_v = body, v
    return best


def _merge_field(ordered: list[tuple[str, dict]], field: str, rule: str) -> Any:
    values = [body.get(field, _MISSING) for _, body in ordered]
    if rule == "max":
        return _greatest(values)
    if rule == "min":
        return _greatest(values, least=True)
    if rule == "union":
        return _union(values)
    return _last_writer(ordered, rule[4:]).get(field, _MISSING)  # lww:<field>


def _user_fields(body: dict) -> dict:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def merge(policy: dict, leaves: Sequence[tuple[str, dict]]) -> dict:
    """The merged body (user fields only) of the non-deleted leaves `(rev, body)` under a
    declarative policy. The order of `leaves` does not matter."""
    if not leaves:
        raise ValueError("nothing to merge")
    ordered = order_leaves(leaves)
    kind = policy["type"]
    if kind == WHOLE_BODY:
        return _user_fields(_last_writer(ordered, policy["field"]))
    if kind in ONE_FIELD:
        rules = {policy["field"]: kind}
    elif kind == "fields":
        rules = policy["fields"]
    else:
        raise ValueError(f"not a declarative policy: {kind}")
    out = _user_fields(ordered[0][1])
    for field in sorted(rules):
        value = _merge_field(ordered, field, rules[field])
        if value is _MISSING:
            out.pop(field, None)
        else:
            out[field] = value
    return out


def function_input(docid: str, leaves: Sequence[tuple[str, dict]]) -> list[dict]:
    """What a `resolve_conflicts(docs)` function receives: the leaf documents, winner first."""
    return [{"_id": docid, "_rev": rev, **_user_fields(body)} for rev, body in order_leaves(leaves)]


def function_output(result: Any) -> dict:
    """The body a `resolve_conflicts` function returned, its special fields dropped (the node
    decides `_id`, `_rev`, `_deleted` and `_attachments`); ValueError if it is no object."""
    if not isinstance(result, dict):
        raise ValueError("resolve_conflicts must return the merged document as an object")
    return _user_fields(result)

