"""The `_users` database over HTTP: passwords hashed on every write path, users logging in by basic
auth and cookie, and the rules on who reads and writes which user document, answered exactly as
the real CouchDB 3.4.3 answers them (each case is asked of both servers)."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from pathlib import Path

import aiohttp
import pytest

from couchpy import passwords


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def uname(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def user_doc(name: str, password: str | None = "pw", roles: list | None = None) -> dict:
    doc = {"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": roles or []}
    if password is not None:
        doc["password"] = password
    return doc


async def call(session: aiohttp.ClientSession, method: str, path: str, **kw) -> tuple[int, object]:
    async with session.request(method, path, **kw) as r:
        return r.status, await r.json(content_type=None)


async def test_password_is_stored_as_couchdb_stores_it(client, couch_client):
    name, secret = uname(), "s3cret-" + uuid.uuid4().hex
    docs = {}
    for s in (client, couch_client):
        status, body = await call(s, "PUT", f"/_users/org.couchdb.user:{name}", json=user_doc(name, secret))
        assert status == 201, body
        status, docs[s] = await call(s, "GET", f"/_users/org.couchdb.user:{name}")
        assert status == 200
    mine, theirs = docs[client], docs[couch_client]
    assert "password" not in mine and secret not in str(mine)
    assert set(mine) == set(theirs)
    for key in ("password_scheme", "pbkdf2_prf", "name", "roles", "type"):
        assert mine[key] == theirs[key]
    assert isinstance(mine["iterations"], int) and re.fullmatch(r"[0-9a-f]{64}", mine["derived_key"])
    # what couchpy stored verifies the password, as CouchDB's does
    stored = f"-pbkdf2:sha256-{mine['derived_key']},{mine['salt']},{mine['iterations']}"
    assert passwords.verify_password(secret, stored) and not passwords.verify_password("x", stored)


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_plain_text_is_never_stored_by_any_write_path(new_server, couchdb):
    srv = new_server()
    secrets = [f"plain-{i}-" + uuid.uuid4().hex for i in range(6)]
    names = [uname() for _ in secrets]
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as s:
        # PUT, then an update carrying a new password (the first revision stays in the tree)
        st, res = await call(s, "PUT", f"/_users/org.couchdb.user:{names[0]}", json=user_doc(names[0], secrets[0]))
        assert st == 201, res
        st, res = await call(s, "PUT", f"/_users/org.couchdb.user:{names[0]}",
                             json={**user_doc(names[0], secrets[1]), "_rev": res["rev"]})
        assert st == 201, res
        # POST /_users, _bulk_docs, and new_edits=false (as replicators write)
        st, res = await call(s, "POST", "/_users", json=user_doc(names[2], secrets[2]))
        assert st == 201, res
        st, res = await call(s, "POST", "/_users/_bulk_docs", json={"docs": [user_doc(names[3], secrets[3])]})
        assert st == 201 and "ok" in res[0], res
        replicated = {**user_doc(names[4], secrets[4]), "_rev": "3-" + "a" * 32,
                      "_revisions": {"start": 3, "ids": ["a" * 32, "b" * 32, "c" * 32]}}
        st, res = await call(s, "POST", "/_users/_bulk_docs", json={"docs": [replicated], "new_edits": False})
        assert st == 201, res
        # a replication from a CouchDB database holding a user document with a plain password
        async with aiohttp.ClientSession(base_url=couchdb.base, auth=couchdb.auth) as peer:
            src = "plainsrc-" + uuid.uuid4().hex[:8]
            assert (await call(peer, "PUT", f"/{src}"))[0] == 201
            assert (await call(peer, "PUT", f"/{src}/org.couchdb.user:{names[5]}", json=user_doc(names[5], secrets[5])))[0] == 201
            st, res = await call(s, "POST", "/_replicate", json={"source": f"{couchdb.url}/{src}", "target": "_users"})
            assert st == 200, res
            await call(peer, "DELETE", f"/{src}")
        for name, secret in zip(names, secrets):
            if name == names[1]:
                continue
            st, doc = await call(s, "GET", f"/_users/org.couchdb.user:{name}")
            assert st == 200 and doc["password_scheme"] == "pbkdf2" and "password" not in doc, doc
    async with aiohttp.ClientSession(base_url=srv.base) as anon:
        # the user can log in with the last password only
        assert (await call(anon, "GET", "/_session", headers=basic(names[0], secrets[1])))[0] == 200
        st, body = await call(anon, "GET", "/_session", headers=basic(names[0], secrets[0]))
        assert st == 401 and body == {"error": "unauthorized", "reason": "Name or password is incorrect."}
    srv.stop()  # everything flushed and closed: nothing on disk may hold a password
    for secret in secrets:
        assert _files_containing(srv.data_dir, secret.encode()) == [], secret


async def test_user_logs_in_by_basic_and_cookie(server, client):
    name, pw = uname(), "pw-" + uuid.uuid4().hex
    st, res = await call(client, "PUT", f"/_users/org.couchdb.user:{name}", json=user_doc(name, pw, ["r1", "r2"]))
    assert st == 201, res
    async with aiohttp.ClientSession(base_url=server.base) as anon:
        st, body = await call(anon, "GET", "/_session", headers=basic(name, pw))
        assert st == 200
        assert body["userCtx"] == {"name": name, "roles": ["r1", "r2"]}
        assert body["info"]["authenticated"] == "default"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=server.base, cookie_jar=jar) as s:
        st, body = await call(s, "POST", "/_session", json={"name": name, "password": pw})
        assert (st, body) == (200, {"ok": True, "name": name, "roles": ["r1", "r2"]})
        st, body = await call(s, "GET", "/_session")
        assert body["userCtx"] == {"name": name, "roles": ["r1", "r2"]}
        assert body["info"]["authenticated"] == "cookie"
        # the admin changes the password: the old cookie and the old password stop working at once
        st, doc = await call(client, "GET", f"/_users/org.couchdb.user:{name}")
        new_pw = "new-" + uuid.uuid4().hex
        st, res = await call(client, "PUT", f"/_users/org.couchdb.user:{name}",
                             json={**user_doc(name, new_pw, ["r1", "r2"]), "_rev": doc["_rev"]})
        assert st == 201, res
        st, body = await call(s, "GET", "/_session")
        assert body["userCtx"] == {"name": None, "roles": []}
        assert (await call(s, "GET", "/_session", headers=basic(name, pw)))[0] == 401
        assert (await call(s, "GET", "/_session", headers=basic(name, new_pw)))[0] == 200
        # form login with `next` redirects, and logging out forgets the cookie
        async with s.post("/_session?next=/_up", data={"name": name, "password": new_pw},
                          allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/_up"
        assert (await call(s, "GET", "/_session"))[1]["userCtx"]["name"] == name
        assert (await call(s, "DELETE", "/_session"))[0] == 200
        assert (await call(s, "GET", "/_session"))[1]["userCtx"]["name"] is None
    # a deleted user can no longer log in
    st, doc = await call(client, "GET", f"/_users/org.couchdb.user:{name}")
    assert (await call(client, "DELETE", f"/_users/org.couchdb.user:{name}?rev={doc['_rev']}"))[0] == 200
    async with aiohttp.ClientSession(base_url=server.base) as anon:
        assert (await call(anon, "GET", "/_session", headers=basic(name, new_pw)))[0] == 401


async def test_expired_cookie_is_refused_and_a_used_one_is_renewed(new_server):
    srv = new_server(config={"chttpd_auth": {"timeout": "4"}})
    name, pw = uname(), "pw"
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as admin:
        assert (await call(admin, "PUT", f"/_users/org.couchdb.user:{name}", json=user_doc(name, pw)))[0] == 201
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=srv.base, cookie_jar=jar) as s:
        async with s.post("/_session", json={"name": name, "password": pw}) as r:
            first = r.cookies["AuthSession"].value
        await asyncio.sleep(2.5)  # past half the timeout: the next use renews the cookie
        async with s.get("/_session") as r:
            assert (await r.json())["userCtx"]["name"] == name
            renewed = r.cookies["AuthSession"].value
        assert renewed != first
    await asyncio.sleep(4.5)
    async with aiohttp.ClientSession(base_url=srv.base) as s:
        async with s.get("/_session", cookies={"AuthSession": first}) as r:
            assert (await r.json())["userCtx"]["name"] is None


async def _set_users_open(session: aiohttp.ClientSession, editable: bool) -> None:
    value = "true" if editable else "false"
    st, body = await call(session, "PUT", "/_node/_local/_config/couchdb/users_db_security_editable", json=value)
    assert st == 200, body


async def test_users_db_rules_as_couchdb(server, client, couch_client):
    """Sign-up, own-document reads and updates, roles, other users' documents: the same answers
    from both servers once `_users` is opened to everyone (users_db_security_editable)."""
    tag = uuid.uuid4().hex[:6]
    alice, bob, carol = f"alice{tag}", f"bob{tag}", f"carol{tag}"
    sides = {"couchpy": (client, server.base), "couchdb": (couch_client, couch_client._base_url)}
    results: dict[str, list] = {}
    # locked by default: even a server admin cannot open _users
    for tagname, (admin, _) in sides.items():
        st, body = await call(admin, "PUT", "/_users/_security", json={"members": {}, "admins": {}})
        results.setdefault(tagname, []).append(("lock", st, body))
    try:
        for tagname, (admin, base) in sides.items():
            await _set_users_open(admin, True)
            assert (await call(admin, "PUT", "/_users/_security", json={"members": {}, "admins": {}}))[0] == 200
            out = results[tagname]
            async with aiohttp.ClientSession(base_url=str(base)) as anon:
                def as_(who):
                    return basic(who, "pw") if who else None

                async def req(who, method, path, **kw):
                    st, body = await call(anon, method, path, headers=as_(who), **kw)
                    if isinstance(body, dict):
                        body = {k: v for k, v in body.items() if k not in ("rev", "_rev", "salt", "derived_key",
                                                                              "iterations")}
                    out.append((who, method, path.split("?")[0], st, body))
                    return st, body

                await req(None, "PUT", f"/_users/org.couchdb.user:{alice}", json=user_doc(alice))
                await req(None, "PUT", f"/_users/org.couchdb.user:{bob}", json=user_doc(bob, roles=["x"]))
                await req(None, "PUT", f"/_users/org.couchdb.user:{bob}", json=user_doc(bob))
                st, own = await call(anon, "GET", f"/_users/org.couchdb.user:{alice}", headers=as_(alice))
                await req(alice, "GET", f"/_users/org.couchdb.user:{alice}")
                await req(alice, "GET", f"/_users/org.couchdb.user:{bob}")
                await req(None, "GET", f"/_users/org.couchdb.user:{bob}")
                await req(alice, "PUT", f"/_users/org.couchdb.user:{alice}",
                          json={**user_doc(alice, roles=["r1"]), "_rev": own["_rev"]})
                await req(alice, "PUT", f"/_users/org.couchdb.user:{carol}", json=user_doc(carol))
                await req(alice, "PUT", f"/_users/org.couchdb.user:{bob}", json=user_doc(bob))
                await req(alice, "POST", "/_users/_bulk_docs", json={"docs": [user_doc(carol)]})
                await req(alice, "GET", "/_users/_all_docs")
                await req(alice, "GET", "/_users/_changes")
                await req(alice, "PUT", "/_users/_design/x", json={})
                await req(alice, "GET", f"/_users/org.couchdb.user:{alice}/att")
                await req(None, "PUT", f"/_users/org.couchdb.user:_{tag}", json=user_doc(f"_{tag}"))
                await req(None, "PUT", f"/_users/org.couchdb.user:{tag}", json={**user_doc(tag), "type": "x"})
                await req(None, "PUT", f"/_users/org.couchdb.user:{tag}", json=user_doc(tag, password=5))
                # a user changes their own password, then logs in with it
                st, own = await call(anon, "GET", f"/_users/org.couchdb.user:{alice}", headers=as_(alice))
                await req(alice, "PUT", f"/_users/org.couchdb.user:{alice}",
                          json={**user_doc(alice, password="pw2"), "_rev": own["_rev"]})
                for _ in range(50):  # CouchDB's credentials cache catches up with the change feed
                    st, body = await call(anon, "GET", "/_session", headers=basic(alice, "pw2"))
                    if st == 200:
                        break
                    await asyncio.sleep(0.1)
                out.append(("login-new", st, body))
                st, body = await call(anon, "GET", "/_session", headers=basic(alice, "pw"))
                out.append(("login-old", st, body))
                st, own = await call(anon, "GET", f"/_users/org.couchdb.user:{alice}", headers=basic(alice, "pw2"))
                await req(None, "DELETE", f"/_users/org.couchdb.user:{alice}?rev={own['_rev']}")
    finally:
        for admin, _ in sides.values():
            await call(admin, "PUT", "/_users/_security",
                       json={"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}})
            await _set_users_open(admin, False)
            for name in (alice, bob, carol):
                st, doc = await call(admin, "GET", f"/_users/org.couchdb.user:{name}")
                if st == 200:
                    await call(admin, "DELETE", f"/_users/org.couchdb.user:{name}?rev={doc['_rev']}")
    assert len(results["couchpy"]) == len(results["couchdb"])
    for mine, theirs in zip(results["couchpy"], results["couchdb"]):
        assert mine == theirs
