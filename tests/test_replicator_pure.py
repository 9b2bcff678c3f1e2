"""Pure pieces of the replicator: replication ids, checkpoint comparison, batching/completion."""

from __future__ import annotations

import base64

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from replicator.batching import CompletionTracker, batches
from replicator.checkpoint import (
    LOWEST_SEQ,
    MAX_HISTORY,
    checkpoint_doc,
    compare_logs,
)
from replicator.repid import base_id, normalize_endpoint, replication_id, split_id

ids = st.lists(st.text(min_size=1, max_size=5), max_size=6, unique=True)


# ---------------------------------------------------------------- replication ids


def test_id_ignores_password_slash_and_default_port():
    a = base_id("http://u:p@Host:80/db/", "http://127.0.0.1:5984/t")
    b = base_id("http://u:secret@host/db", "http://127.0.0.1:5984/t/")
    assert a == b
    assert len(a) == 32 and int(a, 16) >= 0


def test_id_names_the_user_however_given():
    """As CouchDB's version 4 ids: another user may see other documents."""
    url = base_id("http://u:p@host/db", "t")
    assert base_id({"url": "http://host/db", "auth": {"basic": {"username": "u", "password": "x"}}}, "t") == url
    header = "Basic " + base64.b64encode(b"u:y").decode()
    assert base_id({"url": "http://host/db", "headers": {"Authorization": header}}, "t") == url
    assert base_id("http://v:p@host/db", "t") != url
    assert base_id("http://host/db", "t") != url


def test_id_names_the_node_running_it():
    """Two nodes pushing their own "http://127.0.0.1:5984/db" to one peer copy different
    databases: one checkpoint document for both would have each overwrite the other's claim."""
    src, tgt = "http://admin:a@127.0.0.1:5984/db", "http://admin:b@10.0.0.2:5984/db"
    one, two = base_id(src, tgt, {"node": "uuid-1"}), base_id(src, tgt, {"node": "uuid-2"})
    assert one != two
    assert base_id(src, tgt, {"node": "uuid-1", "continuous": True}) == one
    assert normalize_endpoint({"url": "http://a:b@h:5984/x/"}) == "http://a@h:5984/x"


def test_id_differs_by_source_target_and_direction():
    s, t = "http://127.0.0.1:1/a", "http://127.0.0.1:1/b"
    assert base_id(s, t) != base_id(t, s)
    assert base_id(s, t) != base_id(s, "http://127.0.0.1:1/c")
    assert base_id("local", t) != base_id(s, t)


@given(ids, st.randoms(use_true_random=False))
@settings(max_examples=50)
def test_id_doc_ids_order_does_not_matter(doc_ids, rnd):
    shuffled = list(doc_ids)
    rnd.shuffle(shuffled)
    assert base_id("a", "b", {"doc_ids": doc_ids}) == base_id("a", "b", {"doc_ids": shuffled})


@given(ids, ids)
@settings(max_examples=50)
def test_id_differs_for_different_doc_ids(x, y):
    if set(x) != set(y):
        assert base_id("a", "b", {"doc_ids": x}) != base_id("a", "b", {"doc_ids": y})


def test_options_that_change_the_result_change_the_id_others_do_not():
    plain = base_id("a", "b", {})
    assert base_id("a", "b", {"selector": {"x": 1}}) != plain
    assert base_id("a", "b", {"selector": {"x": 1}}) != base_id("a", "b", {"selector": {"x": 2}})
    assert base_id("a", "b", {"filter": "d/f", "query_params": {"k": 1}}) != base_id(
        "a", "b", {"filter": "d/f", "query_params": {"k": 2}}
    )
    assert base_id("a", "b", {"since_seq": 5}) != plain
    # how it runs does not matter, and key order inside a selector does not either
    assert base_id("a", "b", {"worker_batch_size": 10, "http_connections": 3, "continuous": True}) == plain
    assert base_id("a", "b", {"selector": {"x": 1, "y": 2}}) == base_id("a", "b", {"selector": {"y": 2, "x": 1}})


def test_full_id_suffixes():
    rid = replication_id("a", "b", {"continuous": True, "create_target": True})
    assert rid.endswith("+continuous+create_target")
    assert split_id(rid) == base_id("a", "b")
    assert replication_id("a", "b") == base_id("a", "b")


# ---------------------------------------------------------------- checkpoint comparison


def entry(sid, seq):
    return {"session_id": sid, "recorded_seq": seq}


def test_same_session_uses_source_last_seq():
    doc = checkpoint_doc("s2", 7, entry("s2", 7), [entry("s1", 3)])
    seq, hist = compare_logs(doc, dict(doc))
    assert seq == 7 and [e["session_id"] for e in hist] == ["s2", "s1"]


def test_missing_checkpoint_restarts_from_zero():
    doc = checkpoint_doc("s1", 3, entry("s1", 3), [])
    assert compare_logs(doc, None) == (LOWEST_SEQ, [])
    assert compare_logs(None, None) == (LOWEST_SEQ, [])


def test_target_behind_finds_older_common_session():
    # The target lost its newest checkpoint (say, restored from a backup).
    src = checkpoint_doc("s3", 30, entry("s3", 30), [entry("s2", 20), entry("s1", 10)])
    tgt = checkpoint_doc("s2", 20, entry("s2", 20), [entry("s1", 10)])
    assert compare_logs(src, tgt)[0] == 20
    assert compare_logs(tgt, src)[0] == 20


def test_pouchdb_style_records_understood():
    src = {"session_id": "a", "last_seq": 9, "history": [{"session_id": "a", "last_seq": 9}]}
    assert compare_logs(src, dict(src)) == (9, src["history"])
    tgt = {"session_id": "b", "last_seq": 12, "history": [{"session_id": "b", "last_seq": 12}, {"session_id": "a", "last_seq": 9}]}
    assert compare_logs(src, tgt)[0] == 9


def test_history_capped():
    prev = [entry(f"s{i}", i) for i in range(100)]
    doc = checkpoint_doc("new", 1000, entry("new", 1000), prev)
    assert len(doc["history"]) == MAX_HISTORY and doc["history"][0]["session_id"] == "new"


@st.composite
def two_sides(draw):
    """Simulate sessions; each writes its checkpoint to both sides, or (a failure) only one."""
    n = draw(st.integers(0, 12))
    sides: list[dict | None] = [None, None]
    for i in range(n):
        seq = (i + 1) * 10
        sid = f"s{i}"
        start_seq, hist = compare_logs(sides[0], sides[1])
        e = {"session_id": sid, "recorded_seq": seq}
        doc = checkpoint_doc(sid, seq, e, hist)
        where = draw(st.sampled_from(["both", "both", "src", "tgt"]))
        if where in ("both", "src"):
            sides[0] = dict(doc)
        if where in ("both", "tgt"):
            sides[1] = dict(doc)
    return sides


@given(two_sides())
@settings(max_examples=150)
def test_resume_point_is_a_session_both_sides_recorded(sides):
    src, tgt = sides
    seq, hist = compare_logs(src, tgt)
    if seq == LOWEST_SEQ:
        return
    sh = {e["session_id"]: e["recorded_seq"] for e in (src or {}).get("history", [])}
    th = {e["session_id"]: e["recorded_seq"] for e in (tgt or {}).get("history", [])}
    common = set(sh) & set(th)
    assert any(sh[s] == seq for s in common), (seq, sh, th)
    # the newest common session is chosen (sessions are numbered in time order)
    newest = max(common, key=lambda s: int(s[1:]))
    assert seq == sh[newest]


# ---------------------------------------------------------------- batching


@given(st.lists(st.integers()), st.integers(1, 7))
@settings(max_examples=100)
def test_batches_partition_in_order(items, size):
    out = list(batches(items, size))
    assert [x for b in out for x in b] == items
    assert all(1 <= len(b) <= size for b in out)
    assert all(len(b) == size for b in out[:-1])


@given(st.integers(0, 40), st.randoms(use_true_random=False))
@settings(max_examples=100)
def test_tracker_reports_completed_prefix(n, rnd: random.Random):
    tr = CompletionTracker(start_seq="start")
    tickets = [tr.issue(f"seq{i}") for i in range(n)]
    order = list(tickets)
    rnd.shuffle(order)
    done: set[int] = set()
    for t in order:
        through = tr.complete(t)
        done.add(t)
        prefix = 0
        while prefix in done:
            prefix += 1
        assert through == ("start" if prefix == 0 else f"seq{prefix - 1}")
        assert tr.pending == n - prefix
    assert tr.through_seq == ("start" if n == 0 else f"seq{n - 1}")
