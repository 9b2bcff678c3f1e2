"""Attachment HTTP forms (first version; owned and completed by the attachments work).

The document handlers delegate here for inline attachment data, multipart bodies and multipart
responses; `routes()` serves standalone attachments.
"""

from __future__ import annotations

from aiohttp import web

from couchpy.errors import UnsupportedMediaType

from .responses import json_response


async def doc_get_response(request: web.Request, db, doc: dict, query) -> web.StreamResponse:
    return json_response(doc, headers={"ETag": f'"{doc["_rev"]}"'})


async def open_revs_response(request: web.Request, db, docid: str, results: list, query) -> web.StreamResponse:
    return json_response(results)


async def doc_put_multipart(request: web.Request, db, docid: str, query) -> dict:
    raise UnsupportedMediaType("multipart document uploads are not supported yet")


def routes() -> list:
    return []
