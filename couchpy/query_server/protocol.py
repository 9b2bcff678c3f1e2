"""Framing between the pool and a worker: a 4-byte big-endian length, then one JSON message.

Requests are JSON arrays `[command, ...args]`; replies are `["ok", result]` or
`["error", error_token, reason]`. Length prefixes (not newline-delimited JSON as couchjs uses) let
the parent read a reply with one `read` of known size.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import orjson

_LEN = struct.Struct(">I")


def write_frame(out: BinaryIO, payload: bytes) -> None:
    out.write(_LEN.pack(len(payload)) + payload)
    out.flush()


def read_frame(inp: BinaryIO) -> bytes | None:
    head = inp.read(4)
    if len(head) < 4:
        return None
    (n,) = _LEN.unpack(head)
    data = inp.read(n)
    if len(data) < n:
        return None
    return data


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
