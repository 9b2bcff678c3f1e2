"""An idle feed's memory (continuous, longpoll, EventSource): what it holds in the server stays small.

`benchmarks.feed_memory` opens 300 idle feeds on a server in its own process and attributes the
heap they hold to the line that allocated it. Waiting in its handler, a feed held ~14 KB, 4.8 KB
of it couchpy's; parked (http_api/parkedfeed.py: its handler, task and request gone, the parked
feed the transport's protocol) ~1.8 KB, 0.5 KB of it couchpy's (the parked feed, its share of a
heartbeat timer, its place among the database's listeners) and the rest the transport's (uvloop)
(docs/benchmarks.md). The ceilings leave room for noise, not for a feed left in its handler nor
for a loop timer of its own (~0.45 KB). A waiting longpoll feed (13.4 KB in its handler) and an
EventSource feed (14.3 KB) are parked the same way."""

from __future__ import annotations

import json
import subprocess

import pytest
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS_CEILING = 800  # bytes per feed allocated by couchpy's code
TOTAL_CEILING = 2.5 * 1024  # the whole heap per feed, libraries included


@pytest.mark.parametrize("feed", ["continuous", "longpoll", "eventsource"])
def test_idle_feed_heap_per_feed(feed):
    out = subprocess.run([sys.executable, "-m", "benchmarks.feed_memory", "--feeds", "300", "--feed", feed, "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["feeds"] == 300 and result["feed"] == feed
    assert 300 < result["ours_per_feed"] < OURS_CEILING, result
    assert result["bytes_per_feed"] < TOTAL_CEILING, result
