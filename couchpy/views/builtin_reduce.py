"""CouchDB's built-in reduce functions, native: `_sum`, `_count`, `_stats`, `_approx_count_distinct`.

A reduce runs in two modes. `reduce(keys, values)` folds map rows into a *partial*; `rereduce(partials)`
folds partials into one. Indexes store partials for blocks of rows and combine them at query time, so
both must agree: rereduce(reduce(A), reduce(B)) == reduce(A + B). `finalize(partial)` turns a partial
into what the client sees (the HyperLogLog sketch of `_approx_count_distinct` becomes a number, `_stats`
tuples become objects). Partials are plain Python values (numbers, lists, dicts, tuples, bytes) so
they can be stored with `marshal`.

Semantics follow couch_query_servers.erl:
- `_sum` adds numbers, arrays of numbers (element-wise, the shorter padded) and objects (key-wise,
  recursively). A value it cannot add makes the *result* an error object
  `{"error": "builtin_reduce_error", "reason": ..., "caused_by": value}` (HTTP 200, as CouchDB), and
  that error wins over any later rereduce.
- `_count` counts rows; rereduce sums the counts.
- `_stats` keeps (sum, count, min, max, sumsqr) per number, element-wise for arrays, and accepts
  pre-aggregated `{"sum","count","min","max","sumsqr"}` objects. Invalid input fails the query.
- `_approx_count_distinct` estimates the number of distinct *keys* with a HyperLogLog of precision 11
  (2048 registers, ~2% error), as CouchDB's hyper library does; sketches merge by register maximum.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from .. import jsonutil
from ..errors import CouchError

SUM_ERROR = (
    "The _sum function requires that map values be numbers, arrays of numbers, or objects. Objects "
    "cannot be mixed with other data structures. Objects can be arbitrarily nested, provided that the "
    "values for all fields are themselves numbers, arrays of numbers, or objects."
)

BUILTINS = ("_sum", "_count", "_stats", "_approx_count_distinct")


class BuiltinReduceError(CouchError):
    status, error = 500, "builtin_reduce_error"


def _is_num(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and v is not True and v is not False


# ------------------------------------------------------------------ _sum


class _SumError(Exception):
    def __init__(self, obj: dict):
        self.obj = obj


def _sum_error(cause: Any) -> _SumError:
    return _SumError({"error": "builtin_reduce_error", "reason": SUM_ERROR, "caused_by": cause})


def _is_error_obj(v: Any) -> bool:
    return isinstance(v, dict) and v.get("error") == "builtin_reduce_error"


def _sum_arrays(xs: list, ys: list) -> list:
    out = []
    n = max(len(xs), len(ys))
    for i in range(n):
        if i >= len(xs):
            out.extend(ys[i:])
            break
        if i >= len(ys):
            out.extend(xs[i:])
            break
        x, y = xs[i], ys[i]
        if not (_is_num(x) and _is_num(y)):
            raise _sum_error(xs)
        out.append(x + y)
    return out


def _sum_values(value: Any, acc: Any) -> Any:
    if _is_num(value) and _is_num(acc):
        return acc + value
    if isinstance(value, list) and isinstance(acc, list):
        return _sum_arrays(acc, value)
    if _is_num(value) and isinstance(acc, list):
        return _sum_arrays(acc, [value])
    if isinstance(value, list) and _is_num(acc):
        return _sum_arrays([acc], value)
    if isinstance(value, dict):
        if _is_error_obj(value):
            raise _SumError(value)
        if type(acc) is int and acc == 0:
            return dict(sorted(value.items()))
        if isinstance(acc, dict):
            return _sum_objects(value, acc)
        raise _sum_error(value)
    raise _sum_error(value)


def _sum_objects(a: dict, b: dict) -> dict:
    out: dict = {}
    for k in sorted(set(a) | set(b), key=lambda s: s.encode("utf-8", "surrogatepass")):
        if k in a and k in b:
            out[k] = _sum_values(a[k], b[k])
        else:
            out[k] = a[k] if k in a else b[k]
    return out


def _sum_all(values: Sequence[Any]) -> Any:
    # Fast path: plain numbers (the common case).
    total: Any = 0
    for v in values:
        t = type(v)
        if t is int or t is float:
            total += v
        else:
            break
    else:
        return total
    acc: Any = 0
    try:
        for v in values:
            acc = _sum_values(v, acc)
    except _SumError as exc:
        return exc.obj
    return acc


# ------------------------------------------------------------------ _stats

Stats = tuple  # (sum, count, min, max, sumsqr)


def _stat_error(value: Any) -> BuiltinReduceError:
    return BuiltinReduceError(
        "The _stats function requires that map values be numbers or arrays of numbers, not '"
        + jsonutil.dumps(value).decode()
        + "'"
    )


def _unpack_stats(obj: dict) -> Stats:
    out = []
    for k in ("sum", "count", "min", "max", "sumsqr"):
        if k not in obj:
            raise BuiltinReduceError(f"user _stats input missing required field {k} ({jsonutil.dumps(obj).decode()})")
        x = obj[k]
        if not _is_num(x):
            raise BuiltinReduceError(f"non-numeric _stats input received for {k}: {jsonutil.dumps(x).decode()}")
        out.append(x)
    return tuple(out)


def _stat_init(v: Any) -> Any:
    if isinstance(v, list):
        return [_stat_init(x) for x in v]
    if _is_num(v):
        return (v, 1, v, v, v * v)
    if isinstance(v, tuple):
        return v
    if isinstance(v, dict):
        return _unpack_stats(v)
    raise _stat_error(v)


def _stat_merge(value: Any, acc: Any) -> Any:
    if isinstance(value, list) and isinstance(acc, list):
        if len(value) != len(acc):
            raise _stat_error(value)
        return [_stat_merge(v, a) for v, a in zip(value, acc)]
    if isinstance(value, dict):
        value = _unpack_stats(value)
    elif _is_num(value):
        value = (value, 1, value, value, value * value)
    if _is_num(acc):
        acc = (acc, 1, acc, acc, acc * acc)
    if isinstance(value, tuple) and isinstance(acc, tuple):
        return (
            value[0] + acc[0],
            value[1] + acc[1],
            min(value[2], acc[2]),
            max(value[3], acc[3]),
            value[4] + acc[4],
        )
    raise _stat_error(value)


def _stats_all(items: Sequence[Any]) -> Any:
    if not items:
        return (0, 0, 0, 0, 0)
    acc = _stat_init(items[0])
    for v in items[1:]:
        acc = _stat_merge(v, acc)
    return acc


def _pack_stats(s: Any) -> Any:
    if isinstance(s, list):
        return [_pack_stats(x) for x in s]
    return {"sum": s[0], "count": s[1], "min": s[2], "max": s[3], "sumsqr": s[4]}


# ------------------------------------------------------------------ HyperLogLog

HLL_P = 11
HLL_M = 1 << HLL_P
_ALPHA = 0.7213 / (1 + 1.079 / HLL_M)


def _hll_add(regs: bytearray, key: Any) -> None:
    h = int.from_bytes(hashlib.blake2b(jsonutil.dumps(key), digest_size=8).digest(), "big")
    idx = h >> (64 - HLL_P)
    rest = h & ((1 << (64 - HLL_P)) - 1)
    rank = (64 - HLL_P) - rest.bit_length() + 1
    if rank > regs[idx]:
        regs[idx] = rank


def hll_estimate(regs: bytes) -> float:
    z = 0.0
    zeros = 0
    for r in regs:
        z += 2.0 ** -r
        if r == 0:
            zeros += 1
    e = _ALPHA * HLL_M * HLL_M / z
    if e <= 2.5 * HLL_M and zeros:
        return HLL_M * math.log(HLL_M / zeros)  # linear counting for small cardinalities
    return e


# ------------------------------------------------------------------ the reducers


class Builtin:
    """One built-in reduce. `keys` are the rows' view keys (only _approx_count_distinct uses them)."""

    def __init__(self, name: str):
        base = next((b for b in BUILTINS if name.startswith(b)), None)
        if base is None:
            raise ValueError(name)
        self.name = base

    def reduce(self, keys: Sequence[Any], values: Sequence[Any]) -> Any:
        n = self.name
        if n == "_count":
            return len(values)
        if n == "_sum":
            out = _sum_all(values)
            return _check_sum_overflow(values, out)
        if n == "_stats":
            return _stats_all(values)
        regs = bytearray(HLL_M)
        for k in keys:
            _hll_add(regs, k)
        return bytes(regs)

    def rereduce(self, partials: Sequence[Any]) -> Any:
        n = self.name
        if n == "_count":
            return sum(partials)
        if n == "_sum":
            return _sum_all(partials)
        if n == "_stats":
            if not partials:
                return (0, 0, 0, 0, 0)
            acc = partials[0]
            for p in partials[1:]:
                acc = _stat_merge(p, acc)
            return acc
        regs = bytearray(HLL_M)
        for p in partials:
            if p:
                regs = bytearray(max(a, b) for a, b in zip(regs, p))
        return bytes(regs)

    def finalize(self, partial: Any) -> Any:
        if self.name == "_stats":
            return _pack_stats(partial)
        if self.name == "_approx_count_distinct":
            return round(hll_estimate(partial))
        return partial


def _check_sum_overflow(values: Sequence[Any], out: Any) -> Any:
    """CouchDB's reduce_limit for _sum: an output that does not shrink (e.g. huge arrays) is an error."""
    if isinstance(out, (int, float)):
        return out
    out_size = len(jsonutil.dumps(out))
    if out_size > 4906:
        in_size = sum(len(jsonutil.dumps(v)) for v in values)
        if out_size * 2 > in_size:
            return {
                "error": "builtin_reduce_error",
                "reason": f"Reduce output must shrink more rapidly: input size: {in_size} output size: {out_size}",
            }
    return out


def is_builtin(source: str) -> bool:
    return source.strip().startswith("_")


def builtin(source: str) -> Builtin:
    """The built-in reducer for `_sum` etc.; raises ValueError for an unknown `_name`."""
    return Builtin(source.strip())
