"""Query-string parsing as CouchDB does it: JSON values for keys, flags, integers.

`view_flag`/`integer` read as CouchDB's view-like listings do (`_all_docs`, views: bad values are
400 `query_parse_error` quoting the value); `flag` as its document, `_changes` and `_bulk_get`
handlers do (a flag is on only when it is exactly `true`). See couchpy.queryvalues.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from couchpy import jsonutil, queryvalues, revtree
from couchpy.errors import BadRequest, QueryParseError, UnsupportedMediaType


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A chttpd flag: on when exactly `true`; with a true default, off only when `false`."""
    return queryvalues.chttpd_flag(request.query.get(name), default)


def view_flag(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    return default if raw is None else queryvalues.view_bool(raw)


def integer(request: web.Request, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = queryvalues.view_int(raw)
    if value < minimum:
        raise QueryParseError(f"Invalid value for positive integer: {queryvalues.erl_repr(raw)}")
    return value


def json_value(request: web.Request, name: str, default: Any = None) -> Any:
    """A JSON query parameter; invalid JSON is CouchDB's generic 400 `invalid UTF-8 JSON` (views,
    listings, open_revs, doc_ids alike)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    return decode_json(name, raw)


def decode_json(name: str, raw: str) -> Any:
    """The JSON value of query parameter `name`: CouchDB's 400 `invalid UTF-8 JSON` when it is not
    JSON."""
    return jsonutil.loads(raw.encode())


def string(request: web.Request, name: str, default: str | None = None) -> str | None:
    return request.query.get(name, default)


def media_type(request: web.Request) -> str:
    """The request's media type: its Content-Type without parameters, in lower case ("" when it has
    none). Read from the header itself, not from aiohttp's `request.content_type`: that parses
    every value missing from its cache of the last 56 with the `email` package, whose header
    registry builds new classes for each parse (about 7 KB of cyclic garbage, freed only by the
    next collection); every multipart request has a boundary of its own, so each document a
    replicator wrote with its attachments left that much behind (docs/reliability.md, "Soak")."""
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def require_json(request: web.Request) -> None:
    """chttpd:validate_ctype(Req, "application/json"): 415 `bad_content_type` unless the
    Content-Type's first `;`-separated part is exactly `application/json` (case matters, and
    empty parts are skipped, as Erlang's string:tokens does). CouchDB checks it once the database
    is found and before any parameter or the body."""
    parts = [p for p in request.headers.get("Content-Type", "").split(";") if p]
    if not parts or parts[0] != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")


async def json_body(request: web.Request, required: bool = True) -> Any:
    """The request body as JSON; 415 for a wrong Content-Type where CouchDB checks it."""
    data = await request.read()
    if not data:
        if required:
            raise BadRequest("Request body must be a JSON object" if required else "")
        return None
    return jsonutil.loads(data)


async def json_document(request: web.Request) -> dict:
    """A document write's body: a JSON object, or CouchDB's 400 (couch_doc:from_json_obj)."""
    data = await request.read()
    if not data:
        raise BadRequest("invalid UTF-8 JSON")  # no body is JSON that does not parse, there
    body = jsonutil.loads(data)
    if not isinstance(body, dict):
        raise BadRequest("Document must be a JSON object")
    return body


async def json_object(request: web.Request) -> dict:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


def request_rev(request: web.Request, body_rev: str | None = None) -> str | None:
    """The revision a write acts on: `?rev=`, the `If-Match` header or the body's `_rev`, which
    must agree where more than one is given (CouchDB's 400s)."""
    qrev = request.query.get("rev")
    hrev = request.headers.get("If-Match")
    if hrev:
        hrev = hrev.strip('"')
    for given in (qrev, hrev):
        # chttpd parses each revision it is given before comparing them
        if given and revtree.parse_rev(given) is None:
            raise BadRequest("Invalid rev format")
    if qrev and body_rev and qrev != body_rev:
        raise BadRequest("Document rev from request body and query string have different values")
    if hrev and (qrev or body_rev) and (qrev or body_rev) != hrev:
        raise BadRequest("Document rev and etag have different values")
    return qrev or hrev or body_rev


def queries(body: dict) -> list[dict]:
    """The `queries` of a multi-query body (`_all_docs/queries`, `_view/{view}/queries`)."""
    if "queries" not in body:
        raise BadRequest("POST body must include `queries` parameter.")
    found = body["queries"]
    if not isinstance(found, list):
        raise BadRequest("`queries` member must be an array.")
    for q in found:
        if not isinstance(q, dict):  # CouchDB 3.4.3: 500 function_clause
            raise BadRequest("Each query must be a JSON object.")
    return found
