"""The strace log reader behind test_durability_sync: it must flag an acknowledgement that comes
before the sync or the commit, and follow calls that strace splits into unfinished/resumed lines."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tests import synctrace

SOCK = "TCP:[127.0.0.1:5984->127.0.0.1:40000]"
DATA = "/d/dbs/x/main/data.mdb"

RECV = f'10 12:00:00.000001 read(7<{SOCK}>, "PUT /db/tok1 HTTP/1.1\\r\\n"..., 65536) = 200'
SYNC_START = f"11 12:00:00.000002 fdatasync(9<{DATA}> <unfinished ...>"
SYNC_END = "11 12:00:00.000003 <... fdatasync resumed>) = 0"
META = f'11 12:00:00.000004 pwrite64(10<{DATA}>, "\\0"..., 120, 4128) = 120'
SEND = f'10 12:00:00.000005 write(7<{SOCK}>, "HTTP/1.1 201 Created\\r\\n{{\\"id\\":\\"tok1\\"}}", 90) = 90'


def test_sync_then_commit_then_ack_is_durable():
    evs = synctrace.events([RECV, SYNC_START, SYNC_END, META, SEND])
    assert [e.kind for e in evs] == ["recv", "fdatasync", "pwrite64", "send"]
    assert synctrace.unsynced_acks(evs, ["tok1"], "/main/data.mdb") == []
    assert synctrace.count(evs, "fdatasync", "/main/data.mdb") == 1


def test_a_sync_still_in_flight_at_the_ack_does_not_count():
    evs = synctrace.events([RECV, SYNC_START, SEND, SYNC_END, META])
    assert len(synctrace.unsynced_acks(evs, ["tok1"], "/main/data.mdb")) == 1


def test_a_sync_of_another_file_does_not_count():
    other = SYNC_START.replace("/main/", "/views/")
    evs = synctrace.events([RECV, other, SYNC_END, META.replace("/main/", "/views/"), SEND])
    assert len(synctrace.unsynced_acks(evs, ["tok1"], "/main/data.mdb")) == 1


def test_an_ack_whose_resumed_line_never_came_still_counts():
    # strace detached while the write was in flight: its bytes are in the first line only
    unfinished = SEND.replace(" = 90", " <unfinished ...>")
    evs = synctrace.events([RECV, SYNC_START, SYNC_END, META, unfinished])
    assert [e.kind for e in evs] == ["recv", "fdatasync", "pwrite64", "send"]
    assert synctrace.unsynced_acks(evs, ["tok1"], "/main/data.mdb") == []


def test_an_ack_started_before_the_commit_is_not_durable_even_if_it_resumes_after():
    unfinished = SEND.replace(" = 90", " <unfinished ...>")
    resumed = "10 12:00:00.000006 <... write resumed>) = 90"
    evs = synctrace.events([RECV, SYNC_START, SYNC_END, unfinished, META, resumed])
    assert len(synctrace.unsynced_acks(evs, ["tok1"], "/main/data.mdb")) == 1


@given(st.permutations([RECV, SYNC_START + "\n" + SYNC_END, META, SEND]))
def test_only_the_one_honest_order_passes(order):
    lines = "\n".join(order).splitlines()
    evs = synctrace.events(lines)
    honest = order == [RECV, SYNC_START + "\n" + SYNC_END, META, SEND]
    assert (synctrace.unsynced_acks(evs, ["tok1"], "/main/data.mdb") == []) == honest
