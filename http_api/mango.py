"""Mango endpoints: `_index` (GET/POST/DELETE), `_find`, `_explain`."""

from __future__ import annotations

from aiohttp import web

from couchpy.errors import CouchError
from couchpy.mango import find as mango_find
from couchpy.mango import indexes

from . import params
from .access import visible_doc
from .databases import get_db
from .responses import json_response, not_allowed

_table = web.RouteTableDef()


@_table.get("/{db}/_index")
async def list_indexes(request: web.Request) -> web.Response:
    db = get_db(request)
    defs = [i.json() for i in indexes.list_indexes(db)]
    try:
        skip = params.integer(request, "skip", 0) or 0
        limit = params.integer(request, "limit")
    except CouchError:
        limit = skip = -1
    if limit is not None and limit < 1 or skip < 0:
        # CouchDB answers these with a 500 carrying this error; they are the client's to fix
        raise CouchError("Index parameter ranges: limit > 1, skip > 0", "invalid_list_index_params", 400)
    shown = defs[skip:] if limit is None else defs[skip:skip + limit]
    return json_response({"total_rows": len(defs), "indexes": shown})


@_table.post("/{db}/_index")
async def create_index(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    body = await params.json_object(request)
    return json_response(await indexes.create_index(db, body))


@_table.delete("/{db}/_index/{ddoc}/{type}/{name}")
async def delete_index(request: web.Request) -> web.Response:
    db = get_db(request)
    m = request.match_info
    return json_response(await indexes.delete_index(db, m["ddoc"], m["type"], m["name"]))


@_table.delete("/{db}/_index/_design/{ddoc}/{type}/{name}")
async def delete_index_full(request: web.Request) -> web.Response:
    db = get_db(request)
    m = request.match_info
    return json_response(await indexes.delete_index(db, "_design/" + m["ddoc"], m["type"], m["name"]))


@_table.post("/{db}/_find")
async def find(request: web.Request) -> web.Response:
    return await query(request, get_db(request), False)


@_table.post("/{db}/_explain")
async def explain(request: web.Request) -> web.Response:
    return await query(request, get_db(request), True)


async def query(request: web.Request, db, explaining: bool, partition: str | None = None) -> web.Response:
    """`_find` or `_explain`; `partition`: the one the path names (it replaces any in the body)."""
    params.require_json(request)
    body = await params.json_body(request)
    if partition is not None and isinstance(body, dict):
        body = {**body, "partition": partition}
    if explaining:
        return json_response(await mango_find.explain(request.app["node"], db, body))
    return json_response(await mango_find.find(request.app["node"], db, body, visible_doc(request, db)))


def routes() -> list[web.RouteDef]:
    return list(_table) + [
        not_allowed("/{db}/_index", "GET,POST"),
        not_allowed("/{db}/_find", "POST"),
        not_allowed("/{db}/_explain", "POST"),
    ]
