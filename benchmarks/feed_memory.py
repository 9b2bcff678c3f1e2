"""Where the memory of an idle `_changes` feed goes, by the line that allocated it.

    python -m benchmarks.feed_memory [--feeds 2000] [--feed continuous|longpoll|eventsource] [--json]

A couchpy server in this process (uvloop, as `couchpy serve` runs it) and a client process
holding `--feeds` idle feeds (`heartbeat=600000`; a longpoll one as PouchDB's live replication
asks it, with `style=all_docs&limit=100`) on one database, each from its own source address in
127.0.0.0/8. The feeds count as open once the server counts them all among its
`clients_requesting_changes` (a longpoll feed may send nothing before its first heartbeat).
tracemalloc compares the server's heap before and after the feeds opened (after 200 feeds opened first, so that caches and free lists are warm) and
attributes every allocation still alive to the innermost line of couchpy's own code on its
traceback ("ours"), or else to the line of the library that made it ("lib"). Prints bytes per
feed by line and the totals; `--json` prints the totals alone (tests/test_feed_memory.py).

The figures are the Python heap only (what pymalloc and the raw allocator hand out, uvloop's
libuv handles included); RSS per feed is a little higher (allocator slack). tracemalloc itself
doubles the process's memory, so RSS is not measured here (`benchmarks.scale feeds` does).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import re
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

from couchpy.node import Node
from couchpy_cli import prepare_config
from http_api.parkedfeed import CLIENTS
from http_api.app import make_app

ROOT = str(Path(__file__).resolve().parent.parent)
PATHS = {
    "continuous": "/fan/_changes?feed=continuous&since=now&heartbeat=600000",
    "eventsource": "/fan/_changes?feed=eventsource&since=now&heartbeat=600000",
    "longpoll": "/fan/_changes?feed=longpoll&since=now&heartbeat=600000&style=all_docs&limit=100",
}
WARM = 200

# the client process: opens the feeds, says "open", holds them until a line on stdin
CLIENT = r'''
import asyncio, sys
port, n, path, auth = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
async def main():
    held, sem = [], asyncio.Semaphore(100)
    async def one(i):
        async with sem:
            source = f"127.0.{1 + i // 250}.{1 + i % 250}"
            r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n".encode())
            await w.drain()
            held.append((r, w))  # the reader too: a reader let go of closes its connection
    await asyncio.gather(*(one(i) for i in range(n)))
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for _, w in held:
        w.close()
asyncio.run(main())
'''


async def _hold(node: Node, port: int, n: int, path: str, auth: str) -> asyncio.subprocess.Process:
    expected = _open_feeds(node) + n
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, str(port), str(n), path, auth,
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if line.strip() != b"open":
        raise RuntimeError(f"the client did not open its feeds: {line!r}")
    for _ in range(1200):  # the server counts a feed once its handler runs
        if _open_feeds(node) >= expected:
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError(f"the server counts {_open_feeds(node)} open feeds, not {expected}")
    await asyncio.sleep(0.5)  # every handler reached its wait (or parked)
    return proc


def _open_feeds(node: Node) -> int:
    return node.metrics.counters.get(CLIENTS, 0)


async def _release(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"\n")
    await proc.stdin.drain()
    await asyncio.wait_for(proc.wait(), 60)


def _attribute(stats: list[tracemalloc.StatisticDiff]) -> dict[str, int]:
    by_line: dict[str, int] = {}
    for st in stats:
        key = None
        for frame in reversed(st.traceback):  # innermost first
            if frame.filename.startswith(ROOT + "/") and "/benchmarks/" not in frame.filename:
                key = f"ours {frame.filename[len(ROOT) + 1:]}:{frame.lineno}"
                break
        if key is None:
            frame = st.traceback[-1] if len(st.traceback) else None
            name = re.sub(r".*/(site-packages|python3\.\d+)/", "", frame.filename) if frame else "?"
            key = f"lib  {name}:{frame.lineno if frame else 0}"
        by_line[key] = by_line.get(key, 0) + st.size_diff
    return by_line


async def measure(feeds: int, feed: str = "continuous") -> dict[str, object]:
    feed_path = PATHS[feed]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "couchpy.ini").write_text("[admins]\nadmin = secret\n[chttpd_auth]\niterations = 1000\n")
        config, _ = prepare_config(data, None)
        node = Node(data, config)
        node.ensure_system_dbs()
        runner = web.AppRunner(make_app(node), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = runner.addresses[0][1]
        auth = base64.b64encode(b"admin:secret").decode()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}",
                                             auth=aiohttp.BasicAuth("admin", "secret")) as s:
                for method, path in (("PUT", "/fan"), ("PUT", "/fan/d")):
                    async with s.request(method, path, json={} if path != "/fan" else None) as r:
                        assert r.status == 201, await r.text()
            warm = await _hold(node, port, WARM, feed_path, auth)
            gc.collect()
            tracemalloc.start(30)
            before = tracemalloc.take_snapshot()
            held = await _hold(node, port, feeds, feed_path, auth)
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            by_line = _attribute(after.compare_to(before, "traceback"))
            await _release(held)
            await _release(warm)
        finally:
            await runner.cleanup()
            await node.aclose()
    ours = sum(v for k, v in by_line.items() if k.startswith("ours"))
    total = sum(by_line.values())
    return {"feeds": feeds, "feed": feed, "bytes_per_feed": total / feeds, "ours_per_feed": ours / feeds,
            "lib_per_feed": (total - ours) / feeds,
            "by_line": {k: v / feeds for k, v in sorted(by_line.items(), key=lambda kv: -kv[1])}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=2000)
    ap.add_argument("--feed", choices=sorted(PATHS), default="continuous")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--json", action="store_true", help="the totals alone, as JSON")
    args = ap.parse_args()
    result = uvloop.run(measure(args.feeds, args.feed))
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "by_line"}))
        return
    for where, size in list(result["by_line"].items())[:args.top]:  # type: ignore[union-attr]
        print(f"{size:8.0f} B/feed  {where}")
    print(f"{args.feeds} idle {args.feed} feeds: {result['bytes_per_feed']:.0f} B per feed on the heap, "
          f"{result['ours_per_feed']:.0f} B of it allocated by couchpy's code, {result['lib_per_feed']:.0f} B by libraries")


if __name__ == "__main__":
    main()
