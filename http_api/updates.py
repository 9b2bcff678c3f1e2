"""Update handlers: POST/PUT /{db}/_design/{ddoc}/_update/{func}[/{docid}] (CouchDB 3).

The design document's `updates.<func>` runs in a query-server worker as `f(doc, req)`: `doc` is
the stored document named by `{docid}` (null when there is none), `req` CouchDB's request
object. It returns `[doc, response]`: a document is saved (validation included) and answered
201 with `X-Couch-Id` and `X-Couch-Update-NewRev`, null saves nothing (200); the response is a
string (an HTML body) or an object with `code`, `headers` and one of `json`, `base64`, `body`.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from couchpy import jsonutil
from couchpy.errors import CouchError, NotFound
from couchpy.query_language import canonical
from couchpy.views import manager

from . import params
from .databases import get_db
from .responses import error_response

_SECRET_HEADERS = {"authorization", "cookie", "x-auth-couchdb-token"}


def _form(request: web.Request, body: bytes) -> dict[str, str]:
    """An urlencoded body's fields as CouchDB (mochiweb) reads them: `&` and `;` both separate
    fields, a name without `=` has the empty value, the last of a repeated name wins."""
    if params.media_type(request) != "application/x-www-form-urlencoded" or not body:
        return {}
    text = body.decode("utf-8", "replace").replace(";", "&")
    return dict(parse_qsl(text, keep_blank_values=True, errors="replace"))


def _request_object(request: web.Request, db, docid: str | None, body: bytes) -> dict:
    # segments of the raw path, each decoded: an id with an encoded `/` stays one segment
    path = [unquote(p) for p in request.raw_path.split("?", 1)[0].split("/") if p]
    return {
        "info": db.info(),
        "id": docid,
        "uuid": uuid.uuid4().hex,
        "method": request.method,
        "requested_path": path,
        "path": path,
        "raw_path": request.raw_path,
        "query": dict(request.query),
        # credentials never reach user code
        "headers": {k: v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS},
        "body": body.decode("utf-8", "replace") if body else "undefined",
        "peer": request.remote,
        "form": _form(request, body),
        "cookie": {},  # as CouchDB 3: cookies (sessions among them) never reach user code
        "userCtx": {"db": db.name, **request["user_ctx"].as_json()},
        "secObj": db.meta.get("security", {}),
    }


def _response(resp, default_code: int, extra: dict[str, str]) -> web.Response:
    if resp is None:
        resp = ""
    if isinstance(resp, str):
        resp = {"body": resp}
    if not isinstance(resp, dict):
        raise CouchError("Invalid response object", "external_response_error", 500)
    headers = dict(extra)
    headers.update({str(k): str(v) for k, v in (resp.get("headers") or {}).items()})
    if "json" in resp:
        body = jsonutil.dumps(resp["json"]) + b"\n"  # as CouchDB writes a json response
        headers.setdefault("Content-Type", "application/json")
    elif "base64" in resp:
        body = base64.b64decode(resp["base64"])
        headers.setdefault("Content-Type", "application/binary")
    else:
        body = str(resp.get("body", "")).encode()
        headers.setdefault("Content-Type", "text/html; charset=utf-8")
    code = resp.get("code", default_code)
    return web.Response(status=code if isinstance(code, int) else default_code, body=body, headers=headers)


async def update(request: web.Request) -> web.Response:
    db = get_db(request)
    ddoc = manager.load_ddoc(db, request.match_info["ddoc"])
    fname = request.match_info["func"]
    updates = ddoc.get("updates")
    if not isinstance(updates, dict):
        raise NotFound("missing json key: updates")
    src = updates.get(fname)
    if not isinstance(src, str):
        raise NotFound(f"missing json key: {fname}")
    if not src:
        raise NotFound(f"missing updates function {fname} on design doc {ddoc['_id']}")
    docid = request.match_info.get("docid")
    doc = None
    if docid is not None:
        try:
            doc = db.get(docid, revs=True)  # as CouchDB opens it for the function: with `_revisions`
        except NotFound:
            doc = None
    body = await request.read()
    pool = manager.pool_for(request.app["node"])
    language = canonical(ddoc.get("language", "javascript"))
    pool.check_language(language)
    req = _request_object(request, db, docid, body)
    loop = asyncio.get_running_loop()
    new_doc, resp = await loop.run_in_executor(None, pool.update, language, src, doc, req)
    if not isinstance(new_doc, dict):  # null, or anything else that is not a document (as CouchDB)
        return _response(resp, 200, {})
    if not new_doc.get("_id"):
        raise CouchError("Document id must not be empty", "illegal_docid", 400)
    result = await db.put(new_doc)
    return _response(resp, 201, {"X-Couch-Id": result["id"], "X-Couch-Update-NewRev": result["rev"]})


async def not_get(request: web.Request) -> web.Response:
    return error_response(405, "method_not_allowed", "Update functions do not allow GET")


def routes() -> list:
    out = []
    for path in ("/{db}/_design/{ddoc}/_update/{func}", "/{db}/_design/{ddoc}/_update/{func}/{docid:.+}"):
        out += [web.post(path, update), web.put(path, update), web.get(path, not_get, allow_head=False)]
    return out
