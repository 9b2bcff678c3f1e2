"""Active tasks: what `GET /_active_tasks` lists (replications, indexers, compactions).

A subsystem registers a task with its CouchDB fields (`type`, `database`, ...), updates it as it goes
and removes it when done. The registry adds `pid`, `node`, `started_on` and `updated_on`.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

_ids = itertools.count(1)


class Task:
    def __init__(self, registry: TaskRegistry, fields: dict[str, Any]):
        self._registry = registry
        self.id = next(_ids)
        now = int(time.time())
        self.fields: dict[str, Any] = {
            "pid": f"<0.{self.id}.0>",
            "node": "couchpy@127.0.0.1",
            "started_on": now,
            "updated_on": now,
            **fields,
        }

    def update(self, **fields: Any) -> None:
        self.fields.update(fields)
        self.fields["updated_on"] = int(time.time())

    def done(self) -> None:
        self._registry._tasks.pop(self.id, None)


class TaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[int, Task] = {}

    def add(self, **fields: Any) -> Task:
        task = Task(self, fields)
        self._tasks[task.id] = task
        return task

    def list(self) -> list[dict[str, Any]]:
        return [dict(t.fields) for t in self._tasks.values()]


OS_PID = os.getpid()
