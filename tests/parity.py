"""Fixtures for tests that send the same requests to couchpy and to the real CouchDB 3.4.3 and
assert the same answer from both: the test itself shows that CouchDB answers that way.

    from tests.parity import peer, pdb  # noqa: F401  (pytest fixtures)

    async def test_x(peer, pdb):
        async with peer.get(f"/{pdb}/_changes") as r: ...

`peer` is an aiohttp session (base URL and admin credentials set) of one server, parametrized over
both; `peer.kind` says which. `pdb` is a fresh database on it with one shard (`q=1`), so that
CouchDB's sequences are totally ordered as couchpy's are.

To compare the two answers directly, run one scenario on both (each in a fresh `q=1` database):

    ours, theirs = await on_both(client, couch_client, scenario)
    # scenario(call, dbname); call(method, path, body=None, **query) -> (status, JSON body)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

KINDS = ("couchpy", "couchdb")


class Peer:
    """An HTTP session of one server (requests are delegated to it) and which server it is."""

    def __init__(self, kind: str, base: str, session: aiohttp.ClientSession):
        self.kind = kind
        self.base = base
        self.session = session

    def __getattr__(self, name: str):
        return getattr(self.session, name)


@pytest.fixture(params=KINDS)
async def peer(request):
    target = request.getfixturevalue("server" if request.param == "couchpy" else "couchdb")
    async with aiohttp.ClientSession(base_url=target.base, auth=target.auth) as session:
        yield Peer(request.param, target.base, session)


@pytest.fixture
async def pdb(peer):
    name = "parity-" + uuid.uuid4().hex[:12]
    async with peer.put(f"/{name}?q=1") as r:
        assert r.status == 201, await r.text()
    yield name
    async with peer.delete(f"/{name}"):
        pass


async def put_doc(peer, db: str, docid: str, body: dict) -> str:
    """Create or update a document; its new revision."""
    async with peer.put(f"/{db}/{docid}", json=body) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["rev"]


Call = Callable[..., Awaitable[tuple[int, Any]]]


def caller(session: aiohttp.ClientSession) -> Call:
    """call(method, path, body=None, **query) -> (status, JSON body); query values JSON-encoded
    unless they are strings."""
    async def call(method: str, path: str, body: Any = None, **query: Any) -> tuple[int, Any]:
        q = "&".join(f"{k}={quote(v if isinstance(v, str) else json.dumps(v))}" for k, v in query.items())
        async with session.request(method, path + ("?" + q if q else ""), json=body) as r:
            return r.status, await r.json(content_type=None)
    return call


async def on_both(ours: aiohttp.ClientSession, theirs: aiohttp.ClientSession,
                  scenario: Callable[[Call, str], Awaitable[Any]], partitioned: bool = False) -> tuple[Any, Any]:
    """scenario(call, dbname) in a fresh database of couchpy, then of CouchDB: both results.
    `partitioned`: the databases are created with `?partitioned=true`."""
    results = []
    for session in (ours, theirs):
        call = caller(session)
        name = "parity-" + uuid.uuid4().hex[:12]
        extra = {"partitioned": "true"} if partitioned else {}
        status, body = await call("PUT", f"/{name}", q=1, **extra)
        assert status == 201, body
        try:
            results.append(await scenario(call, name))
        finally:
            await call("DELETE", f"/{name}")
    return results[0], results[1]
