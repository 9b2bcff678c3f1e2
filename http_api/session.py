"""Cookie sessions: GET/POST/DELETE /_session, as CouchDB's cookie authentication handler."""

from __future__ import annotations

from aiohttp import web

from couchpy.credentials import WRONG_PASSWORD, Authenticator
from couchpy.errors import BadRequest, Unauthorized

from . import params
from .middleware import set_session_cookie
from .responses import json_response

routes = web.RouteTableDef()


@routes.get("/_session")
async def session(request: web.Request) -> web.Response:
    ctx = request["user_ctx"]
    return json_response({
        "ok": True,
        "userCtx": ctx.as_json(),
        "info": {
            "authentication_handlers": list(request["auth_handlers"]),
            **({"authenticated": request.get("auth_method") or "default"} if ctx.name else {}),
        },
    })


@routes.post("/_session")
async def login(request: web.Request) -> web.Response:
    """Cookie login: JSON or form-encoded `name` and `password`; `next` redirects after it."""
    if params.media_type(request) == "application/x-www-form-urlencoded":
        form = await request.post()
        name, password = form.get("name"), form.get("password")
    else:
        body = await params.json_object(request)
        name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise BadRequest("Request body must contain `name` and `password` strings.")
    auth: Authenticator = request.app["auth"]
    ctx = await auth.verify(name, password, request.remote or "")
    token = auth.issue_cookie(name) if ctx is not None else None
    if ctx is None or token is None:
        raise Unauthorized(WRONG_PASSWORD)
    nxt = request.query.get("next")
    if nxt is not None:
        resp = web.Response(status=302, headers={"Location": nxt})
    else:
        resp = json_response({"ok": True, "name": name, "roles": list(ctx.roles)})
    set_session_cookie(resp, token, auth.session_timeout)
    return resp


@routes.delete("/_session")
async def logout(request: web.Request) -> web.Response:
    resp = json_response({"ok": True})
    resp.del_cookie("AuthSession", path="/")
    return resp


def routes_list() -> list:
    return list(routes)
