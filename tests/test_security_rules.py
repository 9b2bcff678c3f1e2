"""The pure authorization rules (couchpy.security, couchpy.users): every route of the app has a
family, and random principals against random security objects get exactly what the rules say."""

from __future__ import annotations

import json
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import couchpy
from couchpy import replication_owners, users
from couchpy.errors import CouchError
from couchpy.passwords import verify_password
from couchpy.security import (
    ANONYMOUS, Denial, Family, Policy, UserCtx, authorize, default_security, is_db_admin, is_member,
    may_write_design, route_family, validate_security,
)
from http_api.app import make_app

NAMES = ["alice", "bob", "carol"]
ROLES = ["r1", "r2", "_admin"]

names = st.lists(st.sampled_from(NAMES), max_size=2, unique=True)
roles = st.lists(st.sampled_from(ROLES[:2]), max_size=2, unique=True)
section = st.fixed_dictionaries({}, optional={"names": names, "roles": roles})
secobjs = st.fixed_dictionaries({}, optional={"members": section, "admins": section})
ctxs = st.one_of(
    st.just(ANONYMOUS),
    st.builds(UserCtx, st.sampled_from(NAMES), st.lists(st.sampled_from(ROLES), max_size=2, unique=True).map(tuple)),
)


def _in(ctx: UserCtx, part: dict) -> bool:
    return ctx.name in part.get("names", []) or bool(set(ctx.roles) & set(part.get("roles", [])))


@given(ctxs, secobjs)
def test_membership_is_what_the_security_object_lists(ctx, sec):
    admin = "_admin" in ctx.roles or _in(ctx, sec.get("admins", {}))
    assert is_db_admin(ctx, sec) == admin
    members = sec.get("members", {})
    open_db = not members.get("names") and not members.get("roles")
    assert is_member(ctx, sec) == (admin or open_db or _in(ctx, members))


@given(ctxs, secobjs, st.sampled_from(list(Family)), st.sampled_from(["db", "_users"]))
@settings(max_examples=500)
def test_authorize_never_grants_more_than_membership(ctx, sec, family, db):
    denial = authorize(family, ctx, db, sec)
    if family is Family.OPEN:
        assert denial is None
        return
    if family in (Family.SERVER_ADMIN, Family.ALL_DBS) or (family is Family.DB_LISTING and db == "_users"
                                                           and not ctx.is_server_admin):
        assert (denial is None) == ctx.is_server_admin
        if denial:
            assert denial == Denial(401, "unauthorized", "You are not a server admin.")
        return
    if not is_member(ctx, sec):
        assert denial is not None
        assert (denial.status, denial.error) == ((401, "unauthorized") if ctx.name is None else (403, "forbidden"))
        return
    if family in (Family.DB_ADMIN, Family.DB_MAINTENANCE, Family.SECURITY_WRITE):
        assert (denial is None) == (is_db_admin(ctx, sec) and not (family is Family.SECURITY_WRITE and db == "_users"))
    else:
        assert denial is None
    # design documents: db admins only
    assert (may_write_design(ctx, sec) is None) == is_db_admin(ctx, sec)


def test_exact_refusals():
    alice = UserCtx("alice", ())
    closed = {"members": {"names": ["bob"]}, "admins": {"roles": ["boss"]}}
    assert authorize(Family.DB_READ, ANONYMOUS, "db", closed) == Denial(
        401, "unauthorized", "You are not authorized to access this db.")
    assert authorize(Family.DB_READ, alice, "db", closed) == Denial(
        403, "forbidden", "You are not allowed to access this db.")
    bob = UserCtx("bob", ())
    assert authorize(Family.DB_ADMIN, bob, "db", closed) == Denial(
        403, "forbidden", "You are not a db or server admin.")
    assert authorize(Family.DB_MAINTENANCE, bob, "db", closed) == Denial(
        401, "unauthorized", "You are not a server or db admin.")
    assert authorize(Family.SECURITY_WRITE, UserCtx("root", ("_admin",)), "_users", {}) == Denial(
        403, "forbidden", "You can't edit the security object of the user database.")
    assert authorize(Family.SECURITY_WRITE, UserCtx("root", ("_admin",)), "_users", {},
                     Policy(users_db_security_editable=True)) is None
    assert authorize(Family.ALL_DBS, alice, None, None, Policy(admin_only_all_dbs=False)) is None
    assert authorize(Family.DB_READ, alice, "missing", None) is None  # the handler's 404


def test_default_security():
    admin_only = default_security("admin_only")
    assert admin_only == {"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}}
    assert default_security(None) == admin_only
    assert default_security("everyone") == {}
    assert not is_member(UserCtx("alice", ("r1",)), admin_only)
    assert is_member(UserCtx("root", ("_admin",)), admin_only)


@pytest.mark.parametrize("sec,ok", [
    ({}, True), ({"members": {"names": ["a"], "roles": []}}, True), ({"owner": "x"}, True),
    ([], False), ({"admins": []}, False), ({"members": {"names": "a"}}, False), ({"members": {"roles": [1]}}, False),
])
def test_validate_security(sec, ok):
    assert (validate_security(sec) is None) == ok


def test_every_route_of_the_app_has_its_family():
    node = couchpy.open(tempfile.mkdtemp())
    app = make_app(node)
    seen = {}
    for route in app.router.routes():
        seen[(route.method, route.resource.canonical)] = route_family(route.method, route.resource.canonical)
    expected = {
        ("GET", "/"): Family.OPEN, ("GET", "/_uuids"): Family.OPEN, ("POST", "/_session"): Family.OPEN,
        ("GET", "/_all_dbs"): Family.ALL_DBS, ("POST", "/_dbs_info"): Family.ALL_DBS,
        ("GET", "/_active_tasks"): Family.SERVER_ADMIN, ("POST", "/_replicate"): Family.SERVER_ADMIN,
        ("GET", "/_scheduler/jobs"): Family.SERVER_ADMIN, ("PUT", "/{db}"): Family.SERVER_ADMIN,
        ("DELETE", "/{db}/"): Family.SERVER_ADMIN, ("GET", "/{db}"): Family.DB_READ,
        ("POST", "/{db}"): Family.DB_WRITE, ("GET", "/{db}/{docid}"): Family.DB_READ,
        ("COPY", "/{db}/{docid}"): Family.DB_WRITE, ("PUT", "/{db}/_design/{ddoc}"): Family.DB_WRITE,
        ("GET", "/{db}/_design/{ddoc}/{att}"): Family.DB_READ, ("PUT", "/{db}/_local/{ldoc}"): Family.DB_WRITE,
        ("PUT", "/{db}/{docid}/{att}"): Family.DB_WRITE, ("GET", "/{db}/_all_docs"): Family.DB_LISTING,
        ("POST", "/{db}/_changes"): Family.DB_LISTING, ("POST", "/{db}/_find"): Family.DB_LISTING,
        ("POST", "/{db}/_explain"): Family.DB_LISTING, ("POST", "/{db}/_bulk_get"): Family.DB_LISTING,
        ("POST", "/{db}/_bulk_docs"): Family.DB_WRITE, ("POST", "/{db}/_revs_diff"): Family.DB_LISTING,
        ("POST", "/{db}/_missing_revs"): Family.DB_LISTING, ("GET", "/{db}/_design/{ddoc}/_view/{view}"): Family.DB_LISTING,
        ("GET", "/{db}/_design/{ddoc}/_info"): Family.DB_LISTING, ("GET", "/{db}/_index"): Family.DB_LISTING,
        ("POST", "/{db}/_index"): Family.DB_ADMIN, ("DELETE", "/{db}/_index/{ddoc}/{type}/{name}"): Family.DB_ADMIN,
        ("POST", "/{db}/_compact"): Family.DB_MAINTENANCE, ("POST", "/{db}/_compact/{ddoc}"): Family.DB_MAINTENANCE,
        ("POST", "/{db}/_view_cleanup"): Family.DB_MAINTENANCE, ("GET", "/{db}/_security"): Family.DB_READ,
        ("PUT", "/{db}/_security"): Family.SECURITY_WRITE, ("PUT", "/{db}/_revs_limit"): Family.DB_ADMIN,
        ("GET", "/{db}/_revs_limit"): Family.DB_READ, ("POST", "/{db}/_ensure_full_commit"): Family.DB_WRITE,
        ("GET", "/{db}/_local_docs"): Family.DB_LISTING, ("GET", "/{db}/_design_docs"): Family.DB_LISTING,
    }
    for key, family in expected.items():
        assert seen.get(key) == family, key
    # every database route is at least a members' route; nothing under /{db} is open
    for (method, path), family in seen.items():
        if path.startswith("/{db}"):
            assert family not in (Family.OPEN, Family.ALL_DBS), (method, path)


# ---- _users rules (CouchDB's _design/_auth validator) ----

ADMIN = UserCtx("root", ("_admin",))


def _err(new, old, ctx, sec=None) -> str | None:
    exc = users.validate_user_doc(new, old, ctx, sec or {})
    return None if exc is None else exc.reason


def test_user_doc_rules():
    alice = UserCtx("alice", ())
    doc = {"_id": "org.couchdb.user:alice", "name": "alice", "type": "user", "roles": []}
    assert _err(doc, None, ANONYMOUS) is None  # sign-up
    assert _err({**doc, "roles": ["x"]}, None, ANONYMOUS) == "Only _admin may set roles"
    assert _err({**doc, "roles": ["x"]}, doc, alice) == "Only _admin may edit roles"
    assert _err({**doc, "roles": ["x"]}, doc, ADMIN) is None
    assert _err({**doc, "roles": ["x"]}, doc, alice, {"admins": {"names": ["alice"]}}) is None
    assert _err({**doc, "type": "usr"}, None, ADMIN) == "doc.type must be user"
    assert _err({**doc, "name": "bob"}, None, ADMIN) == "Doc ID must be of the form org.couchdb.user:name"
    assert _err({k: v for k, v in doc.items() if k != "roles"}, None, ADMIN) == "doc.roles must exist"
    assert _err({**doc, "roles": "x"}, None, ADMIN) == "doc.roles must be an array"
    assert _err({**doc, "roles": [1]}, None, ADMIN) == "doc.roles can only contain strings"
    assert _err({**doc, "roles": ["_admin"]}, None, ADMIN) == "No system roles (starting with underscore) in users db."
    assert _err({**doc, "roles": ["_metrics"]}, None, ADMIN) is None
    assert _err({**doc, "_id": "org.couchdb.user:_x", "name": "_x"}, None, ADMIN) == "Username may not start with underscore."
    assert _err({**doc, "_id": "org.couchdb.user:a:b", "name": "a:b"}, None, ADMIN) == "Character `:` is not allowed in usernames."
    assert _err({"_id": doc["_id"], "_deleted": True}, doc, alice) is None
    assert _err({"_id": doc["_id"], "_deleted": True}, doc, UserCtx("bob", ())) == "Only admins may delete other user docs."
    assert _err(doc, {**doc, "name": "alicia"}, ADMIN) == "Usernames can not be changed."


def test_only_own_document_is_written_or_read():
    sec = {}
    users.check_writer("org.couchdb.user:alice", UserCtx("alice", ()), sec)
    users.check_writer("org.couchdb.user:bob", ANONYMOUS, sec)  # sign-up
    users.check_writer("org.couchdb.user:bob", ADMIN, sec)
    for docid in ("org.couchdb.user:bob", "_design/x", "other"):
        with pytest.raises(CouchError) as exc:
            users.check_writer(docid, UserCtx("alice", ()), sec)
        assert (exc.value.status, exc.value.reason) == (404, "missing")
    bob = {"_id": "org.couchdb.user:bob", "_rev": "1-a", "name": "bob", "roles": [], "type": "user", "salt": "s"}
    assert users.visible_doc(bob, UserCtx("bob", ()), sec, []) == bob
    with pytest.raises(CouchError) as exc:
        users.visible_doc(bob, UserCtx("alice", ()), sec, [])
    assert exc.value.status == 404
    assert users.visible_doc(bob, UserCtx("alice", ()), sec, ["name", "salt"]) == {
        "_id": "org.couchdb.user:bob", "_rev": "1-a", "name": "bob", "salt": "s"}
    with pytest.raises(CouchError) as exc:
        users.visible_doc({"_id": "_design/_auth"}, UserCtx("alice", ()), sec, [])
    assert (exc.value.status, exc.value.reason) == (403, "Only administrators can view design docs in the users database.")


@given(st.text(min_size=0, max_size=20), st.integers(min_value=1, max_value=50))
@settings(max_examples=30, deadline=None)
def test_hashed_user_docs_verify_their_password(password, iterations):
    doc = users.hash_password({"_id": "org.couchdb.user:a", "password": password}, iterations)
    assert "password" not in doc and password not in (doc["salt"], doc["derived_key"])
    stored = users.stored_hash(doc)
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)


# ---- _replicator documents and their owners ----

def test_replicator_documents_belong_to_their_writer():
    alice, bob = UserCtx("alice", ()), UserCtx("bob", ())
    doc = {"_id": "r1", "source": "http://u:secret@h/a", "target": "b"}
    assert replication_owners.stamp_owner(doc, None, alice, {})["owner"] == "alice"
    assert replication_owners.stamp_owner(doc, None, ADMIN, {})["owner"] == "root"
    with pytest.raises(CouchError) as exc:
        replication_owners.stamp_owner({**doc, "owner": "bob"}, None, alice, {})
    assert (exc.value.status, exc.value.reason) == (403, "Can't update replication documents from other users.")
    with pytest.raises(CouchError):  # nor take over someone else's document by leaving owner out
        replication_owners.stamp_owner(doc, {**doc, "owner": "bob"}, alice, {})
    assert replication_owners.stamp_owner({**doc, "owner": "bob"}, None, ADMIN, {})["owner"] == "bob"
    owned = {**doc, "owner": "alice", "target": {"url": "http://h/b", "headers": {"Authorization": "Basic x"}}}
    assert replication_owners.visible(owned, alice, {}) == owned
    seen = replication_owners.visible(owned, bob, {})
    assert seen["source"] == "http://*****:*****@h/a" and seen["target"] == {"url": "http://h/b"}
    assert "secret" not in json.dumps(seen)
    admins = {"root"}
    assert replication_owners.may_run("root", admins, "a", "b") is None
    assert replication_owners.may_run(None, admins, "a", "b") is None
    assert replication_owners.may_run("alice", admins, "http://h/a", {"url": "https://h/b"}) is None
    assert replication_owners.may_run("alice", admins, "a", "http://h/b") is not None
