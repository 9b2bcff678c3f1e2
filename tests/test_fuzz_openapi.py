"""Schemathesis against a live server, from the server's own OpenAPI document: every operation
(but the few `tests/fuzzapi.py` leaves out, with its reasons) gets valid and invalid requests;
no answer may be a 5xx or differ from the document (status, content type, body schema).

CI runs one example per operation and mode for at most `FUZZ_SECONDS`, over operations in an
order drawn from the seed (`FUZZ_SEED` or a fresh one, printed on failure), so that successive
runs cover different ones; `python -m tests.fuzz_long` is the long run over all of them."""

from __future__ import annotations

import os
import random
import time

import requests
import schemathesis

from tests import fuzzapi

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1"))
SEED = int(os.environ.get("FUZZ_SEED", random.randrange(2**32)))
SECONDS = float(os.environ.get("FUZZ_SECONDS", "40"))


def test_no_5xx_and_every_answer_as_documented(new_server):
    srv = new_server(name="fuzz")
    auth = (srv.user, srv.password)
    report = fuzzapi.fuzz(srv.base, auth, EXAMPLES, SEED, deadline=time.monotonic() + SECONDS)
    assert report.operations >= 3 and report.requests >= report.operations, report
    assert report.failures == {}, f"seed {SEED}: {report.failures}"
    assert not any(status >= 500 for status in report.statuses)
    assert requests.get(srv.base + "/_up", timeout=10).status_code == 200


def test_a_body_that_breaks_the_document_is_reported(new_server):
    """The harness is seen to fail: with `rows` no longer a listing's only required field in the
    document, real answers violate it and the run says so."""
    srv = new_server(name="fuzz")
    auth = (srv.user, srv.password)
    doc = requests.get(srv.base + "/_openapi.json", timeout=10).json()
    doc["components"]["schemas"]["Rows"]["required"].append("missing")
    schema = schemathesis.openapi.from_dict(doc)
    [op] = [o for o in fuzzapi.operations(schema) if (o.method, o.path) == ("get", "/{db}/_all_docs")]
    with requests.Session() as session:
        session.auth = auth
        fuzzapi.seed_database(session, srv.base)
        report = fuzzapi.fuzz_operation(op, srv.base, session, 5, SEED)
    assert "GET /{db}/_all_docs: Response violates schema" in report.failures
