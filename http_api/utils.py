"""The admin web UI at `/_utils/`: static files shipped in the package, no build step.

The page is a small single-page application (`static/utils/app.js`, plain DOM code) that talks to
the same HTTP API as any client: it logs in with a cookie session (`POST /_session`) and then uses
the server admin's rights, so the files themselves are served without authentication.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static" / "utils"
TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

routes = web.RouteTableDef()


@routes.get("/_utils")
async def utils_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/_utils/")


@routes.get("/_utils/")
async def utils_index(request: web.Request) -> web.Response:
    return _file("index.html")


@routes.get("/_utils/{name}")
async def utils_file(request: web.Request) -> web.Response:
    return _file(request.match_info["name"])


def _file(name: str) -> web.Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC or path.suffix not in TYPES or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), content_type=TYPES[path.suffix],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:"})
