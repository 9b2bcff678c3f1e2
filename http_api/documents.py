"""Document endpoints: GET/HEAD/PUT/DELETE/COPY /{db}/{docid}, including `_design/` and `_local/`.

The revision to act on comes from `?rev=`, the `If-Match` header or the body's `_rev`, as CouchDB
reads it. Attachment-specific forms (multipart bodies and responses, inline attachment data) are
handed to http_api.attachments.
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from aiohttp import web

from couchpy import docrules, revtree
from couchpy.attachments import hooks as att_hooks
from couchpy.errors import BadRequest, Conflict, CouchError, NotFound

from . import attachments as att_http
from . import params
from .databases import get_db
from .responses import json_response, location

routes = web.RouteTableDef()

ATTACHMENT_PARAMS = ("attachments", "atts_since", "att_encoding_info")


def docid_of(request: web.Request) -> str:
    info = request.match_info
    try:
        # the router leaves percent-escapes that are not UTF-8 undecoded ("%FF" would become the
        # id itself); CouchDB refuses such an id
        unquote_to_bytes(request.raw_path.split("?", 1)[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Document id must be valid UTF-8", error="illegal_docid") from None
    if "ddoc" in info:
        return "_design/" + info["ddoc"]
    if "ldoc" in info:
        if not info["ldoc"]:
            raise BadRequest("Invalid _local document id.")
        return "_local/" + info["ldoc"]
    if info["docid"] in ("_local", "_local/"):  # chttpd_db: a bare `_local` names no document
        raise BadRequest("Invalid _local document id.")
    return info["docid"]


def _query_rev(request: web.Request) -> str | None:
    rev = request.query.get("rev")
    if rev is not None and revtree.parse_rev(rev) is None:
        raise BadRequest("Invalid rev format")
    return rev


def _check_json_params(request: web.Request) -> None:
    """chttpd_db parses a read's parameters, in the order given, before it opens the document:
    a bad `rev`, bad JSON or a bad revision in `open_revs` is a 400 even for a document that does
    not exist, and the first bad one is named."""
    for name, raw in request.query.items():
        if name == "rev":
            if revtree.parse_rev(raw) is None:
                raise BadRequest("Invalid rev format")
        elif name in ("open_revs", "atts_since") and raw != "all":
            value = params.decode_json(name, raw)
            if name == "open_revs" and isinstance(value, list) and not all(revtree.parse_rev(r) for r in value):
                raise BadRequest("Invalid rev format")


def _read_options(request: web.Request) -> dict:
    meta = params.flag(request, "meta")
    return {
        "revs": params.flag(request, "revs"),
        "revs_info": params.flag(request, "revs_info") or meta,
        "conflicts": params.flag(request, "conflicts") or meta,
        "deleted_conflicts": params.flag(request, "deleted_conflicts") or meta,
        "local_seq": params.flag(request, "local_seq"),
        "latest": params.flag(request, "latest"),
    }


# members a read adds beside the body (couch_doc:to_json_meta), whose presence drops the ETag
META_MEMBERS = ("_conflicts", "_deleted_conflicts", "_revs_info", "_local_seq")


async def get_doc(request: web.Request) -> web.StreamResponse:
    db = get_db(request)
    docid = docid_of(request)
    _check_json_params(request)
    opts = _read_options(request)
    open_revs = request.query.get("open_revs")
    if open_revs == "[]":
        open_revs = None  # chttpd_db: an empty list reads as no open_revs at all
    if open_revs is not None:
        # a `_local` document is read too, as CouchDB does: its revisions are checked, then it
        # has none to open (local documents are not in the revision tree)
        if open_revs == "all":
            wanted = "all"
        else:
            wanted = params.json_value(request, "open_revs")
            if not isinstance(wanted, list):
                raise BadRequest("Invalid list of revisions")
            if not all(revtree.parse_rev(r) for r in wanted):
                raise BadRequest("Invalid rev format")
        results = db.open_revs(docid, wanted, latest=opts["latest"], with_revs=opts["revs"])
        if wanted == "all" and not results:
            raise NotFound("missing")
        # multipart/mixed unless the client's Accept rules it out, as CouchDB answers
        return await att_http.open_revs_response(request, db, docid, results, request.query)
    if docid.startswith("_local/") and "rev" in request.query:
        raise NotFound("missing")  # local documents keep no revisions to read
    rev = _query_rev(request)
    plain = not any(opts.values()) and not docid.startswith("_local/") and not any(
        k in request.query for k in ATTACHMENT_PARAMS) and "multipart/" not in request.headers.get("Accept", "")
    if plain:
        # the common read: the stored JSON goes out as it is, with _id/_rev spliced in
        rev, body = db.get_json(docid, rev)
        etag = f'"{rev}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body + b"\n", content_type="application/json",
                            headers={"ETag": etag, "Cache-Control": "must-revalidate"})
    doc = db.get(docid, rev=rev, **opts) if not docid.startswith("_local/") else db.get_local(docid)
    if docid.startswith("_local/") and opts["revs"]:
        # a local document's revision `0-N` is its whole history, and CouchDB lists it so
        doc = {**doc, "_revisions": {"start": 0, "ids": [doc["_rev"].split("-", 1)[1]]}}
    # chttpd_db send_doc: an ETag (and so a 304) only when the document carries no meta members
    # (_conflicts, _revs_info...): with them the body can change while the winning rev stays the
    # same. `conflicts=true` of a document without conflicts adds none, so keeps its ETag.
    meta = any(k in doc for k in META_MEMBERS)
    etag = f'"{doc["_rev"]}"'
    if not meta and request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    if any(k in request.query for k in ATTACHMENT_PARAMS) or "multipart/related" in request.headers.get(
        "Accept", ""
    ):
        return await att_http.doc_get_response(request, db, doc, request.query, None if meta else etag)
    return json_response(doc, headers=None if meta else {"ETag": etag})


async def head_doc(request: web.Request) -> web.StreamResponse:
    # CouchDB answers HEAD as GET without the body: the same status and headers, every query
    # option read. aiohttp sends no body on HEAD but keeps the Content-Length of the GET's body.
    return await get_doc(request)


def _write_response(request: web.Request, db, docid: str, result: dict, batch: bool,
                    deleted: bool = False) -> web.Response:
    if batch:
        return json_response({"ok": True, "id": docid}, status=202)
    # CouchDB answers a write that deletes the document 200, any other 201
    return json_response(
        result, status=200 if deleted else 201,
        headers={"ETag": f'"{result["rev"]}"', "Location": location(request, db.name, docid)}
    )


async def put_doc(request: web.Request) -> web.Response:
    db = get_db(request)
    docid = docid_of(request)
    new_edits = params.flag(request, "new_edits", True)
    batch = request.query.get("batch") == "ok"
    # chttpd_db reads a write as: its query string (a bad `rev`), the body (its members in
    # order, its `_id` too, then its attachments' names), then the revisions given in the
    # query string, the If-Match header and the body against each other
    _query_rev(request)
    if params.media_type(request).startswith("multipart/"):
        result = await att_http.doc_put_multipart(request, db, docid, request.query)
        return _write_response(request, db, docid, result, False)
    doc = await params.json_document(request)
    body_rev = docrules.check_members(doc, db.max_docid_length)
    att_hooks.check_names(doc)
    rev = params.request_rev(request, body_rev)
    doc = {"_id": docid, **{k: v for k, v in doc.items() if k != "_id"}}
    if rev is not None and (request.query.get("rev") or request.headers.get("If-Match")):
        doc["_rev"] = rev  # the body's own `_rev` (or `_revisions`) stays as it is
    result = await db.put(doc, new_edits=new_edits, batch=batch, body_size=len(await request.read()))
    return _write_response(request, db, docid, result, batch, deleted=doc.get("_deleted") is True)


async def delete_doc(request: web.Request) -> web.Response:
    db = get_db(request)
    docid = docid_of(request)
    if docid.startswith("_local/"):
        rev = params.request_rev(request)
        # local documents keep no revisions: any rev, or none, deletes one that exists
        if rev is not None and revtree.parse_rev(rev) is None:
            raise BadRequest("Invalid rev format")
        db.get_local(docid)  # 404 when missing
        result = await db.put({"_id": docid, "_deleted": True})
        return json_response(result, status=200, headers={"ETag": f'"{result["rev"]}"'})
    # chttpd_db opens the current document first: missing or deleted answers 404, before any
    # revision given is looked at
    info = db.get_docinfo(docid)
    if info is None:
        raise NotFound("missing")
    if info.deleted:
        raise NotFound("deleted")
    rev = params.request_rev(request)
    if rev is None:
        raise Conflict()
    batch = request.query.get("batch") == "ok"
    result = await db.put({"_id": docid, "_rev": rev, "_deleted": True}, batch=batch)
    if batch:
        return json_response({"ok": True, "id": docid}, status=202)
    return json_response(result, status=200, headers={"ETag": f'"{result["rev"]}"'})


async def copy_doc(request: web.Request) -> web.Response:
    db = get_db(request)
    docid = docid_of(request)
    dest = request.headers.get("Destination")
    if not dest:
        raise BadRequest("Destination header is mandatory for COPY.")
    dest_id, _, query = dest.partition("?")
    dest_id = unquote(dest_id)
    dest_rev = None
    for part in query.split("&"):
        if part.startswith("rev="):
            dest_rev = unquote(part[4:])
    src = db.get(docid, rev=request.query.get("rev"))
    new = {k: v for k, v in src.items() if not k.startswith("_")}
    if src.get("_attachments"):
        # the copy refers to the same stored bodies; no bytes are sent again
        new["_attachments"] = att_hooks.reattach(db, src["_attachments"])
    new["_id"] = dest_id
    if dest_rev:
        new["_rev"] = dest_rev
    result = await db.put(new)
    return json_response(result, status=201, headers={"ETag": f'"{result["rev"]}"', "Location": location(request, db.name, dest_id)})


def _doc_routes(path: str) -> list:
    return [
        web.get(path, get_doc, allow_head=False),
        web.head(path, head_doc),
        web.put(path, put_doc),
        web.delete(path, delete_doc),
        web.route("COPY", path, copy_doc),
    ]


def hot_routes() -> list:
    """Plain document ids (not starting with `_`) cannot collide with `/{db}/_all_docs` and the
    other special paths, so these routes go first: aiohttp tries dynamic routes in order, and
    document reads and writes are most of the traffic."""
    return _doc_routes("/{db}/{docid:[^_/][^/]*}")


def routes_list() -> list:
    out = []
    # the generic /{db}/{docid} stays last: it answers other `_`-prefixed ids with CouchDB's error
    for path in ("/{db}/_design/{ddoc}", "/{db}/_local/{ldoc}", "/{db}/{docid}"):
        out += [
            web.get(path, get_doc, allow_head=False),
            web.head(path, head_doc),
            web.put(path, put_doc),
            web.delete(path, delete_doc),
            web.route("COPY", path, copy_doc),
        ]

    async def bare_local(request: web.Request) -> web.Response:
        raise BadRequest("Invalid _local document id.")

    async def local_attachment(request: web.Request) -> web.Response:
        raise BadRequest("_local documents do not accept attachments.")

    out.append(web.route("*", "/{db}/_local/", bare_local))
    out.append(web.route("*", "/{db}/_local/{ldoc}/{att:.+}", local_attachment))
    return out


__all__ = ["routes_list", "CouchError"]
