"""Partitioned databases, the pure part: partition names, document ids, and the key ranges that
scope a query to one partition. No I/O.

In a partitioned database every document id but `_design/` and `_local/` ones is
`<partition>:<rest>`; the partition is everything before the first colon. Scoping a query to a
partition is a range read, never a filter:

- by id (`_all_docs`, partition info): the ids of partition `p` are exactly those in
  [`p:`, `p;`) (`;` is the byte after `:`);
- in a partitioned view or Mango index, every row key starts with `row_prefix(p)` (a
  self-delimiting, order-preserving encoding of the partition), so one partition's rows are one
  contiguous range of the index, ordered by key inside it, as CouchDB orders them.
"""

from __future__ import annotations

from typing import Any

from . import collate
from .errors import BadRequest

RESERVED = ("_design/", "_local/")


def illegal_partition(reason: str) -> BadRequest:
    return BadRequest(reason, error="illegal_partition")


def validate_partition(partition: str) -> str:
    """A partition name as CouchDB accepts it (couch_partition:validate_partition)."""
    if partition == "":
        raise illegal_partition("Partition must not be empty")
    if ":" in partition:
        raise illegal_partition("Partition must not contain a colon")
    if partition.startswith("_"):
        raise illegal_partition("Partition must not start with an underscore")
    return partition


def partition_of(docid: str) -> str | None:
    """The partition of a document id; None for ids outside any partition (reserved ids, ids
    without a colon)."""
    if docid.startswith(RESERVED):
        return None
    head, sep, _ = docid.partition(":")
    return head if sep else None


def validate_docid(docid: str) -> str:
    """A document id of a partitioned database (already valid as a plain id): `partition:rest`
    with a valid partition and a non-empty rest that does not start with an underscore; design
    and local documents are exempt. Errors as CouchDB 3.4.3 answers them."""
    if docid.startswith(RESERVED):
        return docid
    partition, sep, rest = docid.partition(":")
    if not sep:
        raise BadRequest("Doc id must be of form partition:id", error="illegal_docid")
    validate_partition(partition)
    if rest == "":
        raise BadRequest("Document id must not be empty", error="illegal_docid")
    if rest.startswith("_"):
        raise BadRequest("Only reserved document ids may start with underscore.", error="illegal_docid")
    return docid


def id_range(partition: str) -> tuple[str, str]:
    """[start, end) of the document ids of a partition."""
    return partition + ":", partition + ";"


def clamp_id_range(partition: str, start: Any, end: Any, descending: bool) -> tuple[Any, Any]:
    """An `_all_docs` range (start, end in the query's direction) narrowed to a partition, as
    CouchDB narrows it: each bound is the tighter of the one given and the partition's own, in
    Erlang term order, where every JSON value that is no string sorts below every string."""
    lo, hi = id_range(partition)

    def below(a: Any, b: str) -> bool:
        return not isinstance(a, str) or a < b

    if descending:
        start = hi if start is None or not below(start, hi) else start
        end = lo if end is None or below(end, lo) else end
    else:
        start = lo if start is None or below(start, lo) else start
        end = hi if end is None or not below(end, hi) else end
    return start, end


def row_prefix(partition: str) -> bytes:
    """What every row key of `partition` starts with in a partitioned index. The encoding is
    self-delimiting (no partition's prefix is a prefix of another's) and keeps the partitions'
    order, so a partition's rows are the range [row_prefix(p), row_prefix(p) + b"\\xff")."""
    return collate.raw_string(partition)
