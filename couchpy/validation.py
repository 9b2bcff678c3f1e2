"""`validate_doc_update`: the write guards design documents define.

Every design document of a database may carry a `validate_doc_update(newDoc, oldDoc, userCtx,
secObj)` function. Before a write is queued, each such function sees the new document and the
current one; a function that throws `{forbidden: msg}` refuses the write (403), `{unauthorized:
msg}` asks for other credentials (401). As in CouchDB, the functions guard replicated writes too,
but not design documents themselves (only admins write those) nor `_local` documents.

The functions run in query-server workers (couchpy.query_server), one call per function for a
whole group of documents. The list of functions is cached per database and refreshed only when a
design document changes (`meta["ddoc_seq"]`), so a database without validators pays nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from . import users
from .query_language import canonical
from .errors import CouchError, Forbidden, Unauthorized
from .security import USERS_DB, UserCtx
from .views.manager import pool_for

log = logging.getLogger("couchpy.validation")

# The authenticated user of the current request, as CouchDB's userCtx ({"name", "roles"}); the
# HTTP layer sets it. Library use and server-internal writes act as an admin.
current_user: contextvars.ContextVar[dict | None] = contextvars.ContextVar("couchpy_user_ctx", default=None)


def current_ctx() -> UserCtx:
    """The current user as a UserCtx (a server admin outside any request)."""
    ctx = current_user.get()
    if ctx is None:
        return UserCtx(None, ("_admin",))
    return UserCtx(ctx.get("name"), tuple(ctx.get("roles") or ()))


def user_ctx(db) -> dict:
    ctx = current_user.get() or {"name": None, "roles": ["_admin"]}
    return {"db": db.name, "name": ctx.get("name"), "roles": list(ctx.get("roles") or [])}


def validators(db) -> list[tuple[str, str]]:
    """(language, source) of every validate_doc_update in the database's design documents."""
    key = db.meta.get("ddoc_seq", 0)
    cached = getattr(db, "_validators", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    found: list[tuple[str, str]] = []
    for info in db.iter_docinfos("_design/", "_design0", inclusive_end=False):
        if info.deleted:
            continue
        body = db.read_body(info.id, info.rev) or {}
        src = body.get("validate_doc_update")
        if isinstance(src, str) and src.strip():
            found.append((canonical(body.get("language") or "javascript"), src))
    db._validators = (key, found)
    return found


def _old_doc(db, docid: str) -> dict | None:
    info = db.get_docinfo(docid)
    if info is None:
        return None
    body = db.read_body(docid, info.rev)
    return None if body is None else db.build_doc(info, info.rev, body)


def _error(result: dict) -> CouchError:
    if "unauthorized" in result:
        return Unauthorized(result["unauthorized"])
    return Forbidden(str(result.get("forbidden", "forbidden")))


async def validate(db, docs: list[dict]) -> list[CouchError | None]:
    """One entry per document: None where every validator accepts it, else the refusal."""
    out: list[CouchError | None] = [None] * len(docs)
    fns = validators(db)
    if not fns and db.name != USERS_DB:
        return out
    checked = [i for i, d in enumerate(docs) if not d["_id"].startswith(("_design/", "_local/"))]
    if not checked:
        return out
    if db.name == USERS_DB:
        # the rules of CouchDB's _design/_auth validator, applied natively
        ctx, sec = current_ctx(), db.meta.get("security") or {}
        for i in checked:
            out[i] = users.validate_user_doc(docs[i], _old_doc(db, docs[i]["_id"]), ctx, sec)
        if not fns:
            return out
    pool = pool_for(db.node)
    items = [(docs[i], _old_doc(db, docs[i]["_id"])) for i in checked]
    ctx, sec = user_ctx(db), db.meta.get("security") or {}
    loop = asyncio.get_running_loop()
    for language, src in fns:
        if language == "python" and not getattr(pool, "python_enabled", False):
            log.warning("%s: a python validate_doc_update is ignored ([query_servers] python is off)", db.name)
            continue
        pending = [k for k, i in enumerate(checked) if out[i] is None]
        if not pending:
            break
        try:
            results: list[Any] = await loop.run_in_executor(
                None, pool.validate_docs, language, src, [items[k] for k in pending], ctx, sec
            )
        except CouchError as exc:  # a validator that does not compile refuses every write
            results = [{"forbidden": f"validate_doc_update: {exc.reason}"}] * len(pending)
        for k, res in zip(pending, results):
            if res:
                out[checked[k]] = _error(res)
    return out


def checks_skipped(db, docs: list[dict]) -> bool:
    """Whether CouchDB would write these edits without its pre-write checks.

    couch_db:update_docs looks documents up and checks each edit against the current revision
    before writing only when the database has validation functions (or its handle has not loaded
    them yet), or an edit is a design document or carries attachments. Otherwise the updater just
    merges each edit's history into the tree, which accepts an edit naming a revision of a document
    that does not exist (it creates the document). Clients see both answers, so both are copied;
    `validators_loaded` stands for the handle's state (see `note_writes`).
    """
    if not db.validators_loaded or db.name == USERS_DB or validators(db):
        return False
    return not any(not d["_id"].startswith("_local/") and (d["_id"].startswith("_design/") or d.get("_attachments"))
                   for d in docs)


def note_writes(db, docs: list[dict], results: list[Any]) -> None:
    """Track when CouchDB's handle of the database holds its validation functions: loaded by the
    first write it validates (an edit or a replicated revision of a document, written or
    refused by a validator), forgotten whenever a design document changes."""
    loaded = ddoc_changed = False
    for doc, res in zip(docs, results):
        docid = doc.get("_id") if isinstance(doc, dict) else None
        if not isinstance(docid, str) or docid.startswith("_local/"):
            continue
        if docid.startswith("_design/"):
            ddoc_changed = ddoc_changed or not isinstance(res, CouchError)
        elif not isinstance(res, CouchError) or isinstance(res, (Forbidden, Unauthorized)):
            loaded = True
    if ddoc_changed:
        db.validators_loaded = False
    elif loaded:
        db.validators_loaded = True


def note_validated_before_stubs(db, docs: list, new_edits: bool) -> None:
    """`docs`, in document-id order, came before the one whose stubs failed a `_bulk_docs`:
    CouchDB checked and validated those edits first, which loads its handle's validators
    (see `note_writes`)."""
    passed = [d for d in docs if isinstance(d, dict) and isinstance(d.get("_id"), str)
              and not d["_id"].startswith(("_local/", "_design/"))  # not validated; not written
              and (not db.would_conflict(d["_id"], d.get("_rev")) if new_edits else not db.has_revision(d))]
    note_writes(db, passed, [None] * len(passed))
