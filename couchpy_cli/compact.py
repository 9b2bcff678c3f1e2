"""`couchpy compact URL/DB [--design DDOC]`: start compaction and follow it to the end.

Progress comes from `/_active_tasks` (the task of type `database_compaction` or
`view_compaction` for that database); the command returns when the database info says
`compact_running: false`.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from .dbclient import DbClient
from .progress import Progress


async def compact(client: DbClient, *, design: str | None, progress: Progress, poll: float = 0.2) -> dict:
    path = "/_compact" + (f"/{quote(design, safe='')}" if design else "")
    await client.request("POST", path, json={}, ok=(202,))
    progress.start(total=100, unit="%")
    kind = "view_compaction" if design else "database_compaction"
    info = await client.info()
    name = info["db_name"]
    while True:
        tasks = await client.request("GET", "/_active_tasks", server=True)
        mine = [t for t in tasks if t.get("type") == kind and t.get("database") == name]
        if mine and isinstance(mine[0].get("progress"), (int, float)):
            progress.set_fraction(float(mine[0]["progress"]))
        info = await client.info()
        running = info.get("compact_running") if not design else bool(mine)
        if not running and not mine:
            break
        await asyncio.sleep(poll)
    progress.set_fraction(100.0)
    sizes = info.get("sizes", {})
    progress.finish(db=name, file_size=sizes.get("file"), active_size=sizes.get("active"))
    return info
