"""The node-wide failed-login table (`SharedLockout`, for `couchpy serve --workers N`) follows
the rules of the in-process one (`Lockout`), and a correct login does not write."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from couchpy.lockout import Lockout
from couchpy.lockout_shared import SharedLockout

pairs = st.tuples(st.sampled_from(["ann", "bob", "b\0b", "ü" * 300]), st.sampled_from(["127.0.0.1", "::1"]))
steps = st.lists(st.tuples(st.sampled_from(["failed", "succeeded", "is_locked"]), pairs, st.floats(0, 5)),
                 max_size=40)


@settings(max_examples=60, deadline=None)
@given(steps, st.integers(1, 4))
def test_the_shared_table_answers_as_the_in_process_one(events, threshold):
    """(Eviction aside: with fewer pairs than max_objects the two tables agree step by step.)"""
    with tempfile.TemporaryDirectory() as tmp:
        shared = SharedLockout(Path(tmp) / "lockout", threshold=threshold, max_lifetime_s=10)
        local = Lockout(threshold=threshold, max_lifetime_s=10)
        now = 100.0
        try:
            for op, (user, address), dt in events:
                now += dt
                if op == "is_locked":
                    assert shared.is_locked(user, address, now) == local.is_locked(user, address, now)
                elif op == "failed":
                    shared.failed(user, address, now)
                    local.failed(user, address, now)
                else:
                    shared.succeeded(user, address)
                    local.succeeded(user, address)
            for user in ("ann", "bob", "b\0b", "ü" * 300):
                for address in ("127.0.0.1", "::1"):
                    assert shared.is_locked(user, address, now) == local.is_locked(user, address, now)
        finally:
            shared.close()


def test_bounded_aged_out_and_the_least_recently_failed_forgotten_first(tmp_path):
    lo = SharedLockout(tmp_path / "lockout", threshold=2, max_lifetime_s=10, max_objects=3)
    lo.failed("a", "ip", now=0)
    lo.failed("a", "ip", now=1)
    assert lo.is_locked("a", "ip", now=2) and not lo.is_locked("a", "other", now=2)
    assert not lo.is_locked("a", "ip", now=10)  # aged out
    assert not lo.is_locked("a", "ip", now=-1)  # from a later time than now: an earlier boot's table
    for i in range(5):
        lo.failed(f"u{i}", "ip", now=20 + i)
        lo.failed(f"u{i}", "ip", now=20 + i)
    lo.failed("u2", "ip", now=26)  # u2 failed last: u3 and u4 stay with it, u0, u1 and a are gone
    with lo.env.begin(db=lo._failures) as txn:
        assert txn.stat(lo._failures)["entries"] == 3
    assert [lo.is_locked(f"u{i}", "ip", now=27) for i in range(5)] == [False, False, True, True, True]
    lo.close()


def test_a_correct_login_only_reads(tmp_path):
    lo = SharedLockout(tmp_path / "lockout")
    before = lo.env.info()["last_txnid"]
    for _ in range(100):
        assert not lo.is_locked("ann", "ip", now=1)
        lo.succeeded("ann", "ip")
    assert lo.env.info()["last_txnid"] == before
    lo.failed("ann", "ip", now=1)
    lo.succeeded("ann", "ip")  # clears the failure: one write each
    assert lo.env.info()["last_txnid"] == before + 2
    assert not lo.is_locked("ann", "ip", now=2)
    lo.close()


def test_failures_in_two_processes_add_up(tmp_path):
    """Another process's failures count here (the table is the node's, not a process's)."""
    path = tmp_path / "lockout"
    lo = SharedLockout(path, threshold=3)
    lo.failed("ann", "ip", now=time.monotonic())
    code = ("import sys, time; from pathlib import Path; from couchpy.lockout_shared import SharedLockout; "
            "lo = SharedLockout(Path(sys.argv[1]), threshold=3); "
            "[lo.failed('ann', 'ip', time.monotonic()) for _ in range(2)]")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    assert lo.is_locked("ann", "ip", now=time.monotonic())
    lo.close()
