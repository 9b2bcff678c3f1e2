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


class TransientError(ReplicationError):
    error = "transient_error"


class PermanentError(ReplicationError):
    permanent = True
    error = "replication_failed"


class DbNotFound(PermanentError):
    error = "db_not_found"


class AuthError(PermanentError):
    error = "unauthorized"
