"""Replication over a bad network (CI size): three couchpy nodes in network namespaces of their
own, continuous and one-shot replications between them while their links lose, delay and
reorder frames, are cut and healed, and nodes are SIGKILLed mid-batch and restarted (one right
after a checkpoint lands on it). Then: identical revision trees everywhere, every acknowledged
write present, no revision from nowhere, nothing left to copy. See tests/netemtrial.py.

Needs root (network namespaces): without it the test fails. NETEM_SEED replays a trial;
NETEM_ROUNDS sets the number of fault rounds; `python -m benchmarks.netem_trials` is the long run.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict


from tests.netemtrial import trial
from tests.netns import Netns

ROUNDS = int(os.environ.get("NETEM_ROUNDS", "5"))


async def test_three_nodes_converge_through_loss_reordering_cuts_and_kills(tmp_path):
    seed = int(os.environ.get("NETEM_SEED", random.randrange(1 << 32)))
    print("seed", seed)
    with Netns(3, seed=seed) as net:
        t0 = time.monotonic()
        servers = net.start_all(tmp_path)
        print(f"started in {time.monotonic() - t0:.1f}s")
        figures = await trial(net, servers, seed, ROUNDS, converge_timeout=60)
    print(asdict(figures))
    assert figures.writes_acked > 50, figures
    assert figures.frames_dropped > 0 and figures.frames_reordered > 0, figures
