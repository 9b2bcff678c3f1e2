"""Shared fixtures: a real couchpy server on loopback and an authenticated client for it."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from tests.couchdb_peer import CouchdbPeer
from tests.serverproc import CouchpyServer


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server subprocess for the session; tests isolate themselves by database name."""
    srv = CouchpyServer(tmp_path_factory.mktemp("couchpy"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def couchdb(tmp_path_factory):
    """A real Apache CouchDB 3.4.3 for the session (fails, never skips, when it is missing)."""
    with CouchdbPeer(tmp_path_factory.mktemp("couchdb")) as peer:
        yield peer


@pytest.fixture(scope="session")
def couchdb2(tmp_path_factory):
    """A second, independent CouchDB 3.4.3 (for CouchDB-to-CouchDB comparisons)."""
    with CouchdbPeer(tmp_path_factory.mktemp("couchdb2")) as peer:
        yield peer


@pytest.fixture
async def couch_client(couchdb):
    """An admin client of the real CouchDB."""
    async with aiohttp.ClientSession(base_url=couchdb.base, auth=couchdb.auth) as session:
        yield session


@pytest.fixture
def new_server(tmp_path):
    """A factory of servers of the test's own (each with its own data dir), stopped at the end."""
    started: list[CouchpyServer] = []

    def make(**kwargs) -> CouchpyServer:
        srv = CouchpyServer(tmp_path, name=kwargs.pop("name", f"node{len(started)}"), **kwargs)
        srv.start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
async def client(server):
    async with aiohttp.ClientSession(base_url=server.base, auth=server.auth) as session:
        yield session


@pytest.fixture
async def anon(server):
    """A client without credentials."""
    async with aiohttp.ClientSession(base_url=server.base) as session:
        yield session


@pytest.fixture
def dbname() -> str:
    return "test-" + uuid.uuid4().hex[:12]


@pytest.fixture
async def db(client, dbname):
    """A fresh database on the session server; deleted afterwards. Yields its name."""
    async with client.put(f"/{dbname}") as r:
        assert r.status == 201, await r.text()
    yield dbname
    async with client.delete(f"/{dbname}") as r:
        pass
