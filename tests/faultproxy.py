"""A fault-injecting TCP proxy for HTTP tests, running in its own thread.

Sits between a client (the replicator) and a real server on loopback and, per its knobs:
  - `cut_prob`: a connection is cut after a random number of bytes of server->client traffic
    (in `cut_range`), i.e. mid-response;
  - `error_prob`: a request is answered `500` (with `Connection: close`) instead of forwarded;
  - `upload_cut_prob`: a request is cut mid-upload: only part of its bytes reach the server,
    then both connections are aborted (a request body the server must not half-apply);
  - `delay`: seconds of latency added to every forwarded chunk;
  - `refuse`: new connections are closed at once (a peer that is down).
Decisions come from a seeded random generator; counters say how many faults were injected.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading

_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"COPY ")
_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: 56\r\n\r\n"
    b'{"error":"injected","reason":"fault proxy injected 500"}'
)
assert len(b'{"error":"injected","reason":"fault proxy injected 500"}') == 56


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", seed: int = 1):
        self.upstream = (upstream_host, upstream_port)
        self.rnd = random.Random(seed)
        self.cut_prob = 0.0
        self.cut_range = (200, 20000)
        self.error_prob = 0.0
        self.upload_cut_prob = 0.0
        self.delay = 0.0
        self.refuse = False
        self.connections = 0
        self.cuts = 0
        self.errors = 0
        self.upload_cuts = 0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, sock=self._sock)

    def set(self, **knobs) -> None:
        for k, v in knobs.items():
            if not hasattr(self, k):
                raise AttributeError(k)
            setattr(self, k, v)

    def calm(self) -> None:
        self.set(cut_prob=0.0, error_prob=0.0, upload_cut_prob=0.0, delay=0.0, refuse=False)

    def stop(self) -> None:
        async def _stop() -> None:
            if self._server:
                self._server.close()
            for w in list(self._writers):
                w.close()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.refuse:
            cwriter.close()
            return
        try:
            sreader, swriter = await asyncio.open_connection(*self.upstream)
        except OSError:
            cwriter.close()
            return
        self._writers |= {cwriter, swriter}
        budget = self.rnd.randint(*self.cut_range) if self.rnd.random() < self.cut_prob else None
        done = asyncio.Event()
        cut_up = asyncio.Event()

        async def up() -> None:
            try:
                while data := await creader.read(65536):
                    if data.startswith(_METHODS):
                        self.requests += 1
                        if self.rnd.random() < self.error_prob:
                            self.errors += 1
                            # Swallow the request, answer 500 and close, as a failing server would.
                            cwriter.write(_ERROR)
                            await cwriter.drain()
                            break
                        if len(data) > 1 and self.rnd.random() < self.upload_cut_prob:
                            self.upload_cuts += 1
                            cut_up.set()
                            swriter.write(data[: self.rnd.randint(1, len(data) - 1)])
                            await swriter.drain()
                            break
                    swriter.write(data)
                    await swriter.drain()
            except (ConnectionError, OSError):
                pass
            done.set()

        async def down() -> None:
            nonlocal budget
            try:
                while data := await sreader.read(65536):
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    if budget is not None:
                        if len(data) >= budget:
                            cwriter.write(data[:budget])
                            await cwriter.drain()
                            self.cuts += 1
                            break
                        budget -= len(data)
                    cwriter.write(data)
                    await cwriter.drain()
            except (ConnectionError, OSError):
                pass
            done.set()

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        await done.wait()
        for t in tasks:
            t.cancel()
        for w in (cwriter, swriter):
            try:
                w.transport.abort() if budget is not None or cut_up.is_set() else w.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
            self._writers.discard(w)
