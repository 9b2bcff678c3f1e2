"""Regression tests of fixed differences: the same request to couchpy and to CouchDB 3.4.3.

    same = await parity(server, couchdb, [setup requests...], probe)
    assert same.status == 400 and same.body == {...}

`parity` runs the requests on a fresh database of each server (through the differential tester's
client and normaliser), asserts both answered the last one alike, and returns CouchDB's answer so
the test can also state what that answer is.
"""

from __future__ import annotations

import asyncio

from . import normalize
from .client import Answer, Target, fresh_db_name, run_sequence
from .compare import differences
from .model import Req


async def parity(server, couchdb, reqs: list[Req]) -> Answer:
    db = fresh_db_name()
    mine = await asyncio.to_thread(run_sequence, Target(server.url, False), reqs, db)
    theirs = await asyncio.to_thread(run_sequence, Target(couchdb.url, True), reqs, db)
    given = normalize.given_hashes("\n".join(r.describe() for r in reqs))
    hm, ht = normalize.Hashes(given), normalize.Hashes(given)
    for req, a, b in zip(reqs, mine, theirs):
        na = normalize.answer(a.status, a.headers, a.body, hm)
        nb = normalize.answer(b.status, b.headers, b.body, ht)
        if req is reqs[-1]:
            assert differences(req.endpoint, na, nb) == [], (req.describe(), na, nb)
    return theirs[-1]


async def both(server, couchdb, reqs: list[Req]) -> tuple[Answer, Answer]:
    """(couchpy's, CouchDB's) answers to the last request, for documented differences."""
    db = fresh_db_name()
    mine = await asyncio.to_thread(run_sequence, Target(server.url, False), reqs, db)
    theirs = await asyncio.to_thread(run_sequence, Target(couchdb.url, True), reqs, db)
    return mine[-1], theirs[-1]
