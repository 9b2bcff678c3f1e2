"""Replication ids: one stable name per replication.

A replication is identified by what it copies and where: the source, the target, and every option
that changes *which* documents move (filter function and its parameters, `doc_ids`, `selector`,
`since_seq`). The id names the checkpoint documents `_local/<base id>` on both sides, so it must be
the same every time the same replication is started again (after a restart, on another day) and
different as soon as the result could differ. Options that only change *how* it runs (batch sizes,
timeouts, connection counts) are deliberately left out, so tuning them keeps the checkpoints.

As in CouchDB, the full id is the base id plus `+continuous` / `+create_target` suffixes; the
checkpoint uses the base id only, so a one-shot run and a continuous run of the same replication share
their progress. Credentials never enter the id (changing a password keeps the checkpoints), nor a
trailing slash or default port.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from couchpy.jsonutil import dumps_sorted

# Bumped when the recipe changes: old checkpoints then simply stop matching (a full re-scan, never
# a wrong skip).
REPLICATION_ID_VERSION = 4


def normalize_endpoint(endpoint: Any) -> str:
    """The identity of an endpoint: URL without credentials and trailing slash, or a local db name."""
    if isinstance(endpoint, dict):
        endpoint = endpoint.get("url", "")
    if not isinstance(endpoint, str):
        raise TypeError("endpoint must be a URL, a database name or {'url': ...}")
    if "://" not in endpoint:
        return endpoint  # a local database, by name
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if port is None or port == default else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, ""))


def _filter_part(options: dict[str, Any]) -> list[Any]:
    flt = options.get("filter")
    part: list[Any] = []
    if flt and flt not in ("_doc_ids", "_selector"):
        # A design filter: its name, its code when known (editing the function changes the result)
        # and the query parameters it is called with.
        part += ["filter", flt, options.get("filter_code"), options.get("query_params") or {}]
    if options.get("doc_ids") is not None:
        part += ["doc_ids", sorted(options["doc_ids"])]
    if options.get("selector") is not None:
        part += ["selector", options["selector"]]
    if options.get("since_seq") is not None:
        part += ["since_seq", options["since_seq"]]
    return part


def base_id(source: Any, target: Any, options: dict[str, Any] | None = None, namespace: str = "") -> str:
    """The 32-hex-digit id shared by every run of this replication."""
    options = options or {}
    material = [namespace, normalize_endpoint(source), normalize_endpoint(target), *_filter_part(options)]
    return hashlib.md5(dumps_sorted(material)).hexdigest()


def replication_id(source: Any, target: Any, options: dict[str, Any] | None = None, namespace: str = "") -> str:
    """Base id plus CouchDB's `+continuous` / `+create_target` suffixes."""
    options = options or {}
    rid = base_id(source, target, options, namespace)
    if options.get("continuous"):
        rid += "+continuous"
    if options.get("create_target"):
        rid += "+create_target"
    return rid


def split_id(rep_id: str) -> str:
    """The base id of a full id (drops the suffixes)."""
    return rep_id.split("+", 1)[0]
