"""Replication parameters: one validated object from a `_replicate` body or a `_replicator` doc.

Durations are given in milliseconds, as in CouchDB (`checkpoint_interval`, `connection_timeout`).
Unknown fields are ignored (CouchDB documents carry `_id`, `_rev`, `owner`, `user_ctx`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from couchpy.errors import BadRequest


@dataclass
class ReplicationParams:
    source: Any
    target: Any
    continuous: bool = False
    create_target: bool = False
    create_target_params: dict[str, Any] = field(default_factory=dict)
    doc_ids: list[str] | None = None
    selector: dict[str, Any] | None = None
    filter: str | None = None
    filter_code: str | None = None  # the design filter's source, read from the source (filter_code.py)
    query_params: dict[str, Any] = field(default_factory=dict)
    since_seq: Any = None
    use_checkpoints: bool = True
    checkpoint_interval: int = 5000  # ms
    worker_batch_size: int = 500
    worker_processes: int = 4
    http_connections: int = 20
    connection_timeout: int = 30000  # ms
    retries_per_request: int = 5
    cancel: bool = False
    replication_id: str | None = None
    node_uuid: str = ""  # the node running it (set by its scheduler): part of the id, see repid


    def id_options(self) -> dict[str, Any]:
        """The options that enter the replication id (see repid)."""
        return {
            "node": self.node_uuid,
            "continuous": self.continuous,
            "create_target": self.create_target,
            "doc_ids": self.doc_ids,
            "selector": self.selector,
            "filter": self.filter,
            "filter_code": self.filter_code,
            "query_params": self.query_params,
            "since_seq": self.since_seq,
        }


def _bool(body: dict, key: str, default: bool) -> bool:
    v = body.get(key, default)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if not isinstance(v, bool):
        raise BadRequest(f"`{key}` must be a boolean")
    return v


def _int(body: dict, key: str, default: int, minimum: int = 1) -> int:
    v = body.get(key, default)
    if isinstance(v, str) and v.isascii() and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise BadRequest(f"`{key}` must be an integer >= {minimum}")
    return v


def _endpoint(body: dict, key: str) -> Any:
    v = body.get(key)
    if isinstance(v, str) and v:
        return v
    if isinstance(v, dict) and isinstance(v.get("url"), str) and v["url"]:
        if "headers" in v and not isinstance(v["headers"], dict):
            raise BadRequest(f"`{key}.headers` must be an object")
        return v
    raise BadRequest(f"`{key}` must be a database URL, a database name or an object with `url`")


def parse(body: Any) -> ReplicationParams:
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    cancel = _bool(body, "cancel", False)
    if cancel and "replication_id" in body and not ("source" in body and "target" in body):
        rid = body["replication_id"]
        if not isinstance(rid, str):
            raise BadRequest("`replication_id` must be a string")
        return ReplicationParams(source=None, target=None, cancel=True, replication_id=rid)
    p = ReplicationParams(source=_endpoint(body, "source"), target=_endpoint(body, "target"), cancel=cancel)
    p.continuous = _bool(body, "continuous", False)
    p.create_target = _bool(body, "create_target", False)
    ctp = body.get("create_target_params", {})
    if not isinstance(ctp, dict):
        raise BadRequest("`create_target_params` must be an object")
    p.create_target_params = ctp
    doc_ids = body.get("doc_ids")
    if doc_ids is not None:
        if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
            raise BadRequest("`doc_ids` must be an array of strings")
        p.doc_ids = doc_ids
    selector = body.get("selector")
    if selector is not None:
        if not isinstance(selector, dict):
            raise BadRequest("`selector` must be a JSON object")
        p.selector = selector
    flt = body.get("filter")
    if flt is not None:
        if not isinstance(flt, str):
            raise BadRequest("`filter` must be a string")
        if flt == "_doc_ids" and p.doc_ids is None:
            raise BadRequest("filter `_doc_ids` needs `doc_ids`")
        if flt == "_selector" and p.selector is None:
            raise BadRequest("filter `_selector` needs `selector`")
        if flt not in ("_doc_ids", "_selector"):
            p.filter = flt
    if sum(x is not None for x in (p.doc_ids, p.selector, p.filter)) > 1:
        raise BadRequest("`doc_ids`, `selector` and `filter` are mutually exclusive")
    qp = body.get("query_params", {})
    if not isinstance(qp, dict):
        raise BadRequest("`query_params` must be an object")
    p.query_params = qp
    p.since_seq = body.get("since_seq")
    p.use_checkpoints = _bool(body, "use_checkpoints", True)
    p.checkpoint_interval = _int(body, "checkpoint_interval", p.checkpoint_interval)
    p.worker_batch_size = _int(body, "worker_batch_size", p.worker_batch_size)
    p.worker_processes = _int(body, "worker_processes", p.worker_processes)
    p.http_connections = _int(body, "http_connections", p.http_connections)
    p.connection_timeout = _int(body, "connection_timeout", p.connection_timeout)
    p.retries_per_request = _int(body, "retries_per_request", p.retries_per_request, minimum=0)
    return p
