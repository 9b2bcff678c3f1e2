"""Who may do what: CouchDB 3's authorization rules as pure functions (no I/O).

A request is classified once, by the route it matched, into a `Family`; `authorize` then decides
from the user's context (`UserCtx`) and the database's security object (`_security`) whether it
may proceed, and if not, which of CouchDB's exact refusals it gets:

- server-level routes other than the open ones need a server admin (401 "You are not a server
  admin." whoever asks, as CouchDB's `verify_is_server_admin`);
- every route of a database first needs a member: a database whose `members` list no name and no
  role is open to everyone; otherwise the user needs a listed name or role (db admins and server
  admins always pass). Refused: 401 "You are not authorized to access this db." when anonymous,
  403 "You are not allowed to access this db." when authenticated;
- db-admin routes (`_security` and `_revs_limit` changes, `_index` changes) then need a db admin
  (`admins` names/roles, or a server admin): 401/403 "You are not a db or server admin.";
- maintenance (`_compact`, `_view_cleanup`) answers 401 "You are not a server or db admin." as
  CouchDB's request authorizer does;
- the `_users` database's listings (`_all_docs`, `_changes`, views, `_find`, ...) need a server
  admin unless `[couch_httpd_auth] users_db_public` is true.

Design documents are refused per document by the write path (`may_write_design`), since one
`_bulk_docs` may mix them with plain documents.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .errors import CouchError

USERS_DB = "_users"
REPLICATOR_DB = "_replicator"

NOT_SERVER_ADMIN = "You are not a server admin."
NOT_MEMBER_ANON = "You are not authorized to access this db."
NOT_MEMBER = "You are not allowed to access this db."
NOT_DB_ADMIN = "You are not a db or server admin."
NOT_DB_ADMIN_MAINTENANCE = "You are not a server or db admin."
USERS_SECURITY_LOCKED = "You can't edit the security object of the user database."


@dataclass(frozen=True)
class UserCtx:
    name: str | None = None
    roles: tuple[str, ...] = ()

    @property
    def is_server_admin(self) -> bool:
        return "_admin" in self.roles

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "roles": list(self.roles)}


ANONYMOUS = UserCtx()


@dataclass(frozen=True)
class Denial:
    status: int
    error: str
    reason: str

    def to_error(self) -> CouchError:
        return CouchError(self.reason, self.error, self.status)


class Family(enum.Enum):
    OPEN = "open"  # /, /_up, /_session, /_uuids, /_utils (the web UI's files)
    ALL_DBS = "all_dbs"  # /_all_dbs, /_dbs_info: server admins unless admin_only_all_dbs = false
    SERVER_ADMIN = "server_admin"  # db create/delete, _active_tasks, _scheduler, _replicate
    DB_READ = "db_read"  # members
    DB_WRITE = "db_write"  # members (design documents need db admins, per document)
    DB_LISTING = "db_listing"  # members; in _users, server admins unless users_db_public
    DB_ADMIN = "db_admin"  # members, then db admins (403 when authenticated)
    DB_MAINTENANCE = "db_maintenance"  # members, then db admins (always 401)
    SECURITY_WRITE = "security_write"  # PUT _security: DB_ADMIN, and _users only when editable


@dataclass(frozen=True)
class Policy:
    """The configuration the rules depend on."""

    admin_only_all_dbs: bool = True
    users_db_public: bool = False
    users_db_security_editable: bool = False


# the admin UI's static files are open too: the page logs in through /_session itself; so is the
# OpenAPI document, which says only what every couchpy's source says (no data, no configuration)
_SERVER_OPEN = {"/", "/_up", "/_session", "/favicon.ico", "/_uuids", "/_utils", "/_utils/", "/_utils/{name}",
                "/_openapi.json", "/_nouveau_analyze"}
_SERVER_ALL_DBS = {"/_all_dbs", "/_dbs_info"}
_WRITE_METHODS = {"PUT", "POST", "DELETE", "COPY"}
# `/{db}/<segment>...` routes by their second path segment
_LISTINGS = {"_all_docs", "_design_docs", "_local_docs", "_changes", "_find", "_explain", "_bulk_get",
             "_revs_diff", "_missing_revs",
             "_index"}
_MAINTENANCE = {"_compact", "_view_cleanup", "_nouveau_cleanup"}


def route_family(method: str, path: str) -> Family:
    """The family of a route, from its method and canonical path (`/{db}/_design/{ddoc}/...`)."""
    if path in _SERVER_OPEN:
        return Family.OPEN
    if path in _SERVER_ALL_DBS:
        return Family.ALL_DBS
    if not path.startswith("/{db}"):
        return Family.SERVER_ADMIN  # every other server-level route
    parts = [p for p in path.split("/") if p][1:]
    if not parts:  # /{db} and /{db}/
        if method in ("PUT", "DELETE"):
            return Family.SERVER_ADMIN
        return Family.DB_WRITE if method == "POST" else Family.DB_READ
    head = parts[0]
    if head == "_partition" and len(parts) > 2:  # a query scoped to one partition: as the query
        return route_family(method, "/{db}/" + "/".join(parts[2:]))
    if head in _MAINTENANCE:
        return Family.DB_MAINTENANCE
    if head == "_security":
        return Family.SECURITY_WRITE if method in _WRITE_METHODS else Family.DB_READ
    if head == "_purge":
        return Family.DB_ADMIN
    if head in ("_revs_limit", "_purged_infos_limit", "_conflict_policy", "_tombstone_ttl"):
        return Family.DB_ADMIN if method in _WRITE_METHODS else Family.DB_READ
    if head == "_index":
        return Family.DB_ADMIN if method in _WRITE_METHODS else Family.DB_LISTING
    if head in _LISTINGS:
        return Family.DB_LISTING
    if head == "_design" and len(parts) > 2 and parts[2] in ("_view", "_info", "_nouveau", "_nouveau_info"):
        # queries over the db (a POSTed search is a read)
        return Family.DB_LISTING
    return Family.DB_WRITE if method in _WRITE_METHODS else Family.DB_READ


def _names_roles(sec: dict, section: str) -> tuple[list, list]:
    part = sec.get(section) if isinstance(sec, dict) else None
    if not isinstance(part, dict):
        return [], []
    names, roles = part.get("names"), part.get("roles")
    return (names if isinstance(names, list) else []), (roles if isinstance(roles, list) else [])


def _listed(ctx: UserCtx, names: list, roles: list) -> bool:
    return (ctx.name is not None and ctx.name in names) or any(r in roles for r in ctx.roles)


def is_db_admin(ctx: UserCtx, sec: dict) -> bool:
    return ctx.is_server_admin or _listed(ctx, *_names_roles(sec, "admins"))


def is_member(ctx: UserCtx, sec: dict) -> bool:
    if is_db_admin(ctx, sec):
        return True
    names, roles = _names_roles(sec, "members")
    if not names and not roles:
        return True  # no members listed: the database is public
    return _listed(ctx, names, roles)


def may_write_design(ctx: UserCtx, sec: dict) -> Denial | None:
    if is_db_admin(ctx, sec):
        return None
    return _by_ctx(ctx, NOT_DB_ADMIN)


def _by_ctx(ctx: UserCtx, reason: str) -> Denial:
    if ctx.name is None:
        return Denial(401, "unauthorized", reason)
    return Denial(403, "forbidden", reason)


def default_security(mode: str | None) -> dict:
    """The `_security` a new database gets: `[couchdb] default_security` (admin_only or everyone)."""
    if (mode or "admin_only").strip() == "everyone":
        return {}
    return {"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}}


def validate_security(sec: Any) -> str | None:
    """Why a security object is malformed (CouchDB's shape), or None when it is fine."""
    if not isinstance(sec, dict):
        return "Security object must be a JSON object"
    for section in ("admins", "members"):
        if section not in sec:
            continue
        part = sec[section]
        if not isinstance(part, dict):
            return f"{section} must be a JSON object"
        for key in ("names", "roles"):
            value = part.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f"{section}.{key} must be a JSON list of strings"
    return None


def authorize(family: Family, ctx: UserCtx, db_name: str | None, sec: dict | None,
              policy: Policy = Policy()) -> Denial | None:
    """None when `ctx` may use a route of `family` (on database `db_name` whose security object
    is `sec`, None when the database does not exist), else CouchDB's refusal."""
    if family is Family.OPEN:
        return None
    if family is Family.ALL_DBS:
        if not policy.admin_only_all_dbs or ctx.is_server_admin:
            return None
        return Denial(401, "unauthorized", NOT_SERVER_ADMIN)
    if family is Family.SERVER_ADMIN:
        return None if ctx.is_server_admin else Denial(401, "unauthorized", NOT_SERVER_ADMIN)
    if family is Family.DB_LISTING and db_name == USERS_DB:
        # checked before membership, as CouchDB does
        if not (ctx.is_server_admin or policy.users_db_public):
            return Denial(401, "unauthorized", NOT_SERVER_ADMIN)
    if family is Family.DB_LISTING and db_name == REPLICATOR_DB and not ctx.is_server_admin:
        # listings could include other owners' documents with their credentials
        return Denial(401, "unauthorized", NOT_SERVER_ADMIN)
    if sec is None:
        return None  # no such database: its handler answers 404
    if not is_member(ctx, sec):
        return _by_ctx(ctx, NOT_MEMBER_ANON if ctx.name is None else NOT_MEMBER)
    if family is Family.DB_MAINTENANCE:
        return None if is_db_admin(ctx, sec) else Denial(401, "unauthorized", NOT_DB_ADMIN_MAINTENANCE)
    if family in (Family.DB_ADMIN, Family.SECURITY_WRITE):
        if not is_db_admin(ctx, sec):
            return _by_ctx(ctx, NOT_DB_ADMIN)
        if family is Family.SECURITY_WRITE and db_name == USERS_DB and not policy.users_db_security_editable:
            return Denial(403, "forbidden", USERS_SECURITY_LOCKED)
        return None
    return None
