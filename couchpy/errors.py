"""CouchDB-shaped errors.

Every failure the engine reports to a client is a `CouchError` carrying the HTTP status, CouchDB's
`error` token and a human `reason`. The HTTP layer renders it as `{"error": ..., "reason": ...}`.
"""

from __future__ import annotations


class CouchError(Exception):
    status: int = 500
    error: str = "unknown_error"

    def __init__(self, reason: str = "", error: str | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status

    def body(self) -> dict:
        return {"error": self.error, "reason": self.reason}


class BadRequest(CouchError):
    status, error = 400, "bad_request"


class Unauthorized(CouchError):
    status, error = 401, "unauthorized"


class Forbidden(CouchError):
    status, error = 403, "forbidden"


class NotFound(CouchError):
    status, error = 404, "not_found"


class MethodNotAllowed(CouchError):
    status, error = 405, "method_not_allowed"


class NotAcceptable(CouchError):
    status, error = 406, "not_acceptable"


class Conflict(CouchError):
    status, error = 409, "conflict"

    def __init__(self, reason: str = "Document update conflict.", error: str | None = None):
        super().__init__(reason, error)


class PreconditionFailed(CouchError):
    status, error = 412, "file_exists"


class TooLarge(CouchError):
    status, error = 413, "too_large"


class UnsupportedMediaType(CouchError):
    status, error = 415, "bad_content_type"


class Unavailable(CouchError):
    """A write refused for a while (the client retries, elsewhere or later): CouchDB answers 503
    when it disables updates for a time (its security migration), and its replicator, PouchDB
    and HAProxy's `retry-on 503` retry a 503."""

    status, error = 503, "unavailable"


class InvalidDatabaseName(BadRequest):
    error = "illegal_database_name"


class DocValidation(BadRequest):
    error = "doc_validation"


class QueryParseError(BadRequest):
    error = "query_parse_error"


class InsufficientStorage(CouchError):
    """The disk is full: CouchDB's answer when its disk monitor refuses writes (507)."""

    status, error = 507, "insufficient_storage"


class NotImplemented_(CouchError):
    """A request this server's current setup cannot carry out (not the client's fault)."""

    status, error = 501, "not_implemented"
