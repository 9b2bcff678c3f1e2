"""Attachments over HTTP: inline and multipart document forms, and standalone attachments.

Document forms (called by http_api.documents):
- `doc_get_response`: `attachments=true` (bodies inline as base64), `atts_since=[revs]` (only
  attachments changed after the newest of those revs that is an ancestor are sent),
  `att_encoding_info=true`, and with `Accept: multipart/related` a multipart/related reply (JSON
  part with `follows: true` entries, then each body, sent in its stored encoding).
- `open_revs_response`: with `Accept: multipart/mixed`, one part per revision, each a
  multipart/related body when it carries attachment bodies (what CouchDB's replicator reads).
- `doc_put_multipart`: PUT of a document as multipart/related, bodies streamed into the store.

Standalone (`routes()`): PUT/GET/HEAD/DELETE `/{db}/{docid}/{name}` (names may contain `/`),
including design documents. GET answers the exact bytes with ETag = the digest (no Content-MD5, as CouchDB 3.4.3),
If-None-Match -> 304, and Range -> 206 (one range) or multipart/byteranges (2..9 ranges), 416 for
an unsatisfiable range, following CouchDB's rules for the odd cases.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from couchpy import jsonutil
from couchpy.attachments import hooks
from couchpy.attachments import render as render_mod
from couchpy.attachments.access import blobs_for, settings_for
from couchpy.attachments.blobstore import BlobMeta
from couchpy.errors import BadRequest, Conflict, CouchError, NotFound, TooLarge, UnsupportedMediaType

from . import accept
from . import multipart as mp
from . import params
from .databases import get_db
from .responses import json_response

BODY_CHUNK = 256 * 1024
MAX_RANGES = 10  # CouchDB serves the whole body when asked for this many ranges or more


class RangeNotSatisfiable(CouchError):
    status, error = 416, "requested_range_not_satisfiable"


# ---- helpers --------------------------------------------------------------------------------
def _flag(query, name: str) -> bool:
    # As chttpd_db's parse_doc_query: only "true" turns these options on; other values are ignored.
    return query.get(name) == "true"


def _accepts(request: web.Request, media: str) -> bool:
    return any(mp.media_type(t) == media for t in request.headers.get("Accept", "").split(","))


def _accepts_gzip(request: web.Request) -> bool:
    for item in request.headers.get("Accept-Encoding", "").split(","):
        token, _, rest = item.strip().partition(";")
        if token.strip().lower() not in ("gzip", "*"):
            continue
        q = 1.0
        for p in rest.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def _meta(db, stub: dict) -> BlobMeta:
    return render_mod.stored_meta(db, stub)


def _parse_atts_since(query) -> list | None:
    raw = query.get("atts_since")
    if raw is None:
        return None
    value = jsonutil.loads(raw.encode())  # bad JSON: CouchDB's generic 400 `invalid UTF-8 JSON`
    if not isinstance(value, list):
        raise BadRequest("atts_since must be a JSON array of revisions")
    return value


def _render(db, doc: dict, query, *, attachments: bool, follows: bool) -> tuple[dict, list[mp.AttachmentPart]]:
    """The document JSON with its attachments shaped as asked, and the bodies that follow it."""
    rendered, followers = render_mod.render(
        db, doc, attachments=attachments, atts_since=_parse_atts_since(query),
        encoding_info=_flag(query, "att_encoding_info"), follows=follows,
    )
    blobs = blobs_for(db)
    parts = [
        mp.AttachmentPart(f.name, f.content_type, f.meta.encoded_length, f.meta.encoding, blobs.iter_stored(f.meta))
        for f in followers
    ]
    return rendered, parts


async def _stream(request: web.Request, resp: web.StreamResponse, pieces) -> web.StreamResponse:
    await resp.prepare(request)
    if request.method != "HEAD":
        for piece in pieces:
            await resp.write(piece)
    await resp.write_eof()
    return resp


# ---- document forms -------------------------------------------------------------------------
async def doc_get_response(request: web.Request, db, doc: dict, query, etag: str | None) -> web.StreamResponse:
    """`etag`: None when the document carries meta members (chttpd_db send_doc: no ETag then,
    in JSON and multipart answers alike)."""
    tag = {"ETag": etag} if etag else {}
    attachments = _flag(query, "attachments") or query.get("atts_since") is not None
    multipart = attachments and _accepts(request, "multipart/related")
    rendered, parts = _render(db, doc, query, attachments=attachments, follows=multipart)
    if not multipart or not doc.get("_attachments"):
        # a document without attachments goes out as plain JSON, as CouchDB sends it
        return json_response(rendered, headers=tag)
    boundary = mp.new_boundary()
    body = jsonutil.dumps(rendered)
    resp = web.StreamResponse(
        status=200,
        headers={**tag, "Cache-Control": "must-revalidate",
                 "Content-Type": mp.related_content_type(boundary, parts)},
    )
    resp.content_length = mp.related_length(boundary, body, parts)
    return await _stream(request, resp, mp.related_pieces(boundary, body, parts))


async def open_revs_response(request: web.Request, db, docid: str, results: list, query) -> web.StreamResponse:
    if not results and query.get("open_revs") == "all":
        raise NotFound("missing")  # as chttpd_db: open_revs=all of a document that does not exist
    attachments = _flag(query, "attachments") or query.get("atts_since") is not None
    multipart = accept.accepts(request.headers.get("Accept"), "multipart/mixed")
    if request.method == "HEAD":
        # CouchDB streams this answer (chunked), so its HEAD says Content-Length 0
        ctype = mp.content_type_with_boundary("mixed", mp.new_boundary()) if multipart else "application/json"
        return web.Response(status=200, headers={"Content-Type": ctype, "Content-Length": "0"})
    if not multipart:
        out = []
        for item in results:
            if "ok" in item:
                rendered, _ = _render(db, item["ok"], query, attachments=attachments, follows=False)
                out.append({"ok": rendered})
            else:
                out.append(item)
        return json_response(out)
    outer = mp.new_boundary()
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": mp.content_type_with_boundary("mixed", outer)}
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    ob = outer.encode()
    await resp.write(b"--" + ob)
    for item in results:
        if "ok" in item:
            # As CouchDB: each revision comes with its attachment bodies (subject to atts_since).
            rendered, parts = _render(db, item["ok"], query, attachments=True, follows=True)
            inner = mp.new_boundary()
            ctype = mp.related_content_type(inner, parts)
            await resp.write(f"\r\nContent-Type: {ctype}\r\n\r\n".encode())
            for piece in mp.related_pieces(inner, jsonutil.dumps(rendered), parts):
                await resp.write(piece)
        else:
            await resp.write(b'\r\nContent-Type: application/json; error="true"\r\n\r\n' + jsonutil.dumps(item))
        await resp.write(b"\r\n--" + ob)
    await resp.write(b"--")
    await resp.write_eof()
    return resp


class _PartFollowers:
    """`followers` for hooks.prepare: the n-th `follows` attachment reads the n-th body part."""

    def __init__(self, reader: mp.RelatedReader):
        self.reader = reader

    def get(self, name: str):
        return self._stream(name)

    async def _stream(self, name: str):
        nxt = await self.reader.next_body()
        if nxt is None:
            # CouchDB's words: it reads the missing body as an attachment cut short
            raise BadRequest("attachment shorter than expected")
        async for chunk in nxt[1]:
            yield chunk


async def doc_put_multipart(request: web.Request, db, docid: str, query) -> dict:
    if params.media_type(request) != "multipart/related":
        raise UnsupportedMediaType("Content-Type must be multipart/related")
    reader = mp.RelatedReader(request)
    sent = await reader.read_json()
    doc = {"_id": docid, **{k: v for k, v in sent.items() if k != "_id"}}
    body_rev = doc.get("_rev") if isinstance(doc.get("_rev"), str) else None
    rev = params.request_rev(request, body_rev)
    if rev is not None:
        doc["_rev"] = rev
    new_edits = query.get("new_edits", "true") != "false"
    await hooks.prepare(db, doc, _PartFollowers(reader))
    await reader.drain()
    result = await db.put(doc, new_edits=new_edits)
    if "rev" not in result:
        result = {"ok": True, "id": docid, "rev": doc.get("_rev")}
    return result


# ---- standalone attachments -----------------------------------------------------------------
def _target(request: web.Request) -> tuple[str, str]:
    info = request.match_info
    docid = "_design/" + info["ddoc"] if "ddoc" in info else info["docid"]
    return docid, hooks.validate_name(info["att"])


def _parse_ranges(header: str | None, length: int) -> list[tuple[int, int]] | None:
    """CouchDB's (mochiweb's) reading of a Range header: None = serve everything."""
    if not header:
        return None
    header = header.strip()
    if not header.startswith("bytes="):
        return None
    raw: list[tuple[int | None, int | None]] = []
    for spec in header[6:].split(","):
        spec = spec.strip()
        a, dash, b = spec.partition("-")
        if not dash:
            return None
        try:
            lo = int(a) if a.strip() else None
            hi = int(b) if b.strip() else None
        except ValueError:
            return None
        if lo is None and hi is None:
            return None
        raw.append((lo, hi))
    if raw and raw[0] == (0, None):
        return None  # asking for all of it is answered with all of it (200)
    out: list[tuple[int, int]] = []
    for lo, hi in raw:
        if lo is None:
            lo, hi = max(length - hi, 0), length - 1
        elif hi is None or hi >= length:
            hi = length - 1
        if hi < lo:
            raise RangeNotSatisfiable("Requested range not satisfiable")
        out.append((lo, hi))
    return out


def _absolute(request: web.Request, *segments: str) -> str:
    path = "/".join(quote(seg, safe="/" if i == len(segments) - 1 else "") for i, seg in enumerate(segments))
    return f"{request.scheme}://{request.host}/{path}"


def _doc_for(db, docid: str, rev: str | None) -> dict:
    return db.get(docid, rev=rev)


def _find(doc: dict, name: str) -> dict:
    stub = (doc.get("_attachments") or {}).get(name)
    if stub is None:
        raise NotFound("Document is missing attachment")
    return stub


async def _get_attachment(request: web.Request, head: bool) -> web.StreamResponse:
    db = get_db(request)
    docid, name = _target(request)
    doc = _doc_for(db, docid, request.query.get("rev"))
    stub = _find(doc, name)
    meta = _meta(db, stub)
    blobs = blobs_for(db)
    etag = '"' + stub["digest"][4:] + '"' if stub.get("digest", "").startswith("md5-") else f'"{doc["_rev"]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "must-revalidate",
        "Content-Type": stub.get("content_type") or "application/octet-stream",
        "Accept-Ranges": "bytes" if meta.encoding == "identity" else "none",
    }
    if request.headers.get("If-None-Match") == etag:
        # as CouchDB: the ETag and an empty body, nothing else
        return web.Response(status=304, headers={"ETag": etag, "Content-Length": "0"})
    # No Content-MD5: CouchDB 3.4.3 sends none (the ETag carries the digest already).
    if meta.encoding != "identity" and _accepts_gzip(request):
        headers["Content-Encoding"] = meta.encoding
        length, pieces = meta.encoded_length, (lambda: blobs.iter_stored(meta))
    else:
        length, pieces = meta.length, (lambda: blobs.iter_identity(meta))
    status = 200
    # Read against the length served, whatever the encoding: a range past the end is refused (416)
    # as CouchDB does, and only then does an encoded body go out whole.
    ranges = _parse_ranges(request.headers.get("Range"), length)
    if meta.encoding != "identity" or (ranges is not None and len(ranges) >= MAX_RANGES):
        ranges = None
    if ranges is not None and len(ranges) == 1:
        lo, hi = ranges[0]
        status = 206
        headers["Content-Range"] = f"bytes {lo}-{hi}/{length}"
        length, pieces = hi - lo + 1, (lambda: blobs.iter_stored(meta, lo, hi + 1))
    elif ranges is not None:
        boundary = mp.new_boundary()
        ctype = headers["Content-Type"]
        # CouchDB 3.4.3 sends a multipart/byteranges answer with its Content-Type alone (no ETag)
        resp = web.StreamResponse(status=206, headers={
            "Content-Type": mp.content_type_with_boundary("byteranges", boundary),
        })
        if head:
            resp.content_length = 0
            return resp
        resp.enable_chunked_encoding()
        return await _stream(request, resp, mp.byteranges_pieces(
            boundary, ctype, meta.length, ranges, lambda lo, hi: blobs.iter_stored(meta, lo, hi + 1)
        ))
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    return await _stream(request, resp, () if head else pieces())


async def get_attachment(request: web.Request) -> web.StreamResponse:
    return await _get_attachment(request, head=False)


async def head_attachment(request: web.Request) -> web.StreamResponse:
    return await _get_attachment(request, head=True)


def _base_doc(db, docid: str, rev: str | None) -> dict:
    """The revision an attachment edit applies to (a new document when no rev is given)."""
    if rev is None:
        return {"_id": docid}
    try:
        doc = db.get(docid, rev=rev)
    except NotFound:
        # chttpd_db: an attachment edit of a revision it cannot open is this odd 409
        raise CouchError("missing_rev", error="not_found", status=409) from None
    return {k: v for k, v in doc.items() if not k.startswith("_") or k in ("_id", "_rev", "_attachments")}


async def put_attachment(request: web.Request) -> web.Response:
    db = get_db(request)
    docid, name = _target(request)
    rev = params.request_rev(request)
    ctype = request.headers.get("Content-Type") or "application/octet-stream"
    enc = request.headers.get("Content-Encoding", "identity").strip().lower()
    if enc not in ("identity", "gzip"):
        raise UnsupportedMediaType("Only gzip and identity content-encodings are supported", error="bad_ctype")
    max_size = settings_for(db).max_size
    if max_size is not None and request.content_length is not None and request.content_length > max_size:
        raise TooLarge(name, error="attachment_too_large")
    base = _base_doc(db, docid, rev)  # before reading the body: a bad rev costs no upload
    if rev is None:
        info = db.get_docinfo(docid)
        if info is not None and not info.deleted:
            raise Conflict()
    # A Content-MD5 request header is not checked: CouchDB 3.4.3 ignores it on this request
    # (a wrong or malformed one included) and stores the body. aiohttp's server has already
    # decoded a `Content-Encoding: gzip` body, so the bytes arrive as identity and are stored gzip
    # again if the type is compressible.
    entry = await hooks.store_stream(db, name, ctype, request.content.iter_chunked(BODY_CHUNK))
    # the new attachment goes first, the others after it in their order, as CouchDB keeps them
    # (the order is hashed into the revision id)
    atts = {name: entry, **{k: v for k, v in (base.get("_attachments") or {}).items() if k != name}}
    base["_attachments"] = atts
    result = await db.put(base)
    return json_response(
        {"ok": True, "id": docid, "rev": result["rev"]},
        status=201,
        # chttpd_db: Location, and no ETag, for a written attachment
        headers={"Location": _absolute(request, db.name, docid, name)},
    )


async def delete_attachment(request: web.Request) -> web.Response:
    db = get_db(request)
    docid, name = _target(request)
    rev = params.request_rev(request)
    if rev is None:
        info = db.get_docinfo(docid)
        if info is None:
            raise NotFound("missing")
        # CouchDB opens the current revision before asking for a rev: a deleted document is
        # not found, a live one must have the attachment
        if info.deleted:
            raise NotFound("deleted")
        _find(db.get(docid), name)
        raise Conflict()
    base = _base_doc(db, docid, rev)
    atts = dict(base.get("_attachments") or {})
    _find(base, name)  # as CouchDB: 404 "Document is missing attachment", no new revision
    atts.pop(name)
    if atts:
        base["_attachments"] = atts
    else:
        base.pop("_attachments", None)
    result = await db.put(base)
    # no ETag: CouchDB 3.4.3 answers a deleted attachment with the revision in the body alone
    return json_response({"ok": True, "id": docid, "rev": result["rev"]})


def routes() -> list:
    out = []
    # Attachment names never start with "_": that keeps `_design/x/_view/...` and friends out.
    for path in ("/{db}/_design/{ddoc}/{att:[^_].*}", "/{db}/{docid:[^_/][^/]*}/{att:[^_].*}"):
        out += [
            web.get(path, get_attachment, allow_head=False),
            web.head(path, head_attachment),
            web.put(path, put_attachment),
            web.delete(path, delete_attachment),
        ]
    return out
