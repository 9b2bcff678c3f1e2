"""Which nodes hold a database: rendezvous (highest random weight) hashing.

Every node gets a score per database, a hash of (database, node); the database lives on the `n`
best-scoring live nodes. Scores do not depend on which other nodes exist, so a node joining takes
over only the databases it now out-scores someone for, and a node leaving moves only the databases
it held. With zones, the copies go first to the best node of as many different zones as possible
(zones in the order of their best node's score), then to the best remaining nodes, so losing one
zone leaves a copy elsewhere whenever there are at least two zones. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    name: str
    zone: str | None = None


def score(db_name: str, node_name: str) -> int:
    digest = hashlib.sha256(f"{db_name}\x00{node_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def place(db_name: str, candidates: Iterable[Candidate], n: int) -> list[str]:
    """The names of the nodes that hold `db_name`, best first (at most `n`)."""
    ranked = sorted(set(candidates), key=lambda c: (score(db_name, c.name), c.name), reverse=True)
    chosen: list[Candidate] = []
    zones_taken: set[str | None] = set()
    for cand in ranked:  # one copy per zone first
        if len(chosen) == n:
            break
        if cand.zone is not None and cand.zone not in zones_taken:
            chosen.append(cand)
            zones_taken.add(cand.zone)
    for cand in ranked:  # then the best of the rest
        if len(chosen) == n:
            break
        if cand not in chosen:
            chosen.append(cand)
    return [c.name for c in sorted(chosen, key=lambda c: ranked.index(c))]
