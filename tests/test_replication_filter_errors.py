"""A filtered replication whose filter function throws, against couchpy and the real CouchDB 3.4.3.

CouchDB's source answers its `_changes?filter=` 500; its replicator gives up on the changes feed
as `changes_reader_died`: a one-shot `POST /_replicate` answers 500 with that error (its reason an
Erlang term naming the failed request; couchpy's a plain sentence naming it), and a `_replicator`
document's job is `crashing` (retried later), with the crash in `_scheduler/docs` `info.error` and
nothing written back onto the document. Both answer so for a source given by URL or (one-shot)
by name.
"""

from __future__ import annotations

import pytest

from tests.interop import name, ok, req, wait_for

THROWS = 'function(doc, req){ throw "boom"; }'


async def _source_with_throwing_filter(peer) -> tuple[str, str]:
    src, tgt = name("fesrc"), name("fetgt")
    for db in (src, tgt):
        await ok(await req(peer, "PUT", f"/{db}"), 201)
    await ok(await req(peer, "PUT", f"/{src}/_design/d", {"filters": {"f": THROWS}}), 201)
    await ok(await req(peer, "PUT", f"/{src}/a", {"x": 1}), 201)
    return src, tgt


def _clean(peer, text: str) -> None:
    """No secret and no stack trace in what the client or the scheduler is told."""
    assert peer.password not in text
    assert "Traceback" not in text and 'File "' not in text


def _endpoints(peer, src: str, tgt: str, by_url: bool) -> dict:
    if by_url:
        return {"source": f"{peer.url}/{src}", "target": f"{peer.url}/{tgt}"}
    return {"source": src, "target": tgt}


@pytest.mark.parametrize("by_url", [True, False], ids=["url", "name"])
@pytest.mark.parametrize("side", ["couchdb", "couchpy"])
async def test_one_shot_with_a_throwing_filter_is_changes_reader_died(server, couchdb, side, by_url):
    peer = couchdb if side == "couchdb" else server
    src, tgt = await _source_with_throwing_filter(peer)
    status, _ = await req(peer, "GET", f"/{src}/_changes", filter="d/f")
    assert status == 500

    spec = {**_endpoints(peer, src, tgt, by_url), "filter": "d/f", "retries_per_request": 1}
    status, body = await req(peer, "POST", "/_replicate", spec)
    assert status == 500, body
    assert sorted(body) == ["error", "reason"] and body["error"] == "changes_reader_died", body
    assert isinstance(body["reason"], str)
    _clean(peer, body["reason"])
    if side == "couchdb":
        # {http_request_failed,"GET","<source>/_changes?filter=d%2Ff&...",{code,500}}
        assert "http_request_failed" in body["reason"] and "{code,500}" in body["reason"], body
    else:
        assert "unnamed_error" in body["reason"], body  # what the filter threw, told plainly
    assert (await req(peer, "GET", f"/{tgt}/a"))[0] == 404


@pytest.mark.parametrize("by_url", [True, False], ids=["url", "name"])
@pytest.mark.parametrize("side", ["couchdb", "couchpy"])
async def test_replicator_document_with_a_throwing_filter_is_crashing(server, couchdb, side, by_url):
    peer = couchdb if side == "couchdb" else server
    src, tgt = await _source_with_throwing_filter(peer)
    await ok(await req(peer, "PUT", "/_replicator"), 201, 412)
    docid = name("fedoc")
    spec = {**_endpoints(peer, src, tgt, by_url), "filter": "d/f", "retries_per_request": 1}
    if side == "couchdb" and not by_url:
        # CouchDB 3.4.3 takes no database names in _replicator documents (couchpy does: its
        # replicator reaches its own databases without HTTP)
        status, body = await req(peer, "PUT", f"/_replicator/{docid}", spec)
        assert (status, body) == (403, {"error": "forbidden", "reason": "local_endpoints_not_supported"})
        return
    rev = (await ok(await req(peer, "PUT", f"/_replicator/{docid}", spec), 201))["rev"]
    try:
        async def crashed():
            status, sd = await req(peer, "GET", f"/_scheduler/docs/_replicator/{docid}")
            return sd if status == 200 and sd["state"] == "crashing" else None

        sd = await wait_for(crashed, timeout=60)
        assert sd["error_count"] >= 1, sd
        assert sorted(sd["info"]) == ["error"], sd
        assert "changes_reader_died" in sd["info"]["error"], sd
        _clean(peer, sd["info"]["error"])
        # a crash is not a final state: nothing is written back onto the document
        status, doc = await req(peer, "GET", f"/_replicator/{docid}")
        assert status == 200 and not any(k.startswith("_replication_") for k in doc), doc
        rev = doc["_rev"]
    finally:
        await req(peer, "DELETE", f"/_replicator/{docid}", rev=rev)
