"""Longpoll wake-up: how soon parked `_changes?feed=longpoll` requests answer after a write.

Two figures, for any CouchDB-compatible server:

- `single`: one longpoll request parked, one write, the time from the write's start to the
  longpoll's answer (repeated `writes` times, one after the other);
- `fanout`: `waiters` longpoll requests parked at once, one write, the time until each answers
  (repeated `fanout_writes` times): couchpy wakes its waiters a batch per event-loop turn and
  watches each parked feed's connection (http_api/clientwatch.py), both on this path.

Every answer is checked: it names the written document and nothing else. Each wait is bounded
(`timeout=` on the request, `wait_s` on the client).

    python -m benchmarks.longpoll_wakeup --url http://admin:pw@127.0.0.1:5984 [--waiters 200]
    python -m benchmarks.longpoll_wakeup --checkouts ../old,. --rounds 3   # A/B, interleaved
"""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
import orjson

from benchmarks.measure import pct
from benchmarks.servers import one_or_interleaved
from benchmarks.workloads import Bench, CheckFailed, make_doc

SETTLE_S = 1.0  # after sending the waiters' requests, before the write: let the server park them


async def _since(bench: Bench, db: str) -> str:
    info = await bench.req("GET", f"/{db}")
    return str(info["update_seq"])


async def _one_round(bench: Bench, session: aiohttp.ClientSession, db: str, waiters: int,
                     doc_id: str, n: int, wait_s: float) -> tuple[list[float], float, int]:
    """Park `waiters` longpolls, write doc_id; (wake-up seconds of each, write seconds, early answers)."""
    since = await _since(bench, db)
    path = f"{bench.base}/{db}/_changes?feed=longpoll&since={since}&timeout={int(wait_s * 1000)}"
    woke: list[float] = []
    early = 0
    t_write = float("inf")

    async def wait_one() -> None:
        nonlocal early
        async with session.get(path, timeout=aiohttp.ClientTimeout(total=wait_s + 5)) as resp:
            body = await resp.read()
            t = time.perf_counter()
        if resp.status != 200:
            raise CheckFailed(f"longpoll -> {resp.status}: {body[:200]!r}")
        ids = [r["id"] for r in orjson.loads(body)["results"]]
        if ids != [doc_id]:
            raise CheckFailed(f"longpoll answered {ids[:3]}, not [{doc_id!r}]")
        if t < t_write:
            early += 1
        woke.append(t - t_write)

    tasks = [asyncio.create_task(wait_one()) for _ in range(waiters)]
    try:
        await asyncio.sleep(SETTLE_S + waiters / 1000)
        t_write = time.perf_counter()
        await bench.req("PUT", f"/{db}/{doc_id}", make_doc(n), expect=(201, 202))
        write_s = time.perf_counter() - t_write
        await asyncio.wait_for(asyncio.gather(*tasks), wait_s + 10)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return woke, write_s, early


async def longpoll_wakeup(bench: Bench, *, writes: int = 20, waiters: int = 200,
                          fanout_writes: int = 5, wait_s: float = 20.0) -> dict[str, Any]:
    db = await bench.create_db("longpoll")
    conn = aiohttp.TCPConnector(limit=waiters + 8, force_close=True)
    headers = {"Authorization": bench.auth_header} if bench.auth_header else {}
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=conn, headers=headers) as session:
        single: list[float] = []
        for i in range(writes):
            woke, _, early = await _one_round(bench, session, db, 1, f"s{i:05d}", i, wait_s)
            if early:
                raise CheckFailed("a longpoll answered before the write")
            single += woke
        single.sort()
        out["single"] = {"count": len(single), "median_ms": pct(single, 50), "p99_ms": pct(single, 99)}
        fan: list[float] = []
        writes_s: list[float] = []
        for i in range(fanout_writes):
            woke, write_s, early = await _one_round(bench, session, db, waiters, f"f{i:05d}", i, wait_s)
            if early:
                raise CheckFailed(f"{early} longpolls answered before the write")
            fan += woke
            writes_s.append(write_s)
        fan.sort()
        writes_s.sort()
        out["fanout"] = {"waiters": waiters, "writes": fanout_writes, "answered": len(fan),
                         "p50_ms": pct(fan, 50), "p99_ms": pct(fan, 99), "max_ms": pct(fan, 100),
                         "write_p50_ms": pct(writes_s, 50)}
    return out


async def _main(url: str, args: argparse.Namespace) -> dict[str, Any]:
    async with Bench(url, "small") as bench:
        return await longpoll_wakeup(bench, writes=args.writes, waiters=args.waiters,
                                     fanout_writes=args.fanout_writes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writes", type=int, default=20)
    ap.add_argument("--waiters", type=int, default=200)
    ap.add_argument("--fanout-writes", type=int, default=5)
    return one_or_interleaved(ap, argv, lambda url, _pid, args: _main(url, args))


if __name__ == "__main__":
    raise SystemExit(main())
