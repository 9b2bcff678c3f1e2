"""The OpenAPI document (`http_api/openapi.py`, served at `/_openapi.json`) describes the whole
HTTP API: every route of the application is in it, every path in it is routed, and it is valid
OpenAPI 3.1."""

from __future__ import annotations

import aiohttp
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

import couchpy
from http_api import openapi
from http_api.app import make_app
from http_api.responses import not_allowed

import pytest

# the handler every `not_allowed` catch-all shares: those routes answer 405 for the methods the
# path's real routes do not take, which the document says once for all in its 4XX answers
_NOT_ALLOWED = not_allowed("/", "GET").handler.__qualname__
_ANY_METHOD = ("get", "head", "put", "post", "delete")


def _routed(tmp_path) -> dict[str, set[str]]:
    """{canonical path: methods} of the application's router (`*` routes as every method)."""
    node = couchpy.open(str(tmp_path))
    app = make_app(node)
    out: dict[str, set[str]] = {}
    for route in app.router.routes():
        path = route.resource.canonical
        methods = out.setdefault(path, set())
        if route.method == "*":
            if route.handler.__qualname__ != _NOT_ALLOWED:
                methods.update(_ANY_METHOD)
        elif route.method == "COPY":
            methods.add("x-copy")
        else:
            methods.add(route.method.lower())
    return out


def _documented(doc: dict) -> dict[str, set[str]]:
    methods = set(_ANY_METHOD) | {"options", "patch", "trace", "x-copy"}
    return {path: {m for m in item if m in methods} for path, item in doc["paths"].items()}


def test_every_route_is_documented_and_every_documented_path_is_routed(tmp_path):
    assert _routed(tmp_path) == _documented(openapi.DOCUMENT)


def test_the_document_is_valid_openapi_3_1():
    assert openapi.DOCUMENT["openapi"].startswith("3.1")
    validate(openapi.DOCUMENT)


def test_the_validator_catches_an_invalid_document():
    broken = {**openapi.DOCUMENT, "paths": {"/{db}": {"get": {"responses": {"200": {"content": 5}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_a_route_missing_from_the_document_is_caught(tmp_path):
    doc = {**openapi.DOCUMENT, "paths": dict(openapi.DOCUMENT["paths"])}
    del doc["paths"]["/{db}/_purge"]
    assert _routed(tmp_path) != _documented(doc)


async def test_served_to_anyone_the_server_serves(server, anon, client):
    async with anon.get("/_openapi.json") as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        assert await r.json() == openapi.DOCUMENT
    async with anon.post("/_openapi.json") as r:
        assert (r.status, await r.json()) == (405, {"error": "method_not_allowed",
                                                    "reason": "Only GET,HEAD allowed"})


async def test_with_require_valid_user_only_authenticated_users_get_it(new_server):
    srv = new_server(config={"chttpd": {"require_valid_user_except_for_up": "true"}})
    async with aiohttp.ClientSession(base_url=srv.base) as anon:
        async with anon.get("/_openapi.json") as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unauthorized"
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as client:
        async with client.get("/_openapi.json") as r:
            assert r.status == 200
