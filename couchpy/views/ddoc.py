"""Design documents as index definitions: which views, which language, which options, which signature.

The signature identifies an index by content (language, map/reduce sources, options, lib, and the
ICU version the keys were encoded with), not by design document id: two design documents with the
same views share one index, and editing a view's code or upgrading ICU gives a new index that is
built from scratch while the old one is left for `_view_cleanup`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .. import collate, jsonutil
from ..query_language import canonical
from ..errors import BadRequest
from .builtin_reduce import BUILTINS


@dataclass(frozen=True)
class ViewDef:
    name: str
    map: str
    reduce: str | None
    collation: str | None  # "raw" or None (ICU)


@dataclass(frozen=True)
class DesignSpec:
    language: str
    views: tuple[ViewDef, ...]
    lib: Any
    include_design: bool
    local_seq: bool
    sig: str
    partitioned: bool = False  # rows keyed by partition first (couchpy.partitions)

    def view_index(self, name: str) -> int | None:
        for i, v in enumerate(self.views):
            if v.name == name:
                return i
        return None


def _invalid(msg: str) -> BadRequest:
    return BadRequest(msg, error="invalid_design_doc")


def check_partitioned(ddoc: dict, db_partitioned: bool) -> None:
    """`options.partitioned` as CouchDB checks it when a design document is saved."""
    options = ddoc.get("options", {})
    if "options" in ddoc and not isinstance(options, dict):
        raise _invalid("`options` field must have object type")
    if "partitioned" not in options:
        return
    if not isinstance(options["partitioned"], bool):
        raise _invalid("`options.partitioned` field must have boolean type")
    if options["partitioned"] and not db_partitioned:
        raise _invalid("partitioned option cannot be true in a non-partitioned database.")


def is_partitioned(ddoc: dict, db_partitioned: bool) -> bool:
    """Whether a design document's indexes are partitioned: `options.partitioned`, by default
    the database's own setting."""
    options = ddoc.get("options")
    value = options.get("partitioned") if isinstance(options, dict) else None
    return db_partitioned if value is None else bool(value) and db_partitioned


def parse(ddoc: dict, db_partitioned: bool = False, check_builtins: bool = True) -> DesignSpec:
    """Read a design document's views; raise BadRequest(invalid_design_doc) when malformed.
    `db_partitioned`: the database is partitioned (the default of `options.partitioned`).
    `check_builtins`: refuse a reduce naming an unknown builtin (CouchDB checks it on save only
    for a language it runs)."""
    language = canonical(ddoc.get("language", "javascript"))
    if not isinstance(language, str):
        raise _invalid("`language` must be a string")
    views = ddoc.get("views", {})
    if not isinstance(views, dict):
        raise _invalid("`views` is not an object")
    options = ddoc.get("options", {}) or {}
    if not isinstance(options, dict):
        raise _invalid("`options` is not an object")
    defs = []
    lib = None
    for name in sorted(views):
        body = views[name]
        if name == "lib":
            lib = body
            continue
        if not isinstance(body, dict):
            raise _invalid(f"View {name} must be an object")
        m = body.get("map")
        if language == "query" and isinstance(m, dict):
            # A Mango JSON index: the "map" is its definition; keep it as canonical JSON text.
            m = jsonutil.dumps(m).decode()
        if not isinstance(m, str):
            raise _invalid(f"View {name} must have a map function")
        r = body.get("reduce")
        if r is not None and not isinstance(r, str):
            raise _invalid(f"View {name} reduce function must be a string")
        if check_builtins and r is not None and r.strip().startswith("_") and not any(r.strip().startswith(b) for b in BUILTINS):
            raise _invalid(f"`{r}` is not a supported reduce function.")
        vopts = body.get("options", {}) or {}
        coll = vopts.get("collation", options.get("collation")) if isinstance(vopts, dict) else None
        defs.append(ViewDef(name, m, r, "raw" if coll == "raw" else None))
    include_design = bool(options.get("include_design", False))
    local_seq = bool(options.get("local_seq", False))
    partitioned = is_partitioned(ddoc, db_partitioned)
    sig_src = jsonutil.dumps([
        language,
        [[v.name, v.map, v.reduce, v.collation] for v in defs],
        lib,
        include_design,
        local_seq,
        collate.ICU_VERSION,
        # on-disk format version of couchpy view indexes (2: row keys of any length; 3: each part
        # of a row stored once, views/rows.py)
        3,
    ] + (["partitioned"] if partitioned else []))
    sig = hashlib.sha256(sig_src).hexdigest()[:32]
    return DesignSpec(language, tuple(defs), lib, include_design, local_seq, sig, partitioned)
