"""The ceiling: a bare aiohttp server whose `GET /` answers a small JSON object, nothing else.

Measured with the same client as the real servers, it shows what a Python asyncio HTTP stack can
do on the machine at that moment, so a server's `root_get` can be read as a share of it.

    python -m benchmarks.ceiling_server --port 5999
"""
from __future__ import annotations

import argparse

from aiohttp import web

BODY = b'{"couchdb":"Welcome","version":"ceiling"}\n'


async def root(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    app = web.Application()
    app.router.add_get("/", root)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
