"""CouchDB-shaped JSON responses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from couchpy import jsonutil

SERVER_HEADER = "CouchDB/3.4.3 (couchpy)"


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    resp = web.Response(
        body=jsonutil.dumps(data) + b"\n", status=status, content_type="application/json", headers=headers
    )
    resp.headers["Cache-Control"] = "must-revalidate"
    return resp


def error_response(status: int, error: str, reason: str, headers: dict | None = None) -> web.Response:
    return json_response({"error": error, "reason": reason}, status=status, headers=headers)
