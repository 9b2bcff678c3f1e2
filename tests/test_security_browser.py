"""Open browser access: CORS preflights and response headers, `require_valid_user`, as the real
CouchDB 3.4.3 answers them with the same settings (asked by hand and written down here: CouchDB's
CORS settings apply at once, so both servers got `[chttpd] enable_cors = true`, `[cors] origins =
http://app.example`, `[cors] credentials = true`)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.serverproc import CouchpyServer

APP = "http://app.example"


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory):
    srv = CouchpyServer(tmp_path_factory.mktemp("cors"), config={
        "chttpd": {"enable_cors": "true"}, "cors": {"origins": APP, "credentials": "true"}})
    srv.start()
    yield srv
    srv.stop()


async def test_preflight_from_an_allowed_origin(cors_server):
    async with aiohttp.ClientSession(base_url=cors_server.base) as s:
        async with s.options("/somedb", headers={"Origin": APP, "Access-Control-Request-Method": "PUT",
                                                 "Access-Control-Request-Headers": "content-type"}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == APP
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            assert r.headers["Access-Control-Allow-Headers"] == "content-type"
            assert r.headers["Access-Control-Allow-Methods"] == "CONNECT, COPY, DELETE, GET, HEAD, OPTIONS, POST, PUT, TRACE"
            assert r.headers["Access-Control-Max-Age"] == "600"
        # an unknown request header or another origin: no preflight answer (the request goes on)
        for headers in ({"Origin": APP, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-weird"},
                        {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}):
            async with s.options("/somedb", headers=headers) as r:
                assert r.status != 204
                assert ("Access-Control-Allow-Origin" in r.headers) == (headers["Origin"] == APP)


async def test_responses_carry_cors_headers_only_for_allowed_origins(cors_server):
    async with aiohttp.ClientSession(base_url=cors_server.base) as s:
        async with s.get("/", headers={"Origin": APP}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == APP
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            assert "etag" in r.headers["Access-Control-Expose-Headers"]
        async with s.get("/_all_dbs", headers={"Origin": APP}) as r:  # refusals too
            assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == APP
        async with s.get("/", headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
        async with s.get("/") as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_cors_is_off_by_default(server):
    async with aiohttp.ClientSession(base_url=server.base) as s:
        async with s.options("/x", headers={"Origin": APP, "Access-Control-Request-Method": "GET"}) as r:
            assert r.status != 204 and "Access-Control-Allow-Origin" not in r.headers
        async with s.get("/", headers={"Origin": APP}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_require_valid_user(new_server):
    srv = new_server()  # set at run time: the test harness waits for an open /_up to start
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as admin:
        async with admin.put("/_node/_local/_config/chttpd/require_valid_user", json="true") as r:
            assert r.status == 200
    async with aiohttp.ClientSession(base_url=srv.base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as anon:
        for path in ("/", "/_up", "/_session", "/_uuids", "/somedb"):
            async with anon.get(path) as r:
                assert (r.status, await r.json()) == (401, {"error": "unauthorized", "reason": "Authentication required."})
                assert r.headers["WWW-Authenticate"] == 'Basic realm="server"'
        async with anon.post("/_session", json={"name": srv.user, "password": srv.password}) as r:
            assert r.status == 200  # logging in stays possible
        async with anon.get("/_session") as r:  # with the cookie just set
            assert (await r.json())["userCtx"]["name"] == srv.user
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as admin:
        async with admin.get("/") as r:
            assert r.status == 200
