"""The endpoint interface: what one replication needs from a database, wherever it lives.

Two implementations: `HttpEndpoint` (a remote database, CouchDB's HTTP API) and `LocalEndpoint` (a
database of this node, calling the engine directly). The job only speaks this interface, so both
behave the same. Sequences are opaque values handed back as `since`.

    info()                         db info; raises DbNotFound
    create()                       create the database (exists already: fine)
    changes(since, limit, ...)     {"results": [{"seq", "id", "changes": [{"rev"}], "deleted"?}],
                                    "last_seq", "pending"?}   (style=all_docs: every leaf)
    revs_diff({id: [rev]})         {id: {"missing": [...], "possible_ancestors": [...]}}
    bulk_get([{"id","rev","atts_since"?}], attachments)
                                   [doc with _revisions (attachment data inline, or stubs)]
    bulk_docs(docs)                rows of the documents NOT written (new_edits=false)
    open_revs_stream(id, revs, atts_since)   revisions with their attachment bodies streamed
                                   (see replicator.attachments)
    write_doc(doc, parts)          one revision with its bodies (new_edits=false): None or the
                                   failure row
    get_local(id) / put_local(id, body)      checkpoint documents (`_local/<id>`)
    close()
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from .attachments import RevisionWithBodies
from .errors import PermanentError
from .http_endpoint import HttpEndpoint
from .local_endpoint import LocalEndpoint


class Endpoint(Protocol):
    display: str  # for status output: URL with the password masked, or the local name

    async def info(self) -> dict[str, Any]: ...
    async def create(self, params: dict[str, Any] | None = None) -> None: ...
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
    ) -> dict[str, Any]: ...
    async def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, Any]: ...
    async def bulk_get(self, reqs: list[dict[str, Any]], attachments: bool = True) -> list[dict[str, Any]]: ...
    async def bulk_docs(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    async def get_design(self, ddoc_id: str) -> dict[str, Any] | None: ...  # None when missing
    def open_revs_stream(self, docid: str, revs: list[str], atts_since: list[str]) -> AsyncIterator[RevisionWithBodies]: ...
    async def write_doc(self, doc: dict[str, Any], parts: list[Any]) -> dict[str, Any] | None: ...
    async def get_local(self, local_id: str) -> dict[str, Any] | None: ...
    async def put_local(self, local_id: str, body: dict[str, Any]) -> None: ...
    async def close(self) -> None: ...


def make_endpoint(spec: Any, *, node: Any = None, **http_options: Any) -> Endpoint:
    """An endpoint for a URL / {"url", "headers", "auth"} (HTTP) or a bare database name (local)."""
    url = spec.get("url") if isinstance(spec, dict) else spec
    if isinstance(url, str) and "://" in url:
        return HttpEndpoint(spec, **http_options)
    if node is None:
        raise PermanentError(f"`{url}` is not a URL, and local databases need a server node", "bad_request")
    return LocalEndpoint(node, url)
