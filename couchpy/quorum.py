"""Write and read quorum as CouchDB counts them, without the network.

A write is taken by one copy of a database and then offered to the other copies; the request says
how many copies must hold it (`w`) before the answer claims it. CouchDB answers 201 (200 for a
deletion) when `w` copies hold it and 202 Accepted when fewer do once the wait is over: the write
is kept and replication brings it to the others. In a `_bulk_docs` answer each such row says
`"accepted": true` and the whole answer is 202 when any row does. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from .errors import BadRequest


def majority(n: int) -> int:
    """CouchDB's default quorum for `n` copies (mem3:quorum/1)."""
    return n // 2 + 1


def parse_level(raw: Any, name: str) -> int | None:
    """A request's `w` or `r` (query string or `_bulk_docs` body), or None when not given.

    CouchDB answers a non-integer with a 500 (badarg); a 400 says what is wrong instead. Zero is
    taken as CouchDB takes it: the copy that took the write is always one.
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isascii() and raw.isdigit())):
        raise BadRequest(f"`{name}` must be a non-negative integer.")
    return max(int(raw), 1)


def bulk_level(body_w: Any, query_w: Any) -> int | None:
    """`_bulk_docs`' `w`: as CouchDB 3.4.3 reads it (chttpd_db), the body's when it is an integer,
    else the query string's (a body's `"w": "2"` is passed over, as there)."""
    if isinstance(body_w, int) and not isinstance(body_w, bool):
        return max(body_w, 1)
    return parse_level(query_w, "w")


def written(row: Any) -> tuple[str, str] | None:
    """(id, rev) of a successful write as a write's answer lists it, else None (errors, batch=ok)."""
    if isinstance(row, dict) and row.get("ok") is True and isinstance(row.get("id"), str) \
            and isinstance(row.get("rev"), str) and not row["id"].startswith("_local/"):
        return row["id"], row["rev"]
    return None


def single_status(status: int, acks: int, w: int) -> int:
    """The status of a one-document write that was `status` on the copy that took it."""
    return status if acks >= w else 202


def alone_status(status: int, w: int) -> int:
    """A write's status on a node alone (one copy of everything): 202 when it asks for more copies
    than one, as CouchDB 3.4.3 with `n = 1` answers (`_local` documents included)."""
    return 202 if w > 1 else status


def alone_bulk_answer(rows: list[Any], w: int) -> tuple[list[Any], int]:
    """A `_bulk_docs` answer on a node alone: with `w` > 1 every written row (`_local` ones too, as
    CouchDB 3.4.3 with `n = 1`) says `"accepted": true` and the answer is 202."""
    if w <= 1:
        return rows, 201
    out = [{**row, "accepted": True} if isinstance(row, dict) and row.get("ok") is True else row
           for row in rows]
    return out, 202 if any(isinstance(r, dict) and r.get("accepted") for r in out) else 201


def bulk_answer(rows: list[Any], acks: dict[tuple[str, str], int], w: int) -> tuple[list[Any], int]:
    """The rows and status of a `_bulk_docs` answer once `acks[(id, rev)]` copies hold each write."""
    out: list[Any] = []
    accepted = False
    for row in rows:
        key = written(row)
        if key is not None and acks.get(key, 1) < w:
            row = {**row, "accepted": True}
            accepted = True
        out.append(row)
    return out, 202 if accepted else 201
