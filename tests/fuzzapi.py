"""Schemathesis against a live couchpy: requests generated from the server's own OpenAPI document
(`/_openapi.json`), every answer checked: never a 5xx, a documented status, a documented content
type, a body that conforms to the documented schema.

Used by `tests/test_fuzz_openapi.py` (bounded, in CI) and `python -m tests.fuzz_long` (the long
run). Failures are collected rather than raised, so one run reports every distinct one.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections import Counter

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from http_api.openapi import PATH_PARAMS
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Left out of the fuzzing, each for a reason that is not about its input handling:
EXCLUDED = {
    # would start replications to whatever URL the fuzzer writes (network targets must stay loopback)
    ("POST", "/_replicate"),
    # would rewrite the node's configuration under the fuzzer (admins, auth handlers, limits)
    ("PUT", "/_node/{node}/_config/{section}/{key}"),
    ("DELETE", "/_node/{node}/_config/{section}/{key}"),
}
FUZZ_DB = "fuzz"
# a bounded wait for the feeds a fuzzer asks for (continuous, longpoll, eventsource): CouchDB's
# default is 60 s of waiting for changes
FEED_TIMEOUT_MS = "50"
REQUEST_TIMEOUT_S = 30


@dataclasses.dataclass
class Report:
    requests: int = 0
    seconds: float = 0.0
    operations: int = 0
    statuses: Counter = dataclasses.field(default_factory=Counter)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)  # kind -> one example (curl)

    def add(self, other: "Report") -> None:
        self.requests += other.requests
        self.operations += other.operations
        self.seconds += other.seconds
        self.statuses.update(other.statuses)
        for k, v in other.failures.items():
            self.failures.setdefault(k, v)


def load_schema(base: str, auth: tuple[str, str]):
    doc = requests.get(base + "/_openapi.json", auth=auth, timeout=REQUEST_TIMEOUT_S).json()
    schema = schemathesis.openapi.from_dict(doc)
    return schema


def seed_database(session: requests.Session, base: str) -> None:
    """The database, documents, design document and attachment the document's examples name, so
    that generated requests reach past 404 into the handlers."""
    session.put(f"{base}/{FUZZ_DB}", timeout=REQUEST_TIMEOUT_S)
    for doc in ({"_id": "doc", "a": 1}, {"_id": "_design/fuzz", "views": {"v": {"map": "function(d){emit(d._id, 1)}",
                                                                             "reduce": "_count"}},
                                         "updates": {"u": "function(doc, req){return [doc, 'ok']}"}},
                {"_id": "_local/checkpoint", "seq": 1}):
        r = session.get(f"{base}/{FUZZ_DB}/{doc['_id']}", timeout=REQUEST_TIMEOUT_S)
        if r.status_code == 404:
            session.put(f"{base}/{FUZZ_DB}/{doc['_id']}", json=doc, timeout=REQUEST_TIMEOUT_S)
    r = session.get(f"{base}/{FUZZ_DB}/doc", timeout=REQUEST_TIMEOUT_S)
    if r.ok and "_attachments" not in r.json():
        session.put(f"{base}/{FUZZ_DB}/doc/att.txt", params={"rev": r.json()["_rev"]}, data=b"hello",
                    headers={"Content-Type": "text/plain"}, timeout=REQUEST_TIMEOUT_S)


def _bound_feeds(case) -> None:
    query = case.query
    if query and query.get("feed") not in (None, "normal"):
        query["timeout"] = FEED_TIMEOUT_MS
        query.pop("heartbeat", None)


def _has_inputs(op) -> bool:
    return bool(len(op.query) or len(op.headers) or op.body)


def _kind(method: str, path: str, exc: BaseException) -> str:
    if isinstance(exc, FailureGroup):
        titles = sorted({f.title for f in exc.exceptions})
        return f"{method} {path}: " + "; ".join(titles)
    return f"{method} {path}: {type(exc).__name__}: {str(exc)[:200]}"


def _strategy(op, mode: GenerationMode, path_parameters: dict | None, cache: dict | None):
    """The operation's strategy for a mode and naming. Building one is dear (Hypothesis validates a
    strategy and resolves its lazy parts on its first draw, about as long as drawing tens of
    examples), so a long run builds each once and draws from it every round."""
    if cache is None:
        return op.as_strategy(generation_mode=mode, path_parameters=path_parameters)
    key = (op.method, op.path, mode, path_parameters is not None)
    if key not in cache:
        cache[key] = op.as_strategy(generation_mode=mode, path_parameters=path_parameters)
    return cache[key]


def fuzz_operation(op, base: str, session: requests.Session, examples: int, rng_seed: int,
                   modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE), deadline: float | None = None,
                   strategies: dict | None = None) -> Report:
    report = Report()
    method, path = op.method.upper(), op.path
    t0 = time.monotonic()
    names = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
    # half the requests name what exists (the seeded database, documents, ...), so that they reach
    # past the 404s into the handlers; the other half name anything
    known = {n: PATH_PARAMS[n]["example"] for n in names} or None
    for mode, path_parameters in itertools.product(modes, (known, None) if known else (None,)):
        if mode is GenerationMode.NEGATIVE and not _has_inputs(op):
            continue  # path parameters are any string: nothing invalid to generate
        # only the generate phase: no shrinking (a failure is reported as it was generated, and a
        # long run spends its time on new requests) and no example database (runs are reproduced
        # from the seed)
        @seed(rng_seed)
        @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=_strategy(op, mode, path_parameters, strategies))
        def one(case) -> None:
            if deadline is not None and time.monotonic() > deadline:
                return  # out of time: the rest of this operation's examples are not sent
            _bound_feeds(case)
            report.requests += 1
            try:
                response = case.call(base_url=base, session=session, timeout=REQUEST_TIMEOUT_S)
            except requests.RequestException as exc:
                report.failures.setdefault(_kind(method, path, exc), case.as_curl_command())
                return
            report.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (FailureGroup, AssertionError) as exc:
                # with what it answered: the server's state then may be gone before anyone looks
                answer = f"\n    -> {response.status_code} {response.text[:300]!r}"
                report.failures.setdefault(_kind(method, path, exc), case.as_curl_command() + answer)

        try:
            one()
        except Unsatisfiable:
            pass  # nothing of this mode to generate (a negative request for an operation with no inputs)
    report.seconds = time.monotonic() - t0
    return report


def operations(schema):
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) not in EXCLUDED:
            yield op


class Fuzzer:
    """One client's state for many rounds: the document's operations, one HTTP session (kept-alive
    connections) and the strategies built so far."""

    def __init__(self, base: str, auth: tuple[str, str]):
        self.base, self.auth = base, auth
        self.ops = list(operations(load_schema(base, auth)))
        self.session = requests.Session()
        self.session.auth = auth
        # the server is on loopback: no proxy settings to read from the environment, which
        # requests otherwise does again for every request (a twentieth of the fuzzer's time)
        self.session.trust_env = False
        self.strategies: dict = {}

    def close(self) -> None:
        self.session.close()

    def round(self, examples: int, rng_seed: int, deadline: float | None = None, progress=None) -> Report:
        """One pass over every operation (in an order drawn from the seed, so that passes cut short
        by `deadline` cover different ones), `examples` requests per operation and generation mode."""
        ops = list(self.ops)
        random.Random(rng_seed).shuffle(ops)
        total = Report()
        for op in ops:
            if deadline is not None and time.monotonic() > deadline:
                break
            # before each operation: the one before may have deleted any of it
            seed_database(self.session, self.base)
            rep = fuzz_operation(op, self.base, self.session, examples, rng_seed, deadline=deadline,
                                 strategies=self.strategies)
            rep.operations = 1
            total.add(rep)
            if progress:
                progress(op, rep, total)
        return total


def fuzz(base: str, auth: tuple[str, str], examples: int, rng_seed: int, deadline: float | None = None,
         progress=None, fuzzer: Fuzzer | None = None) -> Report:
    """One round, of `fuzzer` (a long run's, kept between rounds) or of a fresh one."""
    own = fuzzer is None
    fuzzer = fuzzer or Fuzzer(base, auth)
    try:
        return fuzzer.round(examples, rng_seed, deadline=deadline, progress=progress)
    finally:
        if own:
            fuzzer.close()
