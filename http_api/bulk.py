"""Bulk endpoints: _bulk_docs, _bulk_get, _revs_diff, _missing_revs."""

from __future__ import annotations

import uuid

from aiohttp import web

from couchpy import access, docrules, revtree, validation
from couchpy.attachments import hooks as att_hooks
from couchpy.errors import BadRequest, CouchError, PreconditionFailed

from . import params
from .access import visible
from .databases import get_db
from .responses import json_response, not_allowed

routes = web.RouteTableDef()


@routes.post("/{db}/_bulk_docs")
async def bulk_docs(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    raw = await request.read()
    body = await params.json_object(request)
    if "docs" not in body:
        raise BadRequest("POST body must include `docs` parameter.")
    docs = body["docs"]
    if not isinstance(docs, list):
        raise BadRequest("`docs` parameter must be an array.")
    new_edits = body.get("new_edits", True)
    # CouchDB reads every document before it looks at `new_edits`
    _validate_all(db, docs, new_edits is not False)
    if not isinstance(new_edits, bool):
        raise BadRequest("`new_edits` parameter must be a boolean.")
    if body.get("all_or_nothing") is True and new_edits and docs:
        # CouchDB 3 has no atomic batches: it refuses them whole (417), after validating them
        return json_response([_not_atomic(doc) for doc in docs], status=417)
    # CouchDB merges stubs bucket by bucket, its buckets in document-id order (couch_db groups
    # the edits by id): the first missing stub in that order is the one named
    checked: list[dict] = []
    try:
        for doc in sorted(docs, key=_id_order):
            if new_edits:
                db.check_stubs(doc)
            else:
                db.check_replicated_stubs(doc)
            checked.append(doc)
    except PreconditionFailed:
        validation.note_validated_before_stubs(db, checked, new_edits)
        raise
    results = await db.bulk_docs(docs, new_edits=new_edits, body_size=len(raw))
    return json_response(results, status=201)


def _id_order(doc: dict) -> bytes:
    docid = doc.get("_id")
    return docid.encode() if isinstance(docid, str) else b""


def _not_atomic(doc: dict) -> dict:
    return {"id": doc.get("_id", uuid.uuid4().hex), "rev": doc.get("_rev", "0-"),
            "error": "not_implemented", "reason": "all_or_nothing is not supported"}


def _validate_all(db, docs: list, new_edits: bool) -> None:
    """CouchDB validates every document before writing any (couch_db:doc_from_json_obj_validate):
    a malformed one fails the whole request with its error, not just its row."""
    max_id = db.config.get_int("couchdb", "max_document_id_length", 480)
    for doc in docs:
        if not isinstance(doc, dict):
            raise BadRequest("Document must be a JSON object")
        # couch_db:doc_from_json_obj_validate (members in body order, inline data decoded), then
        # the revision rule of `new_edits=false`, then attachment names, one document at a time
        docrules.check_members(doc, max_id)
        access.refuse_outside(db.meta, doc)
        local = isinstance(doc.get("_id"), str) and doc["_id"].startswith("_local/")
        if (not new_edits or "_revisions" in doc) and not local:
            docrules.revisions_path(doc)  # needs `_rev` or `_revisions`
        att_hooks.check_names(doc)  # a bad name fails the whole request too
        db._check_size(doc)


@routes.post("/{db}/_bulk_get")
async def bulk_get(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    body = await params.json_object(request)
    docs = body.get("docs")
    if not isinstance(docs, list):
        raise BadRequest("Missing JSON list of 'docs'.")
    revs = params.flag(request, "revs")
    latest = params.flag(request, "latest")
    attachments = params.flag(request, "attachments")
    sees = visible(request, db)
    results = []
    for item in docs:
        if not isinstance(item, dict) or not item or "id" not in item:
            reason = "document id missed" if isinstance(item, dict) and item else "document must be a JSON object"
            results.append(_item_error(None, None, "bad_request", reason))
            continue
        docid, rev = item["id"], item.get("rev")
        if not isinstance(docid, str):
            # CouchDB fails the whole request here (500 function_clause)
            raise BadRequest("A _bulk_get item's `id` must be a string")
        fault = _item_revs_fault(item)
        if fault is not None:
            results.append(_item_error(docid, fault[0], "bad_request", fault[1]))
            continue
        try:
            docrules.validate_docid(docid, allow_local=True)
        except CouchError as exc:  # as CouchDB: an id no document can have names no revision
            results.append({"id": docid, "docs": [{"error": {"id": docid, "rev": None, "error": exc.error,
                                                             "reason": exc.reason}}]})
            continue
        if sees is not None and not sees(docid):  # another user's document: as if missing
            results.append({"id": docid, "docs": [{"error": {"id": docid, "rev": rev if rev is not None else "undefined",
                                                             "error": "not_found", "reason": "missing"}}]})
            continue
        entry_revs = item.get("revs", revs) if isinstance(item.get("revs", revs), bool) else revs
        try:
            if rev is None:
                found = db.open_revs(docid, "all", latest=latest, with_revs=entry_revs)
                if not found:
                    found = [{"missing": None}]
                if all("missing" in f for f in found) and found[0].get("missing") is None:
                    out = [{"error": {"id": docid, "rev": "undefined", "error": "not_found", "reason": "missing"}}]
                else:
                    out = _bulk_get_rows(docid, found)
            else:
                out = _bulk_get_rows(docid, db.open_revs(docid, [rev], latest=latest, with_revs=entry_revs))
            if attachments:
                since = item.get("atts_since")
                for row in out:
                    if "ok" in row and row["ok"].get("_attachments"):
                        row["ok"] = att_hooks.inline_data(db, row["ok"], since if isinstance(since, list) else None)
        except CouchError as exc:
            out = [{"error": {"id": docid, "rev": rev, "error": exc.error, "reason": exc.reason}}]
        results.append({"id": docid, "docs": out})
    return json_response({"results": results})


def _item_error(docid: str | None, rev, error: str, reason: str) -> dict:
    return {"id": docid, "docs": [{"error": {"id": docid, "rev": rev, "error": error, "reason": reason}}]}


def _item_revs_fault(item: dict) -> tuple[object, str] | None:
    """(the value at fault, reason) where an item's `rev` or `atts_since` is malformed, checked as
    CouchDB does whether attachments are asked for or not."""
    rev = item.get("rev")
    if rev is not None and revtree.parse_rev(rev) is None:
        return rev, "Invalid rev format"
    if "atts_since" in item:
        since = item["atts_since"]
        if not isinstance(since, list):
            return since, "att_since value must be array of revs."
        for r in since:
            if revtree.parse_rev(r) is None:
                return r, "Invalid rev format"
    return None


def _bulk_get_rows(docid: str, found: list[dict]) -> list[dict]:
    rows = []
    for f in found:
        if "ok" in f:
            rows.append({"ok": f["ok"]})
        else:
            rows.append({"error": {"id": docid, "rev": f["missing"], "error": "not_found", "reason": "missing"}})
    return rows


@routes.post("/{db}/_revs_diff")
async def revs_diff(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    body = await params.json_object(request)
    return json_response(db.revs_diff(body, visible(request, db)))


@routes.post("/{db}/_missing_revs")
async def missing_revs(request: web.Request) -> web.Response:
    db = get_db(request)
    params.require_json(request)
    body = await params.json_object(request)
    diff = db.revs_diff(body, visible(request, db))
    return json_response({"missing_revs": {k: v["missing"] for k, v in diff.items()}})


def routes_list() -> list:
    return list(routes) + [
        not_allowed("/{db}/_bulk_docs", "POST"),
        not_allowed("/{db}/_bulk_get", "POST"),
        not_allowed("/{db}/_revs_diff", "POST"),
        not_allowed("/{db}/_missing_revs", "POST"),
    ]
