"""couchpy and a real CouchDB 3.4.3 edited at random on both sides while two continuous
replications (one driven by each side) run between them: they converge to the same documents,
revision trees, winners and conflicts. Also: a replication resumes from its checkpoint after
couchpy or CouchDB restarts, whichever side drives it."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.couchdb_peer import CouchdbPeer
from tests.interop import name, ok, req, snapshot, wait_for

OPS = st.lists(
    st.tuples(st.sampled_from(["couchpy", "couchdb"]), st.sampled_from(["put", "delete", "attach"]),
              st.integers(0, 5), st.integers(0, 10**30)),
    min_size=1, max_size=14)


async def apply(peer, db, op, key, value) -> None:
    path = f"/{db}/k{key}"
    status, doc = await req(peer, "GET", path)
    if status != 200:
        doc = {"_id": f"k{key}"}
    if op == "delete":
        if "_rev" in doc:
            await req(peer, "DELETE", path, rev=doc["_rev"])
        return
    doc["v"] = value
    if op == "attach":
        atts = doc.get("_attachments") or {}
        atts[f"a{value % 3}.txt"] = {"content_type": "text/plain",
                                     "data": base64.b64encode(b"x%d " % value * 5).decode()}
        doc["_attachments"] = atts
    await req(peer, "PUT", path, doc)  # a 409 from a racing replication is a fine outcome too


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
async def test_two_way_continuous_converges(server, couchdb, ops):
    here, there = name("cvp"), name("cvc")
    await ok(await req(server, "PUT", f"/{here}"), 201)
    await ok(await req(couchdb, "PUT", f"/{there}"), 201)
    push = {"source": f"{server.url}/{here}", "target": f"{couchdb.url}/{there}", "continuous": True}
    pull = {"source": f"{couchdb.url}/{there}", "target": f"{server.url}/{here}", "continuous": True}
    for driver, spec in ((server, push), (couchdb, pull)):
        st_, res = await req(driver, "POST", "/_replicate", spec)
        assert st_ == 202, res
    try:
        for side, op, key, value in ops:
            peer, db = (server, here) if side == "couchpy" else (couchdb, there)
            await apply(peer, db, op, key, value)

        async def converged():
            a, b = await snapshot(server, here, bodies=False), await snapshot(couchdb, there, bodies=False)
            return a == b and len(a) == len({key for _, _, key, _ in ops} & _touched(ops))

        await wait_for(converged, timeout=90)
    finally:
        for driver, spec in ((server, push), (couchdb, pull)):
            await req(driver, "POST", "/_replicate", dict(spec, cancel=True))


def _touched(ops) -> set[int]:
    """Keys that got at least one document revision (a delete of a missing doc writes nothing)."""
    seen: set[int] = set()
    for _, op, key, _ in ops:
        if op != "delete":
            seen.add(key)
    return seen


@pytest.mark.parametrize("driver_name", ["couchdb", "couchpy"])
async def test_resume_from_checkpoint_after_couchpy_restarts(new_server, couchdb, driver_name):
    srv = new_server()
    db, remote = name("rs"), name("rc")
    await ok(await req(srv, "PUT", f"/{db}"), 201)
    await ok(await req(srv, "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": f"a{i}"} for i in range(30)]}), 201)
    driver = couchdb if driver_name == "couchdb" else srv
    spec = {"source": f"{srv.url}/{db}", "target": f"{couchdb.url}/{remote}", "create_target": True}
    st_, first = await req(driver, "POST", "/_replicate", spec)
    assert st_ == 200, first
    recorded = first["history"][0]["recorded_seq"]
    srv.stop()
    srv.start()
    driver = couchdb if driver_name == "couchdb" else srv
    await ok(await req(srv, "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": f"b{i}"} for i in range(5)]}), 201)
    st_, second = await req(driver, "POST", "/_replicate", spec)
    assert st_ == 200, second
    assert second["history"][0]["start_last_seq"] == recorded
    assert second["history"][0]["session_id"] != first["history"][0]["session_id"]
    assert await snapshot(srv, db, bodies=False) == await snapshot(couchdb, remote, bodies=False)


@pytest.mark.parametrize("driver_name", ["couchdb", "couchpy"])
async def test_resume_from_checkpoint_after_couchdb_restarts(server, tmp_path, driver_name):
    """CouchDB (its own instance here: it is restarted) comes back on the same port; the next
    run, with either side's replicator, resumes where the checkpoint says."""
    with CouchdbPeer(tmp_path / "restarted") as couchdb:
        db, remote = name("rs"), name("rc")
        await ok(await req(couchdb, "PUT", f"/{db}"), 201)
        await ok(await req(couchdb, "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": f"a{i}"} for i in range(30)]}), 201)
        spec = {"source": f"{couchdb.url}/{db}", "target": f"{server.url}/{remote}", "create_target": True}
        driver = couchdb if driver_name == "couchdb" else server
        st_, first = await req(driver, "POST", "/_replicate", spec)
        assert st_ == 200, first
        recorded = first["history"][0]["recorded_seq"]
        url = couchdb.url
        couchdb.restart()
        assert couchdb.url == url
        await ok(await req(couchdb, "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": f"b{i}"} for i in range(5)]}), 201)
        st_, second = await req(driver, "POST", "/_replicate", spec)
        assert st_ == 200, second
        assert second["history"][0]["start_last_seq"] == recorded
        assert await snapshot(server, remote, bodies=False) == await snapshot(couchdb, db, bodies=False)
