"""Cookie authentication: POST/GET/DELETE /_session, as CouchDB's cookie handler."""

from __future__ import annotations

import aiohttp

from couchpy import sessions


async def test_cookie_login_grants_admin_access(server):
    jar = aiohttp.CookieJar(unsafe=True)  # the server is an IP address
    async with aiohttp.ClientSession(base_url=server.base, cookie_jar=jar) as s:
        async with s.get("/_all_dbs") as r:
            assert r.status == 401
        async with s.post("/_session", json={"name": server.user, "password": server.password}) as r:
            assert r.status == 200
            assert await r.json() == {"ok": True, "name": server.user, "roles": ["_admin"]}
            assert "AuthSession" in r.cookies and r.cookies["AuthSession"]["httponly"]
        async with s.get("/_all_dbs") as r:
            assert r.status == 200
        async with s.get("/_session") as r:
            body = await r.json()
            assert body["userCtx"] == {"name": server.user, "roles": ["_admin"]}
            assert body["info"]["authenticated"] == "cookie"
        async with s.delete("/_session") as r:
            assert r.status == 200
        async with s.get("/_all_dbs") as r:
            assert r.status == 401


async def test_form_login_and_wrong_password(server):
    async with aiohttp.ClientSession(base_url=server.base) as s:
        async with s.post("/_session", data={"name": server.user, "password": server.password}) as r:
            assert r.status == 200
        async with s.post("/_session", json={"name": server.user, "password": "wrong"}) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unauthorized"
        async with s.post("/_session", json={"name": 1}) as r:
            assert r.status == 400
        async with s.get("/_all_dbs", cookies={"AuthSession": "forged-token"}) as r:
            assert r.status == 401


def test_tokens_expire_and_depend_on_the_password_hash():
    token = sessions.make_token("secret", "hash1", "alice", expires_at=1000)
    assert sessions.token_name(token) == "alice"
    assert sessions.check_token("secret", "hash1", token, now=999) == 1000
    assert sessions.check_token("secret", "hash1", token, now=1000) is None  # expired
    assert sessions.check_token("secret", "hash2", token, now=0) is None  # password changed
    assert sessions.check_token("other", "hash1", token, now=0) is None
    assert sessions.check_token("secret", "hash1", token + "x", now=0) is None
    name_with_colon = sessions.make_token("s", "h", "a:b", expires_at=10)
    assert sessions.token_name(name_with_colon) == "a:b"
    assert sessions.check_token("s", "h", name_with_colon, now=1) == 10
