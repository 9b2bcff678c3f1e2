"""A small HTTP client of one database, for the command line's dump, load and compact.

The database is named by a URL that may carry credentials (`http://admin:pw@host:5984/db`); they
are sent as HTTP basic auth and never printed (`display` is the URL without them).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp

from couchpy import jsonutil
from couchpy.errors import CouchError
from replicator.http_endpoint import basic_authorization


class ClientError(Exception):
    """The server refused a request; carries its status and CouchDB error body."""

    def __init__(self, status: int, body: Any, what: str):
        self.status, self.body = status, body
        super().__init__(f"{what}: HTTP {status} {jsonutil.dumps(body).decode() if body is not None else ''}")


class DbClient:
    def __init__(self, url: str, timeout: float = 300.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.path.strip("/"):
            raise ValueError(f"not a database URL: {self._strip(url)}")
        # a header rather than aiohttp's BasicAuth, which aiohttp 4 removes
        self.headers = ({"Authorization": basic_authorization(unquote(parts.username), unquote(parts.password or ""))}
                        if parts.username is not None else {})
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        if ":" in parts.hostname:
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        self.db_url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.server_url = urlunsplit((parts.scheme, netloc, "", "", ""))
        self.display = self.db_url
        self._session = aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=timeout))

    @staticmethod
    def _strip(url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))

    async def close(self) -> None:
        await self._session.close()

    async def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
                      server: bool = False, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        url = (self.server_url if server else self.db_url) + path
        data = jsonutil.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"} if data else {
            "Accept": "application/json"}
        async with self._session.request(method, url, data=data, params=params, headers=headers) as resp:
            raw = await resp.read()
            try:
                body = jsonutil.loads(raw) if raw else None
            except CouchError:
                body = {"error": "not_json", "reason": raw[:200].decode(errors="replace")}
            if resp.status not in ok:
                raise ClientError(resp.status, body, f"{method} {self.display}{path}")
            return body

    async def info(self) -> dict[str, Any]:
        return await self.request("GET", "")

    async def ensure_exists(self) -> None:
        try:
            await self.request("PUT", "", ok=(201, 202))
        except ClientError as exc:
            if exc.status != 412:  # file_exists
                raise

    async def changes(self, since: str | int, limit: int) -> dict[str, Any]:
        """One page of the feed with every leaf revision of each document (deleted ones too)."""
        return await self.request("GET", "/_changes", params={
            "since": str(since), "limit": str(limit), "style": "all_docs", "seq_interval": "1"})

    async def bulk_get(self, reqs: list[dict[str, str]], attachments: bool) -> list[dict[str, Any]]:
        """Each requested revision with its `_revisions` history (and attachment data inline)."""
        out = await self.request("POST", "/_bulk_get", json={"docs": reqs}, params={
            "revs": "true", "attachments": "true" if attachments else "false"})
        docs = []
        for result in out["results"]:
            for item in result["docs"]:
                if "ok" in item:
                    docs.append(item["ok"])
                elif item.get("error", {}).get("error") != "not_found":
                    raise ClientError(500, item["error"], f"_bulk_get {result.get('id')}")
        return docs

    async def bulk_docs_replicated(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write revisions as they are (`new_edits: false`): the revision trees merge, idempotent."""
        out = await self.request("POST", "/_bulk_docs", json={"docs": docs, "new_edits": False})
        return [r for r in out or [] if "error" in r]

    async def local_docs(self) -> list[dict[str, Any]]:
        out = await self.request("GET", "/_local_docs", params={"include_docs": "true"})
        return [row["doc"] for row in out["rows"] if row.get("doc")]

    async def put(self, docid: str, doc: dict[str, Any]) -> None:
        await self.request("PUT", "/" + quote(docid, safe="/" if docid.startswith("_local/") else ""), json=doc)
