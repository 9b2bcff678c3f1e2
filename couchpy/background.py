"""A node's long-running background task (the auto-compactor, tombstone expiry, the conflict
resolver): started on the running event loop, stopped by cancelling it and waiting until it has."""

from __future__ import annotations

import abc
import asyncio


class BackgroundTask(abc.ABC):
    """Subclasses give `_run`, the coroutine that loops until cancelled."""

    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @abc.abstractmethod
    async def _run(self) -> None:
        """Loop until cancelled; `stop` is what ends it."""
