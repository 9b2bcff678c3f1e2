"""A waiting feed's watch on its client's connection: the feed ends as soon as the client leaves.

aiohttp, as couchpy runs it (`handler_cancellation` off), does not cancel a handler whose
connection is lost. An idle feed would notice only when it next writes (its heartbeat, its timeout
or a change to its database), holding its tasks, its frames and its pinned database until then:
with a heartbeat of minutes, the memory of every feed closed meanwhile. aiohttp's
`handler_cancellation=True` would end it, but it cancels every handler wherever it is, a write too
(between an attachment's blobs and its commit, in the middle of a query server's exchange), so
here only a feed is cancelled, and only while it is parked in its wait, where nothing is half done.

The watch stands between the transport and aiohttp's protocol while the feed runs
(`Transport.set_protocol`, which asyncio's and uvloop's transports implement), forwards every
call, and on `connection_lost` cancels the feed's task if it is waiting. A feed that ends while
its client is still there hands the connection back, so a kept-alive connection goes on.

Thousands of clients may leave at once (a proxy restarting, a network dropping). Their feeds are
ended a batch per turn of the event loop (couchpy/perturn.py), so that other requests are read
and answered in between rather than after all of them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from couchpy.perturn import PerTurn


class ClientWatch:
    """`with watch: await <the feed's wait>` raises ConnectionResetError as soon as the client is
    gone (the error a write to a lost connection raises, which the middleware already treats as
    the routine end of a dropped feed). `release()` when the feed ends."""

    # an idle feed holds one of these for as long as it is open: slots, no dict
    __slots__ = ("_protocol", "_transport", "_task", "_waiting", "_cancelled", "gone")

    def __init__(self, request: web.BaseRequest) -> None:
        transport = request.transport
        self._transport = transport
        self._protocol: Any = transport.get_protocol() if transport is not None else None
        self._task = asyncio.current_task()
        self._waiting = False
        self._cancelled = False
        self.gone = transport is None or transport.is_closing()
        if not self.gone:
            transport.set_protocol(self)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        # data_received, eof_received, pause_writing, ...: aiohttp's protocol answers them all
        return getattr(self._protocol, name)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.gone = True
        try:
            self._protocol.connection_lost(exc)
        finally:
            if self._waiting and self._task is not None:
                _ENDING.extend((self,))

    def _end(self) -> None:
        if self._waiting and self._task is not None and not self._cancelled and not self._task.done():
            self._cancelled = True
            self._task.cancel()

    def __enter__(self) -> None:
        if self.gone:
            raise ConnectionResetError("the client went away")
        self._waiting = True

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        self._waiting = False
        if typ is not None and issubclass(typ, asyncio.CancelledError) and self._cancelled:
            self._cancelled = False
            # our cancellation, unless someone else (the server stopping) cancelled the task too
            if self._task is not None and self._task.uncancel() == 0:
                raise ConnectionResetError("the client went away") from None
        return False

    def release(self) -> None:
        """Give the connection back to aiohttp's protocol (a no-op once the client is gone)."""
        transport = self._transport
        if transport is not None and not self.gone and transport.get_protocol() is self:
            transport.set_protocol(self._protocol)


# ~140 µs of CPU each to end: a few ms a turn
_ENDING: PerTurn[ClientWatch] = PerTurn(ClientWatch._end, batch=32)
