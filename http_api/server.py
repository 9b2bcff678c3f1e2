"""Server-level endpoints: /, /_up, /_all_dbs, /_dbs_info, /_uuids, /_active_tasks."""

from __future__ import annotations

import uuid

from aiohttp import web

import couchpy
from couchpy.errors import BadRequest, CouchError

from . import params
from .responses import json_response, not_allowed

routes = web.RouteTableDef()


@routes.get("/")
async def welcome(request: web.Request) -> web.Response:
    node = request.app["node"]
    return json_response({
        "couchdb": "Welcome",
        "version": "3.4.3",
        "git_sha": "couchpy",
        "uuid": node.uuid,
        "features": ["partitioned", "pluggable-storage-engines", "reshard", "scheduler"],
        "vendor": {"name": "couchpy", "version": couchpy.__version__},
    })


@routes.get("/_up")
async def up(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "seeds": {}})


def _range_filter(request: web.Request, names: list[str]) -> list[str]:
    descending = params.view_flag(request, "descending")
    start = params.json_value(request, "startkey", params.json_value(request, "start_key"))
    end = params.json_value(request, "endkey", params.json_value(request, "end_key"))
    inclusive_end = params.view_flag(request, "inclusive_end", True)
    limit = params.integer(request, "limit")
    skip = params.integer(request, "skip", 0)
    names = sorted(names, reverse=descending)
    out = []
    for name in names:
        if start is not None:
            if (not descending and name < start) or (descending and name > start):
                continue
        if end is not None:
            if not descending and (name > end or (not inclusive_end and name == end)):
                continue
            if descending and (name < end or (not inclusive_end and name == end)):
                continue
        out.append(name)
    out = out[skip:]
    return out if limit is None else out[:limit]


@routes.get("/_all_dbs")
async def all_dbs(request: web.Request) -> web.Response:
    return json_response(_range_filter(request, request.app["node"].all_dbs()))


def _db_info_or_error(node, name) -> dict:
    try:
        return {"key": name, "info": node.get_db(name).info()}
    except CouchError:
        return {"key": name, "error": "not_found"}


@routes.get("/_dbs_info")
async def dbs_info_get(request: web.Request) -> web.Response:
    node = request.app["node"]
    return json_response([_db_info_or_error(node, n) for n in _range_filter(request, node.all_dbs())])


@routes.post("/_dbs_info")
async def dbs_info_post(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadRequest("`keys` member must exist.")
    node = request.app["node"]
    if len(keys) > (node.config.get_int("chttpd", "max_db_number_for_dbs_info_req", 100) or 100):
        raise BadRequest("too_many_keys")
    return json_response([_db_info_or_error(node, k) for k in keys])


@routes.get("/_uuids")
async def uuids(request: web.Request) -> web.Response:
    # couch_httpd_misc_handlers: 400 bad_request beyond [uuids] max_count or for a bad count
    try:
        count = int(request.query.get("count", "1"))
    except ValueError:
        raise BadRequest("count must be a positive integer") from None
    if count < 0:
        raise BadRequest("count must be a positive integer")
    if count > (request.app["node"].config.get_int("uuids", "max_count", 1000) or 1000):
        raise BadRequest("count parameter too large")
    resp = json_response({"uuids": [uuid.uuid4().hex for _ in range(count)]})
    # uuids must never be cached (CouchDB sends the same cache-busting headers)
    resp.headers.update({"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "Mon, 01 Jan 1990 00:00:00 GMT"})
    return resp


@routes.get("/_active_tasks")
async def active_tasks(request: web.Request) -> web.Response:
    return json_response(request.app["node"].tasks.list())


def routes_list() -> list:
    return list(routes) + [
        not_allowed("/_up", "GET"),
        not_allowed("/_all_dbs", "GET,HEAD"),
        not_allowed("/_dbs_info", "GET,HEAD,POST"),
        not_allowed("/_uuids", "GET"),
    ]
