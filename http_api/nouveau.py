"""Nouveau endpoints: `_design/{ddoc}/_nouveau/{index}` (GET/POST), `_nouveau_info/{index}`,
`/{db}/_nouveau_cleanup` and `/_nouveau_analyze`."""

from __future__ import annotations

from aiohttp import web

from couchpy.errors import BadRequest
from couchpy.fulltext import analyzers, manager
from couchpy.fulltext import params as fparams

from . import params
from .databases import get_db
from .responses import json_response, not_allowed

_table = web.RouteTableDef()

SEARCH = "/{db}/_design/{ddoc}/_nouveau/{index}"
INFO = "/{db}/_design/{ddoc}/_nouveau_info/{index}"
CLEANUP = "/{db}/_nouveau_cleanup"
ANALYZE = "/_nouveau_analyze"


async def search(request: web.Request, db, partition: str | None) -> web.Response:
    """A search (GET or POST) of the index the route names; `partition`: the one the route
    names, else the query string's (CouchDB reads `partition` from the query string only)."""
    m = request.match_info
    manager.spec_of(db, m["ddoc"], m["index"])  # 404s before parameter errors, as CouchDB
    if request.method == "GET":
        args = fparams.parse_args(dict(request.query), text=True)
    else:
        params.require_json(request)
        body = await params.json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        args = fparams.parse_args(body, text=False)
    args.partition = partition if partition is not None else request.query.get("partition")
    return json_response(await manager.search(request.app["node"], db, m["ddoc"], m["index"], args))


async def info(request: web.Request, db) -> web.Response:
    m = request.match_info
    return json_response(await manager.info(request.app["node"], db, m["ddoc"], m["index"]))


@_table.get(SEARCH)
async def get_search(request: web.Request) -> web.Response:
    return await search(request, get_db(request), None)


@_table.post(SEARCH)
async def post_search(request: web.Request) -> web.Response:
    return await search(request, get_db(request), None)


@_table.get(INFO)
async def get_info(request: web.Request) -> web.Response:
    return await info(request, get_db(request))


@_table.post(CLEANUP)
async def cleanup(request: web.Request) -> web.Response:
    """Remove the full-text indexes no design document uses (`_view_cleanup` does it too)."""
    db = get_db(request)
    params.require_json(request)  # as nouveau_httpd:handle_cleanup_req
    await manager.cleanup(request.app["node"], db)
    return json_response({"ok": True}, status=202)


@_table.post(ANALYZE)
async def analyze(request: web.Request) -> web.Response:
    """The tokens an analyzer makes of a text: `{"analyzer": "english", "text": "..."}`."""
    params.require_json(request)
    body = await params.json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    analyzer, text = body.get("analyzer"), body.get("text")
    if not isinstance(analyzer, str):
        raise BadRequest("`analyzer` must be a string")
    if not isinstance(text, str):
        raise BadRequest("`text` must be a string")
    if analyzer not in fparams.ANALYZERS:
        raise BadRequest(f"unknown analyzer {analyzer!r}")
    return json_response({"tokens": analyzers.tokens(analyzer, text)})


def routes() -> list[web.RouteDef]:
    return list(_table) + [not_allowed(SEARCH, "GET,HEAD,POST"), not_allowed(INFO, "GET,HEAD"),
                           not_allowed(CLEANUP, "POST"), not_allowed(ANALYZE, "POST")]
