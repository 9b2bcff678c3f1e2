"""The routes that differ when the node is one of a cluster: databases are created, deleted and
secured on all their replica nodes, `_all_dbs` lists the cluster's databases, `/{db}` shows the
real copy count and `/_membership` the nodes. The cluster itself (`app["cluster"]`, built by the
command line) does the work; these handlers only translate HTTP. Registered before the node's own
routes, which they take precedence over."""

from __future__ import annotations

from urllib.parse import unquote

import aiohttp
from aiohttp import web

from couchpy import jsonutil, quorum
from couchpy.errors import BadRequest

from . import attachments, bulk, databases, documents
from .alone_quorum import requested_w
from .responses import json_response, location
from .server import _range_filter

routes = web.RouteTableDef()

# not passed on between a client and the replica a request is forwarded to
HOP_BY_HOP = frozenset(h.lower() for h in ("Host", "Connection", "Keep-Alive", "Transfer-Encoding", "TE",
                                          "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Trailer"))


@web.middleware
async def forward_middleware(request: web.Request, handler):
    """A request about a database this node holds no copy of is answered by one of its replicas
    (as any CouchDB node serves any database). Creating and deleting stay here: they are the
    cluster's own operations. The replica authenticates and authorizes the request itself."""
    parts = request.raw_path.split("?", 1)[0].split("/")
    db_level_admin = len(parts) == 2 or (len(parts) == 3 and parts[2] == "")
    if len(parts) < 2 or not parts[1] or (db_level_admin and request.method in ("PUT", "DELETE")):
        return await handler(request)
    cluster = request.app["cluster"]
    base = cluster.replica_base(unquote(parts[1]))
    if base is None:
        return await handler(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    data = request.content.iter_chunked(65536) if request.body_exists else None
    if data is not None:
        headers.pop("Content-Length", None)
    try:
        upstream = await cluster.forward_session.request(request.method, base + request.raw_path,
                                                         headers=headers, data=data, allow_redirects=False)
    except aiohttp.ClientError:
        return await handler(request)  # the replica went away: answer from here
    try:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        upstream.release()


# the handlers whose answers are writes of documents, and the one reading a document
WRITES = frozenset((documents.put_doc, documents.delete_doc, documents.copy_doc, databases.post_doc,
                    bulk.bulk_docs, attachments.put_attachment, attachments.delete_attachment))
READS = frozenset((documents.get_doc,))


@web.middleware
async def quorum_middleware(request: web.Request, handler):
    """`?w=` and `?r=` on a database this node holds a copy of (the cluster's `quorum`,
    couchpy_cli/cluster_quorum.py, does the fan-out). Innermost: the request is authorized, and
    its errors answered as CouchDB's, by the middlewares around it. `_local` documents are each
    copy's own, as in CouchDB."""
    fn = request.match_info.handler
    name = request.match_info.get("db")
    if (fn not in WRITES and fn not in READS) or "ldoc" in request.match_info or name is None:
        return await handler(request)
    cluster = request.app["cluster"]
    if not cluster.holds(name):
        return await handler(request)
    if fn in READS:
        r = quorum.parse_level(request.query.get("r"), "r") or cluster.default_r()
        if r > 1:
            await cluster.quorum.merge_read(name, documents.docid_of(request), r)
        return await handler(request)
    w = await requested_w(request)
    if w is None:
        w = cluster.default_w(name)
    response = await handler(request)
    if w <= 1 or request.query.get("new_edits") == "false" or response.status not in (200, 201) \
            or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    answer = jsonutil.loads(bytes(response.body))
    rows = answer if isinstance(answer, list) else [answer]
    keys = [key for key in map(quorum.written, rows) if key is not None]
    if not keys:
        return response
    acks = await cluster.quorum.replicate_write(name, keys, w)
    if isinstance(answer, list):
        rows, status = quorum.bulk_answer(answer, acks, w)
        response.body = jsonutil.dumps_line(rows)
        response.set_status(status)
    else:
        response.set_status(quorum.single_status(response.status, acks[keys[0]], w))
    return response


@routes.put("/{db}")
async def create_db(request: web.Request) -> web.Response:
    name = request.match_info["db"]
    if request.query.get("access", "false") != "false":
        # replicas are created without per-document access: refuse rather than create an open one
        raise BadRequest("Access databases are not available in a cluster.")
    complete = await request.app["cluster"].create_db(name)
    # CouchDB: 201 when every copy was written, 202 when some of them are still to come
    return json_response({"ok": True}, status=201 if complete else 202,
                         headers={"Location": location(request, name)})


@routes.delete("/{db}")
async def delete_db(request: web.Request) -> web.Response:
    if "rev" in request.query:
        raise BadRequest(
            "You tried to DELETE a database with a ?rev= parameter. Did you mean to DELETE a document instead?"
        )
    complete = await request.app["cluster"].delete_db(request.match_info["db"])
    return json_response({"ok": True}, status=200 if complete else 202)


@routes.get("/{db}", allow_head=False)
async def db_info(request: web.Request) -> web.Response:
    info = databases.get_db(request).info()
    info["cluster"] = request.app["cluster"].cluster_info(request.match_info["db"])
    return json_response(info)


@routes.put("/{db}/_security")
async def put_security(request: web.Request) -> web.Response:
    response = await databases.put_security(request)
    db = databases.get_db(request)
    await request.app["cluster"].record_security(db.name, db.meta.get("security") or {})
    return response


@routes.get("/_all_dbs")
async def all_dbs(request: web.Request) -> web.Response:
    return json_response(_range_filter(request, request.app["cluster"].all_dbs()))


@routes.get("/_membership")
async def membership(request: web.Request) -> web.Response:
    return json_response(request.app["cluster"].membership())


@routes.get("/_cluster_setup")
async def cluster_setup(request: web.Request) -> web.Response:
    # CouchDB's state once its setup wizard has joined the nodes; here the [cluster] definition did
    return json_response({"state": "cluster_finished"})


def routes_list() -> list:
    out = list(routes)
    out += [web.RouteDef(r.method, "/{db}/", r.handler, r.kwargs) for r in routes if r.path == "/{db}"]
    return out
