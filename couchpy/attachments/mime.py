"""Writing multipart/related bodies (a document and its attachment bodies) as CouchDB does.

Pure byte layout, shared by the HTTP layer (multipart replies) and the replicator (multipart
`PUT ?new_edits=false`):

    --B\r\n
    Content-Type: application/json\r\n
    \r\n
    {"_id": ..., "_attachments": {"a.txt": {..., "follows": true}, ...}}\r\n
    --B\r\n
    Content-Disposition: attachment; filename="a.txt"\r\n
    Content-Type: text/plain\r\n
    Content-Length: 5\r\n
    \r\n
    hello\r\n
    --B--

Attachment parts come in the order of the `follows` entries of the JSON part. The length of the
whole body is known before any attachment byte is read (`related_length`), so a body streamed
from elsewhere can still be sent with a Content-Length, as CouchDB's replicator sends it.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


def new_boundary() -> str:
    return uuid.uuid4().hex


def content_type_with_boundary(kind: str, boundary: str) -> str:
    return f'multipart/{kind}; boundary="{boundary}"'


@dataclass
class AttachmentPart:
    """One attachment body to send: `length` is the byte count of what `chunks` yields
    (an iterable, or an async iterable for related_apieces)."""

    name: str
    content_type: str
    length: int
    encoding: str | None  # "gzip" when the bytes are sent encoded
    chunks: Any


def _disposition(name: str) -> str:
    """`attachment; filename=...` for a part. Readers match parts by order, not by this header,
    but it must stay one well-formed header line whatever the name holds: a name with control
    characters (a line break would end the header) is sent percent-encoded (RFC 6266)."""
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "attachment; filename*=UTF-8''" + quote(name, safe="")
    return 'attachment; filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_line(value: str) -> str:
    return "".join(c for c in value if unicodedata.category(c) != "Cc")


def part_head(att: AttachmentPart) -> bytes:
    head = (
        f"\r\nContent-Disposition: {_disposition(att.name)}"
        f"\r\nContent-Type: {_one_line(att.content_type)}"
        f"\r\nContent-Length: {att.length}"
    )
    if att.encoding and att.encoding != "identity":
        head += f"\r\nContent-Encoding: {att.encoding}"
    return (head + "\r\n\r\n").encode("utf-8")


def json_head(boundary: str) -> bytes:
    return b"--" + boundary.encode() + b"\r\nContent-Type: application/json\r\n\r\n"


def _layout(boundary: str, json_bytes: bytes, atts: list[AttachmentPart]) -> Iterator[bytes | AttachmentPart]:
    """The body in order: bytes sent as they are, and each attachment where its bytes go. The one
    place the layout is written: related_length counts it, related_pieces/apieces send it."""
    if not atts:
        yield json_bytes
        return
    bnd = boundary.encode()
    yield json_head(boundary) + json_bytes + b"\r\n--" + bnd
    for att in atts:
        yield part_head(att)
        yield att
        yield b"\r\n--" + bnd
    yield b"--"


def related_length(boundary: str, json_bytes: bytes, atts: list[AttachmentPart]) -> int:
    """Exact byte count of related_pieces(...) / related_apieces(...)."""
    return sum(p.length if isinstance(p, AttachmentPart) else len(p) for p in _layout(boundary, json_bytes, atts))


def related_content_type(boundary: str, atts: list[AttachmentPart]) -> str:
    """A document without attachment bodies is sent as plain JSON, as CouchDB does."""
    return content_type_with_boundary("related", boundary) if atts else "application/json"


def _short(att: AttachmentPart, sent: int) -> RuntimeError:
    return RuntimeError(f"attachment {att.name}: sent {sent} bytes, announced {att.length}")


def _counted(att: AttachmentPart, chunks: Iterable[bytes]) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        yield chunk
    if sent != att.length:
        raise _short(att, sent)


def related_pieces(boundary: str, json_bytes: bytes, atts: list[AttachmentPart]) -> Iterator[bytes]:
    """The multipart/related body, piece by piece (attachment bytes are not buffered)."""
    for piece in _layout(boundary, json_bytes, atts):
        if isinstance(piece, AttachmentPart):
            yield from _counted(piece, piece.chunks)
        else:
            yield piece


async def related_apieces(boundary: str, json_bytes: bytes, atts: list[AttachmentPart]) -> AsyncIterator[bytes]:
    """related_pieces for attachment bodies given as async iterables (streamed from a peer)."""
    for piece in _layout(boundary, json_bytes, atts):
        if not isinstance(piece, AttachmentPart):
            yield piece
        elif isinstance(piece.chunks, AsyncIterable):
            sent = 0
            async for chunk in piece.chunks:
                sent += len(chunk)
                yield chunk
            if sent != piece.length:
                raise _short(piece, sent)
        else:
            for chunk in _counted(piece, piece.chunks):
                yield chunk
