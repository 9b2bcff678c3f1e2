"""Database endpoints: PUT/GET/HEAD/DELETE /{db}, POST /{db}, _revs_limit, _compact,
_ensure_full_commit, _security."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from couchpy import smoosh
from couchpy.errors import BadRequest

from . import params
from .responses import json_response, location, not_allowed

routes = web.RouteTableDef()


def get_db(request: web.Request):
    return request.app["node"].get_db(request.match_info["db"])


@routes.put("/{db}")
async def create_db(request: web.Request) -> web.Response:
    name = request.match_info["db"]
    mode = request.query.get("access", "false")
    if mode not in ("true", "false"):
        raise BadRequest("`access` must be true or false")
    partitioned = request.query.get("partitioned", "false")
    if partitioned not in ("true", "false"):
        raise BadRequest("Invalid `partitioned` parameter")
    request.app["node"].create_db(name, access=mode == "true", partitioned=partitioned == "true")
    return json_response({"ok": True}, status=201, headers={"Location": location(request, name)})


@routes.get("/{db}", allow_head=False)
async def db_info(request: web.Request) -> web.Response:
    # CouchDB 3.4.3 answers a GET of any name it has no database for, legal or not, with 404
    return json_response(get_db(request).info())


@routes.head("/{db}")
async def db_head(request: web.Request) -> web.Response:
    get_db(request)
    return web.Response(status=200, content_type="application/json")


@routes.delete("/{db}")
async def delete_db(request: web.Request) -> web.Response:
    if "rev" in request.query:
        raise BadRequest(
            "You tried to DELETE a database with a ?rev= parameter. Did you mean to DELETE a document instead?"
        )
    await request.app["node"].delete_db(request.match_info["db"])
    return json_response({"ok": True})


@routes.post("/{db}")
async def post_doc(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    doc = await params.json_document(request)
    if "_id" not in doc:
        doc = {"_id": uuid.uuid4().hex, **doc}
    batch = request.query.get("batch") == "ok"
    result = await db.put(doc, batch=batch)
    if batch:
        return json_response(result, status=202)
    # chttpd_db: a POSTed document's answer has a Location and no ETag
    return json_response(result, status=201, headers={"Location": location(request, db.name, doc["_id"])})


@routes.get("/{db}/_revs_limit")
async def get_revs_limit(request: web.Request) -> web.Response:
    return json_response(get_db(request).revs_limit)


@routes.put("/{db}/_revs_limit")
async def put_revs_limit(request: web.Request) -> web.Response:
    db = get_db(request)
    value = await params.json_body(request)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadRequest("`revs_limit` must be a positive integer")
    await db.set_meta_field("revs_limit", value)
    return json_response({"ok": True})


@routes.post("/{db}/_compact")
async def compact(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    smoosh.in_background(smoosh.compact(request.app["node"], db), f"compaction of {db.name}")
    # the compaction's first step (it sets compact_running and takes the compaction lock that
    # other workers look at) runs before the answer: a client that polls GET /{db} next, as
    # PouchDB's compact() does, sees it running through any worker
    await asyncio.sleep(0)
    return json_response({"ok": True}, status=202)


@routes.post("/{db}/_ensure_full_commit")
async def ensure_full_commit(request: web.Request) -> web.Response:
    get_db(request)  # every acknowledged write is already durable
    params.require_json(request)
    return json_response({"ok": True, "instance_start_time": "0"}, status=201)


@routes.get("/{db}/_security")
async def get_security(request: web.Request) -> web.Response:
    return json_response(get_db(request).meta.get("security") or {})


@routes.put("/{db}/_security")
async def put_security(request: web.Request) -> web.Response:
    db = get_db(request)
    sec = await params.json_object(request)
    for section in ("admins", "members"):
        if section in sec and not isinstance(sec[section], dict):
            raise BadRequest(f"{section} must be a JSON object")
    await db.set_meta_field("security", sec)
    return json_response({"ok": True})


def routes_list() -> list:
    out = list(routes)
    # Clients (PouchDB among them) address a database as `/{db}/` too.
    out += [web.RouteDef(r.method, "/{db}/", r.handler, r.kwargs) for r in routes if r.path == "/{db}"]
    out += [
        not_allowed("/{db}/_revs_limit", "PUT,GET"),
        not_allowed("/{db}/_compact", "POST"),
        not_allowed("/{db}/_ensure_full_commit", "POST"),
        not_allowed("/{db}/_security", "PUT,GET"),
    ]
    return out
