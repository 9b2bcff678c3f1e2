"""Mango selectors: validation, normalization and matching, as CouchDB's mango_selector does it.

A selector is a JSON object describing which documents match, e.g.
`{"year": {"$gt": 2010}, "tags": {"$all": ["x"]}, "$or": [{"a.b": 1}, {"c": {"$exists": false}}]}`.

Normalization (CouchDB's three steps, so that every consumer sees one canonical shape):
1. operators: validate each operator's argument, make implicit `$and` (several members in one object)
   and implicit `$eq` (a bare value) explicit;
2. fields: push field names down to the terminal operators, joining nested objects into dotted paths
   (`{"a": {"b": {"$gt": 1}}}` becomes `{"a.b": {"$gt": 1}}`); `$elemMatch`/`$allMatch`/`$keyMapMatch`
   arguments are normalized on their own, relative to the element;
3. negations: push `$not`/`$nor` down to the terminals (De Morgan; `$lt` becomes `$gte`, `$in` `$nin`,
   `$exists` flips), keeping `$not` only above operators that have no negation.

After that every node is a one-member object: a combinator (`$and/$or/$not`) or `{path: condition}`.
Matching follows CouchDB exactly, including its less obvious choices: comparison operators use view
collation (so `{"$gt": 5}` also matches strings, which sort after numbers) except on `_id`, which
compares raw; a condition on a missing field fails unless it is `{"$exists": false}` (so after
normalization `{"$not": {"a": 1}}` requires `a` to exist); `$all` uses exact term equality.

`compile_selector(sel)` validates and returns a fast `matcher(doc) -> bool`; it is shared by `_find`,
`_changes?filter=_selector` and replication's `selector`. `normalize` and `fields` serve index selection.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from .. import collate, erlterm, jsonutil
from ..errors import BadRequest

Matcher = Callable[[Any], bool]

_MISSING = object()  # a field that is not there (CouchDB's not_found / bad_path)

_COMBINATORS = ("$and", "$or", "$nor", "$not")
_UNSUPPORTED = ("$where", "$geoWithin", "$geoIntersects", "$near", "$nearSphere")
_INT_INDEX = re.compile(r"[+-]?[0-9]+\Z")


class MangoError(BadRequest):
    """A selector error; `error` carries CouchDB's token (bad_arg, invalid_operator, ...)."""


def _fmt(value: Any) -> str:
    try:
        return jsonutil.dumps(value).decode()
    except Exception:  # pragma: no cover - not JSON at all
        return repr(value)


def _bad_arg(op: str, arg: Any) -> MangoError:
    return MangoError(f"Bad argument for operator {op}: {_fmt(arg)}", "bad_arg")


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_obj(v: Any) -> bool:
    return isinstance(v, dict)


# ---------------------------------------------------------------- field paths


def parse_field(field: str) -> list[str]:
    """Split a dotted field name at the dots no backslash escapes, then drop the backslashes, as
    CouchDB does: `a\\.b` is one name "a.b", `\\$f` the name "$f" (a field, not an operator)."""
    if "\\" not in field:
        return field.split(".")
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\\":
            if i + 1 < len(field) and field[i + 1] == ".":
                buf.append(".")
                i += 1
        elif c == ".":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    parts.append("".join(buf))
    return parts


def get_field(value: Any, path: list[str]) -> Any:
    """The value at `path`, or _MISSING. Array elements are addressed by decimal index."""
    for name in path:
        if isinstance(value, dict):
            if name not in value:
                return _MISSING
            value = value[name]
        elif isinstance(value, list):
            if not _INT_INDEX.match(name):
                return _MISSING
            pos = int(name)
            if pos < 0 or pos >= len(value):
                return _MISSING
            value = value[pos]
        else:
            return _MISSING
    return value


# ---------------------------------------------------------------- normalization


def _one(key: str, value: Any) -> dict:
    return {key: value}


def _norm_ops(sel: Any) -> dict:
    if isinstance(sel, dict) and len(sel) == 1:
        ((op, arg),) = sel.items()
        if op in ("$and", "$or", "$nor"):
            if not isinstance(arg, list):
                raise _bad_arg(op, arg)
            return _one(op, [_norm_ops(a) for a in arg])
        if op == "$not":
            if not _is_obj(arg):
                raise _bad_arg(op, arg)
            return _one(op, _norm_ops(arg))
        if op in ("$in", "$nin", "$all"):
            if not isinstance(arg, list):
                raise _bad_arg(op, arg)
            return sel
        if op == "$exists":
            if not isinstance(arg, bool):
                raise _bad_arg(op, arg)
            return sel
        if op == "$type":
            if not isinstance(arg, str):
                raise _bad_arg(op, arg)
            return sel
        if op == "$mod":
            if not (isinstance(arg, list) and len(arg) == 2 and _is_int(arg[0]) and _is_int(arg[1])) or arg[0] == 0:
                raise _bad_arg(op, arg)
            return sel
        if op == "$regex":
            if not isinstance(arg, str):
                raise _bad_arg(op, arg)
            try:
                re.compile(arg)
            except re.error:
                raise _bad_arg(op, arg) from None
            return sel
        if op in ("$elemMatch", "$allMatch", "$keyMapMatch"):
            if not _is_obj(arg):
                raise _bad_arg(op, arg)
            return _one(op, _norm_ops(arg))
        if op == "$size":
            if not (_is_int(arg) and arg >= 0):
                raise _bad_arg(op, arg)
            return sel
        if op == "$beginsWith":
            if not isinstance(arg, str):
                raise _bad_arg(op, arg)
            return sel
        if op in ("$lt", "$lte", "$eq", "$ne", "$gte", "$gt"):
            return sel
        if op == "$text":
            raise MangoError("Unsupported operator: $text", "not_supported")
        if op in _UNSUPPORTED:
            raise MangoError(f"Unsupported operator: {op}", "not_supported")
        if op.startswith("$"):
            raise MangoError(f"Invalid operator: {op}", "invalid_operator")
        return _one(op, _norm_ops(arg))
    if isinstance(sel, dict) and len(sel) > 1:
        return _one("$and", [_norm_ops({k: v}) for k, v in sel.items()])
    return _one("$eq", sel)


def _join(path: str, field: str) -> str:
    return field if path == "" else f"{path}.{field}"


def _norm_fields(sel: dict, path: str = "") -> dict:
    if not sel:
        return _one(path, {}) if path else {}
    ((op, arg),) = sel.items()
    if op in ("$and", "$or", "$nor"):
        return _one(op, [_norm_fields(a, path) for a in arg])
    if op == "$not":
        return _one(op, _norm_fields(arg, path))
    if op in ("$elemMatch", "$allMatch", "$keyMapMatch"):
        return _one(path, _one(op, _norm_fields(arg)))
    if op.startswith("$"):
        return _one(path, sel)
    if not isinstance(arg, dict):  # pragma: no cover - _norm_ops never produces this
        raise MangoError(f"Invalid field normalization on selector: {_fmt(sel)}", "bad_field")
    return _norm_fields(arg, _join(path, op))


_NEGATE = {"$lt": "$gte", "$lte": "$gt", "$eq": "$ne", "$ne": "$eq", "$gte": "$lt", "$gt": "$lte",
           "$in": "$nin", "$nin": "$in"}


def _norm_negations(sel: dict) -> dict:
    if not sel:
        return sel
    ((op, arg),) = sel.items()
    if op == "$not":
        return _negate(arg)
    if op == "$nor":
        return _one("$and", [_negate(a) for a in arg])
    if op in ("$and", "$or"):
        return _one(op, [_norm_negations(a) for a in arg])
    if op in ("$elemMatch", "$allMatch", "$keyMapMatch"):
        return _one(op, _norm_negations(arg))
    # CouchDB stops at a {path: cond} node: negations inside a field's $elemMatch stay as $not.
    return sel


def _negate(sel: dict) -> dict:
    if not sel:
        return _one("$not", sel)
    ((op, arg),) = sel.items()
    if op == "$not":
        return _norm_negations(arg)
    if op == "$nor":
        return _one("$or", [_norm_negations(a) for a in arg])
    if op == "$and":
        return _one("$or", [_negate(a) for a in arg])
    if op == "$or":
        return _one("$and", [_negate(a) for a in arg])
    if op in _NEGATE:
        return _one(_NEGATE[op], arg)
    if op == "$exists":
        return _one("$exists", not arg)
    if op.startswith("$"):
        return _one("$not", sel)
    return _one(op, _negate(arg))


def normalize(selector: Any) -> dict:
    """Validate and normalize a selector; raise MangoError (400) when it is invalid."""
    if not isinstance(selector, dict):
        raise MangoError(f"Selector must be a JSON object, not: {erlterm.w(selector)}", "invalid_selector_json")
    if not selector:
        return {}
    norm = _norm_negations(_norm_fields(_norm_ops(selector)))
    if "" in norm:
        raise MangoError("One or more conditions is missing a field name.", "invalid_selector")
    return norm


def validate(selector: Any) -> None:
    """Raise a BadRequest (MangoError) if `selector` is not a valid selector."""
    _compile(normalize(selector), "")


# ---------------------------------------------------------------- matching


def _strict_eq(a: Any, b: Any) -> bool:
    return erlterm.equal(a, b)


def _loose_eq(a: Any, b: Any) -> bool:
    return erlterm.equal(a, b, numbers_by_value=True)


def _raw_compare(a: Any, b: Any) -> int:
    ea, eb = collate.encode_raw(a), collate.encode_raw(b)
    return (ea > eb) - (ea < eb)


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, list):
        return "array"
    return "object"


def _erl_rem(v: int, d: int) -> int:
    r = abs(v) % abs(d)
    return -r if v < 0 else r


def _compile(sel: dict, field: str) -> Matcher:
    """Compile a normalized node; `field` is the enclosing path (decides raw compare for _id)."""
    if not sel:
        return lambda v: True
    ((op, arg),) = sel.items()
    cmp = _raw_compare if field == "_id" else collate.compare

    if op == "$and":
        subs = [_compile(a, field) for a in arg]
        if not subs:
            return lambda v: True
        return lambda v: all(s(v) for s in subs)
    if op == "$or":
        subs = [_compile(a, field) for a in arg]
        if not subs:
            return lambda v: True
        return lambda v: any(s(v) for s in subs)
    if op == "$not":
        sub = _compile(arg, field)
        return lambda v: not sub(v)
    if op == "$all":
        args = arg
        if not args:
            return lambda v: False
        whole = args[0] if len(args) == 1 and isinstance(args[0], list) else None

        def m_all(v: Any) -> bool:
            if not isinstance(v, list):
                return False
            if whole is not None and _loose_eq(whole, v):
                return True
            return all(any(_strict_eq(a, x) for x in v) for a in args)

        return m_all
    if op in ("$elemMatch", "$allMatch"):
        sub = _compile(arg, "")
        if op == "$elemMatch":
            return lambda v: isinstance(v, list) and any(sub(x) for x in v)
        return lambda v: isinstance(v, list) and len(v) > 0 and all(sub(x) for x in v)
    if op == "$keyMapMatch":
        sub = _compile(arg, "")
        return lambda v: isinstance(v, dict) and any(sub(k) for k in v)
    if op == "$eq":
        if isinstance(arg, str) and field != "_id":
            # Fast path: equal strings are collation-equal; otherwise ask ICU (ignorables).
            return lambda v: v is not _MISSING and (v == arg if type(v) is str and v == arg else cmp(v, arg) == 0)
        return lambda v: v is not _MISSING and cmp(v, arg) == 0
    if op in ("$gt", "$gte", "$lt", "$lte") and type(arg) in (int, float) and field != "_id":
        # Numbers against a number compare numerically; anything else by type rank (collation).
        pyop = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}[op]
        sign = {"$gt": lambda c: c > 0, "$gte": lambda c: c >= 0, "$lt": lambda c: c < 0, "$lte": lambda c: c <= 0}[op]

        def m_num(v: Any) -> bool:
            t = type(v)
            if t is int or t is float:
                return pyop(v, arg)
            return v is not _MISSING and sign(cmp(v, arg))

        return m_num
    if op == "$ne":
        return lambda v: v is not _MISSING and cmp(v, arg) != 0
    if op == "$lt":
        return lambda v: v is not _MISSING and cmp(v, arg) < 0
    if op == "$lte":
        return lambda v: v is not _MISSING and cmp(v, arg) <= 0
    if op == "$gt":
        return lambda v: v is not _MISSING and cmp(v, arg) > 0
    if op == "$gte":
        return lambda v: v is not _MISSING and cmp(v, arg) >= 0
    if op == "$in":
        args = arg

        def m_in(v: Any) -> bool:
            if isinstance(v, list):
                return any(cmp(x, a) == 0 for a in args for x in v)
            return any(cmp(v, a) == 0 for a in args)

        return m_in
    if op == "$nin":
        args = arg

        def m_nin(v: Any) -> bool:
            if isinstance(v, list):
                return all(cmp(x, a) != 0 for a in args for x in v)
            return all(cmp(v, a) != 0 for a in args)

        return m_nin
    if op == "$exists":
        want = arg
        return lambda v: (v is not _MISSING) == want
    if op == "$type":
        return lambda v: v is not _MISSING and json_type(v) == arg
    if op == "$mod":
        d, r = arg
        return lambda v: _is_int(v) and _erl_rem(v, d) == r
    if op == "$beginsWith":
        return lambda v: isinstance(v, str) and v.startswith(arg)
    if op == "$regex":
        rx = re.compile(arg)
        return lambda v: isinstance(v, str) and rx.search(v) is not None
    if op == "$size":
        return lambda v: isinstance(v, list) and len(v) == arg
    if op.startswith("$"):
        raise MangoError(f"Invalid operator: {op}", "invalid_operator")

    # {path: condition}
    sub = _compile(arg, op)
    if op == "":
        return sub
    path = parse_field(op)
    exists_false = arg == {"$exists": False}

    if len(path) == 1:
        name = path[0]

        def m_field1(v: Any) -> bool:
            if isinstance(v, dict):
                if name in v:
                    return sub(v[name])
            elif isinstance(v, list):
                x = get_field(v, path)
                if x is not _MISSING:
                    return sub(x)
            return exists_false

        return m_field1

    def m_field(v: Any) -> bool:
        x = get_field(v, path)
        if x is _MISSING:
            return exists_false
        return sub(x)

    return m_field


def compile_selector(selector: Any) -> Matcher:
    """Validate (raising MangoError, a BadRequest) and compile to `matcher(doc) -> bool`."""
    return _compile(normalize(selector), "")


def compile_normalized(norm: dict) -> Matcher:
    """compile_selector for a selector `normalize` already returned (no second normalization)."""
    return _compile(norm, "")


def matches(selector: Any, doc: Any) -> bool:
    """One-off convenience: compile and match (compile once when matching many documents)."""
    return compile_selector(selector)(doc)


# ---------------------------------------------------------------- analysis for index selection


def fields(norm: dict) -> list[str]:
    """Field paths a normalized selector mentions at the top (through $and/$or/$nor), CouchDB's fields/1."""
    if not norm:
        return []
    ((op, arg),) = norm.items()
    if op.startswith("$") and isinstance(arg, list):
        out: list[str] = []
        for a in arg:
            out.extend(fields(a))
        return out
    return [op]


def has_required_fields(norm: dict, required: list[str]) -> bool:
    """True if every matching document must have all `required` fields (CouchDB's rule)."""
    return _required_remainder(norm, list(required)) == []


def _required_remainder(sel: Any, required: list[str]) -> list[str]:
    if sel == {}:
        return required
    if not required:
        return []
    items = sel if isinstance(sel, list) else [sel]
    remaining = required
    for node in items:
        if not remaining:
            return []
        if not node:
            continue
        ((op, arg),) = node.items()
        if op == "$and" and isinstance(arg, list):
            remaining = _required_remainder(arg, remaining)
        elif op == "$or" and isinstance(arg, list):
            acc: list[str] = []
            for a in arg:
                acc.extend(_required_remainder(a, remaining))
            remaining = sorted(set(acc))
        elif op.startswith("$"):
            continue
        elif arg == {"$exists": False}:
            continue
        else:
            remaining = [f for f in remaining if f != op]
    return remaining


def is_constant_field(norm: dict, field: str) -> bool:
    """True if the selector pins `field` with $eq (used to ignore it in sort checks)."""
    if not norm:
        return False
    items = [norm]
    while items:
        node = items.pop(0)
        if not node:
            continue
        ((op, arg),) = node.items()
        if op == "$and" and isinstance(arg, list):
            if any(is_constant_field(a, field) for a in arg):
                return True
            continue
        if op == field and isinstance(arg, dict) and len(arg) == 1:
            return next(iter(arg)) == "$eq"
    return False
