"""The `_users` database: user documents as CouchDB keeps them.

A user is `org.couchdb.user:<name>` with `type: "user"`, `name` and `roles`. A `password` member,
whoever writes it and however (PUT, `_bulk_docs`, `new_edits=false`, replication), is replaced
before storage by `password_scheme: "pbkdf2"`, `pbkdf2_prf`, `salt`, `iterations` and
`derived_key`: no revision ever holds the plain text. The rules CouchDB's `_design/_auth`
validator and `couch_users_db` apply are here as plain functions:

- only db admins write another user's document (others get 404, as if it did not exist);
- a document must be a well-formed user; names never change; no `_`-prefixed names or roles;
- a non-admin may not set or change roles;
- a non-admin reads only their own document; others' are cut down to `[couch_httpd_auth]
  public_fields` (404 when nothing public remains); design documents only by admins.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from .errors import CouchError, Forbidden, NotFound
from .passwords import pbkdf2_sha256
from .security import UserCtx, is_db_admin

USER_PREFIX = "org.couchdb.user:"


def doc_id(name: str) -> str:
    return USER_PREFIX + name


def name_of(docid: str) -> str | None:
    """The user a document id names (None for other ids, design documents among them)."""
    return docid[len(USER_PREFIX):] if docid.startswith(USER_PREFIX) else None


def hash_password(doc: dict, iterations: int, salt: str | None = None) -> dict:
    """`doc` with a plain `password` replaced by its PBKDF2 fields (CPU-heavy: run it off the
    event loop). A null password is kept as CouchDB keeps it; any other non-string is refused."""
    if "password" not in doc or doc["password"] is None:
        return doc
    password = doc["password"]
    if not isinstance(password, str):
        raise Forbidden(f"Password value of '{json.dumps(password)}' is invalid.")
    salt = salt or secrets.token_hex(16)
    out = {k: v for k, v in doc.items() if k != "password"}
    out.update({
        "password_scheme": "pbkdf2",
        "pbkdf2_prf": "sha256",
        "salt": salt,
        "iterations": iterations,
        "derived_key": pbkdf2_sha256(password, salt, iterations),
    })
    return out


class NotYours(NotFound):
    """A non-admin wrote another user's document: the whole request is answered 404, as
    couch_users_db's `throw(not_found)` does (not one row of a `_bulk_docs`)."""


def check_writer(docid: str, ctx: UserCtx, sec: dict) -> None:
    """couch_users_db's before_doc_update: a non-admin writes only their own document (or signs up
    anonymously); anything else is answered as if the document did not exist."""
    if is_db_admin(ctx, sec) or ctx.name is None or ctx.name == name_of(docid):
        return
    raise NotYours("missing")


def validate_user_doc(new: dict, old: dict | None, ctx: UserCtx, sec: dict) -> CouchError | None:
    """CouchDB's `_design/_auth` validate_doc_update, natively: None when the write is allowed."""
    try:
        _validate(new, old, ctx, sec)
    except CouchError as exc:
        return exc
    return None


def _validate(new: dict, old: dict | None, ctx: UserCtx, sec: dict) -> None:
    admin = is_db_admin(ctx, sec)
    if new.get("_deleted") is True:
        if admin or (old is not None and ctx.name == old.get("name")):
            return
        raise Forbidden("Only admins may delete other user docs.")
    if new.get("type") != "user":
        raise Forbidden("doc.type must be user")
    name = new.get("name")
    if not name:
        raise Forbidden("doc.name is required")
    if "roles" not in new or new["roles"] is None:
        raise Forbidden("doc.roles must exist")
    roles = new["roles"]
    if not isinstance(roles, list):
        raise Forbidden("doc.roles must be an array")
    if not all(isinstance(r, str) for r in roles):
        raise Forbidden("doc.roles can only contain strings")
    if not isinstance(name, str) or new.get("_id") != USER_PREFIX + name:
        raise Forbidden("Doc ID must be of the form org.couchdb.user:name")
    if old is not None and old.get("name") != name:
        raise Forbidden("Usernames can not be changed.")
    if new.get("password_sha") and not new.get("salt"):
        raise Forbidden("Users with password_sha must have a salt.See /_utils/script/couch.js for example code.")
    if new.get("password_scheme") == "pbkdf2":
        if not isinstance(new.get("iterations"), (int, float)) or isinstance(new.get("iterations"), bool):
            raise Forbidden("iterations must be a number.")
        if not isinstance(new.get("derived_key"), str):
            raise Forbidden("derived_key must be a string.")
    if not admin:
        if old is not None:
            if ctx.name != name:
                raise Forbidden("You may only update your own user document.")
            old_roles = old.get("roles") if isinstance(old.get("roles"), list) else []
            if sorted(map(str, old_roles)) != sorted(roles):
                raise Forbidden("Only _admin may edit roles")
        elif roles:
            raise Forbidden("Only _admin may set roles")
    if any(r != "_metrics" and r.startswith("_") for r in roles):
        raise Forbidden("No system roles (starting with underscore) in users db.")
    if name.startswith("_"):
        raise Forbidden("Username may not start with underscore.")
    if ":" in name:
        raise Forbidden("Character `:` is not allowed in usernames.")


def visible_doc(doc: dict, ctx: UserCtx, sec: dict, public_fields: list[str]) -> dict:
    """What `ctx` may read of a `_users` document (couch_users_db's after_doc_read)."""
    docid = doc.get("_id", "")
    if docid.startswith("_design/"):
        if is_db_admin(ctx, sec):
            return doc
        raise Forbidden("Only administrators can view design docs in the users database.")
    if is_db_admin(ctx, sec) or (ctx.name is not None and ctx.name == name_of(docid)):
        return doc
    public = {k: v for k, v in doc.items() if k in public_fields and not k.startswith("_")}
    if not public:
        raise NotFound("missing")
    return {"_id": docid, "_rev": doc.get("_rev"), **public}


def public_fields(raw: str | None) -> list[str]:
    return [f.strip() for f in (raw or "").split(",") if f.strip()]


def stored_hash(doc: dict[str, Any]) -> str | None:
    """A user document's credentials in the form couchpy.passwords verifies, or None."""
    salt = doc.get("salt")
    if not isinstance(salt, str):
        return None
    scheme = doc.get("password_scheme", "simple")
    if scheme == "pbkdf2":
        dk, iterations = doc.get("derived_key"), doc.get("iterations")
        if not isinstance(dk, str) or not isinstance(iterations, int):
            return None
        prf = doc.get("pbkdf2_prf", "sha")
        return f"-pbkdf2:{prf}-{dk},{salt},{iterations}"
    if scheme == "simple" and isinstance(doc.get("password_sha"), str):
        return f"-hashed-{doc['password_sha']},{salt}"
    return None
