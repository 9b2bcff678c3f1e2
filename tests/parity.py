"""Fixtures for tests that send the same requests to couchpy and to the real CouchDB 3.4.3 and
assert the same answer from both: the test itself shows that CouchDB answers that way.

    from tests.parity import peer, pdb  # noqa: F401  (pytest fixtures)

    async def test_x(peer, pdb):
        async with peer.get(f"/{pdb}/_changes") as r: ...

`peer` is an aiohttp session (base URL and admin credentials set) of one server, parametrized over
both; `peer.kind` says which. `pdb` is a fresh database on it with one shard (`q=1`), so that
CouchDB's sequences are totally ordered as couchpy's are.
"""

from __future__ import annotations

import uuid

import aiohttp
import pytest

KINDS = ("couchpy", "couchdb")


class Peer:
    """An HTTP session of one server (requests are delegated to it) and which server it is."""

    def __init__(self, kind: str, session: aiohttp.ClientSession):
        self.kind = kind
        self.session = session

    def __getattr__(self, name: str):
        return getattr(self.session, name)


@pytest.fixture(params=KINDS)
async def peer(request):
    target = request.getfixturevalue("server" if request.param == "couchpy" else "couchdb")
    async with aiohttp.ClientSession(base_url=target.base, auth=target.auth) as session:
        yield Peer(request.param, session)


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
