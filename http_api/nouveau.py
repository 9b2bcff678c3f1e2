"""Nouveau endpoints: `_design/{ddoc}/_nouveau/{index}` (GET/POST) and `_nouveau_info/{index}`."""

from __future__ import annotations

from aiohttp import web

from couchpy.errors import BadRequest
from couchpy.fulltext import manager
from couchpy.fulltext import params as fparams

from . import params
from .databases import get_db
from .responses import json_response, not_allowed

_table = web.RouteTableDef()

SEARCH = "/{db}/_design/{ddoc}/_nouveau/{index}"
INFO = "/{db}/_design/{ddoc}/_nouveau_info/{index}"


@_table.get(SEARCH)
async def get_search(request: web.Request) -> web.Response:
    db = get_db(request)
    m = request.match_info
    manager.spec_of(db, m["ddoc"], m["index"])  # 404s before parameter errors, as CouchDB
    args = fparams.parse_args(dict(request.query), text=True)
    return json_response(await manager.search(request.app["node"], db, m["ddoc"], m["index"], args))


@_table.post(SEARCH)
async def post_search(request: web.Request) -> web.Response:
    db = get_db(request)
    m = request.match_info
    manager.spec_of(db, m["ddoc"], m["index"])
    params.require_json(request)
    body = await params.json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    args = fparams.parse_args(body, text=False)
    return json_response(await manager.search(request.app["node"], db, m["ddoc"], m["index"], args))


@_table.get(INFO)
async def get_info(request: web.Request) -> web.Response:
    db = get_db(request)
    m = request.match_info
    return json_response(await manager.info(request.app["node"], db, m["ddoc"], m["index"]))


def routes() -> list[web.RouteDef]:
    return list(_table) + [not_allowed(SEARCH, "GET,HEAD,POST"), not_allowed(INFO, "GET,HEAD")]
