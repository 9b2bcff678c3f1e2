"""Replication with a real CouchDB 3.4.3 beyond one-shot copies: continuous jobs, `_replicator`
documents on each side, filters, big attachments, stemmed histories, resuming after a restart."""

from __future__ import annotations

import base64

import pytest

from tests.interop import (TEXT, name, ok, random_bytes, req, snapshot, wait_for)

DRIVERS = ["couchdb", "couchpy"]
DIRECTIONS = ["couchpy->couchdb", "couchdb->couchpy"]


def pick(server, couchdb, driver_name, direction):
    source, target = (server, couchdb) if direction == "couchpy->couchdb" else (couchdb, server)
    return (couchdb if driver_name == "couchdb" else server), source, target


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def same(source, src, target, tgt) -> bool:
    if (await req(target, "GET", f"/{tgt}"))[0] != 200:
        return False  # a continuous job creates its target in its own time
    return await snapshot(source, src, bodies=False) == await snapshot(target, tgt, bodies=False)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("driver_name", DRIVERS)
async def test_continuous(server, couchdb, driver_name, direction):
    driver, source, target = pick(server, couchdb, driver_name, direction)
    src, tgt = name("csrc"), name("ctgt")
    await ok(await req(source, "PUT", f"/{src}"), 201)
    spec = {"source": f"{source.url}/{src}", "target": f"{target.url}/{tgt}", "create_target": True,
            "continuous": True}
    st, res = await req(driver, "POST", "/_replicate", spec)
    assert st == 202 and res["ok"] is True, res
    try:
        for i in range(5):
            await ok(await req(source, "PUT", f"/{src}/live-{i}", {"i": i, "_attachments": {
                "t.txt": {"content_type": "text/plain", "data": b64(TEXT * (i + 1))}}}), 201)
        await wait_for(lambda: same(source, src, target, tgt))
        st, doc = await req(source, "GET", f"/{src}/live-0")
        await ok(await req(source, "DELETE", f"/{src}/live-0", rev=doc["_rev"]), 200)
        await wait_for(lambda: same(source, src, target, tgt))
        assert (await req(target, "GET", f"/{tgt}/live-0"))[0] == 404
    finally:
        st, res = await req(driver, "POST", "/_replicate", dict(spec, cancel=True))
        assert st == 200, res


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("driver_name", DRIVERS)
async def test_replicator_document(server, couchdb, driver_name, direction):
    driver, source, target = pick(server, couchdb, driver_name, direction)
    src, tgt = name("rsrc"), name("rtgt")
    await ok(await req(source, "PUT", f"/{src}"), 201)
    await ok(await req(source, "POST", f"/{src}/_bulk_docs", {"docs": [
        {"_id": f"r{i}", "i": i, "_attachments": {"b": {"content_type": "image/png", "data": b64(bytes([i]) * 99)}}}
        for i in range(20)]}), 201)
    st, _ = await req(driver, "PUT", "/_replicator")
    assert st in (201, 412)
    repdoc = name("rep")
    await ok(await req(driver, "PUT", f"/_replicator/{repdoc}", {
        "source": f"{source.url}/{src}", "target": f"{target.url}/{tgt}", "create_target": True}), 201)

    async def completed():
        st, body = await req(driver, "GET", f"/_scheduler/docs/_replicator/{repdoc}")
        return st == 200 and body.get("state") == "completed"

    await wait_for(completed)
    assert await same(source, src, target, tgt)


@pytest.mark.parametrize("driver_name", DRIVERS)
async def test_filtered_by_doc_ids_and_selector(server, couchdb, driver_name):
    for direction in DIRECTIONS:
        driver, source, target = pick(server, couchdb, driver_name, direction)
        src = name("fsrc")
        await ok(await req(source, "PUT", f"/{src}"), 201)
        await ok(await req(source, "POST", f"/{src}/_bulk_docs", {"docs": [
            {"_id": f"f{i:02}", "kind": "even" if i % 2 == 0 else "odd"} for i in range(20)]}), 201)
        for flt, wanted in (({"doc_ids": ["f03", "f04", "nope"]}, {"f03", "f04"}),
                            ({"selector": {"kind": "odd"}}, {f"f{i:02}" for i in range(1, 20, 2)})):
            tgt = name("ftgt")
            st, res = await req(driver, "POST", "/_replicate", {
                "source": f"{source.url}/{src}", "target": f"{target.url}/{tgt}", "create_target": True, **flt})
            assert st == 200 and res["ok"], res
            st, alldocs = await req(target, "GET", f"/{tgt}/_all_docs")
            assert {r["id"] for r in alldocs["rows"]} == wanted, (direction, flt)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("driver_name", DRIVERS)
async def test_big_attachments_and_stemmed_history(server, couchdb, driver_name, direction):
    """20 MB of binary and 5 MB of compressible text (CouchDB's gzip of it must be byte for byte
    couchpy's, or the digests differ); a history longer than the source's revs_limit."""
    driver, source, target = pick(server, couchdb, driver_name, direction)
    src, tgt = name("bsrc"), name("btgt")
    await ok(await req(source, "PUT", f"/{src}"), 201)
    blob = random_bytes(20 << 20, seed=7)
    text = b"".join(b"line %d of a long compressible text\n" % i for i in range(140_000))
    await ok(await req(source, "PUT", f"/{src}/big/blob.bin", None, raw=True,
                       headers={"Content-Type": "application/octet-stream"}, data_=blob), 201)
    st, doc = await req(source, "GET", f"/{src}/big")
    await ok(await req(source, "PUT", f"/{src}/big/text.txt", None, raw=True, rev=doc["_rev"],
                       headers={"Content-Type": "text/plain"}, data_=text), 201)
    await ok(await req(source, "PUT", f"/{src}/_revs_limit", 20), 200)
    await ok(await req(source, "PUT", f"/{src}/long", {"k": 0}), 201)
    for k in range(1, 30):
        st, doc = await req(source, "GET", f"/{src}/long")
        doc["k"] = k
        await ok(await req(source, "PUT", f"/{src}/long", doc), 201)
    st, res = await req(driver, "POST", "/_replicate", {
        "source": f"{source.url}/{src}", "target": f"{target.url}/{tgt}", "create_target": True})
    assert st == 200 and res["ok"], res
    want, got = await snapshot(source, src), await snapshot(target, tgt)
    assert got == want
    assert want["big"]["att:blob.bin"] == (200, blob) and want["big"]["att:text.txt"] == (200, text)
    assert len(want["long"]["leaves"][0]["_revisions"]["ids"]) == 20
