"""Idle `_changes` feeds by the thousand, held by client processes of their own.

One client process holds up to ~18,000 connections (its open-file limit), each from a source
address of its own in 127.0.0.0/8, so that neither the client's descriptors nor one source
address's ephemeral ports run out. The parent drives the processes over pipes:

    ("open", path, count, seconds)  open `count` feeds on `path`, starting no new one after
                            `seconds` -> ("opened", ok, error samples)
    ("arm", needle)         from now on, note when each feed's stream first shows `needle`
                            -> ("armed",)
    ("collect", timeout)    wait until every open feed saw the needle or the timeout passes
                            -> ("times", [wall-clock arrival times], feeds still open)
    ("close",)              close every feed and exit

Arrival times are wall-clock (`time.time()`), comparable between processes on one machine.
A feed only keeps the last few bytes it read, so the client's own memory stays small. A
longpoll feed asks again on its connection as soon as its answer has ended (as PouchDB's live
replication does), so every write after the first finds it waiting too, and what the server
spends taking each connection's next request is in the figures.

The client shares the machine's cores with the server it measures, so a feed costs it as little
as it reasonably can: one `asyncio.Protocol` per connection on uvloop, whose `data_received`
only looks for the needle (no StreamReader, no task per feed), and a count of the feeds still
waiting, so that `collect` does not scan them all.
"""
from __future__ import annotations

import asyncio
import base64
import resource
import time
from multiprocessing.connection import Connection

import uvloop

OPEN_CONCURRENCY = 200
TAIL = 64  # bytes kept from the previous chunk, so a needle split between chunks is still found
MAX_HEAD = 64 * 1024
LAST_CHUNK = b"\r\n0\r\n\r\n"  # the end of a chunked body (after its last data chunk's CRLF)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Feed(asyncio.Protocol):
    """One held feed: its request sent on connect, its response head handed to `head`, then
    every chunk looked at for the client's needle until it shows up once."""

    __slots__ = ("client", "transport", "head", "buf", "tail", "end", "seen", "open")

    def __init__(self, client: FeedClient):
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.tail = b""
        self.end = b""  # the stream's last bytes: a longpoll answer ends with the empty chunk
        self.seen: float | None = None
        self.open = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.write(self.client.request)

    def data_received(self, data: bytes) -> None:
        if not self.head.done():
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.head.set_exception(ConnectionError("response head too long"))
                return
            data = self.buf[end + 4:]
            self.head.set_result(self.buf[:end + 4])
            self.buf = b""
            if not data:
                return
        if self.client.repeat:
            self._again(data)
        if self.seen is not None:
            return
        needle = self.client.needle
        if needle and (needle in data or needle in self.tail + data[:len(needle)]):
            self.seen = time.time()
            self.client.arrived()
        else:
            self.tail = data[-TAIL:]

    def _again(self, data: bytes) -> None:
        """A longpoll answer ended (its body's empty last chunk): the next request, at once."""
        end = (self.end + data)[-len(LAST_CHUNK):]
        if end == LAST_CHUNK:
            self.transport.write(self.client.request)  # type: ignore[union-attr]
            end = b""
        self.end = end

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(exc or ConnectionError("closed before the response head"))
        if self.open:
            self.open = False
            if self.seen is None and self.client.needle:
                self.client.arrived()  # one feed fewer to wait for


class FeedClient:
    def __init__(self, host: str, port: int, source: str, auth: tuple[str, str]):
        self.host, self.port, self.source = host, port, source
        self.auth_header = "Authorization: Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.request = b""
        self.feeds: list[Feed] = []
        self.needle = b""
        self.repeat = False  # longpoll: ask again when an answer ends
        self.waiting = 0  # open feeds that did not see the needle yet
        self.all_seen = asyncio.Event()

    async def _open_one(self, path: str) -> Feed:
        loop = asyncio.get_running_loop()
        transport, feed = await asyncio.wait_for(
            loop.create_connection(lambda: Feed(self), self.host, self.port, local_addr=(self.source, 0)), 30)
        try:
            head = await asyncio.wait_for(asyncio.shield(feed.head), 60)
        except BaseException:
            feed.open = False  # never counted among the held feeds
            feed.head.cancel()
            transport.close()
            raise
        if not head.startswith(b"HTTP/1.1 200"):
            feed.open = False
            transport.close()
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return feed

    async def open(self, path: str, count: int, seconds: float) -> tuple[int, list[str]]:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.auth_header}\r\n"
                        "Accept: */*\r\n\r\n").encode()
        self.repeat = "feed=longpoll" in path
        sem = asyncio.Semaphore(OPEN_CONCURRENCY)
        errors: list[str] = []
        deadline = time.monotonic() + seconds

        async def one() -> None:
            async with sem:
                if time.monotonic() > deadline:
                    return
                try:
                    feed = await self._open_one(path)
                except Exception as e:  # noqa: BLE001 - counted and sampled for the report
                    errors.append(f"{type(e).__name__}: {e}"[:120])
                    return
                self.feeds.append(feed)

        await asyncio.gather(*(one() for _ in range(count)))
        return len(self.feeds), errors[:5] + ([f"... {len(errors)} errors"] if len(errors) > 5 else [])

    def arrived(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0:
            self.all_seen.set()

    def arm(self, needle: bytes) -> None:
        for feed in self.feeds:
            feed.seen, feed.tail = None, b""
        self.needle = needle
        self.waiting = sum(f.open for f in self.feeds)
        self.all_seen = asyncio.Event()
        if self.waiting == 0:
            self.all_seen.set()

    async def collect(self, timeout: float) -> tuple[list[float], int]:
        try:
            await asyncio.wait_for(self.all_seen.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return [f.seen for f in self.feeds if f.seen is not None], sum(f.open for f in self.feeds)

    async def close(self) -> None:
        for feed in self.feeds:
            if feed.transport is not None:
                feed.transport.close()
        for _ in range(100):  # up to 10 s for the closes to go through
            if not any(f.open for f in self.feeds):
                break
            await asyncio.sleep(0.1)


async def _serve(conn: Connection, client: FeedClient) -> None:
    loop = asyncio.get_running_loop()
    while True:
        msg = await loop.run_in_executor(None, conn.recv)
        if msg[0] == "open":
            ok, errors = await client.open(msg[1], msg[2], msg[3])
            conn.send(("opened", ok, errors))
        elif msg[0] == "arm":
            client.arm(msg[1])
            conn.send(("armed",))
        elif msg[0] == "collect":
            times, still_open = await client.collect(msg[1])
            conn.send(("times", times, still_open))
        elif msg[0] == "close":
            await client.close()
            conn.send(("closed",))
            return


def client_main(conn: Connection, host: str, port: int, source: str, auth: tuple[str, str]) -> None:
    """Entry point of one client process."""
    raise_nofile()

    async def main() -> None:
        await _serve(conn, FeedClient(host, port, source, auth))

    uvloop.run(main())
