"""The power-loss journal (tests/writejournal.py): reading strace's log, and the images it builds."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests import writejournal
from tests.writejournal import Send, Sync, Write


def _hex(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


P = _hex(b"/d/main/data.mdb")


def test_reads_pwrite_lseek_writev_odsync_syncs_and_sends_across_unfinished_calls():
    lines = [
        f'7 openat(AT_FDCWD<{_hex(b"/")}>, "{P}", O_RDWR|O_CREAT, 0644) = 4<{P}>',
        f'7 openat(AT_FDCWD<{_hex(b"/")}>, "{P}", O_WRONLY|O_DSYNC|O_CLOEXEC) = 5<{P}>',
        f'7 pwrite64(4<{P}>, "{_hex(b"abc")}", 3, 8192) = 3',
        f'7 lseek(4<{P}>, 100, SEEK_SET) = 100',
        f'7 writev(4<{P}>, [{{iov_base="{_hex(b"xy")}", iov_len=2}}, {{iov_base="{_hex(b"z")}", iov_len=1}}], 2 <unfinished ...>',
        f'9 sendto(6<{_hex(b"TCP:[1->2]")}>, "{_hex(b"early")}", 5, 0, NULL, 0) = 5',
        '7 <... writev resumed>) = 3',
        f'7 fdatasync(4<{P}>) = 0',
        f'7 pwrite64(5<{P}>, "{_hex(b"meta")}", 4, 0) = 4',
        f'7 pwrite64(4<{_hex(b"/elsewhere")}>, "{_hex(b"no")}", 2, 0) = 2',
        f'7 pwrite64(4<{P}>, "{_hex(b"bad")}", 3, 0) = -1 ENOSPC (No space left on device)',
        f'9 write(6<{_hex(b"TCP:[1->2]")}>, "{_hex(b"ack")}", 3) = 3',
    ]
    evs = writejournal.events(lines, "/d/")
    path = "/d/main/data.mdb"
    assert evs == [
        Write(2, path, 8192, b"abc", False),
        Send(5, b"early"),
        Write(6, path, 100, b"xyz", False),
        Sync(7, path),
        Write(8, path, 0, b"meta", True),
        Send(11, b"ack"),
    ]
    assert writejournal.durable_before(evs, 7) == set()
    assert writejournal.durable_before(evs, 8) == {2, 6}
    assert writejournal.durable_before(evs, 9) == {2, 6, 8}
    assert writejournal.sent_before(evs, 11) == b"early"


writes = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3000), st.binary(min_size=1, max_size=1500),
                            st.booleans(), st.booleans()), min_size=1, max_size=25)


def _journal(spec) -> list:
    evs, i = [], 0
    for file, offset, data, synchronous, sync_after in spec:
        path = f"/d/f{file}"
        evs.append(Write(i, path, offset, data, synchronous))
        i += 1
        if sync_after:
            evs.append(Sync(i, path))
            i += 1
    return evs


def _apply(files: dict, e: Write) -> None:
    f = files.setdefault(e.path, bytearray())
    if len(f) < e.offset + len(e.data):
        f.extend(b"\0" * (e.offset + len(e.data) - len(f)))
    f[e.offset:e.offset + len(e.data)] = e.data


@given(writes, st.integers(0, 60), st.integers(0, 1 << 30))
def test_image_holds_what_was_synced_and_nothing_written_after_the_cut(spec, cut, seed):
    evs = _journal(spec)
    img = writejournal.image(evs, {}, cut, random.Random(seed))
    # nothing written after the cut: the image is within the files of the writes before it
    before = [e for e in evs if isinstance(e, Write) and e.index < cut]
    assert set(img) <= {e.path for e in before}
    for path, data in img.items():
        assert len(data) <= max(e.offset + len(e.data) for e in before if e.path == path)
    # everything durable at the cut, and not overwritten since by a write that may be lost or
    # torn, reads back as written
    durable = writejournal.durable_before(evs, cut)
    for e in before:
        if e.index not in durable:
            continue
        later = [x for x in before if x.index > e.index and x.path == e.path]
        if any(x.offset < e.offset + len(e.data) and e.offset < x.offset + len(x.data) for x in later):
            continue
        assert img[e.path][e.offset:e.offset + len(e.data)] == e.data


@given(writes)
def test_with_everything_synced_the_image_is_the_files_as_written(spec):
    evs = _journal([(f, o, d, s, True) for f, o, d, s, _ in spec])
    expected: dict = {}
    for e in evs:
        if isinstance(e, Write):
            _apply(expected, e)
    cut = evs[-1].index + 1
    assert writejournal.image(evs, {}, cut, random.Random(0)) == {p: bytes(f) for p, f in expected.items()}
