"""The security matrix: one request per route family, asked by every kind of principal through
every authentication method, each answer's exact status (and refusal body) checked against a
table written out by hand here (not derived from couchpy.security), and no secret ever echoed
in a body or a header.

Principals: anonymous, wrong credentials, locked out, plain user, member by name, member by role,
db admin, server admin. Methods: basic, cookie, JWT, proxy. Lockout concerns password checks
only, so it is asked through basic and cookie logins; a wrong JWT is refused outright (400), a
wrong cookie or proxy token counts as no credentials (as CouchDB does).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid

import aiohttp
import jwt
import pytest

from tests.serverproc import CouchpyServer

JWT_KEY = b"matrix-jwt-secret-that-is-long-enough!!"
PROXY_SECRET = "matrix-proxy-secret-0123456789"
HANDLERS = ("{chttpd_auth, jwt_authentication_handler}, {chttpd_auth, proxy_authentication_handler}, "
            "{chttpd_auth, cookie_authentication_handler}, {chttpd_auth, default_authentication_handler}")
TAG = uuid.uuid4().hex[:6]
USERS = {  # principal -> (user name, roles, password)
    "plain": (f"plain{TAG}", [], "pw-plain-" + TAG),
    "member": (f"member{TAG}", [], "pw-member-" + TAG),
    "role": (f"roler{TAG}", ["mrole"], "pw-role-" + TAG),
    "dbadmin": (f"dbadmin{TAG}", [], "pw-dbadmin-" + TAG),
    "locked": (f"locked{TAG}", [], "pw-locked-" + TAG),
}
DB = f"matrix-{TAG}"
SECURITY = {"members": {"names": [USERS["member"][0], USERS["locked"][0]], "roles": ["mrole"]},
            "admins": {"names": [USERS["dbadmin"][0]], "roles": []}}

NOT_SERVER_ADMIN = (401, {"error": "unauthorized", "reason": "You are not a server admin."})
ANON_DB = (401, {"error": "unauthorized", "reason": "You are not authorized to access this db."})
OUTSIDER_DB = (403, {"error": "forbidden", "reason": "You are not allowed to access this db."})
NOT_DB_ADMIN = (403, {"error": "forbidden", "reason": "You are not a db or server admin."})
NOT_DB_ADMIN_MAINT = (401, {"error": "unauthorized", "reason": "You are not a server or db admin."})
WRONG_PASSWORD = (401, {"error": "unauthorized", "reason": "Name or password is incorrect."})
LOCKED = (403, {"error": "forbidden", "reason": "Account is temporarily locked due to multiple authentication failures"})
BAD_JWT = (400, {"error": "bad_request", "reason": "Bad HMAC"})

# (label, method, path, body, status when allowed, kind)
ROUTES = [
    ("uuids", "GET", "/_uuids", None, 200, "open"),
    ("all_dbs", "GET", "/_all_dbs", None, 200, "server"),
    ("active_tasks", "GET", "/_active_tasks", None, 200, "server"),
    ("create_db", "PUT", f"/{DB}-new", None, 412, "server"),  # the allowed answer: it exists (created below)
    ("db_info", "GET", f"/{DB}", None, 200, "member"),
    ("read_doc", "GET", f"/{DB}/doc1", None, 200, "member"),
    ("write_doc", "PUT", f"/{DB}/w-{{u}}", {"x": 1}, 201, "member"),
    ("bulk_docs", "POST", f"/{DB}/_bulk_docs", {"docs": [{"_id": "b-{u}"}]}, 201, "member"),
    ("all_docs", "GET", f"/{DB}/_all_docs", None, 200, "member"),
    ("changes", "GET", f"/{DB}/_changes", None, 200, "member"),
    ("find", "POST", f"/{DB}/_find", {"selector": {}}, 200, "member"),
    ("view", "GET", f"/{DB}/_design/d/_view/v", None, 200, "member"),
    ("attachment", "GET", f"/{DB}/doc1/a.txt", None, 200, "member"),
    ("local", "PUT", f"/{DB}/_local/l-{{u}}", {"x": 1}, 201, "member"),
    ("revs_diff", "POST", f"/{DB}/_revs_diff", {"doc1": ["1-a"]}, 200, "member"),
    ("get_security", "GET", f"/{DB}/_security", None, 200, "member"),
    ("put_security", "PUT", f"/{DB}/_security", SECURITY, 200, "db_admin"),
    ("revs_limit", "PUT", f"/{DB}/_revs_limit", 1000, 200, "db_admin"),
    ("design_write", "PUT", f"/{DB}/_design/x-{{u}}", {"views": {}}, 201, "design"),
    ("compact", "POST", f"/{DB}/_compact", {}, 202, "maintenance"),
]


def expected(kind: str, who: str, allowed: int) -> tuple[int, dict | None]:
    """The answer a principal class gets on a route kind (None: the allowed answer's body)."""
    ok = (allowed, None)
    if kind == "open" or who == "admin":
        return ok
    if kind == "server":
        return NOT_SERVER_ADMIN
    if who == "anon":
        return ANON_DB
    if who == "plain":
        return OUTSIDER_DB
    if kind == "member" or who == "dbadmin":
        return ok
    # members by name or role on admin routes
    return {"db_admin": NOT_DB_ADMIN, "design": NOT_DB_ADMIN, "maintenance": NOT_DB_ADMIN_MAINT}[kind]


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory):
    srv = CouchpyServer(tmp_path_factory.mktemp("matrix"), config={
        "chttpd": {"authentication_handlers": HANDLERS},
        "jwt_keys": {"hmac:_default": base64.b64encode(JWT_KEY).decode()},
        "jwt_auth": {"required_claims": "exp"},
        "chttpd_auth": {"proxy_use_secret": "true", "secret": PROXY_SECRET},
        "chttpd_auth_lockout": {"threshold": "3"},
    })
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def world(matrix_server):
    """Users, the database and its security object, the locked-out user; cookies per user."""
    return asyncio.run(_setup(matrix_server))


async def _setup(srv) -> dict:
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as admin:
        for name, roles, pw in USERS.values():
            async with admin.put(f"/_users/org.couchdb.user:{name}",
                                 json={"name": name, "roles": roles, "password": pw, "type": "user"}) as r:
                assert r.status == 201
        for path, body in [(f"/{DB}", None), (f"/{DB}-new", None), (f"/{DB}/doc1", {"x": 0}),
                           (f"/{DB}/_design/d", {"views": {"v": {"map": "function(d){emit(d._id,1)}"}}}),
                           (f"/{DB}/_security", SECURITY)]:
            async with admin.put(path, json=body) as r:
                assert r.status in (200, 201), await r.text()
        async with admin.get(f"/{DB}/doc1") as r:
            rev = (await r.json())["_rev"]
        async with admin.put(f"/{DB}/doc1/a.txt?rev={rev}", data=b"hi", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 201
    cookies = {}
    async with aiohttp.ClientSession(base_url=srv.base) as anon:
        for who, (name, _, pw) in [*USERS.items(), ("admin", (srv.user, [], srv.password))]:
            if who == "locked":
                continue
            async with anon.post("/_session", json={"name": name, "password": pw}) as r:
                assert r.status == 200
                cookies[who] = r.cookies["AuthSession"].value
        locked = USERS["locked"]
        for _ in range(3):
            async with anon.get("/_session", auth=aiohttp.BasicAuth(locked[0], "wrong")) as r:
                assert r.status == 401
    return cookies


def _jwt(name: str, roles: list[str], key: bytes = JWT_KEY) -> str:
    return jwt.encode({"sub": name, "exp": int(time.time()) + 600, "_couchdb.roles": roles}, key, "HS256")


def _proxy(name: str, roles: list[str], secret: str = PROXY_SECRET) -> dict:
    return {"X-Auth-CouchDB-UserName": name, "X-Auth-CouchDB-Roles": ",".join(roles),
            "X-Auth-CouchDB-Token": hmac.new(secret.encode(), name.encode(), hashlib.sha256).hexdigest()}


PRINCIPALS = ["anon", "wrong", "locked", "plain", "member", "role", "dbadmin", "admin"]
METHODS = ["basic", "cookie", "jwt", "proxy"]
CASES = [(m, p) for m in METHODS for p in PRINCIPALS if not (p == "locked" and m in ("jwt", "proxy"))]


def credentials(srv, cookies: dict, method: str, who: str) -> tuple[dict, str, list[str]]:
    """(headers, the class the server should see, secrets that must never come back)."""
    if who == "anon":
        return {}, "anon", []
    if who == "admin":
        name, roles, pw = srv.user, ["_admin"], srv.password
    elif who in ("wrong", "locked"):
        name, roles, pw = USERS["member"] if who == "wrong" else USERS["locked"]
    else:
        name, roles, pw = USERS[who]
    if method == "basic":
        if who == "wrong":
            # a new name each time: repeated failures for one name would lock it out (tested apart)
            name, password = f"ghost-{uuid.uuid4().hex[:8]}", "wrong-" + uuid.uuid4().hex
        else:
            password = pw
        token = base64.b64encode(f"{name}:{password}".encode()).decode()
        return {"Authorization": "Basic " + token}, who, [password, token]
    if method == "cookie":
        if who == "wrong":  # a forged cookie counts as none
            forged = base64.urlsafe_b64encode(f"{name}:FFFFFFFF:{'0' * 64}".encode()).decode().rstrip("=")
            return {"Cookie": f"AuthSession={forged}"}, "anon", [pw]
        if who == "locked":  # its login is refused (below), so it has no cookie
            return {}, "anon", [pw]
        return {"Cookie": f"AuthSession={cookies[who]}"}, who, [pw, cookies[who]]
    if method == "jwt":
        token = _jwt(name, roles, key=b"not-the-key-but-long-enough-anyway!!" if who == "wrong" else JWT_KEY)
        return {"Authorization": "Bearer " + token}, who, [token]
    headers = _proxy(name, roles, secret="not-the-secret" if who == "wrong" else PROXY_SECRET)
    return headers, ("anon" if who == "wrong" else who), [headers["X-Auth-CouchDB-Token"], PROXY_SECRET]


@pytest.mark.parametrize("method,who", CASES)
async def test_matrix(matrix_server, world, method, who):
    srv, cookies = matrix_server, world
    always = [u[2] for u in USERS.values()] + [srv.password, PROXY_SECRET]
    async with aiohttp.ClientSession(base_url=srv.base) as s:
        if who == "locked" and method == "cookie":
            name, _, pw = USERS["locked"]
            async with s.post("/_session", json={"name": name, "password": pw}) as r:
                assert (r.status, await r.json()) == LOCKED
                assert "AuthSession" not in r.cookies
        for label, verb, path, body, allowed, kind in ROUTES:
            headers, seen_as, secrets = credentials(srv, cookies, method, who)
            secrets += always
            u = uuid.uuid4().hex[:8]
            path = path.replace("{u}", u)
            if isinstance(body, dict) and "docs" in body:
                body = {"docs": [{"_id": d["_id"].replace("{u}", u)} for d in body["docs"]]}
            kw = {"json": body} if body is not None else {}
            async with s.request(verb, path, headers=headers, **kw) as r:
                raw = await r.read()
                status = r.status
                text = raw.decode(errors="replace") + "\n".join(f"{k}: {v}" for k, v in r.headers.items()
                                                               if k.lower() != "set-cookie")
            if who == "wrong" and method == "basic":
                want = WRONG_PASSWORD
            elif who == "locked" and method == "basic":
                want = LOCKED
            elif who == "wrong" and method == "jwt":
                want = BAD_JWT
            else:
                want = expected(kind, seen_as, allowed)
            assert status == want[0], (label, method, who, status, raw[:300])
            if want[1] is not None:
                assert r.content_type == "application/json"
                assert json.loads(raw) == want[1], (label, method, who)
            for secret in secrets:
                assert secret not in text, (label, method, who, "leaks a credential")
            for marker in ("derived_key", "password_scheme"):
                assert marker not in text, (label, method, who)
