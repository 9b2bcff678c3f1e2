"""What of an answer is compared, with what legitimately differs between servers taken out.

Pure functions. Legitimate differences: revision hashes the servers generate (couchpy hashes a
revision differently from CouchDB's Erlang term digest), generated document ids and uuids, the
opaque part of sequences, timestamps, file sizes and per-instance values. Hashes the request
sequence itself supplied (`new_edits=false` revisions) are kept: both servers must echo them.
"""

from __future__ import annotations

import re
from typing import Any

REV = re.compile(r"^(\d+)-([0-9a-f]{32})$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
# Mango names an index's design document by a digest of its definition, computed differently
MANGO_DDOC = re.compile(r"^(_design/)?([0-9a-f]{40})$")
SEQ = re.compile(r"^(\d+)-[A-Za-z0-9_\-]+$")
HEX_ANYWHERE = re.compile(r"[0-9a-f]{32}")
BOUNDARY = re.compile(r'boundary=("[^"]*"|[^;\s]+)', re.I)

SEQ_KEYS = frozenset({"seq", "last_seq", "update_seq", "purge_seq"})
# per-instance or per-file values: compared by type only
SHAPE_ONLY_KEYS = frozenset({"instance_start_time", "sizes", "execution_time_ms", "bookmark",
                             "disk_size", "data_size", "other"})
COMPARED_HEADERS = ("content-type", "etag", "location", "accept-ranges", "content-range", "allow",
                    "content-encoding", "content-length")


class Hashes:
    """Names generated hashes by order of first appearance, so that two servers that generate
    different hashes for the same history read the same."""

    def __init__(self, given: frozenset[str]):
        self.given = given
        self.names: dict[str, str] = {}

    def name(self, h: str) -> str:
        if h in self.given:
            return h
        got = self.names.get(h)
        if got is None:
            got = self.names[h] = f"<h{len(self.names)}>"
        return got

    def string(self, s: str) -> str:
        m = REV.match(s)
        if m:
            return f"{m.group(1)}-{self.name(m.group(2))}"
        if HEX32.match(s):
            return self.name(s)
        m = MANGO_DDOC.match(s)
        if m:
            return (m.group(1) or "") + self.name(m.group(2))
        return s


def given_hashes(text: str) -> frozenset[str]:
    """The 32-hex strings the requests themselves contain."""
    return frozenset(HEX_ANYWHERE.findall(text))


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def body(value: Any, hashes: Hashes, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: (_shape(v) if k in SHAPE_ONLY_KEYS else body(v, hashes, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [body(v, hashes, key) for v in value]
    if isinstance(value, str):
        if key == "reason":
            # a reason may name a generated document id
            return HEX_ANYWHERE.sub(lambda m: hashes.name(m.group(0)), value)
        if key in SEQ_KEYS:
            m = SEQ.match(value)
            if m:
                return f"{m.group(1)}-*"
        return hashes.string(value)
    return value


def header(name: str, value: str, hashes: Hashes, is_json: bool) -> str | None:
    """A compared header's normalised value; None when it is not compared for this answer."""
    if name == "etag":
        inner = value.strip('"')
        m = REV.match(inner)
        # a document's ETag is its revision; other ETags (views, listings) are opaque digests
        return f'"{hashes.string(inner)}"' if m else "<opaque>"
    if name == "location":
        # the host is each server's own; a generated document id in the path is named as in bodies
        path = re.sub(r"^https?://[^/]+", "", value)
        return HEX_ANYWHERE.sub(lambda m: hashes.name(m.group(0)), path)
    if name == "content-length" and is_json:
        return None  # JSON whitespace may differ; the parsed bodies are compared
    if name == "content-type":
        return BOUNDARY.sub("boundary=<boundary>", value.replace(" ", "").lower())
    return value


def answer(status: int, headers: dict[str, str], payload: Any, hashes: Hashes) -> dict:
    is_json = not isinstance(payload, bytes)
    hdrs = {}
    for name in COMPARED_HEADERS:
        if name in headers:
            v = header(name, headers[name], hashes, is_json)
            if v is not None:
                hdrs[name] = v
    m = BOUNDARY.search(headers.get("content-type", ""))
    if m and isinstance(payload, bytes):
        # each server draws its own multipart boundary
        payload = payload.replace(m.group(1).strip('"').encode(), b"<boundary>")
    return {"status": status, "headers": hdrs, "body": body(payload, hashes) if is_json else payload}
