"""The login path under a storm: wrong-password requests by the hundred while a member reads.

    python -m benchmarks.login_storm [--storm 200] [--users 20] [--iterations 600000]

Starts a couchpy server of its own (temporary data directory), creates `--users` users (PBKDF2 at
`--iterations`, CouchDB 3.4's default), a database whose member is one more user, then fires
`--storm` concurrent requests with wrong passwords for those users (each must run a PBKDF2 check
until the lockout refuses the pair outright) while the member reads a document in a loop with
basic auth. Reports the member's read latency (p50/p99/max) during the storm and, for comparison,
during a quiet period just before it (the machine's own latency), the storm's statuses and
duration, and the machine's load average. The goal: the member's p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path

import aiohttp

from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, CouchpyServer, temp_dir


def basic(name: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


async def run(storm: int, users: int, iterations: int, baseline_s: float) -> dict:
    with temp_dir("loginstorm-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir(parents=True)
        (data / "couchpy.ini").write_text(
            f"[admins]\n{ADMIN_USER} = {ADMIN_PASSWORD}\n\n[chttpd_auth]\niterations = {iterations}\n")
        with CouchpyServer(data) as srv:
            async with aiohttp.ClientSession(base_url=srv.base, headers=basic(ADMIN_USER, ADMIN_PASSWORD)) as s:
                names = [f"user{i}" for i in range(users)] + ["member"]
                for name in names:
                    async with s.put(f"/_users/org.couchdb.user:{name}", json={
                            "name": name, "password": "right-" + name, "roles": [], "type": "user"}) as r:
                        assert r.status == 201, await r.text()
                await (await s.put("/db")).read()
                await (await s.put("/db/doc", json={"v": 1})).read()
                async with s.put("/db/_security", json={"members": {"names": ["member"]}}) as r:
                    assert r.status == 200
            member = basic("member", "right-member")
            connector = aiohttp.TCPConnector(limit=storm + 10)
            timeout = aiohttp.ClientTimeout(total=None)
            async with aiohttp.ClientSession(base_url=srv.base, connector=connector, timeout=timeout) as s:
                async with s.get("/db/doc", headers=member) as r:  # the member's first check (then cached)
                    assert r.status == 200
                latencies: list[float] = []
                statuses: Counter = Counter()
                done = asyncio.Event()

                async def wrong(i: int) -> None:
                    async with s.get("/db/doc", headers=basic(f"user{i % users}", f"wrong{i}")) as r:
                        await r.read()
                        statuses[r.status] += 1

                async def reader() -> None:
                    while not done.is_set():
                        t = time.perf_counter()
                        async with s.get("/db/doc", headers=member) as r:
                            body = await r.read()
                            assert r.status == 200 and json.loads(body)["v"] == 1
                        latencies.append((time.perf_counter() - t) * 1000)
                        await asyncio.sleep(0.005)

                # the same reads without a storm first: the machine's own latency, for comparison
                read_task = asyncio.create_task(reader())
                await asyncio.sleep(baseline_s)
                done.set()
                await read_task
                quiet, latencies = sorted(latencies), []
                done.clear()
                read_task = asyncio.create_task(reader())
                t0 = time.perf_counter()
                await asyncio.gather(*(wrong(i) for i in range(storm)))
                storm_s = time.perf_counter() - t0
                done.set()
                await read_task
            latencies.sort()
            return {
                "quiet_reads": len(quiet), "quiet_p50_ms": round(statistics.median(quiet), 2),
                "quiet_p99_ms": round(_p99(quiet), 2),
                "storm_requests": storm, "users": users, "iterations": iterations,
                "storm_seconds": round(storm_s, 2), "storm_statuses": dict(statuses),
                "member_reads": len(latencies),
                "member_p50_ms": round(statistics.median(latencies), 2),
                "member_p99_ms": round(_p99(latencies), 2),
                "member_max_ms": round(latencies[-1], 2),
            }


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storm", type=int, default=200)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=600000)
    ap.add_argument("--baseline-seconds", type=float, default=5.0)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args.storm, args.users, args.iterations, args.baseline_seconds))
    result["load_average_1m"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    print("goal (member p99 < 50 ms):", "met" if result["member_p99_ms"] < 50 else "NOT met")


if __name__ == "__main__":
    main()
