"""A request as the differential tester generates it, before it is bound to one server.

Requests name their database as `{db}` and may refer to revisions by placeholder, because each
server generates its own revision hashes: `$rev:<docid>` is the latest revision that server
returned for the document, `$first:<docid>` the first one. An unknown document resolves to a
well-formed revision neither server has.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

UNKNOWN_REV = "1-" + "0" * 32
# a body that is not JSON, sent as application/json: the parser's error, not the media type's
BAD_JSON = b"{bad"
PLACEHOLDER = re.compile(r"\$(rev|first):(.+)$", re.S)


@dataclass(frozen=True)
class Req:
    method: str
    path: str  # "/{db}/..." with path segments already percent-encoded
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None  # a JSON value (sent as JSON), bytes (sent as is) or None
    headers: tuple[tuple[str, str], ...] = ()
    # the endpoint family a difference is classified by, e.g. "GET /{db}/_all_docs"
    endpoint: str = ""
    # requests other requests cannot be compared after (a generated id orders unpredictably, a
    # batch=ok write becomes visible at a moment of each server's choosing)
    terminal: bool = False

    def describe(self) -> str:
        q = "?" + urllib.parse.urlencode(self.query) if self.query else ""
        text = f"{self.method} {self.path}{q}"
        for k, v in self.headers:
            text += f"\n    {k}: {v}"
        if self.body is not None:
            raw = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
            text += "\n    " + raw[:400].decode("utf-8", "replace")
        return text


@dataclass
class RevBook:
    """The revisions one server returned, per document id."""

    latest: dict[str, str] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)

    def saw(self, docid: str, rev: str) -> None:
        self.latest[docid] = rev
        self.first.setdefault(docid, rev)

    def resolve_text(self, text: str) -> str:
        # a placeholder is the whole text or its end (`Destination: b?rev=$rev:b`)
        return PLACEHOLDER.sub(self._one, text)

    def _one(self, m: re.Match) -> str:
        book = self.latest if m.group(1) == "rev" else self.first
        return book.get(m.group(2), UNKNOWN_REV)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.resolve_text(value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def learn(self, req_path: str, body: Any) -> None:
        """Remember revisions a write answered with."""
        if isinstance(body, dict) and isinstance(body.get("id"), str) and isinstance(body.get("rev"), str):
            self.saw(body["id"], body["rev"])
        elif isinstance(body, list):
            for row in body:
                if isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("rev"), str):
                    self.saw(row["id"], row["rev"])


def bind(req: Req, db: str, revs: RevBook) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path with query, headers, body bytes) of a request for one server and database."""
    path = req.path.replace("{db}", db)
    path = "/".join(urllib.parse.quote(revs.resolve_text(urllib.parse.unquote(seg)), safe="")
                    if seg.startswith("%24") or seg.startswith("$") else seg for seg in path.split("/"))
    query = [(k, revs.resolve_text(v)) for k, v in req.query]
    if query:
        path += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    headers = {k: revs.resolve_text(v) for k, v in req.headers}
    body: bytes | None
    if req.body is None:
        body = None
    elif isinstance(req.body, bytes):
        body = req.body
        if req.body == BAD_JSON:
            headers.setdefault("Content-Type", "application/json")
    else:
        body = json.dumps(revs.resolve(req.body)).encode()
        headers.setdefault("Content-Type", "application/json")
    return req.method, path, headers, body
