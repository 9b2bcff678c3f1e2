"""couchpy.timeseq (pure): time buckets to update sequences, checked against brute force over
simulated commit histories with hypothesis; and RFC 3339 parsing."""

from __future__ import annotations

import bisect
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couchpy import timeseq

WIDTH = 1000


def simulate(pre: int, commits: list[tuple[int, int]], width: int = WIDTH):
    """Record commits [(time step in ms, sequences written)] after `pre` unindexed sequences:
    the index as a sorted {key: Entry} and the commits as (clamped time, first seq, last seq)."""
    index: dict[int, timeseq.Entry] = {}
    done: list[tuple[int, int, int]] = []
    seq, now = pre, 50000
    for step, n in commits:
        now += step
        keys = sorted(index)
        last_key = keys[-1] if keys else None
        last = index[last_key] if keys else None
        key, entry = timeseq.record(last_key, last, now, width, seq + 1, seq + n)
        index[key] = entry
        done.append((entry.last_ms, seq + 1, seq + n))
        seq += n
    return index, done, seq


def lookup_since(index, t):
    keys = sorted(index)
    before = [index[k] for k in keys[:bisect.bisect_left(keys, t)]]
    return timeseq.since_seq(before[-2:], t)


def lookup_until(index, t, update_seq):
    keys = sorted(index)
    upto = [index[k] for k in keys[:bisect.bisect_right(keys, t)]]
    first = index[keys[0]] if keys else None
    return timeseq.until_seq(upto[-2:], t, first, update_seq)


# steps may be negative: a clock stepped back
histories = st.tuples(
    st.integers(0, 5),
    st.lists(st.tuples(st.integers(-1500, 4000), st.integers(1, 3)), max_size=30),
)


@settings(max_examples=300)
@given(histories, st.integers(0, 200000))
def test_since_never_drops_a_later_change_and_keeps_out_older_buckets(history, t):
    pre, commits = history
    index, done, _ = simulate(pre, commits)
    since = lookup_since(index, t)
    for when, first, last in done:
        if when >= t:
            assert first > since, (when, first, since)
        elif when < timeseq.bucket(t, WIDTH):  # in a bucket before t's: left out
            assert last <= since
    # what predates the index is left out when the index's first commit was before t
    if done and done[0][0] < t:
        assert since >= pre
    assert 0 <= since


@settings(max_examples=300)
@given(histories, st.integers(0, 200000))
def test_until_keeps_every_earlier_change_and_stops_after_t_bucket(history, t):
    pre, commits = history
    index, done, update_seq = simulate(pre, commits)
    until = lookup_until(index, t, update_seq)
    assert until >= pre  # unindexed changes may be at any time: always in
    for when, first, last in done:
        if when <= t:
            assert last <= until
        elif when >= timeseq.bucket(t, WIDTH) + WIDTH:
            assert first > until
    assert until <= update_seq


@given(histories)
def test_entries_are_ordered_by_key_time_and_sequence(history):
    pre, commits = history
    index, _, _ = simulate(pre, commits)
    entries = [index[k] for k in sorted(index)]
    keys = sorted(index)
    for key, e in zip(keys, entries):
        assert key <= e.first_ms <= e.last_ms < key + WIDTH
        assert e.min_seq <= e.max_seq
    for a, b in zip(entries, entries[1:]):
        assert a.last_ms < b.first_ms and a.max_seq < b.min_seq
    for e in entries:
        assert timeseq.decode_entry(timeseq.encode_entry(e)) == e


def test_empty_index():
    assert timeseq.since_seq([], 5) == 0
    assert timeseq.until_seq([], 5, None, 17) == 17


@pytest.mark.parametrize("text,expected", [
    ("2025-07-21T12:31:02Z", datetime(2025, 7, 21, 12, 31, 2, tzinfo=timezone.utc)),
    ("2025-07-21T12:31:02.250Z", datetime(2025, 7, 21, 12, 31, 2, 250000, tzinfo=timezone.utc)),
    ("2025-07-21T14:31:02+02:00", datetime(2025, 7, 21, 12, 31, 2, tzinfo=timezone.utc)),
    ("2025-07-21 12:31:02z", datetime(2025, 7, 21, 12, 31, 2, tzinfo=timezone.utc)),
])
def test_parse_time(text, expected):
    assert timeseq.parse_time(text) == int(expected.timestamp() * 1000)


@pytest.mark.parametrize("text", [
    "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z", "2025-07-21", "2025-07-21T12:31:02",
    "2025-07-21T25:00:00Z", "2025-07-21T12:31:02+24:00", "2025-07-21T12:31:02Zjunk", "1969-12-31T23:59:59Z",
])
def test_malformed_times(text):
    assert timeseq.looks_like_time(text)
    with pytest.raises(ValueError):
        timeseq.parse_time(text)


@given(st.integers(0, 4102444800000))
def test_format_parse_round_trip_to_the_second(ms):
    assert timeseq.parse_time(timeseq.format_time(ms)) == ms - ms % 1000


def test_sequences_are_not_times():
    for seq in ("12", "12-abc", "now", "1234-x"):
        assert not timeseq.looks_like_time(seq)


@settings(max_examples=300)
@given(histories, st.integers(0, 29), st.integers(-1, 1))
def test_bounds_at_commit_times(history, pick, offset):
    """The boundaries that matter: `t` at (or next to) a commit's own time."""
    pre, commits = history
    index, done, update_seq = simulate(pre, commits)
    if not done:
        return
    t = done[pick % len(done)][0] + offset
    since, until = lookup_since(index, t), lookup_until(index, t, update_seq)
    for when, first, last in done:
        if when >= t:
            assert first > since
        if when <= t:
            assert last <= until


DAY = 86400_000


@settings(max_examples=200)
@given(st.lists(st.tuples(st.one_of(st.integers(0, 120_000), st.integers(0, 5 * DAY)), st.integers(1, 3)),
                max_size=40),
       st.integers(0, 400 * DAY), st.integers(0, 200 * DAY), st.integers(-1, 1), st.booleans())
def test_coarsened_index_still_never_drops_a_change(commits, later, t, offset, at_commit):
    """Compaction's merge of old entries keeps both bounds safe, at any time asked."""
    index, done, update_seq = simulate(2, commits, width=60_000)
    now = (done[-1][0] if done else 0) + later
    merged = dict(timeseq.coarsen(sorted(index.items()), now))
    assert len(merged) <= len(index)
    keys = sorted(merged)
    for a, b in zip(keys, keys[1:]):
        assert merged[a].last_ms < b and merged[a].max_seq < merged[b].min_seq
    if done and at_commit:
        t = done[t % len(done)][0] + offset
    since, until = lookup_since(merged, t), lookup_until(merged, t, update_seq)
    for when, first, last in done:
        if when >= t:
            assert first > since
        if when <= t:
            assert last <= until
    if later >= 400 * DAY:  # everything a year old: at most one entry per 30 days of history
        assert len(merged) <= 1 + (done[-1][0] - done[0][0]) // (30 * DAY) + 1 if done else True


def test_recent_entries_are_kept_as_written():
    entries = [(k * 60_000, timeseq.Entry(k * 60_000, k * 60_000 + 5, k + 1, k + 1)) for k in range(10)]
    assert timeseq.coarsen(entries, 10 * 60_000 + 1000) == entries
    merged = timeseq.coarsen(entries, 10 * 60_000 + 2 * DAY)
    assert merged == [(0, timeseq.Entry(0, 9 * 60_000 + 5, 1, 10))]
