"""The engine-facing API of Nouveau indexes: find (or open) an index, search it, describe it,
remove the ones no design document uses.

Indexes are kept per open database (closed with it through its close hook, so a deleted database
takes its indexes, which live inside its directory, with it) and keyed by signature.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import NotFound
from ..index_cache import IndexCache, design_signatures, remove_unused_dirs
from ..views import manager as views
from . import params
from .index import FullTextIndex
from .params import IndexSpec, SearchArgs

_indexes = IndexCache()  # signature -> FullTextIndex (or the Future of one opening), per open database


def spec_of(db: Any, ddoc_name: str, index_name: str) -> IndexSpec:
    """CouchDB's order: the design document (404 not_found), then the index (404)."""
    docid = ddoc_name if ddoc_name.startswith("_design/") else "_design/" + ddoc_name
    doc = db.get(docid)
    specs = params.parse_indexes(doc)
    spec = specs.get(index_name)
    if spec is None:
        raise NotFound(f"no index named {index_name} in {docid}")
    return spec


async def open_index(node: Any, db: Any, spec: IndexSpec) -> FullTextIndex:
    """The open index of `spec`; opened once however many requests ask at the same time (two
    objects opening one directory at once would each create it)."""
    cache = _indexes.of(db)
    while True:
        ix = cache.get(spec.sig)
        if isinstance(ix, asyncio.Future):
            await asyncio.shield(ix)
            continue
        if ix is not None and not ix.closed:
            return ix
        break
    pool = views.pool_for(node)
    pool.check_language("javascript")
    loop = asyncio.get_running_loop()
    opening = loop.run_in_executor(None, FullTextIndex, db, spec, pool)
    cache[spec.sig] = opening
    try:
        ix = await asyncio.shield(opening)
    except BaseException:
        if cache.get(spec.sig) is opening:
            del cache[spec.sig]
        raise
    if cache.get(spec.sig) is opening:
        cache[spec.sig] = ix
    return ix


async def update(node: Any, ix: FullTextIndex, ddoc_id: str) -> None:
    """Await an up-to-date index; concurrent callers share one build."""
    loop = asyncio.get_running_loop()
    while not ix.current():
        if ix._build is not None and not ix._build.done():
            await asyncio.shield(ix._build)
            continue
        task = None
        if hasattr(node, "tasks"):
            task = node.tasks.add(type="search_indexer", database=ix.db.name, design_document=ddoc_id,
                                  index=ix.spec.name, progress=0)

        def run() -> int:
            try:
                return ix.update_sync()
            finally:
                if task is not None:
                    task.done()

        ix._build = loop.run_in_executor(None, run)
        await asyncio.shield(ix._build)
        return


async def search(node: Any, db: Any, ddoc_name: str, index_name: str, args: SearchArgs) -> dict:
    spec = spec_of(db, ddoc_name, index_name)
    ix = await open_index(node, db, spec)
    if args.update:
        await update(node, ix, "_design/" + ddoc_name.removeprefix("_design/"))
    res = await asyncio.get_running_loop().run_in_executor(None, ix.search, args)
    if args.include_docs:
        ids = [h["id"] for h in res["hits"]]
        docs = _load(db, ids)
        for h, d in zip(res["hits"], docs):
            h["doc"] = d
    return res


def _load(db: Any, ids: list[str]) -> list[dict | None]:
    infos = [db.get_docinfo(i) for i in ids]
    present = [i for i in infos if i is not None and not i.deleted]
    loaded = dict(zip([i.id for i in present], db.load_docs(present))) if present else {}
    return [loaded.get(i) for i in ids]


async def info(node: Any, db: Any, ddoc_name: str, index_name: str) -> dict:
    spec = spec_of(db, ddoc_name, index_name)
    ix = await open_index(node, db, spec)
    docid = "_design/" + ddoc_name.removeprefix("_design/")
    return {"name": f"{docid}/{index_name}", "search_index": ix.info()}


async def cleanup(node: Any, db: Any) -> None:
    """Remove the index directories no design document uses (part of `_view_cleanup`)."""
    live = design_signatures(db, lambda doc: (spec.sig for spec in params.parse_indexes(doc).values()))
    _indexes.drop_unused(db, live)
    await remove_unused_dirs(db.directory / "nouveau", live, lambda name: name)
