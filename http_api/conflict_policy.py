"""GET/PUT /{db}/_conflict_policy: a database's conflict policy (a couchpy extension).

Shaped as `_revs_limit`: members read it, database admins change it. The body is the policy object
(couchpy.conflict_merge); `{}` turns resolution off. The node's resolver (couchpy.conflict_resolver)
applies it to the conflicts the database has and gets.
"""

from __future__ import annotations

from aiohttp import web

from couchpy import conflict_merge, conflict_resolver

from . import params
from .databases import get_db
from .responses import json_response, not_allowed


async def get_policy(request: web.Request) -> web.Response:
    return json_response(conflict_resolver.policy_of(get_db(request)))


async def put_policy(request: web.Request) -> web.Response:
    db = get_db(request)
    policy = conflict_merge.parse_policy(await params.json_body(request))
    await db.set_meta_field(conflict_resolver.META_FIELD, policy)
    return json_response({"ok": True})


def routes_list() -> list:
    return [
        web.get("/{db}/_conflict_policy", get_policy), web.put("/{db}/_conflict_policy", put_policy),
        not_allowed("/{db}/_conflict_policy", "GET,PUT"),
    ]
