"""The map side of Mango JSON indexes, native: no query server, no user code.

A JSON index on fields [f1, f2, ...] holds, for every document that has all of those fields (and
matches the index's `partial_filter_selector`, if any), one row with key [doc.f1, doc.f2, ...].
Documents missing a field are not in the index, which is why the planner only uses an index when the
selector guarantees its fields exist. This object stands in for the query-server pool in
couchpy.views.index, with the same `map_docs` signature.
"""

from __future__ import annotations

from typing import Any

from .. import jsonutil
from .selector import _MISSING, compile_selector, get_field, parse_field


class MangoMapper:
    def __init__(self, map_sources: tuple[str, ...]):
        self.views = []
        for src in map_sources:
            spec = jsonutil.loads(src)
            fields = list((spec.get("fields") or {}).keys())
            partial = spec.get("partial_filter_selector") or {}
            matcher = compile_selector(partial) if partial else None
            self.views.append(([parse_field(f) for f in fields], matcher))

    def map_docs(self, _fns: Any, docs: list[dict]) -> list[list[list | None]]:
        out = []
        for doc in docs:
            per_view = []
            for paths, matcher in self.views:
                key = []
                for p in paths:
                    v = get_field(doc, p)
                    if v is _MISSING:
                        key = None
                        break
                    key.append(v)
                if key is None or (matcher is not None and not matcher(doc)):
                    per_view.append([])
                else:
                    # The value carries the indexed revision: when the index is current, _find
                    # reads that body directly instead of looking the document up again.
                    per_view.append([[key, doc.get("_rev")]])
            out.append(per_view)
        return out

    # The pool interface also has custom reduces; a Mango index only ever uses the built-in
    # `_count`, computed natively, so reaching these is a bug worth a clear message.
    def reduce(self, *_a: Any) -> Any:  # pragma: no cover
        raise RuntimeError("Mango JSON indexes have no custom reduce function")

    def rereduce(self, *_a: Any) -> Any:  # pragma: no cover
        raise RuntimeError("Mango JSON indexes have no custom reduce function")
