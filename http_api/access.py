"""Per-document access control on the HTTP routes of an access database (`couchpy.access`).

The middleware decides once per request whether its reads are restricted (`restrict`): only in
an access database, only for a member who is not a db admin. Then:

- routes naming one document (documents, attachments, `_local`, `COPY`'s source, `_update` on a
  document, anything under a design document) answer 404 `missing` for a document the user does
  not see, here, before their handler runs;
- listings ask `visible` for the rows they may return (`_all_docs`, `_changes`, `_bulk_get`,
  `_revs_diff`, `_missing_revs`, views, `_find`);
- every other route (one that could reveal other users' documents and has no filtered form:
  `_purged_infos`, the `_partition/` routes, any route added later) is refused, 403.

Writes are guarded by the engine's write path, whatever route they come by.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from couchpy import access
from couchpy.docinfo import DocInfo
from couchpy.errors import Forbidden, NotFound
from couchpy.security import UserCtx

KEY = "access_ctx"
UNAVAILABLE = "This route is not available to users of an access database."

# routes a restricted user may use as anyone: they name one document (checked by `restrict`),
# write through the engine's guarded write path, or show no document
_AS_IS = {
    "/{db}", "/{db}/", "/{db}/{docid}", "/{db}/{docid}/{att}", "/{db}/_local/{ldoc}", "/{db}/_local/{ldoc}/{att}",
    "/{db}/_local/", "/{db}/_design/{ddoc}", "/{db}/_design/{ddoc}/{att}", "/{db}/_design/{ddoc}/_info",
    "/{db}/_design/{ddoc}/_update/{func}", "/{db}/_design/{ddoc}/_update/{func}/{docid}",
    "/{db}/_bulk_docs", "/{db}/_ensure_full_commit", "/{db}/_security", "/{db}/_revs_limit",
    "/{db}/_purged_infos_limit", "/{db}/_tombstone_ttl", "/{db}/_purge", "/{db}/_compact", "/{db}/_compact/{ddoc}", "/{db}/_view_cleanup",
    "/{db}/_nouveau_cleanup",
    "/{db}/_explain", "/{db}/_index", "/{db}/_index/{ddoc}/{type}/{name}",
    "/{db}/_index/_design/{ddoc}/{type}/{name}",
}
# listings: each filters its rows through `visible`
_FILTERED = {
    "/{db}/_all_docs", "/{db}/_design_docs", "/{db}/_local_docs", "/{db}/_changes", "/{db}/_bulk_get",
    "/{db}/_all_docs/queries", "/{db}/_design_docs/queries",
    "/{db}/_revs_diff", "/{db}/_missing_revs", "/{db}/_find",
    "/{db}/_design/{ddoc}/_view/{view}", "/{db}/_design/{ddoc}/_view/{view}/queries",
}


def restrict(request: web.Request, ctx: UserCtx, db, sec: dict) -> None:
    """Called by the middleware once the database-level rules let the request in."""
    if not access.is_access_db(db.meta) or access.unrestricted(ctx, sec):
        return
    request[KEY] = ctx
    canonical = request.match_info.route.resource.canonical
    if canonical not in _AS_IS and canonical not in _FILTERED:
        # any other route (`_purged_infos`, partitions, ...) could list documents unfiltered
        raise Forbidden(UNAVAILABLE)
    info = request.match_info
    names = []
    if "ddoc" in info:
        names.append("_design/" + info["ddoc"])
    if "ldoc" in info:
        names.append("_local/" + info["ldoc"])
    if "docid" in info and canonical not in _FILTERED:
        names.append(info["docid"])
    if request.method in ("PUT", "DELETE") and "/_update/" not in canonical:
        return  # writes: the engine's write path refuses (403) a document the user does not see
    for docid in names:
        if exists(db, docid) and not visible_id(db, ctx, docid):
            raise NotFound("missing")  # as if it did not exist: other users' ids stay unknown


def restricted(request: web.Request) -> UserCtx | None:
    """The user whose reads are filtered, or None when the request sees everything."""
    return request.get(KEY)


def exists(db, docid: str) -> bool:
    if docid.startswith("_local/"):
        try:
            db.get_local(docid)
        except NotFound:
            return False
        return True
    return db.get_docinfo(docid) is not None


def visible_id(db, ctx: UserCtx, docid: str) -> bool:
    """Whether `ctx` sees `docid` (False when it does not exist)."""
    if docid.startswith("_local/"):
        try:
            return access.admitted(ctx, docid, db.get_local(docid))
        except NotFound:
            return False
    info = db.get_docinfo(docid)
    return info is not None and visible_info(db, ctx)(info)


def visible_info(db, ctx: UserCtx) -> Callable[[DocInfo], bool]:
    """A predicate over the DocInfos of `db`: whether `ctx` sees the document."""
    def sees(info: DocInfo) -> bool:
        return access.admitted(ctx, info.id, db.read_body(info.id, info.rev))
    return sees


def visible(request: web.Request, db) -> Callable[[str], bool] | None:
    """For one-shot listings: a predicate over document ids (remembering its answers: a view
    asks once per row, and counts rows more than once), or None when every document is visible."""
    ctx = restricted(request)
    if ctx is None:
        return None
    known: dict[str, bool] = {}

    def sees(docid: str) -> bool:
        if not isinstance(docid, str):
            return False
        if docid not in known:
            known[docid] = visible_id(db, ctx, docid)
        return known[docid]
    return sees


def visible_doc(request: web.Request, db) -> Callable[[dict], bool] | None:
    """For `_find`: a predicate over winning documents (with `_id` and `_access`), or None."""
    ctx = restricted(request)
    if ctx is None:
        return None
    return lambda doc: isinstance(doc, dict) and access.admitted(ctx, doc.get("_id", ""), doc)
