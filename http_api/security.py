"""Reads of the system databases by users who are not their admins.

`_users` (couch_users_db's rules): a user reads their own document whole; another user's document
only cut down to `[couch_httpd_auth] public_fields` (404 when nothing public remains, so names
cannot be probed); design documents and other documents' attachments not at all.
`_replicator`: a document owned by someone else is read without its credentials.
"""

from __future__ import annotations

from aiohttp import web

from couchpy import replication_owners, users
from couchpy.errors import NotFound
from couchpy.security import UserCtx, is_db_admin

from .responses import json_response


def users_db_read(request: web.Request, ctx: UserCtx, sec: dict) -> web.StreamResponse | None:
    """None when the handler may answer as usual; else the answer (or an error raised)."""
    if is_db_admin(ctx, sec):
        return None
    info = request.match_info
    if "ddoc" in info:
        docid = "_design/" + info["ddoc"]
    elif "docid" in info:
        docid = info["docid"]
    else:
        return None  # database-level routes: the route families already decided
    if ctx.name is not None and docid == users.doc_id(ctx.name):
        return None
    if "att" in info or request.method not in ("GET", "HEAD"):
        if docid.startswith("_design/") or request.method in ("GET", "HEAD", "DELETE"):
            # CouchDB reads the document first (as this user): someone else's is missing
            raise NotFound("missing")
        return None  # other writes: the write path applies the _users rules
    db = request.app["node"].get_db(info["db"])
    doc = db.get(docid)  # NotFound when missing
    config = request.app["node"].config
    # public_fields apply only where [couch_httpd_auth] users_db_public opens the database
    public = (config.get("couch_httpd_auth", "users_db_public") or "").strip().lower() == "true"
    fields = users.public_fields(config.get("couch_httpd_auth", "public_fields")) if public else []
    visible = users.visible_doc(doc, ctx, sec, fields)
    return json_response(visible) if request.method == "GET" else web.Response(status=200)


def replicator_db_read(request: web.Request, ctx: UserCtx, sec: dict) -> web.StreamResponse | None:
    """None when the handler may answer as usual; else the document without others' secrets."""
    info = request.match_info
    if is_db_admin(ctx, sec) or "docid" not in info or request.method not in ("GET", "HEAD") or "att" in info:
        return None
    doc = request.app["node"].get_db(info["db"]).get(info["docid"])  # NotFound when missing
    shown = replication_owners.visible(doc, ctx, sec)
    if shown is doc:
        return None
    return json_response(shown) if request.method == "GET" else web.Response(status=200)
