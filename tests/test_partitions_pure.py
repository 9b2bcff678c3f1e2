"""couchpy.partitions: partition names and ids, and the ranges that make a partition query a range
read (checked against brute force with hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couchpy import partitions
from couchpy.errors import BadRequest

names = st.text(alphabet=st.sampled_from("ab:;_z\x00\x01é\uffff09"), max_size=6)
json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.lists(st.integers(), max_size=2), names)


@pytest.mark.parametrize("docid,error,reason", [
    ("nocolon", "illegal_docid", "Doc id must be of form partition:id"),
    (":b", "illegal_partition", "Partition must not be empty"),
    ("a:", "illegal_docid", "Document id must not be empty"),
    ("a:_x", "illegal_docid", "Only reserved document ids may start with underscore."),
])
def test_invalid_ids(docid, error, reason):
    with pytest.raises(BadRequest) as exc:
        partitions.validate_docid(docid)
    assert (exc.value.error, exc.value.reason) == (error, reason)


def test_valid_ids():
    for docid in ("a:b", "a:b:c", "_design/x", "_local/y", "é:1"):
        assert partitions.validate_docid(docid) == docid
    assert partitions.partition_of("a:b:c") == "a"
    assert partitions.partition_of("_design/a:b") is None
    assert partitions.partition_of("plain") is None


@given(st.lists(names, min_size=2, max_size=2))
def test_row_prefixes_are_ordered_and_self_delimiting(pair):
    a, b = pair
    pa, pb = partitions.row_prefix(a), partitions.row_prefix(b)
    assert (pa < pb) == (a.encode("utf-8", "surrogatepass") < b.encode("utf-8", "surrogatepass"))
    if a != b:
        # no partition's rows fall in another's range [prefix, prefix + 0xff)
        assert not (pa <= pb + b"\x02" < pa + b"\xff")


@given(partition=names.filter(lambda p: p and ":" not in p), ids=st.lists(names, max_size=12),
       start=st.one_of(st.none(), json_values), end=st.one_of(st.none(), json_values), descending=st.booleans())
def test_clamped_id_range_is_the_partition_part_of_the_range(partition, ids, start, end, descending):
    """The ids in the clamped range are exactly the partition's ids in the requested range, with
    Erlang term order between strings and other JSON values (every non-string sorts first)."""
    def key(v):
        return (1, v) if isinstance(v, str) else (0, 0)

    def in_range(i, s, e):
        if descending:
            return (s is None or key(i) <= key(s)) and (e is None or key(i) >= key(e))
        return (s is None or key(i) >= key(s)) and (e is None or key(i) <= key(e))

    s, e = partitions.clamp_id_range(partition, start, end, descending)
    assert s is not None and e is not None
    lo, hi = partitions.id_range(partition)
    expected = {i for i in ids if lo <= i < hi and in_range(i, start, end)}
    got = {i for i in ids if in_range(i, s, e) and i != hi}
    assert got == expected
