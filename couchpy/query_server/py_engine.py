"""Python view functions, inside a worker process (the couchpy view-server convention).

A map function is source defining one function that takes a document and yields `(key, value)`
pairs:

    def fun(doc):
        if doc.get("type") == "post":
            yield doc["date"], doc["title"]

A reduce function takes `(keys, values, rereduce)` as CouchDB's do: `keys` is a list of
`[key, docid]` pairs when reducing map rows and None when rereducing. A `log(msg)` function is
available to both. This runs arbitrary Python, which is why the language is off unless configured,
and why it runs in a separate process with a memory cap rather than in the server.
"""

from __future__ import annotations

import ast
from typing import Any, Callable

import orjson

from .. import jsonutil
from .js_engine import EngineError


def _compile(src: str) -> Callable:
    try:
        tree = ast.parse(src.strip() + "\n")
    except SyntaxError as exc:
        raise ValueError(f"SyntaxError: {exc.msg} (line {exc.lineno})") from None
    names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef,))]
    if not names:
        raise ValueError("Expression does not define a function. (" + src + ")")
    ns: dict[str, Any] = {"log": _log}
    exec(compile(tree, "<view function>", "exec"), ns)  # noqa: S102 - the point of this engine
    return ns[names[-1]]


_LOGS: list[str] = []


def _log(msg: Any) -> None:
    _LOGS.append(msg if isinstance(msg, str) else jsonutil.dumps(msg).decode())


def _rows(result: Any) -> list:
    if result is None:
        return []
    out = []
    for item in result:
        k, v = item
        out.append([k, v])
    return out


class PyEngine:
    def __init__(self) -> None:
        self.maps: list[Callable] = []
        self.reduces: list[Callable | None] = []
        self.filters: dict[str, Callable] = {}

    def prepare(self, spec: dict) -> Any:
        self.maps, self.reduces = [], []
        for i, src in enumerate(spec["map"]):
            try:
                self.maps.append(_compile(src))
            except Exception as exc:
                return ["map", i, str(exc)]
        for j, src in enumerate(spec["reduce"]):
            try:
                self.reduces.append(None if src is None else _compile(src))
            except Exception as exc:
                return ["reduce", j, str(exc)]
        return None

    def map_raw(self, docs_json: bytes) -> bytes:
        docs = jsonutil.loads(docs_json)
        out: list = []
        errors: list = []
        for doc in docs:
            per_fun: list = []
            for j, fn in enumerate(self.maps):
                try:
                    rows = _rows(fn(doc))
                    jsonutil.dumps(rows)  # a row that is not JSON is this document's error
                    per_fun.append(rows)
                except Exception as exc:
                    per_fun.append(None)
                    errors.append([doc.get("_id") if isinstance(doc, dict) else None, j, f"{type(exc).__name__}: {exc}"])
            out.append(per_fun)
        logs = list(_LOGS)
        _LOGS.clear()
        return jsonutil.dumps([out, errors, logs])

    def _function(self, src: str) -> Callable:
        """A filter or validate_doc_update function, compiled once per source."""
        fn = self.filters.get(src)
        if fn is None:
            try:
                fn = _compile(src)
            except Exception as exc:
                raise EngineError("compilation_error", str(exc)) from None
            self.filters[src] = fn
        return fn

    def filter(self, src: str, docs_json: bytes, req: Any) -> bytes:
        fn = self._function(src)
        out = []
        for doc in jsonutil.loads(docs_json):
            try:
                out.append(bool(fn(doc, req)))
            except Exception as exc:
                out.append(False)
                _log(f"filter error: {type(exc).__name__}: {exc}")
        logs = list(_LOGS)
        _LOGS.clear()
        return jsonutil.dumps([out, logs])

    def update(self, src: str, doc_json: bytes, req: Any) -> bytes:
        """`def fun(doc, req)` returning (doc or None, response); an exception is a render_error."""
        fn = self._function(src)
        try:
            out = fn(jsonutil.loads(doc_json), req)
        except Exception as exc:
            logs = list(_LOGS)
            _LOGS.clear()
            return jsonutil.dumps([None, None, logs, ["render_error", f"function raised error: {exc}"]])
        logs = list(_LOGS)
        _LOGS.clear()
        doc, resp = out if isinstance(out, (list, tuple)) and len(out) == 2 else (None, out)
        return jsonutil.dumps([doc, resp, logs])

    def validate(self, src: str, items_json: bytes, user_ctx: Any, sec_obj: Any) -> bytes:
        """`def fun(new_doc, old_doc, user_ctx, sec_obj)`; it rejects by raising an exception
        whose argument is {"forbidden": msg} or {"unauthorized": msg} (any other exception
        forbids, with its message)."""
        fn = self._function(src)
        out: list = []
        for new_doc, old_doc in jsonutil.loads(items_json):
            try:
                fn(new_doc, old_doc, user_ctx, sec_obj)
                out.append(None)
            except Exception as exc:
                arg = exc.args[0] if exc.args else None
                if isinstance(arg, dict) and ("forbidden" in arg or "unauthorized" in arg):
                    key = "forbidden" if "forbidden" in arg else "unauthorized"
                    out.append({key: str(arg[key])})
                else:
                    out.append({"forbidden": f"{type(exc).__name__}: {exc}"})
        logs = list(_LOGS)
        _LOGS.clear()
        return jsonutil.dumps([out, logs])

    def reduce(self, idx: int, keys: Any, values: list, rereduce: bool) -> tuple[Any, list]:
        fn = self.reduces[idx]
        try:
            out = fn(keys, values, rereduce)
            jsonutil.dumps(out)
        except Exception as exc:
            raise EngineError("reduce_error", f"{type(exc).__name__}: {exc}") from None
        logs = list(_LOGS)
        _LOGS.clear()
        return out, logs

    def close(self) -> None:
        pass


__all__ = ["PyEngine", "orjson"]
