"""JWT bearer tokens (HMAC, RSA, EC keys), proxy authentication and the failed-login lockout.

The expected answers are the real CouchDB 3.4.3's, asked with the same configuration
(`[chttpd] authentication_handlers` with the jwt and proxy handlers, `[jwt_keys] hmac:_default`,
`[jwt_auth] required_claims = exp`, `[chttpd_auth] proxy_use_secret = true`) and written down here,
since those handlers only load when CouchDB starts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from couchpy.lockout import Lockout
from tests.serverproc import CouchpyServer

HMAC_KEY = b"a-shared-secret-long-enough-for-hs256!"
PROXY_SECRET = "proxy-secret-" + "0" * 20


def _pem(public_key) -> str:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode().replace("\n", "\\n")


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
HANDLERS = ("{chttpd_auth, jwt_authentication_handler}, {chttpd_auth, proxy_authentication_handler}, "
            "{chttpd_auth, cookie_authentication_handler}, {chttpd_auth, default_authentication_handler}")


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory):
    srv = CouchpyServer(tmp_path_factory.mktemp("jwt"), config={
        "chttpd": {"authentication_handlers": HANDLERS},
        "jwt_keys": {"hmac:_default": base64.b64encode(HMAC_KEY).decode(), "rsa:rk": _pem(RSA_KEY.public_key()),
                     "ec:ek": _pem(EC_KEY.public_key())},
        "jwt_auth": {"required_claims": "exp"},
        "chttpd_auth": {"proxy_use_secret": "true", "secret": PROXY_SECRET},
        "chttpd_auth_lockout": {"threshold": "3"},
    })
    srv.start()
    yield srv
    srv.stop()


async def session_as(srv, headers: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession(base_url=srv.base) as s:
        async with s.get("/_session", headers=headers) as r:
            return r.status, await r.json()


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


def claims(**extra) -> dict:
    return {"sub": "jane", "exp": int(time.time()) + 300, **extra}


async def test_jwt_hmac_rsa_ec(jwt_server):
    tokens = [
        jwt.encode(claims(**{"_couchdb.roles": ["r1"]}), HMAC_KEY, "HS256"),
        jwt.encode(claims(**{"_couchdb.roles": ["r1"]}), RSA_KEY, "RS256", headers={"kid": "rk"}),
        jwt.encode(claims(**{"_couchdb.roles": ["r1"]}), EC_KEY, "ES256", headers={"kid": "ek"}),
    ]
    for token in tokens:
        st, body = await session_as(jwt_server, bearer(token))
        assert st == 200, body
        assert body["userCtx"] == {"name": "jane", "roles": ["r1"]}
        assert body["info"] == {"authentication_handlers": ["jwt", "proxy", "cookie", "default"],
                                "authenticated": "jwt"}


@pytest.mark.parametrize("token,status,body", [
    (lambda: jwt.encode({"sub": "jane"}, HMAC_KEY, "HS256"), 400, {"error": "bad_request", "reason": "Missing exp claim"}),
    (lambda: jwt.encode(claims(exp=int(time.time()) - 300), HMAC_KEY, "HS256"), 401,
     {"error": "unauthorized", "reason": "exp not in future"}),
    (lambda: jwt.encode(claims(), b"another-secret-also-long-enough-here!", "HS256"), 400,
     {"error": "bad_request", "reason": "Bad HMAC"}),
    (lambda: "garbage", 400, {"error": "bad_request", "reason": "Malformed token"}),
    (lambda: jwt.encode({"exp": int(time.time()) + 300}, HMAC_KEY, "HS256"), 401,
     {"error": "unauthorized", "reason": "Token missing sub claim."}),
    (lambda: jwt.encode(claims(), HMAC_KEY, "HS256", headers={"kid": "nokey"}), 400,
     {"error": "bad_request", "reason": "Unknown kid"}),
    (lambda: jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "ek"}), 400,
     {"error": "bad_request", "reason": "Unknown kid"}),
])
async def test_jwt_refusals_as_couchdb(jwt_server, token, status, body):
    assert await session_as(jwt_server, bearer(token())) == (status, body)


async def test_jwt_roles_and_rights(jwt_server):
    # a token naming _admin is a server admin (whoever holds the key decides), a string role is one role
    admin = jwt.encode(claims(**{"_couchdb.roles": ["_admin"]}), HMAC_KEY, "HS256")
    async with aiohttp.ClientSession(base_url=jwt_server.base, headers=bearer(admin)) as s:
        async with s.get("/_all_dbs") as r:
            assert r.status == 200
    st, body = await session_as(jwt_server, bearer(jwt.encode(claims(**{"_couchdb.roles": "solo"}), HMAC_KEY, "HS256")))
    assert body["userCtx"] == {"name": "jane", "roles": ["solo"]}
    plain = jwt.encode(claims(), HMAC_KEY, "HS256")
    async with aiohttp.ClientSession(base_url=jwt_server.base, headers=bearer(plain)) as s:
        async with s.get("/_all_dbs") as r:
            assert (r.status, await r.json()) == (401, {"error": "unauthorized", "reason": "You are not a server admin."})


def proxy_headers(name: str, roles: str, secret: str = PROXY_SECRET, algo=hashlib.sha256) -> dict:
    token = hmac.new(secret.encode(), name.encode(), algo).hexdigest()
    return {"X-Auth-CouchDB-UserName": name, "X-Auth-CouchDB-Roles": roles, "X-Auth-CouchDB-Token": token}


async def test_proxy_authentication(jwt_server):
    for algo in (hashlib.sha256, hashlib.sha1):
        st, body = await session_as(jwt_server, proxy_headers("pete", "a, b ,c", algo=algo))
        assert body["userCtx"] == {"name": "pete", "roles": ["a", "b", "c"]}
        assert body["info"]["authenticated"] == "proxy"
    # a wrong or missing token is ignored: the request is anonymous
    for headers in (proxy_headers("pete", "a", secret="wrong"),
                    {"X-Auth-CouchDB-UserName": "pete", "X-Auth-CouchDB-Roles": "_admin"}):
        st, body = await session_as(jwt_server, headers)
        assert (st, body["userCtx"]) == (200, {"name": None, "roles": []})
    async with aiohttp.ClientSession(base_url=jwt_server.base, headers=proxy_headers("pete", "_admin")) as s:
        async with s.get("/_all_dbs") as r:
            assert r.status == 200


async def test_lockout_after_repeated_failures(jwt_server):
    name = f"lock{int(time.time() * 1000)}"
    async with aiohttp.ClientSession(base_url=jwt_server.base, auth=jwt_server.auth) as admin:
        async with admin.put(f"/_users/org.couchdb.user:{name}",
                             json={"name": name, "password": "pw", "roles": [], "type": "user"}) as r:
            assert r.status == 201
    wrong = aiohttp.BasicAuth(name, "bad")
    async with aiohttp.ClientSession(base_url=jwt_server.base) as s:
        for _ in range(3):
            async with s.get("/_session", auth=wrong) as r:
                assert (r.status, await r.json()) == (401, {"error": "unauthorized", "reason": "Name or password is incorrect."})
        locked = (403, {"error": "forbidden", "reason": "Account is temporarily locked due to multiple authentication failures"})
        for auth in (wrong, aiohttp.BasicAuth(name, "pw")):
            async with s.get("/_session", auth=auth) as r:
                assert (r.status, await r.json()) == locked
        async with s.post("/_session", json={"name": name, "password": "pw"}) as r:
            assert (r.status, await r.json()) == locked
        # the server admin, from the same address, is not affected
        async with s.get("/_session", auth=jwt_server.auth) as r:
            assert r.status == 200


def test_lockout_table():
    lo = Lockout(threshold=2, max_lifetime_s=10, max_objects=3)
    lo.failed("a", "ip", now=0)
    assert not lo.is_locked("a", "ip", now=1)
    lo.failed("a", "ip", now=1)
    assert lo.is_locked("a", "ip", now=2) and not lo.is_locked("a", "other", now=2)
    assert not lo.is_locked("a", "ip", now=10)  # aged out
    for i in range(5):
        lo.failed(f"u{i}", "ip", now=0)
    assert len(lo._failures) == 3  # bounded


async def test_concurrent_checks_of_one_password_hash_it_once(tmp_path, monkeypatch):
    """A client opening many connections at once, each with the same Basic header (a benchmark,
    an app's sync starting; a server worker that has not seen the header yet), costs one PBKDF2
    run, not one a connection: each further check finds the first one's result once it has its
    turn. At 600,000 iterations the herd made a second worker answer its first 2,000 requests
    at 230 requests/s instead of 1,250."""
    from couchpy import credentials, passwords
    from couchpy.node import Node

    runs = []

    def counted(password, stored):
        runs.append(password)
        return passwords.verify_password(password, stored)

    monkeypatch.setattr(credentials, "verify_password", counted)
    node = Node(tmp_path)
    node.config.set("admins", "admin", passwords.hash_password("secret", iterations=20000))
    auth = credentials.Authenticator(node)
    try:
        header = "Basic " + base64.b64encode(b"admin:secret").decode()
        ctxs = await asyncio.gather(*(auth.from_header(header, "127.0.0.1") for _ in range(16)))
        assert all(c is not None and c.name == "admin" for c in ctxs)
        assert len(runs) == 1, len(runs)
    finally:
        await node.aclose()
