"""An idle continuous feed's memory: what couchpy's own code allocates for it stays small.

`benchmarks.feed_memory` opens 300 idle feeds on a server in its own process and attributes the
heap they hold to the line that allocated it. couchpy's share was 5.8 KB per feed before the
feed's wait lost its `asyncio.timeout`, its extra coroutine frames and the generator of its
pinning scope (4.8 KB after); the rest is aiohttp's and uvloop's per-connection objects (9.2 KB,
docs/benchmarks.md). The ceilings leave room for noise, not for a frame or a timer more."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS_CEILING = 5120  # bytes per feed allocated by couchpy's code
TOTAL_CEILING = 14.75 * 1024  # the whole heap per feed, libraries included


def test_idle_feed_heap_per_feed():
    out = subprocess.run([sys.executable, "-m", "benchmarks.feed_memory", "--feeds", "300", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["feeds"] == 300
    assert 1000 < result["ours_per_feed"] < OURS_CEILING, result
    assert result["bytes_per_feed"] < TOTAL_CEILING, result
