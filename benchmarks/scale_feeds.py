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
A feed only keeps the last few bytes it read, so the client's own memory stays small.
"""
from __future__ import annotations

import asyncio
import base64
import resource
import time
from multiprocessing.connection import Connection

OPEN_CONCURRENCY = 200
TAIL = 64  # bytes kept from the previous chunk, so a needle split between chunks is still found


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Feed:
    __slots__ = ("reader", "writer", "tail", "seen", "open")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.tail = b""
        self.seen: float | None = None
        self.open = True


class FeedClient:
    def __init__(self, host: str, port: int, source: str, auth: tuple[str, str]):
        self.host, self.port, self.source = host, port, source
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.auth_header = f"Authorization: Basic {token}\r\n"
        self.feeds: list[Feed] = []
        self.needle = b""
        self.tasks: list[asyncio.Task] = []

    async def _open_one(self, path: str) -> Feed:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0), limit=2**16), 30)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.auth_header}"
                     "Accept: */*\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        if not head.startswith(b"HTTP/1.1 200"):
            writer.close()
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return Feed(reader, writer)

    async def open(self, path: str, count: int, seconds: float) -> tuple[int, list[str]]:
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
                self.tasks.append(asyncio.create_task(self._watch(feed)))

        await asyncio.gather(*(one() for _ in range(count)))
        return len(self.feeds), errors[:5] + ([f"... {len(errors)} errors"] if len(errors) > 5 else [])

    async def _watch(self, feed: Feed) -> None:
        try:
            while True:
                chunk = await feed.reader.read(4096)
                if not chunk:
                    break
                if feed.seen is None and self.needle and self.needle in feed.tail + chunk:
                    feed.seen = time.time()
                feed.tail = chunk[-TAIL:]
        except (ConnectionError, OSError):
            pass
        finally:
            feed.open = False

    def arm(self, needle: bytes) -> None:
        for feed in self.feeds:
            feed.seen = None
        self.needle = needle

    async def collect(self, timeout: float) -> tuple[list[float], int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(f.seen is not None or not f.open for f in self.feeds):
                break
            await asyncio.sleep(0.02)
        return [f.seen for f in self.feeds if f.seen is not None], sum(f.open for f in self.feeds)

    async def close(self) -> None:
        for feed in self.feeds:
            feed.writer.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


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
    asyncio.run(_serve(conn, FeedClient(host, port, source, auth)))
