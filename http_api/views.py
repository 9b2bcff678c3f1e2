"""View endpoints: `_view` queries (GET/POST, `/queries`), `_info`, `_view_cleanup`, `_compact/{ddoc}`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from aiohttp import web

from couchpy import smoosh
from couchpy.errors import BadRequest, Forbidden, NotFound
from couchpy.views import args as qargs
from couchpy.fulltext import manager as nouveau
from couchpy.views import manager

from . import params
from .access import visible
from .databases import get_db
from .responses import json_response, not_allowed

_table = web.RouteTableDef()

VIEW = "/{db}/_design/{ddoc}/_view/{view}"
NO_REDUCE = "Reductions are not available to users of an access database: query with reduce=false."


def _node(request: web.Request):
    return request.app["node"]


@_table.get(VIEW)
async def get_view(request: web.Request) -> web.Response:
    return await view_get(request, get_db(request), dict(request.query))


async def view_get(request: web.Request, db, text_params: dict) -> web.Response:
    """A GET view query with these query-string parameters (a partition's query adds its own)."""
    m = request.match_info
    manager.spec_by_name(db, m["ddoc"])  # a missing design document is a 404 first
    if "keys" in text_params:  # decoded before the other parameters (chttpd_view), checked in turn
        params.decode_json("keys", text_params["keys"])
    sees = visible(request, db)
    if sees is not None:
        return json_response(await _query_merged(_node(request), db, m["ddoc"], m["view"], text_params, {}, sees))
    out = await manager.query_view(_node(request), db, m["ddoc"], m["view"], text_params, True)
    return json_response(out)


@_table.post(VIEW)
async def post_view(request: web.Request) -> web.Response:
    return await view_post(request, get_db(request), dict(request.query))


async def view_post(request: web.Request, db, text_params: dict) -> web.Response:
    """A POSTed view query over these query-string parameters."""
    m = request.match_info
    manager.spec_by_name(db, m["ddoc"])  # a missing design document is a 404 before the body is read
    params.require_json(request)
    body = await params.json_body(request, required=False) or {}
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    if "keys" in body and not isinstance(body["keys"], list):
        raise BadRequest("`keys` member must be an array.")  # not _all_docs' "body member"
    node = _node(request)
    out = await _query_merged(node, db, m["ddoc"], m["view"], text_params, body, visible(request, db),
                              body_first=True)
    return json_response(out)


async def _query_merged(node, db, ddoc: str, view: str, text_params: dict, body: dict,
                        sees: Callable[[str], bool] | None = None, body_first: bool = False) -> dict:
    """Query-string parameters (text) and typed body members, read in CouchDB's order."""
    # CouchDB's order: the design document, the parameters, the view, then its language
    spec = manager.spec_by_name(db, ddoc)
    # one pass over the parameters in the order CouchDB reads them, a later word winning: a
    # POSTed view's body, then its query string (couch_mrview_http:parse_body_and_query, so a bad
    # member of each is reported from the body); a `/queries` query's members after the query string
    sources = [(body, False), (text_params, True)] if body_first else [(text_params, True), (body, False)]
    a = qargs.parse_in_order(sources)
    vi = spec.view_index(view)
    if vi is None:
        raise NotFound("missing_named_view")
    v = spec.views[vi]
    qargs.check_partition(a, spec.partitioned)
    qargs.apply_limit(a, spec.partitioned, db.config)
    reducing = qargs.validate(a, v.reduce is not None, v.collation)
    ix = manager.index_of(node, db, spec)  # its language is checked after the arguments
    if sees is not None:
        return await _restricted_execute(node, db, ix, vi, a, reducing, ddoc, sees)
    return await manager.execute(node, db, ix, vi, a, reducing, ddoc)


async def _restricted_execute(node, db, ix, vi: int, a: qargs.QueryArgs, reducing: bool, ddoc: str,
                              sees: Callable[[str], bool]) -> dict:
    """A map query for a reader of an access database: only rows emitted by documents they see,
    counted in `total_rows` and `offset` too (the index is shared by every user: the rows are
    filtered as they are read, and skip/limit apply after). A reduction would fold in other users'
    documents: refused."""
    if reducing:
        raise Forbidden(NO_REDUCE)
    out = await manager.execute(node, db, ix, vi, replace(a, skip=0, limit=None), False, ddoc)
    rows = [r for r in out["rows"] if sees(r["id"])]
    for row in rows:  # a value may link another document: included only when visible too
        doc = row.get("doc")
        if isinstance(doc, dict) and not sees(doc.get("_id")):
            row["doc"] = None
    rows = rows[a.skip:] if a.limit is None else rows[a.skip:a.skip + a.limit]
    counting = replace(a, skip=0, limit=None, keys=None, include_docs=False, update="false")
    everything = replace(counting, start_key=qargs._MISSING, end_key=qargs._MISSING, start_key_docid=None,
                         end_key_docid=None)
    total = _count(await manager.execute(node, db, ix, vi, everything, False, ddoc), sees)
    if a.keys is None:
        onward = replace(counting, end_key=qargs._MISSING, end_key_docid=None)
        before = total - _count(await manager.execute(node, db, ix, vi, onward, False, ddoc), sees)
    else:
        before = 0
    out["rows"], out["total_rows"], out["offset"] = rows, total, min(before + a.skip, total)
    return out


def _count(out: dict, sees: Callable[[str], bool]) -> int:
    return sum(1 for r in out["rows"] if sees(r["id"]))


@_table.post(VIEW + "/queries")
async def post_queries(request: web.Request) -> web.Response:
    return await view_queries(request, get_db(request), dict(request.query))


async def view_queries(request: web.Request, db, text_params: dict) -> web.Response:
    """`POST .../_view/{view}/queries`: each query's parameters over these query-string ones."""
    params.require_json(request)
    m = request.match_info
    body = await params.json_object(request)
    node = _node(request)
    sees = visible(request, db)
    results = []
    for q in params.queries(body):
        results.append(await _query_merged(node, db, m["ddoc"], m["view"], text_params, q, sees))
    return json_response({"results": results})


@_table.get("/{db}/_design/{ddoc}/_info")
async def ddoc_info(request: web.Request) -> web.Response:
    db = get_db(request)
    return json_response(await manager.view_info(_node(request), db, request.match_info["ddoc"]))


@_table.post("/{db}/_view_cleanup")
async def view_cleanup(request: web.Request) -> web.Response:
    db = get_db(request)  # CouchDB reads no body here, whatever its Content-Type
    await manager.cleanup(_node(request), db)
    await nouveau.cleanup(_node(request), db)  # full-text indexes too
    return json_response({"ok": True}, status=202)


@_table.post("/{db}/_compact/{ddoc}")
async def compact_ddoc(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    ddoc = request.match_info["ddoc"]
    manager.load_ddoc(db, ddoc)  # a missing design document is the client's 404, before the 202
    smoosh.in_background(manager.compact(_node(request), db, ddoc), f"compaction of {db.name}/_design/{ddoc}")
    return json_response({"ok": True}, status=202)


def routes() -> list[web.RouteDef]:
    return list(_table) + [
        not_allowed(VIEW + "/queries", "POST"),
        not_allowed(VIEW, "GET,HEAD,POST"),
        not_allowed("/{db}/_design/{ddoc}/_info", "GET"),
        not_allowed("/{db}/_view_cleanup", "POST"),
    ]
