"""couchpy: a replicated document database that speaks CouchDB's HTTP API and replication protocol.

`couchpy.open(path)` gives a node (databases, documents, changes) without any server.
"""

from __future__ import annotations

__version__ = "0.1.0"


def open(path, config=None):  # noqa: A001 - mirrors the library's intended use: couchpy.open(path)
    from .node import Node

    return Node(path, config=config)
