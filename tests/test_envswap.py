"""couchpy.envswap: the recovery decision over every state a crash can leave, and on a real disk."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from couchpy import envswap
from couchpy.envswap import LIVE, NEW, OLD
from couchpy.storage import RETIRED_KEY, Store, retire

# The swap as operations on a model directory (name -> which environment it holds).
SWAP = [("rename", LIVE, OLD), ("rename", NEW, LIVE), ("remove", OLD)]


def _apply(fs: dict[str, str], step) -> None:
    if step[0] == "rename":
        assert step[2] not in fs, step
        fs[step[2]] = fs.pop(step[1])
    else:
        del fs[step[1]]


def test_a_crash_after_any_step_of_the_swap_recovers_the_right_environment():
    for done in range(len(SWAP) + 1):
        fs = {LIVE: "before", NEW: "compacted"}
        for step in SWAP[:done]:
            _apply(fs, step)
        for step in envswap.plan(set(fs)):
            _apply(fs, step)
        # before the first rename the old environment stays; from it on the compacted one wins
        assert fs == {LIVE: "before" if done == 0 else "compacted"}, done


@given(st.sets(st.sampled_from([LIVE, NEW, OLD])))
def test_recovery_keeps_one_environment_and_never_drops_main(present):
    fs = {name: name for name in present}
    for step in envswap.plan(present):
        _apply(fs, step)
    if present:
        assert set(fs) == {LIVE}
        if LIVE in present:
            assert fs[LIVE] == LIVE  # the live environment is never replaced by a leftover
    else:
        assert fs == {}
    # recovery is idempotent: a crash during recovery is recovered by the next open
    assert envswap.plan(set(fs)) == []


def test_recover_on_disk(tmp_path):
    for present in itertools.chain.from_iterable(
        itertools.combinations([LIVE, NEW, OLD], k) for k in range(1, 4)
    ):
        d = tmp_path / "-".join(present)
        d.mkdir()
        for name in present:
            (d / name).mkdir()
            (d / name / "data.mdb").write_text(name)
        envswap.recover(d)
        expected = LIVE if LIVE in present else NEW if NEW in present else OLD
        assert sorted(p.name for p in d.iterdir()) == [LIVE]
        assert (d / LIVE / "data.mdb").read_text() == expected


@given(st.sets(st.sampled_from([0, 1, 2])), st.text("0123456789abcdef", min_size=32, max_size=32))
def test_an_environment_of_another_name_recovers_the_same_way(present, sig):
    """A view index swaps under its signature: the same decisions, with its own names."""
    main, other = envswap.names(), envswap.names(sig)
    assert other == (sig, sig + ".compact", sig + ".old")
    rename = dict(zip(main, other))
    steps = envswap.plan({main[i] for i in present})
    assert envswap.plan({other[i] for i in present}, sig) == [
        tuple(rename.get(x, x) for x in step) for step in steps]


def _env(path, value: bytes) -> None:
    store = Store(path, ("meta",))
    store.write(lambda txn: txn.put(b"v", value, db=store.db("meta")))
    store.close()


def test_recover_leaves_a_live_compactions_copy_and_retires_the_replaced_environment(tmp_path):
    """With `retire`: a copy is not a leftover while a compaction holds `compact.lock`; the
    replaced environment is marked retired (couchpy.storage) before it is removed."""
    _env(tmp_path / LIVE, b"live")
    _env(tmp_path / NEW, b"copy")
    retired = []
    with envswap.compacting(tmp_path):
        envswap.recover(tmp_path, retire=retired.append)
        assert (tmp_path / NEW).exists()
    envswap.recover(tmp_path, retire=retired.append)
    assert not (tmp_path / NEW).exists() and retired == []
    _env(tmp_path / OLD, b"replaced")
    retire(tmp_path / OLD)  # what recover calls: the mark is in the environment
    store = Store(tmp_path / OLD, ("meta",))
    with store.read() as txn:
        assert txn.get(RETIRED_KEY, db=store.db("meta")) == b"1"
    store.close()
    envswap.recover(tmp_path, retire=retired.append)
    assert retired == [tmp_path / OLD] and not (tmp_path / OLD).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("main")) == [LIVE]
