"""Nouveau request parameters, sort specifications, bookmarks and index definitions (pure).

Parameters come from a query string (text, JSON-encoded where Nouveau JSON-decodes them) or a POST
body (JSON values); both end as one `SearchArgs`, validated as nouveau_httpd validates them:
`query_parse_error` (400) for a bad value.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import jsonutil
from ..errors import BadRequest
from .lucene import QueryParseError

DEFAULT_LIMIT = 25
MAX_LIMIT = 200  # Nouveau's default `max_limit`... a page; more is paged with bookmarks

# Nouveau's analyzers and the Tantivy analysis couchpy gives each (couchpy/fulltext/analyzers.py)
ANALYZERS = (
    "arabic", "armenian", "basque", "bulgarian", "catalan", "chinese", "cjk", "classic", "czech",
    "danish", "dutch", "email", "english", "finnish", "french", "galician", "german", "hindi",
    "hungarian", "indonesian", "irish", "italian", "japanese", "keyword", "latvian", "norwegian",
    "persian", "polish", "portugese", "portuguese", "romanian", "russian", "simple",
    "simple_asciifolding", "spanish", "standard", "swedish", "thai", "turkish", "whitespace",
)

FIELD_TYPES = ("string", "text", "double", "stored")


@dataclass(frozen=True)
class SortKey:
    """One sort criterion: a field (with its type when given), or relevance (`field` None)."""
    field: str | None
    descending: bool
    type: str | None = None  # "string" | "double" | None (from the index's field types)


@dataclass
class SearchArgs:
    q: str
    limit: int = DEFAULT_LIMIT
    sort: list[SortKey] | None = None
    counts: list[str] | None = None
    ranges: dict[str, list[dict]] | None = None
    include_docs: bool = False
    update: bool = True
    bookmark: list | None = None
    # the partition searched: CouchDB reads it from the query string only (a `/_partition/{p}/`
    # route sets it), never from a POSTed body
    partition: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class IndexSpec:
    """One `nouveau.<name>` entry of a design document."""
    name: str
    index: str
    default_analyzer: str
    field_analyzers: tuple[tuple[str, str], ...]
    sig: str

    def analyzer_of(self, fname: str) -> str:
        for name, an in self.field_analyzers:
            if name == fname:
                return an
        return self.default_analyzer


def _bad(msg: str) -> QueryParseError:
    return QueryParseError(msg)


def _json(raw: Any, text: bool, name: str) -> Any:
    if not text:
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad(f"Invalid value for {name}: {raw!r} is not JSON") from None


def _bool(raw: Any, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise _bad(f"Invalid value for {name}: {jsonutil.dumps(raw).decode()}")


def parse_args(raw: dict, text: bool) -> SearchArgs:
    """A request's parameters: the query string (`text`) or a POST body (JSON values)."""
    q = raw.get("q", raw.get("query"))
    if q is None:
        raise _bad("q parameter is mandatory")
    if not isinstance(q, str):
        raise _bad("Invalid value for query: " + jsonutil.dumps(q).decode())
    a = SearchArgs(q=q)
    if "limit" in raw:
        lim = raw["limit"]
        if text:
            try:
                lim = int(lim)
            except (TypeError, ValueError):
                raise _bad("limit parameter must be an integer") from None
        if not isinstance(lim, int) or isinstance(lim, bool):
            raise _bad("limit parameter must be an integer")
        if lim <= 0:
            raise _bad("limit parameter must be greater than zero")
        a.limit = lim
    if raw.get("sort") is not None:
        s = _json(raw["sort"], text, "sort")
        if isinstance(s, str):
            s = [s]
        if not isinstance(s, list) or not all(isinstance(x, str) for x in s):
            raise _bad("sort parameter must be a string or a list of strings")
        a.sort = [parse_sort(x) for x in s] if s else None
    if raw.get("counts") is not None:
        c = _json(raw["counts"], text, "counts")
        if not isinstance(c, list) or not all(isinstance(x, str) for x in c):
            raise _bad("counts parameter must be a list of strings")
        a.counts = c
    if raw.get("ranges") is not None:
        a.ranges = parse_ranges(_json(raw["ranges"], text, "ranges"))
    if "include_docs" in raw:
        a.include_docs = _bool(raw["include_docs"], "include_docs")
    if "update" in raw:
        a.update = _bool(raw["update"], "update")
    if raw.get("bookmark") not in (None, ""):
        a.bookmark = unpack_bookmark(raw["bookmark"])
    return a


_SORT = re.compile(r"^(-?)(.*?)(?:<(string|double)>)?$", re.S)


def parse_sort(spec: str) -> SortKey:
    """`"field"`, `"-field"`, `"field<string>"`, `"-field<double>"`, `"relevance"`, `"<score>"`,
    `"-<score>"` (relevance: highest first; `-<score>` lowest first as Lucene reverses it)."""
    if spec in ("relevance", "<score>"):
        return SortKey(None, True)
    if spec == "-<score>":
        return SortKey(None, False)
    m = _SORT.match(spec)
    if m is None or not m.group(2) or m.group(2).startswith("<"):
        raise _bad(f"Invalid sort: {spec!r}")
    return SortKey(m.group(2), m.group(1) == "-", m.group(3))


def parse_ranges(r: Any) -> dict[str, list[dict]]:
    """Nouveau's `ranges`: {field: [{label, min, max, min_inclusive?, max_inclusive?}]}."""
    if not isinstance(r, dict):
        raise _bad("ranges parameter must be an object")
    out: dict[str, list[dict]] = {}
    for fname, items in r.items():
        if not isinstance(items, list):
            raise _bad("range values must be lists of objects")
        parsed = []
        for it in items:
            if not isinstance(it, dict):
                raise _bad("all values in ranges parameter must be objects")
            label = it.get("label")
            if not isinstance(label, str):
                raise _bad("a range needs a string label")
            lo, hi = it.get("min"), it.get("max")
            for v in (lo, hi):
                if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
                    raise _bad(f"range {label!r}: min and max must be numbers")
            lo_incl = it.get("min_inclusive", True)
            hi_incl = it.get("max_inclusive", True)
            if not isinstance(lo_incl, bool) or not isinstance(hi_incl, bool):
                raise _bad(f"range {label!r}: min_inclusive and max_inclusive must be booleans")
            parsed.append({"label": label, "min": lo, "max": hi,
                           "min_inclusive": lo_incl, "max_inclusive": hi_incl})
        out[fname] = parsed
    return out


# ------------------------------------------------------------------ bookmarks

def pack_bookmark(after: list) -> str:
    """An opaque token: the `order` of the last hit of a page (search after it next time)."""
    return base64.urlsafe_b64encode(orjson.dumps(after)).decode().rstrip("=")


def unpack_bookmark(raw: Any) -> list:
    if not isinstance(raw, str):
        raise _bad("Invalid bookmark")
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except Exception:
        raise _bad("Invalid bookmark") from None
    if not isinstance(data, list) or not data:
        raise _bad("Invalid bookmark")
    return data


# ------------------------------------------------------------------ design documents

def _invalid(msg: str) -> BadRequest:
    return BadRequest(msg, error="invalid_design_doc")


def parse_indexes(ddoc: dict) -> dict[str, IndexSpec]:
    """The `nouveau` member of a design document; BadRequest(invalid_design_doc) when malformed.
    The signature covers what changes the index's content (function, analyzers), so an edit that
    changes none of it keeps the index."""
    section = ddoc.get("nouveau")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise _invalid("`nouveau` must be an object")
    out: dict[str, IndexSpec] = {}
    for name, d in section.items():
        if not isinstance(d, dict):
            raise _invalid(f"nouveau index `{name}` must be an object")
        src = d.get("index")
        if not isinstance(src, str) or not src.strip():
            raise _invalid(f"nouveau index `{name}` needs an `index` function (a string)")
        default = d.get("default_analyzer", "standard")
        if not isinstance(default, str) or default not in ANALYZERS:
            raise _invalid(f"nouveau index `{name}`: unknown default_analyzer {default!r}")
        fa = d.get("field_analyzers", {})
        if not isinstance(fa, dict):
            raise _invalid(f"nouveau index `{name}`: field_analyzers must be an object")
        for k, v in fa.items():
            if not isinstance(v, str) or v not in ANALYZERS:
                raise _invalid(f"nouveau index `{name}`: unknown analyzer {v!r} for field {k!r}")
        pairs = tuple(sorted(fa.items()))
        sig = hashlib.sha256(jsonutil.dumps(["nouveau-1", src, default, [list(p) for p in pairs]])).hexdigest()[:32]
        out[name] = IndexSpec(name, src, default, pairs, sig)
    return out
