"""CouchDB-shaped JSON responses."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from couchpy import jsonutil

SERVER_HEADER = "CouchDB/3.4.3 (couchpy)"


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    resp = web.Response(
        body=jsonutil.dumps_line(data), status=status, content_type="application/json", headers=headers
    )
    resp.headers["Cache-Control"] = "must-revalidate"
    return resp


def error_response(status: int, error: str, reason: str, headers: dict | None = None) -> web.Response:
    return json_response({"error": error, "reason": reason}, status=status, headers=headers)


def not_allowed(path: str, allowed: str) -> web.RouteDef:
    """A catch-all route for a known path: any other method gets CouchDB's 405.

    Register it after the path's real routes and before the generic `/{db}/{docid}` ones: aiohttp
    tries routes in order, so without it `GET /db/_compact` would be read as a document named
    `_compact` and `POST /_uuids` as a database.
    """

    async def handler(request: web.Request) -> web.Response:
        return error_response(405, "method_not_allowed", f"Only {allowed} allowed", {"Allow": allowed})

    return web.route("*", path, handler)


def url_segment(value: str) -> str:
    """One path segment percent-encoded as CouchDB's couch_util:url_encode does it: letters,
    digits and `_.-:` stay, everything else (`/` and `~` included) is %XX of its UTF-8 bytes."""
    return quote(value, safe=":").replace("~", "%7E")


def location(request: web.Request, *segments: str) -> str:
    """The absolute URL of a created resource (database, document), for `Location`."""
    return f"{request.scheme}://{request.host}/" + "/".join(url_segment(s) for s in segments)
