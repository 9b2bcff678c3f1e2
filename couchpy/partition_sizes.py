"""Per-partition counts and sizes of a partitioned database, kept by every write inside its own
transaction: what `GET /{db}/_partition/{p}` reports and what `[couchdb] max_partition_size`
is checked against. (CouchDB keeps the same totals in the reductions of its by-id b-tree.)

One record per partition in the `partsizes` sub-database: live documents, deleted documents,
`sizes.external` (the JSON of the leaf bodies, as couchpy.sizes counts the database's) and
`sizes.active` (the stored leaf bodies' bytes). A write adds the change of one document
(`Counts` of its new state minus its old one), so no write reads more than the record it
changes. A record that falls to zero is removed.

`meta[READY]` says the records are complete: set when a partitioned database is created, when
compaction (which recounts them) or `rebuild` (run once, by the first write transaction of a
database written before these records existed) wrote them. Without it, readers count the
partition's id range instead.

The limit, as CouchDB 3.4.3's couch_db_updater applies it: a partition is *full* for a request
when its external size before the request is at least the limit (a limit of 0 or less: none; a
value that is no integer: the default, 10 GiB). An interactive edit (`new_edits=true`) of a
document in a full partition is refused with `partition_overflow` when it makes the document's
leaves larger than they were, whatever the edit is (a deletion whose body is larger too); one
that keeps or shrinks them passes. Replicated writes, design and `_local` documents always pass.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import lmdb

from . import longkeys, partitions, revtree, sizes
from .docinfo import DocInfo, id_of
from .errors import CouchError

SUBDB = "partsizes"
READY = "partition_sizes"  # meta flag: the records are complete
DEFAULT_MAX = 10 * 1024 ** 3  # CouchDB's ?DEFAULT_MAX_PARTITION_SIZE
_RECORD = struct.Struct(">qqqq")


@dataclass(frozen=True, slots=True)
class Counts:
    doc_count: int = 0
    doc_del_count: int = 0
    external: int = 0
    active: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.doc_count + other.doc_count, self.doc_del_count + other.doc_del_count,
                      self.external + other.external, self.active + other.active)

    def __sub__(self, other: Counts) -> Counts:
        return self + -other

    def __neg__(self) -> Counts:
        return Counts(-self.doc_count, -self.doc_del_count, -self.external, -self.active)

    def pack(self) -> bytes:
        return _RECORD.pack(self.doc_count, self.doc_del_count, self.external, self.active)


ZERO = Counts()


class PartitionOverflow(CouchError):
    status, error = 403, "partition_overflow"

    def __init__(self, docid: str):
        super().__init__(f"Partition limit exceeded due to update on '{docid}'")


def _key(partition: str) -> bytes:
    return longkeys.point(partition.encode())


def read(txn: lmdb.Transaction, dbi, partition: str) -> Counts:
    raw = txn.get(_key(partition), db=dbi)
    return Counts(*_RECORD.unpack(raw)) if raw is not None else ZERO


def add(txn: lmdb.Transaction, dbi, partition: str, delta: Counts) -> None:
    if delta == ZERO:
        return
    new = read(txn, dbi, partition) + delta
    if new == ZERO:
        txn.delete(_key(partition), db=dbi)
    else:
        txn.put(_key(partition), new.pack(), db=dbi)


def note(db: Any, txn: lmdb.Transaction, meta: dict, docid: str, change: Counts) -> None:
    """Add one document's change to its partition's record (when the records are kept)."""
    if db.partitioned and meta.get(READY):
        partition = partitions.partition_of(docid)
        if partition is not None:
            add(txn, db.store.db(SUBDB), partition, change)


def write_all(txn: lmdb.Transaction, dbi, totals: dict[str, Counts]) -> None:
    """Replace every record by `totals` (compaction's and `rebuild`'s recount)."""
    txn.drop(dbi, delete=False)
    for partition, counts in totals.items():
        if counts != ZERO:
            txn.put(_key(partition), counts.pack(), db=dbi)


def doc_counts(deleted: bool, stored_bodies: Iterable[tuple[bytes, bytes, bytes]]) -> Counts:
    """What one document adds to its partition: (key, JSON, stored bytes) of its leaf bodies."""
    external = active = 0
    for key, json, stored in stored_bodies:
        external += sizes.body_external(json)
        active += sizes.stored(key, stored)
    return Counts(0 if deleted else 1, 1 if deleted else 0, external, active)


def rebuild(db: Any, txn: lmdb.Transaction, meta: dict) -> None:
    """Count every partition from the documents (once, for a database written before the
    records existed), in the write transaction `txn`; marks the records complete."""
    totals: dict[str, Counts] = {}
    for key, raw in txn.cursor(db=db._docs):
        info = DocInfo.decode(id_of(key, raw).decode(), raw)
        partition = partitions.partition_of(info.id)
        if partition is None:
            continue
        bodies = db.stored_bodies(txn, info.id, revtree.leaf_set(info.tree))
        totals[partition] = totals.get(partition, ZERO) + doc_counts(info.deleted, bodies)
    write_all(txn, db.store.db(SUBDB), totals)
    meta[READY] = True


def ensure(db: Any, txn: lmdb.Transaction, meta: dict) -> None:
    """Before a write transaction changes documents: the records are complete (see `rebuild`)."""
    if db.partitioned and not meta.get(READY):
        rebuild(db, txn, meta)


def limit(config: Any) -> int | None:
    """`[couchdb] max_partition_size` in bytes; None when there is no limit."""
    raw = (config.get("couchdb", "max_partition_size") or "").strip()
    try:
        value = int(raw)
    except ValueError:  # as CouchDB's config:get_integer: not an integer, the default
        value = DEFAULT_MAX
    return value if value > 0 else None


def full_partitions(db: Any, txn: lmdb.Transaction, docids: Iterable[str], meta: dict) -> frozenset[str]:
    """The partitions of `docids` that are full before this request writes (see the module)."""
    if not db.partitioned or not meta.get(READY):
        return frozenset()
    cap = limit(db.config)
    if cap is None:
        return frozenset()
    dbi = db.store.db(SUBDB)
    named = {p for docid in docids if (p := partitions.partition_of(docid)) is not None}
    return frozenset(p for p in named if read(txn, dbi, p).external >= cap)
