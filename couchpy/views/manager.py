"""The engine-facing API of views: find (or open) a design document's index and answer queries.

Indexes are kept per open database (closed with it, through the database's close hook) and keyed by
signature, so design documents with identical views share one. The query-server pool is one per
node, built from the node's configuration on first use.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from ..attachments import hooks as att_hooks
from ..errors import BadRequest, NotFound
from ..fulltext import params as nouveau_params
from ..fulltext.index import wrap_source as nouveau_source
from ..index_cache import IndexCache, design_signatures, remove_unused_dirs
from ..query_language import canonical
from ..query_server import QueryServerPool, ViewFunctions
from . import args as qargs
from . import ddoc as ddocs
from .index import CustomAdapter, ViewIndex
from .query import TooBig, run_query

# Rows a map query may read on the event loop before it is handed to a thread (~1 ms of work).
LOOP_ROWS = 1000
LOOP_ROWS_DOCS = 200

_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_indexes = IndexCache()  # signature -> ViewIndex, per open database


def pool_for(node: Any) -> QueryServerPool:
    pool = _pools.get(node)
    if pool is None:
        pool = QueryServerPool.from_config(node.config)
        _pools[node] = pool
    return pool


def close_pool(node: Any) -> None:
    """Stop the node's query-server workers, as the node closes. Left to the garbage collector,
    a closed node's workers (a process each, ~90 MB with V8) lived on until it ran."""
    pool = _pools.pop(node, None)
    if pool is not None:
        pool.close()


def load_ddoc(db: Any, name: str) -> dict:
    docid = name if name.startswith("_design/") else "_design/" + name
    return db.get(docid)


# (database, ddoc id, rev, partitioned database): revision ids are deterministic, so a database
# deleted and created again (partitioned or not) can hold the same revision of a design document
_specs: dict[tuple[str, str, str, bool], ddocs.DesignSpec] = {}


def spec_for(db: Any, doc: dict) -> ddocs.DesignSpec:
    key = (db.name, doc.get("_id", ""), doc.get("_rev", ""), db.partitioned)
    spec = _specs.get(key) if key[2] else None
    if spec is None:
        spec = ddocs.parse(doc, db.partitioned)
        if key[2]:
            if len(_specs) > 1000:
                _specs.clear()
            _specs[key] = spec
    return spec


def index_for(node: Any, db: Any, doc: dict) -> ViewIndex:
    return _index_for_spec(node, db, spec_for(db, doc))


def spec_by_name(db: Any, ddoc_name: str) -> ddocs.DesignSpec:
    """The parsed design document, without reading it when its current revision was parsed
    before (the common case: every query names its design document). NotFound when missing."""
    docid = ddoc_name if ddoc_name.startswith("_design/") else "_design/" + ddoc_name
    info = db.get_docinfo(docid)
    if info is not None and not info.deleted:
        spec = _specs.get((db.name, docid, info.rev, db.partitioned))
        if spec is not None:
            return spec
    return spec_for(db, db.get(docid))


def index_by_name(node: Any, db: Any, ddoc_name: str) -> ViewIndex:
    return _index_for_spec(node, db, spec_by_name(db, ddoc_name))


def index_of(node: Any, db: Any, spec: ddocs.DesignSpec) -> ViewIndex:
    """The index of a design document (its language checked: a query server must run it)."""
    return _index_for_spec(node, db, spec)


def _index_for_spec(node: Any, db: Any, spec: ddocs.DesignSpec) -> ViewIndex:
    pool = pool_for(node)
    if spec.language != "query":
        pool.check_language(spec.language)
    cache = _indexes.of(db)
    ix = cache.get(spec.sig)
    if ix is None or ix.closed:
        ix = ViewIndex(db, spec, pool)
        cache[spec.sig] = ix
    return ix


async def query_view(node: Any, db: Any, ddoc_name: str, view_name: str, raw: dict, text: bool,
                     extra_keys: list | None = None) -> dict:
    """One view query; `raw` are the parameters (query-string text when `text`)."""
    # CouchDB's order: the design document (404 missing), the parameters (400), the view (404
    # missing_named_view), the parameters against the view (400), then what runs it (its language)
    spec = spec_by_name(db, ddoc_name)
    a = qargs.parse(raw, text)
    if extra_keys is not None:
        a.keys = extra_keys
    vi = spec.view_index(view_name)
    if vi is None:
        raise NotFound("missing_named_view")
    view = spec.views[vi]
    qargs.check_partition(a, spec.partitioned)
    qargs.apply_limit(a, spec.partitioned, db.config)
    # the arguments are validated against the view before the index runs it (its language)
    reducing = qargs.validate(a, view.reduce is not None, view.collation)
    ix = index_of(node, db, spec)
    return await execute(node, db, ix, vi, a, reducing, ddoc_name)


async def execute(node: Any, db: Any, ix: ViewIndex, vi: int, a: qargs.QueryArgs, reducing: bool,
                  ddoc_name: str) -> dict:
    if a.update == "true":
        await ix.update(node, "_design/" + ddoc_name.removeprefix("_design/"))

    def load_doc(rows: list[dict], conflicts: bool | None) -> list[Any]:
        """Documents of rows in one read transaction: the row's doc, or the one its value links
        to with `{"_id": ..., "_rev"?: ...}` (CouchDB's linked documents); None when missing."""
        out: list[Any] = []
        with db.store.read() as txn:
            for row in rows:
                value = row.get("value")
                docid, rev = row["id"], None
                if isinstance(value, dict) and isinstance(value.get("_id"), str):
                    docid = value["_id"]
                    rev = value.get("_rev") if isinstance(value.get("_rev"), str) else None
                info = db.get_docinfo(docid, txn)
                if info is None or (rev is None and info.deleted):
                    out.append(None)
                    continue
                rev = rev or info.rev
                if rev != info.rev and rev not in info.tree:
                    out.append(None)
                    continue
                body = db.read_body(docid, rev, txn)
                out.append(None if body is None else
                           db.build_doc(info, rev, body, txn, conflicts=bool(conflicts)))
        if a.attachments:  # outside the transaction: the attachment store opens its own
            out = [att_hooks.inline_data(db, d) if d and d.get("_attachments") else d for d in out]
        return out

    fmt = lambda s: node.format_seq(db, s)  # noqa: E731
    out = None
    if _small(ix, vi, a, reducing):
        # A bounded read with no user code: cheaper on the loop than a thread hand-off (LMDB
        # reads never block on writers).
        out = run_query(ix, vi, a, reducing, load_doc, fmt)
    elif not reducing:
        # A map query of unknown size (e.g. every row of one key): try it on the loop with a row
        # budget; past the budget it is abandoned and run again, whole, in a thread.
        try:
            out = run_query(ix, vi, a, reducing, load_doc, fmt,
                            budget=LOOP_ROWS_DOCS if a.include_docs else LOOP_ROWS)
        except TooBig:
            out = None
    if out is None:
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(None, run_query, ix, vi, a, reducing, load_doc, fmt)
    if a.update == "lazy":
        asyncio.ensure_future(ix.update(node, ddoc_name))
    return out


def _small(ix: ViewIndex, vi: int, a: qargs.QueryArgs, reducing: bool) -> bool:
    if reducing and isinstance(ix.user_reducers[vi], CustomAdapter):
        return False
    if reducing:
        return qargs.group_level_of(a) is False or (a.limit is not None and a.limit <= 100)
    # map queries run on the loop under a row budget (execute): one key may hold any number of rows
    return False


async def view_info(node: Any, db: Any, ddoc_name: str) -> dict:
    doc = load_ddoc(db, ddoc_name)
    ix = index_for(node, db, doc)
    info = ix.info()  # update_seq stays a number here, as CouchDB reports it
    return {"name": ddoc_name.removeprefix("_design/"), "view_index": info}


async def cleanup(node: Any, db: Any) -> None:
    """Remove index directories no design document uses any more (`_view_cleanup`)."""
    live = design_signatures(db, lambda doc: (ddocs.parse(doc, db.partitioned).sig,))
    _indexes.drop_unused(db, live)
    await remove_unused_dirs(db.directory / "views", live, _view_dir_signature)


def _view_dir_signature(name: str) -> str | None:
    # `<sig>.compact` and `<sig>.old` are a compaction's, in progress or cut short
    sig = name.split(".")[0]
    return sig if len(sig) == 32 else None


def open_indexes(db: Any) -> list[ViewIndex]:
    """The view indexes of `db` open now (automatic compaction looks at these)."""
    return [ix for ix in _indexes.of(db).values() if not ix.closed]


async def compact(node: Any, db: Any, ddoc_name: str) -> None:
    """`_compact/{ddoc}`: bring the index up to date, then give back the space updates left free."""
    doc = load_ddoc(db, ddoc_name)
    ix = index_for(node, db, doc)
    ddoc_id = "_design/" + ddoc_name.removeprefix("_design/")
    await ix.update(node, ddoc_id)
    await compact_index(node, db, ix, ddoc_id)


async def compact_index(node: Any, db: Any, ix: ViewIndex, ddoc_id: str | None = None) -> None:
    """ViewIndex.compact_sync in a thread, as a `view_compaction` task of /_active_tasks."""
    task = None
    if hasattr(node, "tasks"):
        task = node.tasks.add(type="view_compaction", database=db.name, design_document=ddoc_id,
                              signature=ix.spec.sig, phase="view", progress=0)
    try:
        await asyncio.get_running_loop().run_in_executor(None, ix.compact_sync)
    finally:
        if task is not None:
            task.done()


def _check_functions(node: Any, doc: dict) -> None:
    """`filters` and `validate_doc_update` must be strings of functions that compile: refused on
    save (400), not found broken on every later write or feed."""
    filters = doc.get("filters", {})
    if not isinstance(filters, dict):
        raise BadRequest("`filters` is not an object", error="invalid_design_doc")
    sources = []
    for name, src in filters.items():
        if not isinstance(src, str):
            raise BadRequest(f"filter `{name}` is not a string", error="invalid_design_doc")
        sources.append(src)
    vdu = doc.get("validate_doc_update")
    if vdu is not None:
        if not isinstance(vdu, str):
            raise BadRequest("`validate_doc_update` is not a string", error="invalid_design_doc")
        sources.append(vdu)
    language = canonical(doc.get("language") or "javascript")
    pool = pool_for(node)
    if not sources or language not in ("javascript", "python"):
        return
    if language == "python" and not pool.python_enabled:
        return
    for src in sources:
        pool.check_function(language, src)


def _check_nouveau(node: Any, doc: dict) -> None:
    """A malformed `nouveau` member, or an index function that does not compile, is refused on
    save (400) rather than found broken at the first search."""
    specs = nouveau_params.parse_indexes(doc)
    if not specs:
        return
    pool = pool_for(node)
    for spec in specs.values():
        pool.compile(ViewFunctions("javascript", (nouveau_source(spec.index),), (), (spec.name,)))


def validate_design_doc(node: Any, doc: dict) -> None:
    """For the document layer, on saving a design document: raise on malformed views and
    design functions (400)."""
    _check_functions(node, doc)
    _check_nouveau(node, doc)
    spec = ddocs.parse(doc, check_builtins=_runs(doc))
    if not spec.views:
        return
    pool = pool_for(node)
    if spec.language not in ("javascript", "python"):
        return
    if spec.language == "python" and not pool.python_enabled:
        return
    custom = tuple(None if (v.reduce is None or v.reduce.strip().startswith("_")) else v.reduce for v in spec.views)
    pool.compile(ViewFunctions(spec.language, tuple(v.map for v in spec.views), custom,
                               tuple(v.name for v in spec.views), spec.lib))


def _runs(doc: dict) -> bool:
    """Whether CouchDB has a query server for the design document's language: it saves one in
    another language without checking its views' functions."""
    return canonical(doc.get("language", "javascript")) in ("javascript", "query", "python")


async def avalidate_design_doc(node: Any, doc: dict) -> None:
    """validate_design_doc off the event loop (compiling may start a query-server worker)."""
    ddocs.parse(doc, check_builtins=_runs(doc))  # cheap structural errors first, on the loop
    nouveau_params.parse_indexes(doc)
    await asyncio.get_running_loop().run_in_executor(None, validate_design_doc, node, doc)


# ---------------------------------------------------------------- for _changes (and replication)


def _split(name: str) -> tuple[str, str]:
    if "/" not in name:
        raise BadRequest("`filter` must be of the form `designname/filtername`")
    ddoc, fname = name.split("/", 1)
    return ddoc, fname


async def filter_docs(node: Any, db: Any, name: str, docs: list[dict], req: Any) -> list[bool]:
    """`filter=ddoc/name`: run the design document's filter function over `docs` in a query
    server; one bool per document. `req` is CouchDB's request object (at least {"query": {...}})."""
    ddoc_name, fname = _split(name)
    doc = load_ddoc(db, ddoc_name)
    src = (doc.get("filters") or {}).get(fname)
    if not isinstance(src, str):
        raise NotFound(f"missing json key: {fname}")
    pool = pool_for(node)
    lang = canonical(doc.get("language", "javascript"))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, pool.filter_docs, lang, src, docs, req)


async def view_filter(node: Any, db: Any, name: str, docs: list[dict]) -> list[bool]:
    """`filter=_view&view=ddoc/view`: a document passes when the view's map function emits for it."""
    ddoc_name, vname = _split(name)
    doc = load_ddoc(db, ddoc_name)
    spec = ddocs.parse(doc)
    vi = spec.view_index(vname)
    if vi is None:
        raise NotFound("missing_named_view")
    pool = pool_for(node)
    pool.check_language(spec.language)
    fns = ViewFunctions(spec.language, (spec.views[vi].map,), (), (vname,), spec.lib)
    loop = asyncio.get_running_loop()
    rows = await loop.run_in_executor(None, pool.map_docs, fns, docs)
    return [bool(r and r[0]) for r in rows]
