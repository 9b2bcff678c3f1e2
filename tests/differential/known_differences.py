"""Where couchpy answers differently from CouchDB 3.4.3 on purpose, and why.

The differential tester consults this list: a difference that matches an entry is expected; any
other fails the tester. docs/interop.md ("Known differences from CouchDB") carries the same list
for readers; a test checks that every entry here is described there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

from .compare import Difference
from .model import Req


@dataclass(frozen=True)
class KnownDifference:
    name: str
    reason: str
    # a predicate, or a pattern over the difference's class where only `*` is a wildcard
    # ("GET /{db}/_changes [200] | header etag*")
    matches: Callable[[Req, Difference], bool] | str

    def match(self, req: Req, d: Difference) -> bool:
        if isinstance(self.matches, str):
            pattern = ".*".join(re.escape(part) for part in self.matches.split("*"))
            return re.fullmatch(pattern, d.klass, re.S) is not None
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
    body = json.loads(req.body) if isinstance(req.body, bytes) and req.body[:1] == b"{" else req.body
    index = body.get("index") if isinstance(body, dict) else None
    return (req.endpoint == "POST /{db}/_index" and d.kind == "status" and d.what.strip() == "400 invalid_field vs 200"
            and isinstance(index, dict) and index.get("fields") == [])


def _numeric_since(req: Req, d: Difference) -> bool:
    since = dict(req.query).get("since", "")
    if "_changes" not in req.endpoint or re.fullmatch(r'"?[0-9]+(-.*)?"?', since) is None:
        return False
    if d.kind == "status":
        return (d.what == "200 vs 400 bad_request" and isinstance(d.couchdb, dict)
                and d.couchdb.get("reason", "").startswith("Malformed sequence"))
    # the `since` accepted here, the request is refused for its next fault (a bad `style`)
    return (d.kind == "body" and d.where.startswith(".reason") and isinstance(d.couchdb, str)
            and d.couchdb.startswith("Malformed sequence"))


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
        "opaque term and refuses anything else (400 `Malformed sequence`); a request with such a `since` "
        "and another fault (a bad `style`) is refused here for that fault.",
        _numeric_since,
    ),
)


def _all_docs_non_string_keys(req: Req, d: Difference) -> bool:
    return ("_all_docs" in req.endpoint and d.kind == "status" and d.what.startswith("200 vs 500")
            and isinstance(d.couchpy, dict) and any(isinstance(r, dict) and r.get("error") == "not_found"
                                                    for r in d.couchpy.get("rows", [])))


def _invalid_revisions(req: Req, d: Difference) -> bool:
    if d.kind == "status":
        return isinstance(d.couchpy, dict) and d.couchpy.get("reason") == "Invalid _revisions"
    return d.kind == "body" and d.where.startswith(".reason") and d.couchpy == "Invalid _revisions"


KNOWN += (
    KnownDifference(
        "revisions-out-of-range",
        "A `_revisions` whose `start` is smaller than the number of its `ids`, or whose `ids` are "
        "empty or hold an empty string, is a 400 `Invalid _revisions`. CouchDB takes it and makes "
        "revisions at position 0 or below (`0-y`, `-1-x`), answers a conflict, or crashes (500) "
        "for some replicated forms.",
        _invalid_revisions,
    ),
    KnownDifference(
        "view-error-ref",
        "A single view query refused for a reversed key range (400 `query_parse_error`) carries "
        "no `ref` member. CouchDB's `ref` is a hash of the Erlang stack the error was thrown "
        "from (a worker process), for finding it in CouchDB's log; couchpy's error has no such "
        "stack, and its other 400s carry none either (nor do CouchDB's `/queries` answers).",
        "* /{db}/_design/{ddoc}/_view/{view} [400] | body .ref | missing",
    ),
    KnownDifference(
        "all-docs-non-string-keys",
        "`_all_docs` with `keys` that are not strings answers each such key with a row "
        "`{\"key\": ..., \"error\": \"not_found\"}`, as for any id that is not there; CouchDB "
        "crashes (500 `badarg`) on a key it cannot turn into an id (a list such as `[false, 1.0]`).",
        _all_docs_non_string_keys,
    ),
)


def _find_excluded_start(req: Req, d: Difference) -> bool:
    text = req.body.decode("utf-8", "replace") if isinstance(req.body, bytes) else json.dumps(req.body)
    return (req.endpoint == "POST /{db}/_find" and d.kind == "body"
            and d.where == ".execution_stats.total_keys_examined" and d.what == "value"
            and isinstance(d.couchpy, int) and isinstance(d.couchdb, int) and d.couchpy < d.couchdb
            and ("$gt" in text or "$lt" in text))


KNOWN += (
    KnownDifference(
        "find-index-excluded-start",
        "`_find` over a JSON index with `$gt` (or, descending, `$lt`) on its first field: couchpy "
        "starts past the rows of the excluded value, which no selector can match; CouchDB reads "
        "them and turns them down, so couchpy's `total_keys_examined` and `total_docs_examined` "
        "are smaller (the results are the same).",
        _find_excluded_start,
    ),
)


# Differences found and not yet resolved. Listed (and documented) so that none passes silently;
# each entry is to be fixed and removed. Empty: every difference found so far is fixed or in KNOWN.
OPEN: tuple[KnownDifference, ...] = ()


def known(req: Req, d: Difference) -> KnownDifference | None:
    return next((k for k in KNOWN + OPEN if k.match(req, d)), None)
