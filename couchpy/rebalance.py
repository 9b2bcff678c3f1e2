"""Moving a database's copies when the cluster's node list changes: the steps, as record edits.

A database record in `_dbs` (`{"nodes": [...], ...}`) moves in three steps, each one write of the
record, so that a node crashing at any point finds in the record where the move stands and goes on:

1. **start**: `moving` lists the new replica set (the rendezvous placement over the defined nodes);
   `nodes` is unchanged, so clients and quorum still use the old copies. Every node of `nodes`,
   `moving` and `leaving` (the *holders*) keeps a copy and pulls from every other holder: the new
   copies are seeded by replication.
2. **switch**: once every new copy holds every revision every old copy holds, `nodes` becomes the
   new set and the old nodes no longer in it are listed in `leaving`. Until then no copy is removed.
3. **leave**: a leaving node removes its copy only once every node of `nodes` holds every revision
   its copy holds (writes taken there up to the switch are not lost), then takes itself out of
   `leaving`.

Nodes no longer in the definition cannot be asked: they are neither a source nor a leaving copy
(their copy is abandoned, not deleted). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .placement import Candidate, place

Record = dict[str, Any]


def ideal(name: str, candidates: Iterable[Candidate], n: int) -> list[str]:
    """Where a database belongs given every defined node (up or not): its rendezvous placement."""
    cands = list(candidates)
    return place(name, cands, min(n, len(cands)))


def holders(rec: Mapping[str, Any]) -> set[str]:
    """The nodes that keep a copy of the database and replicate it while it moves."""
    return set(rec["nodes"]) | set(rec.get("moving", ())) | set(rec.get("leaving", ()))


def start(rec: Mapping[str, Any], target: list[str], defined: set[str], live: set[str]) -> Record | None:
    """The record with its move to `target` begun, or None when it needs none or cannot begin now:
    every target node must be up (to take its copy) and some current replica up (to seed it)."""
    if "moving" in rec or rec.get("leaving") or sorted(rec["nodes"]) == sorted(target):
        return None
    if not set(target) <= live or not (set(rec["nodes"]) & live & defined):
        return None
    return {**rec, "moving": list(target)}


def new_copies(rec: Mapping[str, Any]) -> list[str]:
    """The nodes whose copy is being seeded: they must catch up before the switch."""
    return sorted(set(rec.get("moving", ())) - set(rec["nodes"]))


def sources(rec: Mapping[str, Any], defined: set[str]) -> list[str]:
    """The current copies a new copy must hold everything of (those that can still be asked)."""
    return sorted(set(rec["nodes"]) & defined)


def switch(rec: Mapping[str, Any], defined: set[str]) -> Record:
    """The record once every new copy has caught up: the new set serves, the old copies drain."""
    target = list(rec["moving"])
    leaving = sorted((set(rec["nodes"]) - set(target)) & defined)
    out = {k: v for k, v in rec.items() if k not in ("moving", "leaving")}
    out["nodes"] = target
    if leaving:
        out["leaving"] = leaving
    return out


def left(rec: Mapping[str, Any], node: str) -> Record:
    """The record once `node` removed its drained copy."""
    out = {k: v for k, v in rec.items() if k != "leaving"}
    rest = [n for n in rec.get("leaving", ()) if n != node]
    if rest:
        out["leaving"] = rest
    return out


def forget_undefined(rec: Mapping[str, Any], defined: set[str]) -> Record | None:
    """A record whose `leaving` names nodes no longer defined (they cannot drain): without them."""
    leaving = rec.get("leaving") or []
    if all(n in defined for n in leaving):
        return None
    out = {k: v for k, v in rec.items() if k != "leaving"}
    rest = [n for n in leaving if n in defined]
    if rest:
        out["leaving"] = rest
    return out


def missing(leaves: Mapping[str, list[str]], revs_diff: Mapping[str, Any]) -> dict[str, list[str]]:
    """What a `_revs_diff` answer says a copy lacks of `leaves` (doc id -> leaf revisions)."""
    return {doc_id: row["missing"] for doc_id, row in revs_diff.items()
            if doc_id in leaves and row.get("missing")}
