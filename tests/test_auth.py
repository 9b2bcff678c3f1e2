"""Authentication through a real couchpy server: no admin party.

Server-level requests need a server admin by HTTP basic auth, except `GET /`, `/_up`, `/_uuids` and
`/_session` (as in CouchDB); a new database is admin-only (`default_security = admin_only`). A missing or wrong password gets 401 `{"error": "unauthorized", ...}`. A plain-text
`[admins]` entry in the config file is replaced by its PBKDF2 hash on start and works at once, and
after a restart.
"""

from __future__ import annotations

import base64
import configparser
import uuid

import aiohttp
import pytest

from couchpy import passwords


async def assert_401(resp):
    assert resp.status == 401, (resp.status, await resp.text())
    body = await resp.json()
    assert body["error"] == "unauthorized"
    assert isinstance(body["reason"], str) and body["reason"]


OPEN_PATHS = {  # what CouchDB 3.4.3 answers there without credentials (the server identity aside)
    "/_up": {"status": "ok", "seeds": {}},
    "/_session": {"ok": True, "userCtx": {"name": None, "roles": []},
                  "info": {"authentication_handlers": ["cookie", "default"]}},
}


@pytest.mark.parametrize("path", ["/", "/_up", "/_session", "/_uuids"])
async def test_open_paths_without_credentials(anon, path):
    resp = await anon.get(path)
    assert resp.status == 200
    body = await resp.json()
    if path == "/":
        assert body["couchdb"] == "Welcome" and body["version"] == "3.4.3", body
    elif path == "/_uuids":
        assert list(body) == ["uuids"] and len(body["uuids"]) == 1 and len(body["uuids"][0]) == 32, body
    else:
        assert body == OPEN_PATHS[path]


async def test_session_without_and_with_credentials(anon, client, server):
    body = await (await anon.get("/_session")).json()
    assert body["ok"] is True
    assert body["userCtx"]["name"] is None
    assert "_admin" not in body["userCtx"]["roles"]
    body = await (await client.get("/_session")).json()
    assert body["userCtx"]["name"] == server.user
    assert "_admin" in body["userCtx"]["roles"]


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/_all_dbs"), ("POST", "/_dbs_info"), ("GET", "/_active_tasks"), ("PUT", "/authdb-{u}"),
     ("DELETE", "/authdb-{u}")],
)
async def test_server_routes_need_a_server_admin(anon, method, path):
    resp = await anon.request(method, path.format(u=uuid.uuid4().hex[:8]), json={"keys": [], "docs": []})
    await assert_401(resp)
    assert await resp.json() == {"error": "unauthorized", "reason": "You are not a server admin."}


@pytest.mark.parametrize(
    "method,path",
    [("GET", ""), ("GET", "/_all_docs"), ("GET", "/_changes"), ("PUT", "/doc"), ("POST", "/_bulk_docs")],
)
async def test_a_new_database_is_admin_only(anon, db, method, path):
    resp = await anon.request(method, f"/{db}{path}", json={"keys": [], "docs": []})
    await assert_401(resp)
    assert await resp.json() == {"error": "unauthorized", "reason": "You are not authorized to access this db."}


async def test_nothing_happens_without_credentials(anon, client):
    name = f"authdb-{uuid.uuid4().hex[:10]}"
    await assert_401(await anon.put(f"/{name}"))
    assert (await client.head(f"/{name}")).status == 404
    assert (await client.put(f"/{name}")).status == 201
    try:
        await assert_401(await anon.put(f"/{name}/doc", json={"a": 1}))
        await assert_401(await anon.delete(f"/{name}"))
        assert (await client.get(f"/{name}/doc")).status == 404
        assert (await client.head(f"/{name}")).status == 200
    finally:
        await client.delete(f"/{name}")


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_wrong_credentials(anon, server):
    for headers in [
        _basic(server.user, server.password + "x"),
        _basic(server.user, ""),
        _basic("nobody", server.password),
        _basic(server.user.upper(), server.password),
        {"Authorization": "Basic " + base64.b64encode(b"no-colon-at-all").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic"},
    ]:
        resp = await anon.get("/_all_dbs", headers=headers)
        await assert_401(resp)


async def test_malformed_headers(anon):
    # as CouchDB: invalid base64 is a bad request; a header that is not basic auth is ignored
    resp = await anon.get("/", headers={"Authorization": "Basic !!!notbase64"})
    assert resp.status == 400
    assert await resp.json() == {"error": "bad_request", "reason": "Authorization header has invalid base64 value"}
    for header in ("Basic: x", "Bearer abc", "basic YWxpY2U6eA==", "Basic " + base64.b64encode(b"alice").decode()):
        resp = await anon.get("/", headers={"Authorization": header})
        assert resp.status == 200, header
        assert (await resp.json())["couchdb"] == "Welcome"
        body = await (await anon.get("/_session", headers={"Authorization": header})).json()
        assert body["userCtx"] == {"name": None, "roles": []}


async def test_wrong_credentials_on_open_path(anon, server):
    # CouchDB checks credentials that are sent, even for `/`
    resp = await anon.get("/_session", headers=_basic(server.user, "wrong"))
    assert resp.status == 401


async def test_right_credentials(anon, server):
    resp = await anon.get("/_all_dbs", headers=_basic(server.user, server.password))
    assert resp.status == 200
    # repeated requests (cached verification) keep working, and a wrong one is still refused after
    for _ in range(3):
        assert (await anon.get("/_all_dbs", headers=_basic(server.user, server.password))).status == 200
    await assert_401(await anon.get("/_all_dbs", headers=_basic(server.user, server.password[:-1])))


async def test_plain_text_admin_hashed_on_start(new_server):
    srv = new_server(config={"admins": {"bob": "build:er=it"}, "chttpd_auth": {"iterations": "1000"}})
    ini = configparser.ConfigParser(interpolation=None)
    ini.optionxform = str
    ini.read(srv.data_dir / "couchpy.ini")
    stored = ini["admins"]["bob"]
    assert stored != "build:er=it"
    assert "build:er=it" not in (srv.data_dir / "couchpy.ini").read_text()
    assert passwords.is_hashed(stored) and stored.startswith("-pbkdf2:sha256-")
    assert passwords.verify_password("build:er=it", stored)
    # the test harness' own plain-text admin is hashed as well
    assert passwords.is_hashed(ini["admins"][srv.user])

    async with aiohttp.ClientSession(base_url=srv.base) as anon:
        resp = await anon.get("/_all_dbs", headers=_basic("bob", "build:er=it"))
        assert resp.status == 200  # works at once (a password may contain ':')
        await assert_401(await anon.get("/_all_dbs", headers=_basic("bob", "build")))
        body = await (await anon.get("/_session", headers=_basic("bob", "build:er=it"))).json()
        assert body["userCtx"]["name"] == "bob"

    # after a restart the stored hash is used as is and still works
    srv.stop()
    srv.start()
    ini2 = configparser.ConfigParser(interpolation=None)
    ini2.optionxform = str
    ini2.read(srv.data_dir / "couchpy.ini")
    assert ini2["admins"]["bob"] == stored
    async with aiohttp.ClientSession(base_url=srv.base) as anon:
        assert (await anon.get("/_all_dbs", headers=_basic("bob", "build:er=it"))).status == 200
        await assert_401(await anon.get("/_all_dbs"))
