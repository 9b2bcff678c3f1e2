"""The multipart/related writer (couchpy.attachments.mime) and the replicator's choice of which
revisions travel with their bodies (replicator.attachments): pure logic, property-tested."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from hypothesis import given, settings
from aiohttp.base_protocol import BaseProtocol
from hypothesis import strategies as st

from couchpy.attachments.mime import (AttachmentPart, new_boundary, related_apieces, related_length,
                                      related_pieces)
from replicator.attachments import needs_data, part_for

NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), min_size=1, max_size=12)
BODIES = st.lists(st.tuples(NAMES, st.binary(max_size=3000), st.sampled_from([None, "gzip"])),
                  max_size=4, unique_by=lambda t: t[0])


def parts_of(bodies, asynchronous=False):
    async def agen(data):
        for i in range(0, len(data), 700):
            yield data[i:i + 700]

    return [AttachmentPart(n, "application/octet-stream", len(d), enc,
                           agen(d) if asynchronous else [d[i:i + 700] for i in range(0, len(d), 700)])
            for n, d, enc in bodies]


@settings(max_examples=60, deadline=None)
@given(bodies=BODIES, doc=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
async def test_related_body_length_and_parts(bodies, doc):
    boundary = new_boundary()
    json_bytes = repr(doc).encode()
    body = b"".join(related_pieces(boundary, json_bytes, parts_of(bodies)))
    assert len(body) == related_length(boundary, json_bytes, parts_of(bodies))
    streamed = b"".join([p async for p in related_apieces(boundary, json_bytes, parts_of(bodies, True))])
    assert streamed == body
    if not bodies:
        assert body == json_bytes
        return
    # a standard multipart reader finds the JSON, then each body, unchanged and in order
    reader = aiohttp.MultipartReader({"Content-Type": f'multipart/related; boundary="{boundary}"'},
                                     _stream(body))
    first = await reader.next()
    assert await first.read() == json_bytes
    for name, data, _ in bodies:
        part = await reader.next()
        assert await part.read(decode=False) == data
    assert await reader.next() is None


def test_names_and_types_cannot_break_the_part_headers():
    part = AttachmentPart("a\r\nX-Injected: 1", "text/plain\r\nX-Too: 2", 0, None, [])
    head = b"".join(related_pieces("b", b"{}", [part])).split(b"\r\n\r\n")[1]
    assert b"X-Injected" not in head.replace(b"X-Injected%3A", b"") and b"\r\nX-Too" not in head


async def test_short_body_is_an_error():
    part = AttachmentPart("a", "text/plain", 10, None, [b"12345"])
    with pytest.raises(RuntimeError):
        b"".join(related_pieces("b", b"{}", [part]))


@given(revpos=st.lists(st.integers(1, 20), min_size=1, max_size=5), since=st.lists(st.integers(1, 20), max_size=4))
def test_needs_data_exactly_when_an_attachment_is_newer_than_every_ancestor(revpos, since):
    doc = {"_attachments": {f"a{i}": {"stub": True, "revpos": p} for i, p in enumerate(revpos)}}
    known = max(since, default=0)
    assert needs_data(doc, [f"{g}-abc" for g in since]) == any(p > known for p in revpos)


def test_part_for_sends_the_encoded_length_of_gzip_bodies():
    assert part_for("a", {"length": 100, "encoding": "gzip", "encoded_length": 30}, []).length == 30
    assert part_for("a", {"length": 100}, []).length == 100
    with pytest.raises(ValueError):
        part_for("a", {"follows": True}, [])


def _stream(data: bytes) -> aiohttp.StreamReader:
    """aiohttp's own stream reader, fed the whole body."""
    loop = asyncio.get_running_loop()
    reader = aiohttp.StreamReader(BaseProtocol(loop), 1 << 16, loop=loop)
    reader.feed_data(data)
    reader.feed_eof()
    return reader
