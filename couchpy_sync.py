"""couchpy as an embedded database that syncs: `couchpy.open(path)` plus the replicator.

    import asyncio, couchpy_sync

    async def main():
        node = couchpy_sync.open("./data")
        db = node.create_db("notes") if not node.exists("notes") else node.get_db("notes")
        await db.put({"_id": "n1", "text": "written offline"})
        await db.sync("https://user:pass@couch.example.com/notes")      # both ways, once
        live = db.replicate_to("https://.../notes", continuous=True)    # keeps pushing
        ...
        await live.stop()
        await node.aclose()

Importing this module installs the replicator as the engine's sync provider (the engine never
imports the replicator itself), so every node opened in the process, by `couchpy.open` too,
gets `db.replicate_to`, `db.replicate_from` and `db.sync` (replicator/embedded.py).
"""

from __future__ import annotations

import couchpy
from couchpy import database
from couchpy.node import Node
from replicator.embedded import PROVIDER, Replication, ReplicationError

database.sync_provider = PROVIDER

__all__ = ["open", "Replication", "ReplicationError"]


def open(path, config=None) -> Node:  # noqa: A001 - as couchpy.open
    return couchpy.open(path, config=config)
