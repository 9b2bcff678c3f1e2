"""Query servers: user map/reduce code runs here, in supervised worker processes, never on the event loop.

Like CouchDB's external view servers (couchjs), each worker is a child process speaking a small
request/response protocol over its stdin/stdout (protocol.py). A worker hosts one language engine:
JavaScript in an embedded V8 (mini-racer: sandboxed, no host access, time and heap limits) or
Python (`def fun(doc): yield key, value`; runs arbitrary code, so it is enabled only by
configuration). The parent side (pool.py) keeps a few workers per language, restarts one that
crashes, kills one that exceeds `os_process_timeout` on a call, and maps documents in batches of
about a thousand per call, since per-call overhead dominates otherwise.
"""

from .errors import CompilationError, OSProcessError, QueryServerError
from .pool import QueryServerPool, ViewFunctions

__all__ = ["CompilationError", "OSProcessError", "QueryServerError", "QueryServerPool", "ViewFunctions"]
