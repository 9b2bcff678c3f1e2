"""`?w=` on a node alone (no `[cluster]`): every database has one copy, so a write asking for more
copies than one is answered 202 Accepted, as CouchDB 3.4.3 with `n = 1` answers — `PUT`, `POST`,
`DELETE` of a document (`_local` ones too), `PUT` of an attachment, and `_bulk_docs` (its body's
`w` first, each written row `"accepted": true`). As there, `COPY` and an attachment's `DELETE`
answer as without `w`, and `new_edits=false` writes are not counted. `?r=` asks nothing of a node
alone: its one copy answers. (A node of a cluster counts copies: http_api/cluster.py.)"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

from aiohttp import web

from couchpy import jsonutil, quorum
from couchpy.errors import BadRequest

from . import attachments, bulk, databases, documents

COUNTED = frozenset((documents.put_doc, documents.delete_doc, databases.post_doc, bulk.bulk_docs,
                     attachments.put_attachment))


async def requested_w(request: web.Request) -> int | None:
    """The `w` a write request gives (None: none). For `_bulk_docs` the body's integer `w` comes
    first, as CouchDB reads it. (A cluster's quorum reads it the same way: http_api/cluster.py.)"""
    if request.match_info.handler is not bulk.bulk_docs:
        return quorum.parse_level(request.query.get("w"), "w")
    raw = await request.read()  # kept by aiohttp for the handler
    body = None
    if b'"w"' in raw:
        with contextlib.suppress(BadRequest):  # an unparsable body is the handler's to refuse
            body = jsonutil.loads(raw)
    return quorum.bulk_level(body.get("w") if isinstance(body, dict) else None, request.query.get("w"))


@web.middleware
def alone_quorum_middleware(request: web.Request, handler) -> Awaitable[web.StreamResponse]:
    """Innermost, as the cluster's: the request is authorized and its errors answered as CouchDB's
    by the middlewares around it. A plain function handing a request it does not count straight
    to its handler: no frame of it stays for as long as that request runs (an idle feed's)."""
    if request.match_info.handler not in COUNTED:
        return handler(request)
    return _counted(request, handler)


async def _counted(request: web.Request, handler) -> web.StreamResponse:
    w = await requested_w(request)
    response = await handler(request)
    if w is None or w <= 1 or request.query.get("new_edits") == "false" or response.status not in (200, 201) \
            or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    answer = jsonutil.loads(bytes(response.body))
    if isinstance(answer, list):
        rows, status = quorum.alone_bulk_answer(answer, w)
        response.body = jsonutil.dumps_line(rows)
        response.set_status(status)
    elif isinstance(answer, dict) and answer.get("ok") is True:
        response.set_status(quorum.alone_status(response.status, w))
    return response
