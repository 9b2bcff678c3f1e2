"""Partitioned databases: `/{db}/_partition/{partition}` (info) and the queries scoped to one
partition: `_all_docs`, `_design/{ddoc}/_view/{view}`, `_find`, `_explain`,
`_design/{ddoc}/_nouveau/{index}` (and `_nouveau_info`, the index's, as CouchDB routes it).

Each scoped query is the database-wide endpoint's own handler code with the partition added (a
clamped id range, the view parameter `partition`, Mango's `partition` option); see
couchpy.partitions for how a partition is one range of each index.
"""

from __future__ import annotations

from aiohttp import web

from couchpy import partitions
from couchpy.errors import BadRequest, NotFound
from couchpy.views import args as qargs

from . import alldocs, mango, nouveau, views
from .databases import get_db
from .responses import json_response, not_allowed

_table = web.RouteTableDef()

BASE = "/{db}/_partition/{partition}"


def _partitioned_db(request: web.Request, query: bool = True):
    """The database (404 when missing) and the partition (400 when invalid, or when the database
    is not partitioned), checked in CouchDB's order. `query`: a route below the partition, where
    a `partition` in the query string must name it too (CouchDB passes the partition on to the
    database-wide handler as that parameter)."""
    db = get_db(request)
    partition = partitions.validate_partition(request.match_info["partition"])
    if not db.partitioned:
        raise BadRequest("database is not partitioned")
    if query and request.query.get("partition", partition) != partition:
        raise BadRequest("Conflicting value for `partition` in query string")
    return db, partition


@_table.get(BASE)
async def partition_info(request: web.Request) -> web.Response:
    db, partition = _partitioned_db(request, query=False)
    return json_response({"db_name": db.name, **db.partition_info(partition)})


async def _all_docs(request: web.Request) -> web.Response:
    _, partition = _partitioned_db(request)

    cap = request.app["node"].config.get_int("query_server_config", qargs.limit_setting(True), qargs.MAX_VIEW_LIMIT)

    def narrow(opts: dict) -> None:
        # `keys` are looked up as given, in any partition (as CouchDB does); a range is narrowed
        opts["startkey"], opts["endkey"] = partitions.clamp_id_range(
            partition, opts["startkey"], opts["endkey"], opts["descending"])
        opts["limit"] = qargs.capped_limit(opts["limit"], cap)

    return await alldocs.all_docs(request, narrow)


async def _view(request: web.Request) -> web.Response:
    db, partition = _partitioned_db(request)
    text = {**request.query, "partition": partition}
    if request.method == "GET":
        return await views.view_get(request, db, text)
    return await views.view_post(request, db, text)


async def _view_queries(request: web.Request) -> web.Response:
    db, partition = _partitioned_db(request)
    return await views.view_queries(request, db, {**request.query, "partition": partition})


@_table.post(BASE + "/_find")
async def find(request: web.Request) -> web.Response:
    db, partition = _partitioned_db(request)
    return await mango.query(request, db, False, partition)


@_table.post(BASE + "/_explain")
async def explain(request: web.Request) -> web.Response:
    db, partition = _partitioned_db(request)
    return await mango.query(request, db, True, partition)


async def _nouveau(request: web.Request) -> web.Response:
    db, partition = _partitioned_db(request)
    return await nouveau.search(request, db, partition)


async def _nouveau_info(request: web.Request) -> web.Response:
    db, _ = _partitioned_db(request)
    return await nouveau.info(request, db)


async def _bad_request(request: web.Request) -> web.Response:
    raise BadRequest("invalid_partition_req")


async def _missing(request: web.Request) -> web.Response:
    _partitioned_db(request)
    raise NotFound("missing")


def routes() -> list[web.RouteDef]:
    view = BASE + "/_design/{ddoc}/_view/{view}"
    search = BASE + "/_design/{ddoc}/_nouveau/{index}"
    search_info = BASE + "/_design/{ddoc}/_nouveau_info/{index}"
    return list(_table) + [
        web.get(search, _nouveau),
        web.post(search, _nouveau),
        web.get(search_info, _nouveau_info),
        not_allowed(search, "GET,HEAD,POST"),
        not_allowed(search_info, "GET,HEAD"),
        web.get(BASE + "/_all_docs", _all_docs),
        web.post(BASE + "/_all_docs", _all_docs),
        web.get(view, _view),
        web.post(view, _view),
        web.post(view + "/queries", _view_queries),
        not_allowed(view + "/queries", "POST"),
        not_allowed(BASE, "GET"),
        not_allowed(BASE + "/_all_docs", "GET,HEAD,POST"),
        not_allowed(view, "GET,HEAD,POST"),
        not_allowed(BASE + "/_find", "POST"),
        not_allowed(BASE + "/_explain", "POST"),
        web.route("*", "/{db}/_partition", _bad_request),
        web.route("*", "/{db}/_partition/", _bad_request),
        web.route("*", BASE + "/{rest:.*}", _missing),
    ]
