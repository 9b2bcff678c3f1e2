"""The per-document access rules (couchpy.access) against a model written from docs/security.md."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import couchpy
from couchpy import access
from http_api import access as http_access
from http_api.app import make_app
from couchpy.security import UserCtx

NAMES = ["ann", "ben", "cy"]
ROLES = ["red", "blue", "_admin"]

ctxs = st.builds(UserCtx, st.none() | st.sampled_from(NAMES),
                 st.lists(st.sampled_from(ROLES), max_size=2, unique=True).map(tuple))
secs = st.fixed_dictionaries({}, optional={
    "admins": st.fixed_dictionaries({}, optional={"names": st.lists(st.sampled_from(NAMES), max_size=2),
                                                  "roles": st.lists(st.sampled_from(ROLES[:2]), max_size=1)}),
})
access_values = st.lists(st.sampled_from(NAMES + ROLES[:2]), max_size=3) | st.sampled_from(["ann", 3, None, ["ann", 1]])
bodies = st.none() | st.fixed_dictionaries({"x": st.integers(0, 3)}, optional={"_access": access_values})
docids = st.sampled_from(["d1", "_design/app", "_local/ck"])


def admin_model(ctx: UserCtx, sec: dict) -> bool:
    admins = sec.get("admins", {})
    return ("_admin" in ctx.roles or (ctx.name is not None and ctx.name in admins.get("names", []))
            or bool(set(ctx.roles) & set(admins.get("roles", []))))


def sees_model(ctx: UserCtx, sec: dict, docid: str, body: dict | None) -> bool:
    if admin_model(ctx, sec):
        return True
    if body is None:
        return False
    if "_access" not in body:
        return docid.startswith("_design/")
    value = body["_access"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return False
    return ctx.name in value or bool(set(ctx.roles) & set(value))


@given(ctxs, secs, docids, bodies)
def test_may_see_is_the_model(ctx, sec, docid, body):
    assert access.may_see(ctx, sec, docid, body) == sees_model(ctx, sec, docid, body)
    if not admin_model(ctx, sec):
        assert access.admitted(ctx, docid, body) == sees_model(ctx, sec, docid, body)


@given(ctxs, secs, docids, bodies, bodies)
def test_a_write_is_accepted_exactly_when_the_rules_allow_it(ctx, sec, docid, new, old):
    new = new or {}
    stored, denial = access.guard_write(ctx, sec, docid, new, old)
    given_access = new.get("_access", (old or {}).get("_access", access.FIELD))
    malformed = given_access is not access.FIELD and not (
        isinstance(given_access, list) and all(isinstance(v, str) for v in given_access))
    if malformed:
        assert denial is not None and denial.status == 400
        return
    if admin_model(ctx, sec):
        assert denial is None
        # an update or deletion without _access keeps the replaced revision's
        assert stored.get("_access") == (new["_access"] if "_access" in new else (old or {}).get("_access"))
        return
    allowed = (ctx.name is not None and (old is None or sees_model(ctx, sec, docid, old))
               and (given_access is access.FIELD or sees_model(ctx, sec, docid, {"_access": given_access})))
    assert (denial is None) == allowed, (ctx, new, old, denial)
    if denial is None:
        # what is stored lists the writer: they never lock themselves out
        assert sees_model(ctx, {}, "x", stored)
        assert {k: v for k, v in stored.items() if k != "_access"} == {k: v for k, v in new.items() if k != "_access"}
    else:
        assert denial.status == (401 if ctx.name is None else 403)


@given(st.dictionaries(st.sampled_from(["_access", "x", "_id"]), st.integers(0, 2)))
def test_access_is_a_special_member_only_in_access_databases(doc):
    access.refuse_outside({"access": True}, doc)
    if "_access" in doc:
        try:
            access.refuse_outside({}, doc)
        except Exception as exc:  # noqa: BLE001
            assert (exc.status, exc.error) == (400, "doc_validation")
        else:
            raise AssertionError("accepted outside an access database")
    else:
        access.refuse_outside({}, doc)


def test_the_routes_a_user_may_take_exist(tmp_path):
    """The closed list of routes open to users of an access database names real routes (a
    renamed route would otherwise be refused to them without anyone noticing)."""
    node = couchpy.open(tmp_path)
    routes = {r.resource.canonical for r in make_app(node).router.routes() if r.resource is not None}
    assert http_access._AS_IS | http_access._FILTERED <= routes
    assert not http_access._AS_IS & http_access._FILTERED
