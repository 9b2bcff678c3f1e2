"""Replication ids: one stable name per replication.

A replication is identified by who copies what and where: the node running it (its uuid), the
source, the target, and every option that changes *which* documents move (filter function and its
parameters, `doc_ids`, `selector`, `since_seq`). The id names the checkpoint documents `_local/<base id>` on both sides, so it must be
the same every time the same replication is started again (after a restart, on another day) and
different as soon as the result could differ. Options that only change *how* it runs (batch sizes,
timeouts, connection counts) are deliberately left out, so tuning them keeps the checkpoints.

As in CouchDB, the full id is the base id plus `+continuous` / `+create_target` suffixes; the
checkpoint uses the base id only, so a one-shot run and a continuous run of the same replication share
their progress. The user name is part of an endpoint (another user may see other documents) but the
password never enters the id (changing a password keeps the checkpoints), nor a trailing slash or
default port.

Why the node: two nodes that each push "http://127.0.0.1:5984/db" to one peer name the same URLs,
yet copy different databases. Without the node in the id they would share one checkpoint document
on the peer, each overwriting the other's claim (CouchDB's version 4 ids start with the server's
uuid for this reason). Checkpoints are still compared on both sides before they are trusted
(replicator.checkpoint), so a shared document cost a full re-scan; it never skipped a change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from couchpy.jsonutil import dumps_sorted

# Bumped when the recipe changes: old checkpoints then simply stop matching (a full re-scan, never
# a wrong skip).
REPLICATION_ID_VERSION = 4


def normalize_endpoint(endpoint: Any) -> str:
    """The identity of an endpoint: URL with its user name but no password and no trailing slash,
    or a local db name."""
    user = None
    if isinstance(endpoint, dict):
        user = _user_of(endpoint)
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
    user = parts.username or user  # the URL's user first, as CouchDB
    if user:
        netloc = f"{user}@{netloc}"
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, ""))


def _user_of(spec: dict[str, Any]) -> str | None:
    """The user an endpoint object names apart from its URL: `auth.basic.username`, or a Basic
    `Authorization` header."""
    auth = spec.get("auth")
    basic = auth.get("basic") if isinstance(auth, dict) else None
    if isinstance(basic, dict) and isinstance(basic.get("username"), str):
        return basic["username"]
    headers = spec.get("headers")
    for key, value in (headers.items() if isinstance(headers, dict) else ()):
        if key.lower() == "authorization" and isinstance(value, str) and value[:6].lower() == "basic ":
            try:
                return base64.b64decode(value[6:].strip(), validate=True).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None


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


def base_id(source: Any, target: Any, options: dict[str, Any] | None = None) -> str:
    """The 32-hex-digit id shared by every run of this replication (`options["node"]`: the uuid
    of the node running it)."""
    options = options or {}
    material = [options.get("node") or "", normalize_endpoint(source), normalize_endpoint(target),
                *_filter_part(options)]
    return hashlib.md5(dumps_sorted(material)).hexdigest()


def replication_id(source: Any, target: Any, options: dict[str, Any] | None = None) -> str:
    """Base id plus CouchDB's `+continuous` / `+create_target` suffixes."""
    options = options or {}
    rid = base_id(source, target, options)
    if options.get("continuous"):
        rid += "+continuous"
    if options.get("create_target"):
        rid += "+create_target"
    return rid


def split_id(rep_id: str) -> str:
    """The base id of a full id (drops the suffixes)."""
    return rep_id.split("+", 1)[0]
