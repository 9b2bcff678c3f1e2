"""`_replicator` documents belong to the user who wrote them, as CouchDB keeps them.

A non-admin's document gets `owner` set to the writer's name; a non-admin may not write a
document owned by someone else ("Can't update replication documents from other users."). Someone
other than its owner or a db admin reads it with the credentials cut out of `source` and
`target` (userinfo in the URL masked, `headers` and `auth` removed). A replication runs with its
owner's rights: an owner who is not a server admin may only name endpoints by URL (whose
credentials the other side checks), never local databases directly (`may_run`). Pure functions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import Forbidden
from .security import REPLICATOR_DB, UserCtx, is_db_admin

OWNER = "owner"
OTHER_USERS = "Can't update replication documents from other users."


def stamp_owner(doc: dict, old: dict | None, ctx: UserCtx, sec: dict) -> dict:
    """The document to store: owned by its writer unless a db admin says otherwise."""
    if doc.get("_id", "").startswith("_design/") or doc.get("_deleted") and ctx.is_server_admin:
        return doc
    admin = is_db_admin(ctx, sec)
    previous = old.get(OWNER) if old is not None else None
    if not admin and previous is not None and previous != ctx.name:
        raise Forbidden(OTHER_USERS)
    owner = doc.get(OWNER)
    if owner is None:
        return doc if ctx.name is None and admin else {**doc, OWNER: ctx.name}
    if owner != ctx.name and not admin:
        raise Forbidden(OTHER_USERS)
    return doc


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = "*****:*****@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def strip_credentials(endpoint: Any) -> Any:
    if isinstance(endpoint, str):
        return _mask_url(endpoint)
    if isinstance(endpoint, dict):
        out = {k: v for k, v in endpoint.items() if k not in ("headers", "auth")}
        if isinstance(out.get("url"), str):
            out["url"] = _mask_url(out["url"])
        return out
    return endpoint


def visible(doc: dict, ctx: UserCtx, sec: dict) -> dict:
    """What `ctx` may read of a `_replicator` document."""
    if doc.get("_id", "").startswith("_design/") or is_db_admin(ctx, sec):
        return doc
    if ctx.name is not None and doc.get(OWNER) == ctx.name:
        return doc
    out = dict(doc)
    for key in ("source", "target"):
        if key in out:
            out[key] = strip_credentials(out[key])
    return out


def _is_url(endpoint: Any) -> bool:
    url = endpoint.get("url") if isinstance(endpoint, dict) else endpoint
    return isinstance(url, str) and "://" in url


def may_run(owner: Any, admins: set[str], source: Any, target: Any) -> str | None:
    """Why the document's owner may not run this replication, or None."""
    if owner is None or owner in admins:
        return None  # written by a server admin (or before owners were recorded)
    if _is_url(source) and _is_url(target):
        return None
    return (f"a replication owned by `{owner}` (not a server admin) names its endpoints by URL, "
            "with that user's credentials")
