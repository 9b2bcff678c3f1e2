"""The cluster definition: which nodes form one service, how many copies of each database.

Read from an INI section `[cluster]`, the same on every node:

    [cluster]
    n = 2
    node1@127.0.0.1 = http://admin:secret@127.0.0.1:15984 zone=a
    node2@127.0.0.1 = http://admin:secret@127.0.0.1:15985 zone=b
    node3@127.0.0.1 = http://admin:secret@127.0.0.1:15986

Settings: `n` (copies of each database), `w` and `r` (the default write and read quorum of a
request that gives no `?w=`/`?r=`; `w` defaults as CouchDB's to a majority of the database's
copies, `r` to 1: a read is answered from the copy asked), `request_timeout` (milliseconds a
quorum write or read waits for the other copies before answering with what it has; 10000).
Every key other than the settings names a node; its value is the node's URL (with the
credentials the nodes use to replicate from one another) and optionally `zone=<name>`. Which of the
nodes a process is comes from outside the shared definition (`couchpy serve --node-name`).
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

SETTINGS = ("n", "w", "r", "request_timeout")
DEFAULT_N = 3
DEFAULT_REQUEST_TIMEOUT_MS = 10000


class ClusterConfigError(ValueError):
    """A cluster definition that cannot be used as written."""


@dataclass(frozen=True)
class ClusterNode:
    name: str
    url: str  # with credentials, never shown
    zone: str | None = None

    @property
    def public_url(self) -> str:
        """The URL without credentials: what may be logged, shown or written to HAProxy's config."""
        return strip_credentials(self.url)


@dataclass(frozen=True)
class ClusterDef:
    nodes: tuple[ClusterNode, ...]
    n: int
    w: int | None = None  # None: a majority of each database's copies
    r: int | None = None  # None: 1
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_MS / 1000  # seconds

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterConfigError(f"node {name!r} is not in the cluster definition")

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]


def strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _parse_node(name: str, value: str) -> ClusterNode:
    words = value.split()
    if not words:
        raise ClusterConfigError(f"node {name!r} has no URL")
    url, zone = words[0].rstrip("/"), None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClusterConfigError(f"node {name!r}: {strip_credentials(url)!r} is not an http(s) URL")
    try:
        parts.port
    except ValueError as exc:
        raise ClusterConfigError(f"node {name!r}: bad port") from exc
    for word in words[1:]:
        key, sep, val = word.partition("=")
        if key != "zone" or not sep or not val:
            raise ClusterConfigError(f"node {name!r}: unknown option {word!r} (only zone=<name>)")
        zone = val
    return ClusterNode(name=name, url=url, zone=zone)


def parse(section: dict[str, str]) -> ClusterDef | None:
    """The definition in a `[cluster]` section, or None when it names no node (a single node)."""
    nodes = tuple(_parse_node(k.strip(), v) for k, v in sorted(section.items()) if k.strip() not in SETTINGS)
    if not nodes:
        return None
    raw_n = section.get("n", str(min(DEFAULT_N, len(nodes)))).strip()
    if not (raw_n.isascii() and raw_n.isdigit()) or int(raw_n) < 1:
        raise ClusterConfigError(f"n must be a positive integer, not {raw_n!r}")
    n = int(raw_n)
    if n > len(nodes):
        raise ClusterConfigError(f"n = {n} but the cluster has {len(nodes)} node(s)")
    w, r = (_positive(section, key) for key in ("w", "r"))
    timeout = _positive(section, "request_timeout")
    return ClusterDef(nodes=nodes, n=n, w=w, r=r,
                      request_timeout=(timeout or DEFAULT_REQUEST_TIMEOUT_MS) / 1000)


def _positive(section: dict[str, str], key: str) -> int | None:
    raw = section.get(key)
    if raw is None:
        return None
    if not (raw.strip().isascii() and raw.strip().isdigit()) or int(raw) < 1:
        raise ClusterConfigError(f"{key} must be a positive integer, not {raw.strip()!r}")
    return int(raw)
