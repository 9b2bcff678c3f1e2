"""couchpy: a replicated document database that speaks CouchDB's HTTP API and replication protocol.

`couchpy.open(path)` gives a node (databases, documents, changes) without any server.
"""

from __future__ import annotations

from .node import Node

__version__ = "0.1.0"


def open(path, config=None) -> Node:  # noqa: A001 - mirrors the library's intended use: couchpy.open(path)
    return Node(path, config=config)
