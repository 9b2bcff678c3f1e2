"""POST /{db}/_purge, GET/PUT /{db}/_purged_infos_limit, GET /{db}/_purged_infos (CouchDB 3), and
couchpy's GET/PUT /{db}/_tombstone_ttl (couchpy.tombstones)."""

from __future__ import annotations

from aiohttp import web

from couchpy import purge, tombstones
from couchpy.errors import BadRequest

from . import params
from .databases import get_db
from .responses import json_response, not_allowed


async def post_purge(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    requests = purge.validate(await params.json_body(request))
    purged = await db.purge(requests)
    # CouchDB 3 answers `purge_seq: null` (a clustered purge has no single sequence)
    return json_response({"purge_seq": None, "purged": purged}, status=201)


async def get_limit(request: web.Request) -> web.Response:
    return json_response(get_db(request).purged_infos_limit)


async def put_limit(request: web.Request) -> web.Response:
    db = get_db(request)
    value = await params.json_body(request)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadRequest("`purged_infos_limit` must be positive integer")
    await db.set_purged_infos_limit(value)
    return json_response({"ok": True})


async def get_ttl(request: web.Request) -> web.Response:
    """The window in force for this database (its own, else the node's), 0 when off."""
    return json_response(tombstones.ttl_of(get_db(request)) or 0)


async def put_ttl(request: web.Request) -> web.Response:
    """The database's own window in seconds (0: never expire here), or null to follow
    `[couchdb] tombstone_ttl` again."""
    db = get_db(request)
    value = await params.json_body(request)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise BadRequest("`tombstone_ttl` must be a non-negative integer or null")
    await db.set_meta_field(tombstones.META_TTL, value)
    return json_response({"ok": True})


async def get_infos(request: web.Request) -> web.Response:
    return json_response({"purged_infos": get_db(request).purged_infos()})


def routes_list() -> list:
    return [
        web.post("/{db}/_purge", post_purge), not_allowed("/{db}/_purge", "POST"),
        web.get("/{db}/_purged_infos_limit", get_limit), web.put("/{db}/_purged_infos_limit", put_limit),
        not_allowed("/{db}/_purged_infos_limit", "GET,PUT"),
        web.get("/{db}/_purged_infos", get_infos), not_allowed("/{db}/_purged_infos", "GET"),
        web.get("/{db}/_tombstone_ttl", get_ttl), web.put("/{db}/_tombstone_ttl", put_ttl),
        not_allowed("/{db}/_tombstone_ttl", "GET,PUT"),
    ]
