"""LMDB keys for byte strings of any length. Pure, no I/O.

LMDB refuses keys longer than 511 bytes and empty keys, while CouchDB has no limit on document ids
or view keys. Two encodings lift the limit:

- `ordered(raw)`, for indexes read in key order (documents by id, view rows): a raw key of at most
  PREFIX bytes is stored as itself; a longer one as its first PREFIX bytes followed by a 16-byte
  digest. Comparing two stored keys gives the order of the raw keys, except between two long keys
  that share their first PREFIX bytes (a *group*): those are ordered by digest. A group's entries are
  contiguous in LMDB, so a reader that keeps the raw key in the value restores the order by sorting
  each group (`restore_order`), and a range bound falling inside a group reads that whole group and
  filters it (`range_bounds`).
- `point(raw)`, for keys only ever looked up (bodies by id and revision): the raw key when it fits,
  else a prefix and a digest; no order is kept.

Short keys are stored unchanged, so databases and indexes written before keep their keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

PREFIX = 480  # bytes of a long key kept in front of its digest (room for index prefixes up to 15 bytes)
DIGEST = 16
LMDB_MAX = 511  # LMDB's default maximum key size
# Sorts after every stored key of a group (those are PREFIX + DIGEST bytes long).
_AFTER = b"\xff" * (DIGEST + 1)


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=DIGEST).digest()


def ordered(raw: bytes) -> bytes:
    """The stored key of `raw` in an ordered index."""
    if len(raw) <= PREFIX:
        return raw
    return raw[:PREFIX] + _digest(raw)


def is_long(stored: bytes) -> bool:
    """Whether a stored key of an ordered index is a prefix-and-digest key (its raw key is in the value)."""
    return len(stored) > PREFIX


def point(raw: bytes) -> bytes:
    """The stored key of `raw` in an index only read by exact key."""
    if len(raw) <= LMDB_MAX:
        return raw
    return raw[:LMDB_MAX - DIGEST] + _digest(raw)


def seek_low(raw: bytes) -> bytes:
    """A stored key at or before every entry whose raw key is >= raw (the start of raw's group)."""
    return raw if len(raw) <= PREFIX else raw[:PREFIX]


def seek_high(raw: bytes) -> bytes:
    """A stored key after every entry whose raw key is <= raw (past the end of raw's group)."""
    return raw if len(raw) <= PREFIX else raw[:PREFIX] + _AFTER


def range_bounds(lo: bytes | None, hi: bytes | None) -> tuple[bytes | None, bytes | None]:
    """Stored-key bounds [slo, shi) for a scan of the raw keys in [lo, hi) (None: unbounded).

    Every entry whose raw key is in range is inside the stored range, and every short entry inside
    it is in range; a long bound widens the stored range to its whole group, so long entries must
    be checked against the raw bounds.
    """
    slo = None if lo is None else (lo if len(lo) <= PREFIX else lo[:PREFIX] + b"\x00")
    shi = None if hi is None else (hi if len(hi) <= PREFIX else hi[:PREFIX] + _AFTER)
    return slo, shi


def split_range(lo: bytes | None, hi: bytes | None
                ) -> tuple[tuple[bytes | None, bytes | None] | None, list[tuple[bytes, bytes]]]:
    """The raw range [lo, hi) as a stored range holding only entries in range (None when there is
    none), plus the stored ranges of the groups (at most two) partly in range, whose entries the
    caller checks by raw key. For stored summaries (counts, reductions) kept in key order."""
    edges: list[tuple[bytes, bytes]] = []
    slo = lo
    if lo is not None and len(lo) > PREFIX:
        group = lo[:PREFIX]
        edges.append((group + b"\x00", group + _AFTER))
        slo = group + _AFTER
    shi = hi
    if hi is not None and len(hi) > PREFIX:
        group = hi[:PREFIX]
        if not edges or edges[0][0] != group + b"\x00":
            edges.append((group + b"\x00", group + _AFTER))
        shi = group + b"\x00"  # the group's prefix itself (a short key) is below hi
    if slo is not None and shi is not None and slo >= shi:
        return None, edges
    return (slo, shi), edges


def in_range(raw: bytes, lo: bytes | None, hi: bytes | None) -> bool:
    return (lo is None or lo <= raw) and (hi is None or raw < hi)


def restore_order(entries: Iterable[tuple[bytes, bytes]], raw_of: Callable[[bytes, bytes], bytes],
                  descending: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """(raw key, value) in raw-key order from (stored key, value) in LMDB order (reversed when
    `descending`): each group of long keys is gathered and sorted by `raw_of(stored, value)`."""
    group: list[tuple[bytes, bytes]] = []
    gprefix = b""
    for key, value in entries:
        if len(key) <= PREFIX:
            if group:
                yield from sorted(group, reverse=descending)
                group = []
            yield key, value
            continue
        if group and key[:PREFIX] != gprefix:
            yield from sorted(group, reverse=descending)
            group = []
        gprefix = key[:PREFIX]
        group.append((raw_of(key, value), value))
    if group:
        yield from sorted(group, reverse=descending)
