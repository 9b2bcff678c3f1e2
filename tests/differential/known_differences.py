"""Where couchpy answers differently from CouchDB 3.4.3 on purpose, and why.

The differential tester consults this list: a difference that matches an entry is expected; any
other fails the tester. docs/interop.md ("Known differences from CouchDB") carries the same list
for readers; a test checks that every entry here is described there.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Callable

from .compare import Difference
from .model import Req


@dataclass(frozen=True)
class KnownDifference:
    name: str
    reason: str
    # a predicate, or a glob over the difference's class ("GET /{db}/_changes [200] | header etag*")
    matches: Callable[[Req, Difference], bool] | str

    def match(self, req: Req, d: Difference) -> bool:
        if isinstance(self.matches, str):
            return fnmatch.fnmatchcase(d.klass, self.matches)
        return self.matches(req, d)


def _couchdb_crashed(req: Req, d: Difference) -> bool:
    # CouchDB answers 5xx (an uncaught Erlang error) where couchpy refuses the request with a 4xx
    if d.kind != "status" or not isinstance(d.couchdb, dict):
        return False
    mine, theirs = d.what.split(" vs ")
    return theirs.startswith("5") and mine.startswith("4")


def _unknown_changes_style(req: Req, d: Difference) -> bool:
    style = dict(req.query).get("style")
    return ("_changes" in req.endpoint and d.kind == "status" and d.what.startswith("400 bad_request")
            and style not in (None, "main_only", "all_docs"))


def _index_without_fields(req: Req, d: Difference) -> bool:
    index = req.body.get("index") if isinstance(req.body, dict) else None
    return (req.endpoint == "POST /{db}/_index" and d.kind == "status" and d.what == "400 invalid_field vs 200"
            and isinstance(index, dict) and index.get("fields") == [])


def _numeric_since(req: Req, d: Difference) -> bool:
    since = dict(req.query).get("since", "")
    return ("_changes" in req.endpoint and d.kind == "status" and d.what == "200 vs 400 bad_request"
            and isinstance(d.couchdb, dict) and d.couchdb.get("reason", "").startswith("Malformed sequence")
            and re.fullmatch(r'"?[0-9]+(-.*)?"?', since) is not None)


KNOWN: tuple[KnownDifference, ...] = (
    KnownDifference(
        "couchdb-5xx",
        "Where CouchDB fails with a 5xx (an uncaught error: `badarg`, `function_clause`, ...) on bad "
        "input, couchpy answers a 4xx naming the problem: a client error is the client's to fix.",
        _couchdb_crashed,
    ),
    KnownDifference(
        "changes-unknown-style",
        "`_changes` with a `style` other than `main_only` or `all_docs` is a 400 `bad_request` up "
        "front. CouchDB accepts it while no change is listed and crashes (500 `function_clause`) "
        "at the first change it would list, so its answer depends on the database's content.",
        _unknown_changes_style,
    ),
    KnownDifference(
        "mango-index-without-fields",
        "`POST /{db}/_index` with `\"fields\": []` is a 400 `invalid_field`. CouchDB creates the "
        "index, which no query can use (every `_find` passes it by).",
        _index_without_fields,
    ),
    KnownDifference(
        "changes-since-numbers",
        "`_changes?since=` accepts a plain sequence number (`12`, `\"12\"`) and `12-<anything>`. "
        "couchpy's sequences are numbers (the suffix only names the node), so a number a client kept "
        "from CouchDB 1.x-style feeds or cut from a sequence stays usable; CouchDB 3 decodes an "
        "opaque term and refuses anything else (400 `Malformed sequence`).",
        _numeric_since,
    ),
)


def known(req: Req, d: Difference) -> KnownDifference | None:
    return next((k for k in KNOWN if k.match(req, d)), None)
