"""Replication failures, sorted by what the supervisor should do about them.

`TransientError`: the peer may answer later (connection refused/reset, timeout, 5xx, 429, a body cut
mid-way). Retried per request with backoff; when retries run out the job crashes and the scheduler
restarts it later with exponential backoff.

`PermanentError`: retrying cannot help (401/403, missing source, missing target without
`create_target`, invalid parameters). The job fails with this reason and is not restarted.
"""

from __future__ import annotations


class ReplicationError(Exception):
    permanent = False
    error = "replication_error"

    def __init__(self, reason: str, error: str | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        if error:
            self.error = error
        self.status = status

    def describe(self) -> str:
        """The failure as `_scheduler` shows it (`info.error`) and the `_replicator` document records it."""
        return self.reason


class TransientError(ReplicationError):
    error = "transient_error"


class ChangesReaderDied(TransientError):
    """The source answered its changes feed with a server error (e.g. a filter function threw):
    CouchDB's replicator calls this crash `changes_reader_died`, answers a one-shot `_replicate`
    500 with it, and restarts a `_replicator` job later (state `crashing`)."""

    error = "changes_reader_died"

    def describe(self) -> str:
        # _scheduler's info.error names the crash, as CouchDB's `{changes_reader_died, Reason}` does
        return f"{self.error}: {self.reason}"


class PermanentError(ReplicationError):
    permanent = True
    error = "replication_failed"


class DbNotFound(PermanentError):
    error = "db_not_found"


class AuthError(PermanentError):
    error = "unauthorized"
