"""couchpy/quorum.py: CouchDB's majority, the `w`/`r` a request gives, and the answer once the
copies are counted (201/200 when `w` copies hold a write, 202 and `"accepted": true` when fewer)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couchpy.errors import BadRequest
from couchpy.quorum import (alone_bulk_answer, alone_status, bulk_answer, bulk_level, majority, parse_level,
                            single_status, written)


def test_majority_is_couchdbs_quorum():
    assert [majority(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def test_levels_from_the_query_string_or_a_body():
    assert parse_level(None, "w") is None
    assert parse_level("3", "w") == 3 and parse_level(2, "w") == 2
    assert parse_level("0", "w") == 1  # CouchDB takes w=0 (201): the copy that took it is one
    for bad in ("abc", "-1", "1.5", "", True, 2.0, [2]):
        with pytest.raises(BadRequest):
            parse_level(bad, "r")


def test_what_counts_as_a_write():
    assert written({"ok": True, "id": "a", "rev": "1-x"}) == ("a", "1-x")
    assert written({"ok": True, "id": "a"}) is None  # batch=ok: not written yet
    assert written({"id": "a", "error": "conflict", "reason": "Document update conflict."}) is None
    assert written({"ok": True, "id": "_local/a", "rev": "0-1"}) is None  # each copy's own


def test_one_document():
    assert single_status(201, 3, 3) == 201
    assert single_status(200, 3, 2) == 200  # a deletion
    assert single_status(201, 1, 2) == 202 and single_status(200, 2, 3) == 202


rows_st = st.lists(st.one_of(
    st.builds(lambda i, r: {"ok": True, "id": f"d{i}", "rev": f"1-{r}"}, st.integers(0, 5), st.integers(0, 3)),
    st.builds(lambda i: {"id": f"d{i}", "error": "conflict", "reason": "Document update conflict."}, st.integers(0, 5)),
), max_size=8)


@given(rows_st, st.integers(1, 5), st.data())
def test_bulk_answer_marks_exactly_the_writes_short_of_w(rows, w, data):
    acks = {written(row): data.draw(st.integers(1, 5)) for row in rows if written(row)}
    out, status = bulk_answer(rows, acks, w)
    assert len(out) == len(rows)
    short = [i for i, row in enumerate(rows) if written(row) and acks[written(row)] < w]
    for i, (before, after) in enumerate(zip(rows, out, strict=True)):
        assert after == ({**before, "accepted": True} if i in short else before)
    assert status == (202 if short else 201)


def test_bulk_docs_w_the_bodys_integer_first():
    assert bulk_level(2, "1") == 2 and bulk_level(None, "3") == 3 and bulk_level(0, None) == 1
    assert bulk_level("2", None) is None and bulk_level(True, "2") == 2  # not integers: passed over
    assert bulk_level(None, None) is None


@given(rows_st, st.integers(1, 4))
def test_a_node_alone_accepts_every_written_row_beyond_one_copy(rows, w):
    out, status = alone_bulk_answer(rows, w)
    assert [{k: v for k, v in r.items() if k != "accepted"} for r in out] == rows
    flagged = [r.get("accepted") is True for r in out]
    assert flagged == [w > 1 and r.get("ok") is True for r in rows]  # _local rows too, as CouchDB alone
    assert status == (202 if any(flagged) else 201)
    assert alone_status(201, w) == (202 if w > 1 else 201) and alone_status(200, w) == (202 if w > 1 else 200)
