"""A remote database over CouchDB's HTTP API.

One keep-alive aiohttp session per endpoint (at most `http_connections` connections). Every request
is retried with exponential backoff (0.25 s doubling, capped at 10 s, `retries_per_request` times)
when the failure may be transient: connection refused/reset, a timeout, a body cut short, 5xx or
429. 401/403 are permanent. All requests the replicator makes are safe to repeat: reads, and
`_bulk_docs` with `new_edits=false` (merging a revision twice is a no-op); only the checkpoint PUT
can meet its own earlier success as a 409, which `put_local` resolves by re-reading the revision.

Credentials come from the URL's userinfo, `auth: {"basic": {"username", "password"}}` or an
`Authorization` header in `headers`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp

from couchpy import jsonutil
from couchpy.attachments.mime import new_boundary, related_apieces, related_content_type, related_length
from couchpy.errors import BadRequest

from .attachments import RevisionWithBodies, needs_data, part_for
from .errors import AuthError, DbNotFound, PermanentError, TransientError

log = logging.getLogger("couchpy.replicator")

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
READ_CHUNK = 256 * 1024  # bytes of an attachment body read at a time


def basic_authorization(user: str, password: str) -> str:
    """The `Authorization` header of HTTP basic auth (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HttpEndpoint:
    def __init__(
        self,
        spec: Any,
        *,
        http_connections: int = 20,
        connection_timeout: int = 30000,
        retries_per_request: int = 5,
        session: aiohttp.ClientSession | None = None,
    ):
        if isinstance(spec, str):
            spec = {"url": spec}
        parts = urlsplit(spec["url"])
        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        # a URL's userinfo is percent-encoded; `auth.basic`'s strings are the credentials as they are
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password or "")
        basic = (spec.get("auth") or {}).get("basic") if isinstance(spec.get("auth"), dict) else None
        if isinstance(basic, dict):
            user, password = basic.get("username"), basic.get("password")
            user = None if user is None else str(user)
            password = "" if password is None else str(password)
        if user is not None and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = basic_authorization(user, password)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        masked = f"{quote(user, safe='')}:*****@{netloc}" if user is not None else netloc
        self.display = urlunsplit((parts.scheme, masked, parts.path.rstrip("/") + "/", "", ""))
        self.headers = headers
        self.retries = retries_per_request
        self.timeout = connection_timeout / 1000.0
        self._own_session = session is None
        self._session = session
        self._connections = http_connections
        self._no_bulk_get = False

    # ------------------------------------------------------------------ plumbing

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout),
                headers=self.headers,
                json_serialize=lambda o: jsonutil.dumps(o).decode(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        read_timeout: float | None = None,
        accept_status: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """(status, parsed JSON) of a request, retried while failures may be transient.

        Statuses below 400 and those in `accept_status` are returned; 401/403 raise AuthError,
        404 DbNotFound, other 4xx PermanentError, 5xx/429 and network errors TransientError once the
        retries are exhausted.
        """
        url = self.base + path
        data = jsonutil.dumps(body) if body is not None else None
        headers = JSON_HEADERS if body is not None else {"Accept": "application/json"}
        timeout = None
        if read_timeout is not None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=read_timeout)
        delay = 0.25
        attempt = 0
        while True:
            problem: str
            retry_after = ""
            failed_status: int | None = None  # the 5xx/429 of a failed attempt (None: no answer)
            try:
                async with self._sess().request(
                    method, url, params=params, data=data, headers=headers, timeout=timeout
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After", "")
                if status < 400 or status in accept_status:
                    try:
                        return status, jsonutil.loads(raw) if raw else None
                    except BadRequest:
                        problem = f"unparsable response to {method} {path} ({len(raw)} bytes)"
                elif status in (401, 403):
                    raise AuthError(f"{status} from {method} {self.display}{path.lstrip('/')}: {_reason(raw)}", status=status)
                elif status == 404:
                    raise DbNotFound(f"{method} {self.display}{path.lstrip('/')}: {_reason(raw)}", status=404)
                elif status == 429 or status >= 500:
                    problem = f"{status} from {method} {path}: {_reason(raw)}"
                    failed_status = status
                else:
                    raise PermanentError(f"{status} from {method} {path}: {_reason(raw)}", status=status)
            except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError) as exc:
                problem = f"{type(exc).__name__} on {method} {path}: {exc}"
            attempt += 1
            if attempt > self.retries:
                raise TransientError(problem, status=failed_status)
            log.info("retrying (%d/%d) after %s", attempt, self.retries, problem)
            # A 429/503 may say when to come back; honour it within reason.
            wait = max(delay, min(float(retry_after), 30.0)) if retry_after.isascii() and retry_after.isdigit() else delay
            await asyncio.sleep(wait)
            delay = min(delay * 2, 10.0)

    # ------------------------------------------------------------------ the interface

    async def info(self) -> dict[str, Any]:
        _, body = await self.request("GET", "/")
        if not isinstance(body, dict):
            raise PermanentError(f"{self.display} did not answer with database info")
        return body

    async def create(self, params: dict[str, Any] | None = None) -> None:
        q = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (params or {}).items()}
        await self.request("PUT", "/", params=q or None, accept_status=(412,))

    async def changes(
        self,
        since: Any,
        limit: int,
        *,
        feed: str = "normal",
        timeout_ms: int = 10000,
        doc_ids: list[str] | None = None,
        selector: dict[str, Any] | None = None,
        filter: str | None = None,
        query_params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params = {"style": "all_docs", "since": _seq_param(since), "limit": str(limit), "feed": feed}
        read_timeout = None
        if feed == "longpoll":
            params["timeout"] = str(timeout_ms)
            read_timeout = self.timeout + timeout_ms / 1000.0
        body = None
        if doc_ids is not None:
            params["filter"] = "_doc_ids"
            body = {"doc_ids": doc_ids}
        elif selector is not None:
            params["filter"] = "_selector"
            body = {"selector": selector}
        elif filter:
            params["filter"] = filter
            for k, v in (query_params or {}).items():
                params[str(k)] = v if isinstance(v, str) else jsonutil.dumps(v).decode()
        method = "POST" if body is not None else "GET"
        _, out = await self.request(method, "/_changes", params=params, body=body, read_timeout=read_timeout)
        if not isinstance(out, dict) or not isinstance(out.get("results"), list):
            raise TransientError("malformed _changes response")
        return out

    async def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, Any]:
        if not revs:
            return {}
        _, out = await self.request("POST", "/_revs_diff", body=revs)
        return out or {}

    async def bulk_get(self, reqs: list[dict[str, Any]], attachments: bool = True) -> list[dict[str, Any]]:
        """The revisions asked for, with `_revisions`; attachment bodies inline (base64) when
        `attachments`, else stubs (the job then streams what the target lacks, see open_revs_stream)."""
        if not reqs:
            return []
        params = {"revs": "true", "latest": "true", "attachments": "true" if attachments else "false"}
        if not self._no_bulk_get:
            try:
                _, out = await self.request("POST", "/_bulk_get", params=params, body={"docs": reqs}, accept_status=(400, 405, 501))
                if isinstance(out, dict) and isinstance(out.get("results"), list):
                    docs: list[dict[str, Any]] = []
                    for result in out["results"]:
                        for item in result.get("docs") or []:
                            if isinstance(item.get("ok"), dict):
                                docs.append(item["ok"])
                    return await self._complete_attachments(docs, reqs) if attachments else docs
            except DbNotFound:
                await self.info()  # the database is there: _bulk_get itself is unknown
            log.info("%s has no usable _bulk_get; falling back to GET open_revs", self.display)
            self._no_bulk_get = True
        return await self._open_revs(reqs, attachments)

    async def _complete_attachments(self, docs: list[dict[str, Any]], reqs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Refetch (GET open_revs) the docs whose _bulk_get answer left out attachment data the
        target needs: a server may ignore `attachments=true` on _bulk_get."""
        since = {r["id"]: r.get("atts_since") or [] for r in reqs}
        lacking = [d for d in docs if needs_data(d, since.get(d.get("_id"), []))]
        if not lacking:
            return docs
        ids = {d["_id"] for d in lacking}
        refetched = await self._open_revs([r for r in reqs if r["id"] in ids])
        return [d for d in docs if d.get("_id") not in ids] + refetched

    async def _open_revs(self, reqs: list[dict[str, Any]], attachments: bool = True) -> list[dict[str, Any]]:
        by_id: dict[str, list[dict[str, Any]]] = {}
        for r in reqs:
            by_id.setdefault(r["id"], []).append(r)
        sem = asyncio.Semaphore(max(1, self._connections))

        async def one(docid: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            params = {
                "open_revs": jsonutil.dumps([i["rev"] for i in items]).decode(),
                "revs": "true",
                "latest": "true",
                "attachments": "true" if attachments else "false",
            }
            ancestors = sorted({a for i in items for a in i.get("atts_since") or []})
            if ancestors and attachments:  # atts_since would imply attachments=true
                params["atts_since"] = jsonutil.dumps(ancestors).decode()
            async with sem:
                try:
                    _, out = await self.request("GET", "/" + _doc_path(docid), params=params)
                except DbNotFound:
                    return []
            return [row["ok"] for row in out or [] if isinstance(row, dict) and isinstance(row.get("ok"), dict)]

        results = await asyncio.gather(*(one(d, items) for d, items in by_id.items()))
        return [doc for part in results for doc in part]

    async def open_revs_stream(self, docid: str, revs: list[str], atts_since: list[str]) -> AsyncIterator[RevisionWithBodies]:
        """The revisions (latest=true) with the attachment bodies the target lacks, read as
        CouchDB's replicator reads them: `GET open_revs` answered as multipart/mixed, one
        multipart/related part per revision, bodies in their stored encoding. Each revision's
        bodies must be consumed, in order, before the next revision is asked for."""
        params = {
            "open_revs": jsonutil.dumps(revs).decode(),
            "revs": "true",
            "latest": "true",
            "attachments": "true",
            "att_encoding_info": "true",
        }
        if atts_since:
            params["atts_since"] = jsonutil.dumps(sorted(set(atts_since))).decode()
        path = "/" + _doc_path(docid)
        try:
            async with self._sess().get(self.base + path, params=params,
                                        headers={"Accept": "multipart/mixed"}) as resp:
                if resp.status >= 400:
                    self._raise_for(resp.status, await resp.read(), "GET", path)
                if _media(resp.headers.get("Content-Type")) != "multipart/mixed":
                    # a server that answers JSON anyway: bodies inline, nothing follows
                    for row in jsonutil.loads(await resp.read()) or []:
                        if isinstance(row, dict) and isinstance(row.get("ok"), dict):
                            yield row["ok"], []
                    return
                reader = aiohttp.MultipartReader(resp.headers, resp.content)
                while True:
                    part = await reader.next()
                    if part is None:
                        return
                    if isinstance(part, aiohttp.MultipartReader):
                        yield await _related_revision(part)
                        await part.release()  # whatever the consumer left unread
                        continue
                    doc = jsonutil.loads(await part.read())
                    if isinstance(doc, dict) and "_id" in doc and "_rev" in doc:
                        yield doc, []
        except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError) as exc:
            raise TransientError(f"{type(exc).__name__} reading {docid} from {self.display}: {exc}") from exc

    async def write_doc(self, doc: dict[str, Any], parts: list[Any]) -> dict[str, Any] | None:
        """Write one revision with `new_edits=false`; with attachment bodies as multipart/related,
        streamed with a Content-Length known in advance. None when written, else the failure row
        (as `_bulk_docs` lists them). Not retried here: the bodies are read once."""
        path = "/" + _doc_path(doc["_id"])
        body = jsonutil.dumps(doc)
        boundary = new_boundary()
        headers = {"Content-Type": related_content_type(boundary, parts), "Accept": "application/json",
                   "Content-Length": str(related_length(boundary, body, parts))}
        data: Any = related_apieces(boundary, body, parts) if parts else body
        try:
            async with self._sess().put(self.base + path, params={"new_edits": "false"}, data=data,
                                        headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError) as exc:
            raise TransientError(f"{type(exc).__name__} writing {doc['_id']} to {self.display}: {exc}") from exc
        if status < 400:
            return None
        if status in (401, 404) or status == 429 or status >= 500:
            self._raise_for(status, raw, "PUT", path)
        try:
            reply = jsonutil.loads(raw)
        except BadRequest:
            reply = {}
        reply = reply if isinstance(reply, dict) else {}
        return {"id": doc["_id"], "rev": doc.get("_rev"), "error": reply.get("error", str(status)),
                "reason": reply.get("reason", "")}

    def _raise_for(self, status: int, raw: bytes, method: str, path: str) -> None:
        where = f"{method} {self.display}{path.lstrip('/')}: {_reason(raw)}"
        if status in (401, 403):
            raise AuthError(f"{status} from {where}", status=status)
        if status == 404:
            raise DbNotFound(where, status=404)
        if status == 429 or status >= 500:
            raise TransientError(f"{status} from {where}")
        raise PermanentError(f"{status} from {where}", status=status)

    async def bulk_docs(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not docs:
            return []
        _, out = await self.request("POST", "/_bulk_docs", body={"docs": docs, "new_edits": False})
        # With new_edits=false CouchDB lists only the failures; be lenient with servers listing all.
        return [row for row in out or [] if isinstance(row, dict) and "error" in row]

    async def get_design(self, ddoc_id: str) -> dict[str, Any] | None:
        try:
            _, out = await self.request("GET", "/_design/" + quote(ddoc_id, safe=""))
        except DbNotFound:
            return None
        return out if isinstance(out, dict) else None

    async def get_local(self, local_id: str) -> dict[str, Any] | None:
        try:
            _, out = await self.request("GET", "/_local/" + quote(local_id, safe=""))
        except DbNotFound:
            return None
        return out if isinstance(out, dict) else None

    async def put_local(self, local_id: str, body: dict[str, Any]) -> None:
        path = "/_local/" + quote(local_id, safe="")
        for _ in range(5):
            current = await self.get_local(local_id)
            doc = dict(body)
            doc.pop("_rev", None)
            if current and "_rev" in current:
                doc["_rev"] = current["_rev"]
            status, _ = await self.request("PUT", path, body=doc, accept_status=(409,))
            if status != 409:
                return
        raise TransientError(f"checkpoint {local_id} kept conflicting on {self.display}")


async def _related_revision(related: aiohttp.MultipartReader) -> RevisionWithBodies:
    """One multipart/related part of an open_revs reply: the JSON, then lazy bodies in order."""
    head = await related.next()
    if head is None or isinstance(head, aiohttp.MultipartReader):
        raise TransientError("multipart revision without its JSON part")
    doc = jsonutil.loads(await head.read())
    atts = doc.get("_attachments") or {}
    parts = [part_for(name, e, _next_body(related, name)) for name, e in atts.items()
             if isinstance(e, dict) and e.get("follows")]
    return doc, parts


async def _next_body(related: aiohttp.MultipartReader, name: str) -> AsyncIterator[bytes]:
    body = await related.next()
    if body is None or isinstance(body, aiohttp.MultipartReader):
        raise TransientError(f"attachment {name} is missing from the multipart reply")
    while True:
        try:
            chunk = await body.read_chunk(READ_CHUNK)
        except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError, ValueError) as exc:
            # read by whoever writes the target (maybe the engine, not this endpoint): say it is
            # worth retrying, whatever the consumer
            raise TransientError(f"{type(exc).__name__} reading attachment {name}: {exc}") from exc
        if not chunk:
            return
        yield chunk


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _reason(raw: bytes) -> str:
    try:
        body = jsonutil.loads(raw)
        if isinstance(body, dict):
            return f"{body.get('error')}: {body.get('reason')}"
    except Exception:  # noqa: BLE001 - any body: only a message is wanted
        pass
    return raw[:200].decode("utf-8", "replace")


def _seq_param(seq: Any) -> str:
    return seq if isinstance(seq, str) else jsonutil.dumps(seq).decode()


def _doc_path(docid: str) -> str:
    if docid.startswith("_design/"):
        return "_design/" + quote(docid[8:], safe="")
    return quote(docid, safe="")
