"""The engine's calls into the attachment subsystem (minimal first version; owned by attachments).

`prepare` runs on the event loop before a write is queued; `finalize` runs inside the write
transaction for each new revision body.
"""

from __future__ import annotations


async def prepare(db, doc: dict, followers=None) -> None:
    return None


def finalize(db, txn, body: dict, parent_body: dict | None, new_pos: int) -> None:
    return None
