"""Time to update sequence (pure): the arithmetic behind `_changes?since=<time>` and `until=`.

CouchDB 3.6 ("time-seq") lets `since` be an RFC 3339 time and translates it into a sequence
before the feed starts. couchpy keeps, in the database's own environment and in the same
transaction as the writes, one entry per coarse time bucket in which something was written:

    key   bucket start (milliseconds since the epoch, 8 bytes big endian)
    value (first_ms, last_ms, min_seq, max_seq): the first and last commit times in the bucket and
          the lowest and highest update sequence those commits produced

Commit times are clamped to never go back (`clamp`), so entries are ordered by time and by
sequence alike and every time of an entry lies in [its key, the next entry's key). A lookup then
needs only the (at most two) entries just before the asked time, which the caller reads with one
cursor seek.

Answers are rounded outward to an entry, never inward: `since_seq(t)` is a sequence after which
every change committed at or after `t` lies (a few earlier ones of the same bucket may come too),
and `until_seq(t)` one up to which every change committed at or before `t` lies. Changes written
before the index existed (older databases) have no time: all that is known is that they came
before the index's first commit, so `since` counts them before `t` only when that commit is, and
`until` always counts them in; neither bound ever drops a change.
"""

from __future__ import annotations

import re
import struct
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

SUBDB = "timeseq"
DEFAULT_BUCKET_SECONDS = 60

_VALUE = struct.Struct(">QQQQ")
_KEY = struct.Struct(">Q")

# RFC 3339 date-time: what CouchDB 3.6 accepts (`YYYY-MM-DDTHH:MM:SSZ`) and also fractional
# seconds, numeric offsets, a lowercase `t`/`z` or a space between date and time (RFC 3339 5.6).
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
# Anything that starts as a date is meant as a time (a sequence never has "-" after 4 digits and
# then two more digits and "-"): a malformed one is a malformed time, not a sequence.
_LOOKS_LIKE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}")


class Entry(NamedTuple):
    first_ms: int
    last_ms: int
    min_seq: int
    max_seq: int


def looks_like_time(value: object) -> bool:
    return isinstance(value, str) and _LOOKS_LIKE_TIME.match(value) is not None


def parse_time(value: str) -> int:
    """An RFC 3339 date-time as milliseconds since the epoch; ValueError otherwise."""
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(value)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7), m.group(8)
    if zone in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(value)
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if second == 60:  # a leap second is the last instant of its minute
        second = 59
    when = datetime(year, month, day, hour, minute, second, tzinfo=tz)  # ValueError when invalid
    ms = int(when.timestamp()) * 1000 + (int((frac[1:] + "00")[:3]) if frac else 0)
    if ms < 0:
        raise ValueError(value)
    return ms


def format_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bucket(ms: int, width_ms: int) -> int:
    return ms - ms % width_ms


def clamp(now_ms: int, last: Entry | None) -> int:
    """Commit times never go back (a clock stepped backwards would otherwise put later changes
    into earlier buckets and break `since`)."""
    now_ms = max(now_ms, 0)  # a clock before 1970 is no time to index
    return now_ms if last is None else max(now_ms, last.last_ms)


def record(last_key: int | None, last: Entry | None, now_ms: int, width_ms: int,
           min_seq: int, max_seq: int) -> tuple[int, Entry]:
    """The (key, entry) to store after a commit at `now_ms` that wrote sequences min_seq..max_seq,
    given the newest entry stored (or None). The newest entry is extended while the commit falls
    in its bucket; otherwise a new entry begins at the commit's bucket."""
    now = clamp(now_ms, last)
    key = bucket(now, width_ms)
    if last is not None and last_key is not None and key <= last_key:
        return last_key, Entry(last.first_ms, now, last.min_seq, max_seq)
    return key, Entry(now, now, min_seq, max_seq)


# Coarser with age, as CouchDB's time-seq decays: (age at least, granularity), both in ms.
DECAY = ((365 * 86400_000, 30 * 86400_000), (30 * 86400_000, 86400_000), (86400_000, 3600_000))


def granularity(age_ms: int) -> int | None:
    """The granularity an entry this old is kept at (None: as written)."""
    for age, width in DECAY:
        if age_ms >= age:
            return width
    return None


def coarsen(entries: list[tuple[int, Entry]], now_ms: int) -> list[tuple[int, Entry]]:
    """The index with old entries merged (compaction runs it): consecutive entries of the same
    coarse bucket of their age become one, keyed by the first one's key. Every time of a merged
    entry still lies between its key and the next entry's key, so the lookups stay exact to the
    (now coarser) entry and never drop a change; an index of years stays a few hundred entries."""
    out: list[tuple[int, Entry]] = []
    group_id: tuple[int, int] | None = None
    for key, entry in entries:
        width = granularity(now_ms - entry.last_ms)
        gid = None if width is None else (width, bucket(key, width))
        if out and gid is not None and gid == group_id:
            head_key, head = out[-1]
            out[-1] = (head_key, Entry(head.first_ms, entry.last_ms, head.min_seq, entry.max_seq))
        else:
            out.append((key, entry))
        group_id = gid
    return out


def since_seq(before: list[Entry], t_ms: int) -> int:
    """The `since` for time `t_ms`, from the entries whose key is below `t_ms` (only the last two
    are read; key order). Every change committed at or after `t_ms` has a larger sequence."""
    if not before:
        return 0  # the whole index is after t; what predates it has no time: all of it
    newest = before[-1]
    if newest.last_ms < t_ms:
        return newest.max_seq
    if len(before) >= 2:
        # the newest spans t; the one before it ended before the newest's key, below t
        return before[-2].max_seq
    # the oldest entry spans t: what predates the index is before its first commit, so before t
    # only when that commit is
    return newest.min_seq - 1 if newest.first_ms <= t_ms else 0


def until_seq(upto: list[Entry], t_ms: int, first: Entry | None, update_seq: int) -> int:
    """The `until` for time `t_ms`, from the entries whose key is at most `t_ms` (only the last two
    are read) and the oldest entry of all (`first`, None when the index is empty). Every change
    committed at or before `t_ms` has a sequence no larger."""
    if first is None:
        return update_seq  # no times known: any change may be before t
    if upto:
        newest = upto[-1]
        if newest.first_ms <= t_ms:
            return newest.max_seq
        if len(upto) >= 2:
            return upto[-2].max_seq  # wholly before the newest's key, which is at most t
    return first.min_seq - 1  # only what predates the index (times unknown: taken as before t)


def encode_key(key: int) -> bytes:
    return _KEY.pack(key)


def decode_key(raw: bytes) -> int:
    return _KEY.unpack(raw)[0]


def encode_entry(entry: Entry) -> bytes:
    return _VALUE.pack(*entry)


def decode_entry(raw: bytes) -> Entry:
    return Entry(*_VALUE.unpack(raw))
