"""The fan-out ceiling: a bare uvloop HTTP server that holds continuous `_changes` feeds, no couchpy.

`python -m benchmarks.scale feeds --server ceiling` measures it with the same client as couchpy,
so couchpy's fan-out can be read against what Python and this machine can do at all: a write is
turned into one change line, built once, and handed to every held connection by
`transport.write` of one shared bytes object (nothing per feed but that call). Whatever couchpy
takes beyond this is couchpy's; whatever this takes is the floor on this machine at that moment.

    python -m benchmarks.feeds_ceiling --port 5999 --workers 7

It answers what the scale benchmark asks (benchmarks/scale.py `bench_feeds`), with plausible JSON:
`GET /`, `GET /_up`, `PUT /{db}` (201), `GET /{db}`, `PUT /{db}/{docid}` (201, a change line to
every feed), `GET /{db}/{docid}` (the document, or 404) and
`GET /{db}/_changes?feed=continuous...` (a chunked 200, held; `since=now` is assumed). Other
feed kinds and paths are answered 400 or 404. Credentials are not checked.

`--workers N` runs N processes, each listening on the port with SO_REUSEPORT (the kernel spreads
connections over them, as with `couchpy serve --workers`), because one process may hold at most
~20,000 descriptors here. A write reaches the other workers at once as one datagram each (a UNIX
socket per worker in the abstract namespace): no polling, the cheapest a cross-process fan-out
gets (couchpy's workers poll the shared environment every 50 ms). Each worker keeps the documents
in a dict, so the probe's `GET` finds them through any worker. The parent prints `ready <url>`
once every worker listens, and stops them on SIGTERM (a worker dies with its parent).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import multiprocessing
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import unquote

import uvloop

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1024  # feeds written per event-loop turn, so that other requests are answered between
MAX_HEAD = 64 * 1024
PR_SET_PDEATHSIG = 1
REASONS = {200: b"OK", 201: b"Created", 400: b"Bad Request", 404: b"Object Not Found",
           405: b"Method Not Allowed"}
WELCOME = {"couchdb": "Welcome", "version": "ceiling", "vendor": {"name": "feeds_ceiling"}}
CHUNKED_HEAD = (b"HTTP/1.1 200 OK\r\nServer: feeds-ceiling\r\nContent-Type: application/json\r\n"
                b"Cache-Control: must-revalidate\r\nTransfer-Encoding: chunked\r\n\r\n")


def response(status: int, payload: object) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    return (b"HTTP/1.1 %d %s\r\nServer: feeds-ceiling\r\nContent-Type: application/json\r\n"
            b"Cache-Control: must-revalidate\r\nContent-Length: %d\r\n\r\n%s"
            % (status, REASONS[status], len(body), body))


def change_chunk(seq: int, docid: str, rev: str) -> bytes:
    """One continuous-feed line, shaped as couchpy's, framed as one HTTP chunk."""
    line = json.dumps({"seq": f"{seq}-ceiling", "id": docid, "changes": [{"rev": rev}]},
                      separators=(",", ":")).encode() + b"\n"
    return b"%x\r\n%s\r\n" % (len(line), line)


def peer_address(port: int, index: int) -> str:
    return f"\0feeds-ceiling-{port}-{index}"


class Worker:
    """One server process's state: its held feeds, the documents, its peers' addresses."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int, index: int, workers: int, seq):
        self.loop, self.seq = loop, seq
        self.feeds: set = set()
        self.docs: dict[tuple[str, str], bytes] = {}
        self.peers = [peer_address(port, i) for i in range(workers) if i != index]
        self.bus = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.bus.bind(peer_address(port, index))
        self.bus.setblocking(False)
        loop.add_reader(self.bus.fileno(), self._from_peer)

    def write_doc(self, db: str, docid: str, body: bytes) -> dict:
        """A document written through this worker: stored here, sent to every peer, fanned out."""
        rev = "1-" + hashlib.md5(body).hexdigest()
        with self.seq.get_lock():  # one sequence for the node, as couchpy's workers share one
            self.seq.value += 1
            seq = self.seq.value
        message = json.dumps({"db": db, "id": docid, "rev": rev, "seq": seq, "body": body.decode()}).encode()
        for peer in self.peers:
            self.bus.sendto(message, peer)
        self._apply(db, docid, rev, seq, body)
        return {"ok": True, "id": docid, "rev": rev}

    def _from_peer(self) -> None:
        for _ in range(64):  # bounded: the rest waits for the next turn
            try:
                m = json.loads(self.bus.recv(1 << 16))
            except BlockingIOError:
                return
            self._apply(m["db"], m["id"], m["rev"], m["seq"], m["body"].encode())

    def _apply(self, db: str, docid: str, rev: str, seq: int, body: bytes) -> None:
        doc = json.loads(body or b"{}")
        doc.update(_id=docid, _rev=rev)
        self.docs[(db, docid)] = json.dumps(doc, separators=(",", ":")).encode()
        # the next turn writes it out: the writer's own 201 is not held behind its feeds
        self.loop.call_soon(self._fan_out, list(self.feeds), change_chunk(seq, docid, rev), 0)

    def _fan_out(self, feeds: list, chunk: bytes, start: int) -> None:
        for transport in feeds[start:start + BATCH]:
            if not transport.is_closing():
                transport.write(chunk)
        if start + BATCH < len(feeds):
            self.loop.call_soon(self._fan_out, feeds, chunk, start + BATCH)


def route(worker: Worker, method: str, target: str, body: bytes) -> tuple[int, object] | None:
    """The answer to one request, or None for a continuous feed (the caller holds it)."""
    path, _, query = target.partition("?")
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts:
        return (200, WELCOME) if method == "GET" else (405, {"error": "method_not_allowed"})
    if parts == ["_up"]:
        return 200, {"status": "ok"}
    db = parts[0]
    if len(parts) == 1:
        if method == "PUT":
            return 201, {"ok": True}
        if method == "GET":
            return 200, {"db_name": db, "doc_count": sum(1 for d, _ in worker.docs if d == db)}
        return 405, {"error": "method_not_allowed"}
    docid = "/".join(parts[1:])
    if docid == "_changes" and method == "GET":
        if "feed=continuous" in query:
            return None
        return 400, {"error": "bad_request", "reason": "the ceiling serves continuous feeds only"}
    if method == "PUT":
        return 201, worker.write_doc(db, docid, body)
    if method == "GET":
        doc = worker.docs.get((db, docid))
        return (200, json.loads(doc)) if doc is not None else (404, {"error": "not_found", "reason": "missing"})
    return 405, {"error": "method_not_allowed"}


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies only (what aiohttp's client sends here). A
    continuous feed gets its head and is then only a transport in `worker.feeds`: what the
    client sends after it is ignored."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.transport = None
        self.buf = b""
        self.held = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.held:
            return
        self.buf += data
        for _ in range(64):  # bounded: pipelined requests beyond these wait for more data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.transport.close()
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            method, target = lines[0].split(" ")[:2]
            answer = route(self.worker, method, target, body)
            if answer is None:
                self.held = True
                self.transport.write(CHUNKED_HEAD)
                self.worker.feeds.add(self.transport)
                return
            self.transport.write(response(*answer))

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.feeds.discard(self.transport)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_main(host: str, port: int, index: int, workers: int, seq, ready: Connection) -> None:
    """One server process: listen (SO_REUSEPORT), tell the parent, serve until killed."""
    _die_with_parent()
    raise_nofile()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        worker = Worker(loop, port, index, workers, seq)
        server = await loop.create_server(lambda: HttpProtocol(worker), host, port, backlog=4096,
                                          reuse_address=True, reuse_port=True)
        ready.send(index)
        async with server:
            await asyncio.Event().wait()

    uvloop.run(serve())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1, help="server processes on the port (SO_REUSEPORT)")
    ap.add_argument("--lifetime", type=float, default=7200, help="seconds before the server stops itself")
    args = ap.parse_args(argv)
    ctx = multiprocessing.get_context("fork")
    seq = ctx.Value("q", 0)
    ready_r, ready_w = ctx.Pipe(duplex=False)
    procs = [ctx.Process(target=worker_main, args=(args.host, args.port, i, args.workers, seq, ready_w),
                         daemon=True) for i in range(args.workers)]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready_r.poll(30):
            sys.exit("feeds_ceiling: a worker did not start in 30 s")
        ready_r.recv()
    print(f"ready http://{args.host}:{args.port}", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    deadline = time.monotonic() + args.lifetime
    while not stop and time.monotonic() < deadline and all(p.is_alive() for p in procs):
        time.sleep(0.2)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(5)


@contextlib.contextmanager
def running(port: int, workers: int, timeout: float = 60) -> Iterator[subprocess.Popen]:
    """The ceiling in a subprocess on `port`, once every worker listens; stopped on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.feeds_ceiling", "--port", str(port),
                             "--workers", str(workers)], cwd=str(ROOT), stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else b""
        if not line.startswith(b"ready"):
            raise RuntimeError(f"feeds_ceiling did not start in {timeout}s (exit code {proc.poll()})")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


if __name__ == "__main__":
    main()
