"""Errors a query server reports, shaped as CouchDB reports them."""

from __future__ import annotations

from ..errors import CouchError


class QueryServerError(CouchError):
    status, error = 500, "query_server_error"


class CompilationError(QueryServerError):
    """A map/reduce function that does not compile (CouchDB: 400 compilation_error)."""

    status, error = 400, "compilation_error"


class OSProcessError(QueryServerError):
    """The worker crashed or exceeded os_process_timeout; it has been replaced."""

    status, error = 500, "os_process_error"
