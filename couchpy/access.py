"""Per-document access control: who may see and change a document of an access database (pure).

A database created with `PUT /{db}?access=true` keeps its documents apart per user. Each document
may carry `_access`, a list of user names and roles. Database-level security still applies first
(`couchpy.security`); then, for a member who is not a db admin:

- a document is visible when its winning revision's `_access` lists the user's name or one of
  their roles; a document without `_access` is visible to db admins only, except a design
  document, which every member reads (the application's code travels to every replica);
- a user creates documents only with an `_access` that lists them (missing, it is set to their
  name), changes and deletes only documents they see, and may not take themselves out of a
  document's `_access` (missing on an update or a deletion, it is kept from the revision replaced).

db admins and server admins see and change everything; their writes are checked only for the
shape of `_access`. Invisible documents read as missing (404 `not_found`, like a document that
does not exist); writes to them are refused 403 `forbidden` (document ids are shared by every
user, so an id in use by someone else cannot be taken anyway).
"""

from __future__ import annotations

from typing import Any

from .errors import DocValidation
from .security import Denial, UserCtx, is_db_admin

FIELD = "_access"
DESIGN_PREFIX = "_design/"

BAD_SHAPE = "_access must be a JSON list of strings"
NOT_LISTED = "_access must list you or one of your roles"
HIDDEN = "You are not allowed to change this document."
ANONYMOUS_WRITE = "You must be logged in to write to an access database."


def is_access_db(meta: dict) -> bool:
    """Whether a database (by its meta) was created in access mode."""
    return meta.get("access") is True


def refuse_outside(meta: dict, doc: dict) -> None:
    """As CouchDB: `_access` is a special member only where access control is enabled."""
    if FIELD in doc and not is_access_db(meta):
        raise DocValidation(f"Bad special document member: {FIELD}")


def well_formed(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def listed(ctx: UserCtx, value: Any) -> bool:
    """Whether an `_access` value admits `ctx` by name or role (a malformed value admits nobody)."""
    if not well_formed(value):
        return False
    return (ctx.name is not None and ctx.name in value) or any(r in value for r in ctx.roles)


def unrestricted(ctx: UserCtx, sec: dict) -> bool:
    """db admins (server admins included) see every document."""
    return is_db_admin(ctx, sec)


def may_see(ctx: UserCtx, sec: dict, docid: str, body: dict | None) -> bool:
    """Whether `ctx` sees document `docid` whose winning revision's stored body is `body` (a
    tombstone's body for a deleted document; None when unreadable: hidden)."""
    if unrestricted(ctx, sec):
        return True
    if body is None:
        return False
    if FIELD not in body:
        return docid.startswith(DESIGN_PREFIX)
    return listed(ctx, body[FIELD])


def admitted(ctx: UserCtx, docid: str, body: dict | None) -> bool:
    """`may_see` for a caller already known not to be a db admin (listings ask once per row)."""
    if body is None:
        return False
    if FIELD not in body:
        return docid.startswith(DESIGN_PREFIX)
    return listed(ctx, body[FIELD])


def guard_write(ctx: UserCtx, sec: dict, docid: str, doc: dict, old: dict | None) -> tuple[dict, Denial | None]:
    """The document to store for a write of `doc` over `old` (the current winner's body, a
    tombstone's included; None when the document does not exist), or the refusal.

    `_access` missing from an update or a deletion is kept from `old`, so a deleted document stays
    visible (and replicates its deletion) to the users who saw it."""
    if FIELD not in doc and old is not None and FIELD in old:
        doc = {**doc, FIELD: old[FIELD]}
    if FIELD in doc and not well_formed(doc[FIELD]):
        return doc, Denial(400, "bad_request", BAD_SHAPE)
    if unrestricted(ctx, sec):
        return doc, None
    if ctx.name is None:
        return doc, Denial(401, "unauthorized", ANONYMOUS_WRITE)
    if old is not None and not admitted(ctx, docid, old):
        return doc, Denial(403, "forbidden", HIDDEN)
    if FIELD not in doc:
        doc = {**doc, FIELD: [ctx.name]}
    if not listed(ctx, doc[FIELD]):
        return doc, Denial(403, "forbidden", NOT_LISTED)
    return doc, None
