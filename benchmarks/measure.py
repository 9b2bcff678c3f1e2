"""Measuring tools for the benchmark suite: latency percentiles, bounded concurrent loops,
and the server's RSS/CPU sampled from /proc (the PID and its children)."""
from __future__ import annotations

import asyncio
import collections
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


def pct(sorted_s: list[float], p: float) -> float | None:
    """Nearest-rank percentile of ascending seconds, in ms."""
    if not sorted_s:
        return None
    k = min(len(sorted_s) - 1, max(0, math.ceil(p / 100 * len(sorted_s)) - 1))
    return round(sorted_s[k] * 1000, 3)


@dataclass
class LoopResult:
    done: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    truncated: bool = False

    def metrics(self, unit: str, items: int | None = None) -> dict[str, object]:
        n = self.done if items is None else items
        lat = sorted(self.latencies)
        return {"throughput": round(n / self.elapsed, 1) if self.elapsed else None,
                "unit": unit, "count": n, "elapsed_s": round(self.elapsed, 3),
                "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                "errors": sum(self.errors.values()), "truncated": self.truncated,
                "error_samples": [f"{k} (x{v})" for k, v in self.errors.most_common(3)]}


async def run_loop(count: int, concurrency: int, op: Callable[[int], Awaitable[object]],
                   time_limit: float) -> LoopResult:
    """Call op(0..count-1) from `concurrency` workers; stop early at time_limit seconds."""
    res, nxt = LoopResult(), iter(range(count))
    deadline = time.perf_counter() + time_limit

    async def worker() -> None:
        for i in nxt:
            if time.perf_counter() > deadline:
                res.truncated = True
                return
            t0 = time.perf_counter()
            try:
                await op(i)
            except Exception as e:  # noqa: BLE001 - counted and reported, the loop goes on
                res.errors[f"{type(e).__name__}: {e}"[:160]] += 1
                continue
            res.latencies.append(time.perf_counter() - t0)
            res.done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.elapsed = time.perf_counter() - t0
    return res


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids[ppid].append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (a server with `--workers`, its query-server workers)."""
    kids, todo, out = _children(), [pid], []
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def server_usage(pid: int | None) -> tuple[int | None, float | None]:
    """(RSS KiB, CPU seconds) of pid and its descendants; (None, None) without a pid."""
    if not pid:
        return None, None
    rss, ticks = 0, 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                rss += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return rss, ticks / os.sysconf("SC_CLK_TCK")
