"""Middleware: authentication, authorization, CouchDB-shaped errors.

Every request is authenticated (HTTP basic, an `AuthSession` cookie) into a user context, then
authorized once, by the family of the route it matched (`couchpy.security`), against the
database's `_security` object. Handlers never check rights themselves; the write path refuses
design documents to non-admins and applies the `_users` rules per document.

Every failure leaves as `{"error": ..., "reason": ...}` with CouchDB's status; an unexpected
exception is logged and answered 500 without taking the server down.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from couchpy import validation
from couchpy.errors import CouchError
from couchpy.node import pinning_scope
from couchpy.security import ANONYMOUS, Policy, UserCtx, authorize, route_family

from couchpy.credentials import Authenticator, handler_names
from .access import restrict
from .cors import preflight
from .responses import error_response
from .security import replicator_db_read, users_db_read

log = logging.getLogger("couchpy.http")

_HTTP_ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "too_large",
    415: "bad_content_type",
    416: "requested_range_not_satisfiable",
}


@web.middleware
async def couch_middleware(request: web.Request, handler):
    """The one middleware (each layer costs every request): authenticate, pin the databases the
    request opens until it is answered, and render every failure as CouchDB does."""
    try:
        with pinning_scope():
            early = preflight(request)
            if early is not None:
                return early
            refresh_for = await authenticate(request)
            response = await authorized(request) or await handler(request)
            if refresh_for is not None and not response.prepared:
                auth: Authenticator = request.app["auth"]
                set_session_cookie(response, auth.issue_cookie(refresh_for) or "", auth.session_timeout)
            return response
    except CouchError as exc:
        return error_response(exc.status, exc.error, exc.reason)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _HTTP_ERRORS.get(exc.status, "error")
        reason = {
            404: "Database does not exist." if False else "missing",
            405: "Only " + (exc.headers.get("Allow", "") or "other methods") + " allowed",
            413: "Request entity too large",
        }.get(exc.status, exc.reason or exc.text or error)
        if exc.status == 413:
            error = "too_large"
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, error, reason, headers)
    except ConnectionResetError:
        # The client went away mid-response (a dropped feed): routine, not an error to log. Nothing
        # can reach the client any more; aiohttp quietly discards this placeholder.
        return web.Response(status=499, reason="Client Closed Request")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "unknown_error", f"{type(exc).__name__}: {exc}")


async def authenticate(request: web.Request) -> str | None:
    """Set request["user_ctx"] (and request["user"], the name) by the configured authentication
    handlers (`[chttpd] authentication_handlers`, in order: the first that names a user wins).
    Returns the user whose cookie should be renewed (past half its life), if any."""
    auth: Authenticator = request.app["auth"]
    header = request.headers.get("Authorization")
    ctx: UserCtx | None = None
    method = None
    refresh_for = None
    for name in handler_names(auth.config.get("chttpd", "authentication_handlers")):
        if name == "jwt":
            ctx = auth.from_bearer(header)
        elif name == "proxy":
            ctx = auth.from_proxy(request.headers)
        elif name == "cookie":
            token = request.cookies.get("AuthSession")
            session = auth.check_cookie(token) if token else None
            if session is not None:
                ctx, expires = session
                # past half its life, a used cookie is renewed (CouchDB renews before expiry too)
                if expires - time.time() < auth.session_timeout / 2:
                    refresh_for = ctx.name
        elif name == "default":
            ctx = await auth.from_header(header, request.remote or "")
        if ctx is not None:
            method = name
            break
    request["auth_method"] = method
    request["auth_handlers"] = handler_names(auth.config.get("chttpd", "authentication_handlers"))
    ctx = ctx or ANONYMOUS
    request["user_ctx"] = ctx
    request["user"] = ctx.name
    # what validate_doc_update functions and the write path see as userCtx
    validation.current_user.set(ctx.as_json())
    return refresh_for


def _policy(config) -> Policy:
    return Policy(
        admin_only_all_dbs=_flag(config.get("chttpd", "admin_only_all_dbs"), True),
        users_db_public=_flag(config.get("couch_httpd_auth", "users_db_public"), False),
        users_db_security_editable=_flag(config.get("couchdb", "users_db_security_editable"), False),
    )


def _needs_valid_user(config, request: web.Request) -> bool:
    """`[chttpd] require_valid_user`: nothing but logging in is served anonymously
    (`require_valid_user_except_for_up` leaves /_up open too)."""
    if request.path == "/_session" and request.method == "POST":
        return False
    if _flag(config.get("chttpd", "require_valid_user_except_for_up"), False):
        return request.path != "/_up"
    return _flag(config.get("chttpd", "require_valid_user"), False)


def _flag(raw: str | None, default: bool) -> bool:
    return default if raw is None else raw.strip().lower() == "true"


async def authorized(request: web.Request) -> web.StreamResponse | None:
    """Refuse (raise) what the rules deny this request; None lets the handler answer. A few reads
    of `_users` by non-admins are answered here (cut down to public fields)."""
    resource = request.match_info.route.resource
    if resource is None:
        return None  # no route matched: the handler answers 404/405
    ctx: UserCtx = request["user_ctx"]
    node = request.app["node"]
    if ctx.name is None and _needs_valid_user(node.config, request):
        return error_response(401, "unauthorized", "Authentication required.",
                              {"WWW-Authenticate": 'Basic realm="server"'})
    family = route_family(request.method, resource.canonical)
    db_name = request.match_info.get("db")
    sec = None
    if db_name is not None and node.exists(db_name):
        sec = node.get_db(db_name).meta.get("security") or {}
    denial = authorize(family, ctx, db_name, sec, _policy(node.config))
    if denial is not None:
        raise denial.to_error()
    if sec is not None:
        restrict(request, ctx, node.get_db(db_name), sec)
    if sec is not None and db_name == "_users":
        return users_db_read(request, ctx, sec)
    if sec is not None and db_name == "_replicator":
        return replicator_db_read(request, ctx, sec)
    return None


def set_session_cookie(response: web.StreamResponse, token: str, max_age: int) -> None:
    response.set_cookie("AuthSession", token, path="/", httponly=True, max_age=max_age, samesite="Lax")
