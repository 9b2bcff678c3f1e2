"""CORS, as CouchDB's `[chttpd] enable_cors` and `[cors]` section configure it.

A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed origin,
for an allowed method and headers, is answered 204 before authentication (browsers send no
credentials with it). Any other request from an allowed origin gets `Access-Control-Allow-Origin`
(and `-Credentials` when `[cors] credentials = true`) on its response, errors and streamed feeds
included. Requests from other origins get no CORS headers at all, so browsers refuse them.
"""

from __future__ import annotations

from aiohttp import web

# CouchDB's defaults when [cors] methods / headers are not set
SUPPORTED_METHODS = ["CONNECT", "COPY", "DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "TRACE"]
SUPPORTED_HEADERS = {
    "accept", "accept-language", "authorization", "content-length", "content-range", "content-type",
    "destination", "expires", "if-match", "last-modified", "origin", "pragma", "x-couch-full-commit",
    "x-couch-id", "x-couch-persist", "x-couchdb-www-authenticate", "x-http-method-override",
    "x-requested-with", "x-couchdb-vhost-path",
}
EXPOSED_HEADERS = ("content-type, cache-control, accept-ranges, etag, server, x-couch-request-id, "
                   "x-couch-update-newrev, x-couchdb-body-time")


def _csv(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").split(",") if p.strip()]


def _enabled(config) -> bool:
    return (config.get("chttpd", "enable_cors") or "").strip().lower() == "true"


def _allowed_origin(config, origin: str | None) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when the origin is not allowed."""
    if not origin or not _enabled(config):
        return None
    origins = _csv(config.get("cors", "origins"))
    if "*" in origins:
        return origin if _credentials(config) else "*"
    return origin if origin in origins else None


def _credentials(config) -> bool:
    return (config.get("cors", "credentials") or "").strip().lower() == "true"


def preflight(request: web.Request) -> web.Response | None:
    """The answer to an acceptable CORS preflight, else None (the request goes on as usual)."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    config = request.app["node"].config
    allow_origin = _allowed_origin(config, request.headers.get("Origin"))
    if allow_origin is None:
        return None
    methods = [m.upper() for m in _csv(config.get("cors", "methods"))] or SUPPORTED_METHODS
    if request.headers["Access-Control-Request-Method"].upper() not in methods:
        return None
    wanted = [h.lower() for h in _csv(request.headers.get("Access-Control-Request-Headers"))]
    allowed = {h.lower() for h in _csv(config.get("cors", "headers"))} | SUPPORTED_HEADERS
    if any(h not in allowed for h in wanted):
        return None
    headers = {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Max-Age": str(config.get_int("cors", "max_age", 600) or 600),
    }
    if wanted:
        headers["Access-Control-Allow-Headers"] = ", ".join(wanted)
    if _credentials(config):
        headers["Access-Control-Allow-Credentials"] = "true"
    return web.Response(status=204, headers=headers)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: CORS headers on every response to an allowed origin (streams included)."""
    if "Access-Control-Allow-Origin" in response.headers:
        return  # a preflight answer
    allow_origin = _allowed_origin(request.app["node"].config, request.headers.get("Origin"))
    if allow_origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = allow_origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if _credentials(request.app["node"].config):
        response.headers["Access-Control-Allow-Credentials"] = "true"
