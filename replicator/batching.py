"""Batching and in-order completion of replication work.

Changes are read in feed order and cut into batches; several workers copy batches at the same time
and may finish out of order. A checkpoint may only claim sequence S once *every* change up to S has
been copied, so the `CompletionTracker` hands out one ticket per batch (in feed order) and reports
the last sequence of the longest completed prefix. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive chunks of at most `size` items, in order, none empty."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class CompletionTracker:
    """Tickets issued in order with a sequence each; `through_seq` = seq of the completed prefix."""

    def __init__(self, start_seq: Any):
        self.through_seq: Any = start_seq
        self._next = 0  # next ticket to issue
        self._first_open = 0  # lowest ticket not yet folded into through_seq
        self._seqs: dict[int, Any] = {}
        self._done: set[int] = set()

    def issue(self, seq: Any) -> int:
        ticket = self._next
        self._next += 1
        self._seqs[ticket] = seq
        return ticket

    def complete(self, ticket: int) -> Any:
        """Mark a ticket done; returns the (possibly advanced) through_seq."""
        if ticket not in self._seqs:
            raise KeyError(ticket)
        self._done.add(ticket)
        while self._first_open in self._done:
            self._done.discard(self._first_open)
            self.through_seq = self._seqs.pop(self._first_open)
            self._first_open += 1
        return self.through_seq

    @property
    def pending(self) -> int:
        """Tickets issued and not yet folded in."""
        return self._next - self._first_open
