"""Checkpoints: where a replication resumes.

After copying everything up to source sequence S, the replicator writes the same record
`_local/<replication base id>` on the source and on the target:

    {"session_id": ..., "source_last_seq": S, "replication_id_version": 4,
     "history": [{"session_id", "start_time", "end_time", "start_last_seq", "end_last_seq",
                  "recorded_seq", "missing_checked", "missing_found", "docs_read",
                  "docs_written", "doc_write_failures"}, ...]}      (newest first, at most 50)

A resumed run may trust S only if *both* sides recorded it: one side may have been restored from a
backup, or a write may have reached only one. So the two histories are compared and the newest
session present in both wins; without a common session the replication starts from the beginning
(always safe: revs_diff makes re-sending known revisions free of writes). This is CouchDB's
`compare_replication_logs`, also what PouchDB's checkpointer does. Records written by PouchDB (which
say `last_seq` instead of `recorded_seq` / `source_last_seq`) are understood too.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

LOWEST_SEQ: Any = 0
MAX_HISTORY = 50


def _entry_seq(entry: dict[str, Any]) -> Any:
    if "recorded_seq" in entry:
        return entry["recorded_seq"]
    return entry.get("last_seq", LOWEST_SEQ)


def _has_session(session_id: Any, history: list[dict[str, Any]]) -> bool:
    return any(e.get("session_id") == session_id for e in history)


def compare_histories(source: list[dict[str, Any]], target: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """(seq to resume from, history to carry on) from two histories, newest first."""
    # Iterative form of CouchDB's compare_rep_history: walk both newest-first in lock step. Unlike
    # CouchDB the matched entry is kept in the carried history (as PouchDB does), so the next
    # comparison can still find it.
    i = 0
    while i < len(source) and i < len(target):
        s, t = source[i], target[i]
        if _has_session(s.get("session_id"), target[i:]):
            return _entry_seq(s), source[i:]
        if _has_session(t.get("session_id"), source[i + 1 :]):
            return _entry_seq(t), target[i:]
        i += 1
    return LOWEST_SEQ, []


def compare_logs(source_doc: dict[str, Any] | None, target_doc: dict[str, Any] | None) -> tuple[Any, list[dict[str, Any]]]:
    """(seq to resume from, history to carry on) from the two checkpoint documents (None = absent)."""
    if not source_doc or not target_doc:
        return LOWEST_SEQ, []
    sid, tid = source_doc.get("session_id"), target_doc.get("session_id")
    if sid is not None and sid == tid:
        seq = source_doc.get("source_last_seq", source_doc.get("last_seq", LOWEST_SEQ))
        return seq, list(source_doc.get("history") or [])
    return compare_histories(list(source_doc.get("history") or []), list(target_doc.get("history") or []))


def checkpoint_doc(
    session_id: str, recorded_seq: Any, session_entry: dict[str, Any], previous: list[dict[str, Any]]
) -> dict[str, Any]:
    """The record to write on both sides: this session's entry on top of the carried history."""
    history = [session_entry] + [e for e in previous if e.get("session_id") != session_id]
    return {
        "session_id": session_id,
        "source_last_seq": recorded_seq,
        "replication_id_version": 4,
        "history": history[:MAX_HISTORY],
    }
