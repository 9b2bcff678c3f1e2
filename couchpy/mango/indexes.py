"""Mango JSON indexes as CouchDB stores them: views of `language: "query"` design documents.

`POST /db/_index {"index": {"fields": ["a", {"b": "desc"}]}, "name": ..., "ddoc": ...}` writes

    {"_id": "_design/<ddoc>", "language": "query",
     "views": {"<name>": {"map": {"fields": {"a": "asc", "b": "desc"}, "partial_filter_selector": {}},
                          "reduce": "_count",
                          "options": {"def": {"fields": [{"a": "asc"}, {"b": "desc"}]}}}}}

so the indexes replicate like any design document, and pouchdb-find/CouchDB read them back. The
default ddoc and name are CouchDB's own hash of the definition and options (`auto_name`).
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

from .. import erlterm, etf, jsonutil
from ..views import ddoc as view_ddoc
from ..errors import Conflict, NotFound
from .selector import MangoError, normalize


@dataclass
class IndexDef:
    ddoc: str | None  # "_design/..." (None for _all_docs)
    name: str
    type: str  # "json" | "special"
    fields: list[tuple[str, str]]  # (field, "asc"|"desc")
    partial: dict | None = None
    partitioned: bool = False  # rows keyed by partition first (couchpy.partitions)

    def json(self) -> dict:
        d: dict[str, Any] = {"fields": [{f: d} for f, d in self.fields]}
        if self.partial:
            d["partial_filter_selector"] = self.partial
        out: dict[str, Any] = {"ddoc": self.ddoc, "name": self.name, "type": self.type}
        if self.type != "special":
            out["partitioned"] = self.partitioned
        out["def"] = d
        return out


ALL_DOCS = IndexDef(None, "_all_docs", "special", [("_id", "asc")])


def sort_specs(items: list, bad_item: tuple[str, str]) -> list[tuple[str, str]]:
    """`["a", {"b": "desc"}]` -> [("a", "asc"), ("b", "desc")]: the form of both an index's `fields`
    and `_find`'s `sort`, with one direction for all. `bad_item` is the (message, error) for an
    entry that is neither a name nor a one-key object."""
    out = []
    for f in items:
        if isinstance(f, str) and f:
            out.append((f, "asc"))
        elif isinstance(f, dict) and len(f) == 1 and next(iter(f.values())) in ("asc", "desc"):
            ((name, d),) = f.items()
            out.append((name, d))
        else:
            # CouchDB's mango_sort has a clause for a bad direction that a JSON object never
            # reaches: an empty name, an object of another direction or of several members are
            # all an invalid field, printed as Erlang terms
            shown = "<<>>" if f == "" else erlterm.p(f)
            raise MangoError(f"{bad_item[0]}: {shown}", bad_item[1])
    if len({d for _, d in out}) > 1:
        raise MangoError("Sorts currently only support a single direction for all fields.", "unsupported_mixed_sort")
    return out


def sort_list(value: Any) -> list[tuple[str, str]]:
    """A sort (`_find`'s `sort`, an index's `fields`) as CouchDB's mango_sort reads it."""
    if not isinstance(value, list):
        raise MangoError(f"Sort must be an array of sort specs, not: {erlterm.p(value)}", "invalid_sort_json")
    return sort_specs(value, ("Invalid sort field", "invalid_sort_field"))


def _fields(index: dict) -> list[tuple[str, str]]:
    if "fields" not in index:
        raise MangoError("Missing required key: fields", "missing_required_key")
    fields = sort_list(index["fields"])
    if not fields:
        # CouchDB creates an index on no field, which no query can use; couchpy refuses it
        raise MangoError("Invalid JSON for field spec: []", "invalid_field")
    return fields


def _index_name(value: Any) -> None:
    """mango_opts validate_idx_name: the `name` and `ddoc` of a new index."""
    if not isinstance(value, str):
        raise MangoError(f"Invalid string: {erlterm.w(value)}", "invalid_string")
    if not value:
        raise MangoError("Index name or ddoc cannot be empty string", "invalid_empty_string")


# database -> (update seq, its indexes); weak, so a database the LRU closed is not kept in memory
# by its entry
_cache: weakref.WeakKeyDictionary[Any, tuple[int, list]] = weakref.WeakKeyDictionary()


def list_indexes(db: Any) -> list[IndexDef]:
    """All indexes of a database; cached until the database changes (design docs are documents)."""
    hit = _cache.get(db)
    if hit is not None and hit[0] == db.update_seq:
        return hit[1]
    out = _list_indexes(db)
    _cache[db] = (db.update_seq, out)
    return out


def _list_indexes(db: Any) -> list[IndexDef]:
    out = [ALL_DOCS]
    for info in db.iter_docinfos(start="_design/", end="_design0", inclusive_end=False):
        if info.deleted:
            continue
        try:
            doc = db.get(info.id)
        except NotFound:
            continue
        if doc.get("language") != "query":
            continue
        partitioned = view_ddoc.is_partitioned(doc, db.partitioned)
        for name, view in sorted((doc.get("views") or {}).items()):
            if not isinstance(view, dict) or not isinstance(view.get("map"), dict):
                continue
            m = view["map"]
            fields = [(f, d) for f, d in (m.get("fields") or {}).items()]
            out.append(IndexDef(info.id, name, "json", fields, m.get("partial_filter_selector") or None,
                                partitioned))
    return out


# the members CouchDB accepts in a `POST /db/_index` body (mango_opts:validate_idx_create)
CREATE_KEYS = ("index", "type", "name", "ddoc", "w", "partitioned")


async def create_index(db: Any, body: dict) -> dict:
    # in CouchDB's order: the options (mango_opts, a member it does not know last), then the
    # type, then the definition
    if "index" not in body:
        raise MangoError("Missing required key: index", "missing_required_key")
    itype = body.get("type", "json")
    if not isinstance(itype, str):
        raise MangoError(f"Invalid string: {erlterm.w(itype)}", "invalid_string")
    for key in ("name", "ddoc"):
        if key in body:
            _index_name(body[key])
    w = body.get("w", 2)
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
        raise MangoError(f"{erlterm.w(w)} is not an integer greater than zero", "invalid_pos_integer")
    if "partitioned" in body and not isinstance(body["partitioned"], bool):
        # CouchDB answers this with a 500 (mango_opts invalid_partitioned_value); it is the client's to fix
        raise MangoError(f"Invalid partitioned value: {erlterm.w(body['partitioned'])}", "invalid_partitioned_value")
    for key in body:
        if key not in CREATE_KEYS:
            raise MangoError(f"Invalid key {key} for this request.", "invalid_key")
    if itype == "text":
        raise MangoError("text", "required index service unavailable", 503)
    if itype != "json":
        raise MangoError(f"Invalid type for index: {itype}", "invalid_index")
    index = body["index"]
    if not isinstance(index, dict):
        raise MangoError(f"JSON indexes must be an object, not: {erlterm.w(index)}", "invalid_index")
    fields = _fields(index)
    partial = index.get("partial_filter_selector")
    # stored normalized in the view, as given in options.def, as CouchDB keeps it
    definition = {"fields": {f: d for f, d in fields},
                  "partial_filter_selector": normalize(partial) if partial else {}}
    for key in index:  # mango_opts: a JSON index's definition knows these two members only
        if key not in ("fields", "partial_filter_selector"):
            raise MangoError(f"Invalid key {key} for this request.", "invalid_key")
    digest = auto_name(body)
    name = body.get("name", digest)
    ddoc = body.get("ddoc", digest)
    if "name" not in body and "ddoc" not in body:
        legacy = _legacy_auto_name(db, body, definition)
        if legacy is not None:
            return legacy
    ddoc_id = ddoc if ddoc.startswith("_design/") else "_design/" + ddoc
    view = {"map": definition, "reduce": "_count", "options": {"def": {"fields": index["fields"]}}}
    if partial:
        view["options"]["def"]["partial_filter_selector"] = partial
    for _attempt in range(5):
        try:
            doc = db.get(ddoc_id)
        except NotFound:
            doc = {"_id": ddoc_id, "language": "query", "views": {}}
            if "partitioned" in body:
                # a design document's indexes share one scope: the first index's sets it
                doc["options"] = {"partitioned": body["partitioned"]}
        if doc.get("language", "javascript") != "query":
            raise MangoError("Invalid design document query language.", "invalid_index")
        options = doc.get("options")
        stored = options.get("partitioned") if isinstance(options, dict) else None
        if "_rev" in doc and stored != body.get("partitioned"):
            # as CouchDB: an index joins a design document only with the same explicit scope
            raise MangoError(f"Requested partitioned option does not match existing value on design document "
                             f"{ddoc_id}", "invalid_partitioned_option")
        views = doc.setdefault("views", {})
        old = views.get(name)
        if isinstance(old, dict) and old.get("map") == definition:
            return {"result": "exists", "id": ddoc_id, "name": name}
        views[name] = view
        try:
            await db.put(doc)
        except Conflict:
            continue
        return {"result": "created", "id": ddoc_id, "name": name}
    raise MangoError("Encountered a conflict while saving the design document.", "error_saving_ddoc", 500)


def auto_name(body: dict) -> str:
    """The name (and design document) of an index the request names none for: CouchDB's
    mango_idx:gen_name, the SHA-1 of `term_to_binary({Def, Opts})`, `Opts` the request's validated
    options, sorted, with their defaults. Two indexes that differ only by name live in two design
    documents; the same request gets the same design document on couchpy and on CouchDB."""
    auto = etf.Atom("auto_name")
    opts = [(etf.Atom("ddoc"), body.get("ddoc", auto)), (etf.Atom("def"), body["index"]),
            (etf.Atom("name"), body.get("name", auto)),
            (etf.Atom("partitioned"), body.get("partitioned", etf.Atom("db_default"))),
            (etf.Atom("type"), body.get("type", "json")), (etf.Atom("w"), body.get("w", 2))]
    return hashlib.sha1(etf.term_to_binary((body["index"], opts))).hexdigest()


def _legacy_auto_name(db: Any, body: dict, definition: dict) -> dict | None:
    """Before couchpy took CouchDB's auto names it digested the request's JSON: an index created
    then is found under that name, so a client creating its index again at each start (as
    pouchdb-find's users do) is told it exists rather than given a second copy."""
    given = {k: body[k] for k in ("index", "partitioned") if k in body}
    old = hashlib.sha1(jsonutil.dumps_sorted([given, "json"])).hexdigest()
    try:
        doc = db.get("_design/" + old)
    except NotFound:
        return None
    view = (doc.get("views") or {}).get(old)
    if doc.get("language") == "query" and isinstance(view, dict) and view.get("map") == definition:
        return {"result": "exists", "id": "_design/" + old, "name": old}
    return None


async def delete_index(db: Any, ddoc: str, itype: str, name: str) -> dict:
    ddoc_id = ddoc if ddoc.startswith("_design/") else "_design/" + ddoc
    # CouchDB 3.4.3 answers every index it cannot find with the document layer's 404 `missing`
    if itype != "json":
        raise NotFound("missing")
    try:
        doc = db.get(ddoc_id)
    except NotFound:
        raise NotFound("missing") from None
    views = doc.get("views") or {}
    if doc.get("language") != "query" or name not in views:
        raise NotFound("missing")
    del views[name]
    if views:
        await db.put(doc)
    else:
        await db.put({"_id": ddoc_id, "_rev": doc["_rev"], "_deleted": True})
    return {"ok": True}
