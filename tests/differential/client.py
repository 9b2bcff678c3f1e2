"""Sending a request sequence to one server over plain HTTP/1.1 and recording what it answered.

Plain `http.client` (not an HTTP library that fixes requests up) so that malformed requests reach
the server as generated. Each sequence gets a fresh database; the real CouchDB's is created with
`q=1`, so its changes feed has couchpy's single order instead of an interleaving of shards.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from .model import Req, RevBook, bind

TIMEOUT = 30.0
# After a design document changes, CouchDB forgets the database's validation functions twice: at
# once, and again from a process it spawns (fabric:reset_validation_funs). Whether the next write
# loads them before that second reset lands decides how a later edit of a missing document is
# answered (see couchpy.validation.checks_skipped); waiting this long lets it land first.
DDOC_SETTLE = 0.15


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or bytes when the answer is not JSON


@dataclass
class Target:
    """One server: its base URL (with credentials) and whether it is the real CouchDB."""

    url: str
    is_couchdb: bool

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        cred = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
        self.authorization = "Basic " + base64.b64encode(cred.encode()).decode()


class Session:
    def __init__(self, target: Target):
        self.target = target
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def raw(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Answer:
        headers = {"Authorization": self.target.authorization, **headers}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.target.host, self.target.port, timeout=TIMEOUT)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if resp.will_close:
                    self.close()
                break
            except (http.client.HTTPException, ConnectionError):
                # the server closed a kept-alive connection (after an error answer it did not read
                # the body of): reconnect once
                self.close()
                if attempt:
                    raise
        ctype = hdrs.get("content-type", "")
        parsed: Any = data
        if ctype.startswith("application/json") or (ctype.startswith("text/plain") and data[:1] in (b"{", b"[")):
            try:
                parsed = json.loads(data) if data else data
            except ValueError:
                parsed = data
        return Answer(resp.status, hdrs, parsed)


def _may_change_ddoc(req: Req, ans: Answer) -> bool:
    if req.method in ("GET", "HEAD") or not 200 <= ans.status < 300:
        return False
    text = req.describe()
    return "_design" in text or "_index" in text


def fresh_db_name() -> str:
    return "difftest-" + uuid.uuid4().hex[:16]


def run_sequence(target: Target, reqs: list[Req], db: str | None = None) -> list[Answer]:
    """Answers to each request of a sequence, on a database created for it and deleted after."""
    db = db or fresh_db_name()
    session = Session(target)
    revs = RevBook()
    try:
        create = f"/{db}?q=1" if target.is_couchdb else f"/{db}"
        made = session.raw("PUT", create, {}, None)
        if made.status != 201:
            raise RuntimeError(f"cannot create {db} on {target.url}: {made.status} {made.body!r}")
        answers = []
        for req in reqs:
            method, path, headers, body = bind(req, db, revs)
            ans = session.raw(method, path, headers, body)
            revs.learn(path, ans.body)
            answers.append(ans)
            if target.is_couchdb and _may_change_ddoc(req, ans):
                time.sleep(DDOC_SETTLE)
        return answers
    finally:
        try:
            session.raw("DELETE", f"/{db}", {}, None)
        finally:
            session.close()
