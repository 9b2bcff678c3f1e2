"""The code of a replication's design filter, read from the source before the replication is named.

CouchDB names a filtered replication by its filter function's source as well as its name: edit
the function and the replication id changes, so the new function starts from the beginning
instead of resuming from a checkpoint the old function wrote. Without it, documents the old
function left behind would be counted as already seen and never copied.

The code is read when a replication is requested (`POST /_replicate`, a `_replicator` document),
as CouchDB reads it; a source that cannot be read leaves it unknown and the run itself then reports
the error (a missing filter is the client's 404). The run reads the design document again and
names its checkpoints by the code it actually uses, so a checkpoint never outlives its function.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

from couchpy.errors import CouchError

from .endpoint import Endpoint, make_endpoint
from .errors import ReplicationError
from .params import ReplicationParams

READ_TIMEOUT = 10.0  # seconds


def design_filter(name: str | None) -> tuple[str, str] | None:
    """(design document, function) of a `ddoc/name` filter; None for none and built-in ones."""
    if not name or name.startswith("_"):
        return None
    ddoc, _, fname = name.partition("/")
    return ddoc, fname


def code_in(ddoc: dict[str, Any] | None, fname: str) -> str | None:
    """The source of filter `fname` in a design document, or None when it has none."""
    code = ((ddoc or {}).get("filters") or {}).get(fname)
    return code.strip() if isinstance(code, str) else None


async def read(source: Endpoint, name: str | None) -> str | None:
    """The filter's source code on `source`, or None when there is none to read."""
    parts = design_filter(name)
    if parts is None:
        return None
    return code_in(await source.get_design(parts[0]), parts[1])


async def resolved(params: ReplicationParams, node: Any) -> ReplicationParams:
    """`params` with `filter_code` read from the source (unchanged when it has no design filter)."""
    if design_filter(params.filter) is None or params.filter_code is not None:
        return params
    code = None
    source = None
    try:
        source = make_endpoint(params.source, node=node, connection_timeout=params.connection_timeout,
                               retries_per_request=1, http_connections=1)
        async with asyncio.timeout(READ_TIMEOUT):  # requests are read one at a time: keep it short
            code = await read(source, params.filter)
    except (ReplicationError, CouchError, OSError, asyncio.TimeoutError):
        code = None  # the run reports what is wrong with the source
    finally:
        if source is not None:
            with contextlib.suppress(Exception):
                await source.close()
    return dataclasses.replace(params, filter_code=code)
