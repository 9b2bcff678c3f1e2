"""MIME multipart bodies as CouchDB speaks them: multipart/related (a document and its attachment
bodies), multipart/mixed (several revisions of a document), multipart/byteranges (Range replies).

The multipart/related layout is drawn in `couchpy.attachments.mime`, which writes it.

The attachment parts come in the order of the `follows` entries of the JSON part; a reader must
not rely on their headers (CouchDB's own client sends none). Reading is streaming: each part is
consumed in bounded chunks, so bodies of any size pass through bounded memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from aiohttp import BodyPartReader, MultipartReader, web

from couchpy import jsonutil
from couchpy.attachments.mime import (  # noqa: F401 - the writing half, re-exported for handlers
    AttachmentPart,
    content_type_with_boundary,
    new_boundary,
    related_content_type,
    related_length,
    related_pieces,
)
from couchpy.errors import BadRequest

READ_CHUNK = 256 * 1024


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# ---- reading ----------------------------------------------------------------------------------
class RelatedReader:
    """A multipart/related request body: the JSON document, then attachment bodies in order."""

    def __init__(self, request: web.Request):
        if "boundary=" not in request.headers.get("Content-Type", ""):
            raise BadRequest("Missing boundary in multipart/related Content-Type")
        self._reader = MultipartReader(request.headers, request.content)

    async def _next_part(self) -> BodyPartReader | None:
        try:
            part = await self._reader.next()
        except (ValueError, AssertionError) as exc:
            raise BadRequest(f"Malformed multipart body: {exc}") from exc
        if part is not None and not isinstance(part, BodyPartReader):
            raise BadRequest("Nested multipart bodies are not supported here")
        return part

    async def read_json(self, max_size: int = 64 << 20) -> dict:
        part = await self._next_part()
        if part is None:
            raise BadRequest("Empty multipart body")
        data = bytearray()
        while True:
            chunk = await self._read_chunk(part)
            if not chunk:
                break
            data += chunk
            if len(data) > max_size:
                raise BadRequest("JSON part of the multipart body is too large")
        doc = jsonutil.loads(bytes(data))
        if not isinstance(doc, dict):
            raise BadRequest("Document must be a JSON object")
        return doc

    async def _read_chunk(self, part: BodyPartReader) -> bytes:
        try:
            return await part.read_chunk(READ_CHUNK)
        except (ValueError, AssertionError) as exc:
            raise BadRequest(f"Malformed multipart body: {exc}") from exc

    async def next_body(self) -> tuple[dict[str, str], AsyncIterator[bytes]] | None:
        """The next attachment part: its headers and an async iterator of its bytes."""
        part = await self._next_part()
        if part is None:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                chunk = await self._read_chunk(part)
                if not chunk:
                    return
                yield chunk

        return {k.lower(): v for k, v in part.headers.items()}, chunks()

    async def drain(self) -> None:
        """Read and discard whatever is left (so the connection can be reused)."""
        while True:
            nxt = await self.next_body()
            if nxt is None:
                return
            async for _ in nxt[1]:
                pass


# ---- writing: see couchpy.attachments.mime (shared with the replicator) ------------------------
def byteranges_pieces(
    boundary: str, content_type: str, total: int, ranges: list[tuple[int, int]], read
) -> Iterator[bytes]:
    """multipart/byteranges: `read(start, end_inclusive)` yields the bytes of one range."""
    bnd = boundary.encode()
    yield b"--" + bnd
    for start, end in ranges:
        yield (
            f"\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end}/{total}\r\n\r\n"
        ).encode()
        yield from read(start, end)
        yield b"\r\n--" + bnd
    yield b"--"
