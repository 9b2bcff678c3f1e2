"""An HAProxy configuration for a cluster (pure: text in, text out).

`/{db}/...` goes to a backend holding exactly that database's replica nodes, chosen through a map
file (database name -> backend) so placement changes only rewrite the map (and add backends for
new replica sets). Inside a backend, `balance uri depth 1` with `hash-type consistent` hashes the
first path segment, the database name: one database's clients meet one node while it is up, and
fail over to another replica when the health check (`GET /_up`) marks it down. Paths that name no
known database (`/_all_dbs`, `/_session`, `/_replicate`, ...) go to any live node.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from couchpy.cluster_config import ClusterDef

ANY_BACKEND = "any_node"


def _ident(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def backend_name(nodes: Sequence[str]) -> str:
    return "replicas__" + "__".join(_ident(n) for n in sorted(nodes))


def _servers(cdef: ClusterDef, names: Sequence[str]) -> list[str]:
    out = []
    for name in sorted(names):
        parts = urlsplit(cdef.node(name).url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        tls = " ssl verify none" if parts.scheme == "https" else ""
        out.append(f"    server {_ident(name)} {parts.hostname}:{port} check inter 500 fall 2 rise 1{tls}")
    return out


def _backend(cdef: ClusterDef, name: str, nodes: Sequence[str], balance: str) -> list[str]:
    return [
        f"backend {name}",
        f"    balance {balance}",
        *(["    hash-type consistent"] if balance.startswith("uri") else []),
        "    option httpchk GET /_up",
        "    http-check expect status 200",
        *_servers(cdef, nodes),
        "",
    ]


def render(cdef: ClusterDef, placement: Mapping[str, Sequence[str]], *, bind: str, map_path: str) -> tuple[str, str]:
    """(haproxy.cfg, map file) for the databases' placement {db: [node names]}."""
    mapping = "".join(f"{db} {backend_name(nodes)}\n" for db, nodes in sorted(placement.items()) if nodes)
    # which placement a response was routed by: tells a reloaded configuration is in service
    version = hashlib.sha256(mapping.encode()).hexdigest()[:16]
    sets = sorted({tuple(sorted(nodes)) for nodes in placement.values() if nodes})
    lines = [
        "# written by `couchpy cluster haproxy-config`; regenerated when placement changes",
        "global",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    option http-server-close",
        "    option redispatch",
        "    retries 3",
        "    retry-on conn-failure empty-response",
        "    timeout connect 2s",
        "    timeout client 10m",
        "    timeout server 10m",
        "    timeout http-request 30s",
        "",
        "frontend couchpy",
        f"    bind {bind}",
        "    http-request set-var(txn.db) path,field(2,/),url_dec",
        f"    use_backend %[var(txn.db),map({map_path},{ANY_BACKEND})]",
        f"    default_backend {ANY_BACKEND}",
        f"    http-after-response set-header X-Couchpy-Placement {version}",
        "",
        *_backend(cdef, ANY_BACKEND, cdef.names, "roundrobin"),
    ]
    for nodes in sets:
        lines += _backend(cdef, backend_name(nodes), nodes, "uri depth 1")
    return "\n".join(lines), mapping
