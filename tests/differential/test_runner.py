"""The tester's runner against both servers: what it may and may not compare."""

from __future__ import annotations

import asyncio

from .client import Target
from .model import Req
from .runner import compare

DDOC = {"views": {"by_x": {"map": "function(doc) { if (doc.x !== undefined) emit(doc.x, null); }"}}}


async def test_stops_once_the_hash_names_diverge(server, couchdb):
    # CouchDB's 500 for `style=bad` prints a stack holding the index design document's revision,
    # couchpy's 400 does not (`couchdb-5xx`): the normalisers then number later revisions
    # differently, so the design document's ETag that follows is not compared (met by the
    # 10,000-sequence run of seeds 5001/5002)
    reqs = [Req("POST", "/{db}/_index", body={"index": {"fields": ["x"]}}, endpoint="POST /{db}/_index"),
            Req("GET", "/{db}/_changes", (("since", "0"), ("view", "bad"), ("style", "bad"), ("doc_ids", "[]")),
                endpoint="GET /{db}/_changes"),
            Req("PUT", "/{db}/_design/d", body=DDOC, endpoint="PUT /{db}/_design/{ddoc}")]
    out = await asyncio.to_thread(compare, reqs, Target(server.url, False), Target(couchdb.url, True))
    assert [k.name for _, _, k in out.explained] == ["couchdb-5xx"]
    assert out.unexplained is None and out.compared == 2
