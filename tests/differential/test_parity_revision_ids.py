"""New revision ids as CouchDB 3.4.3 computes them (couch_db:new_revid), checked against the real one.

Not through the normaliser (which names each server's hashes by order of appearance): the ids
themselves must be equal, so the same edit made on couchpy and on CouchDB is one revision.
"""

from __future__ import annotations

import base64

from .model import Req
from .parity import both


def put(path: str, body: object, **query: str) -> Req:
    return Req("PUT", path, tuple(query.items()), body, endpoint="PUT " + path)


def put_att(path: str, data: bytes, ctype: str, **query: str) -> Req:
    return Req("PUT", path, tuple(query.items()), data, (("Content-Type", ctype),), endpoint="PUT /{db}/{doc}/{att}")


def delete(path: str, **query: str) -> Req:
    return Req("DELETE", path, tuple(query.items()), endpoint="DELETE " + path)


def inline(data: bytes, ctype: str) -> dict:
    return {"content_type": ctype, "data": base64.b64encode(data).decode()}


async def same_rev(server, couchdb, reqs: list[Req]) -> str:
    mine, theirs = await both(server, couchdb, reqs)
    assert theirs.status in (200, 201), theirs.body
    assert mine.status == theirs.status and mine.body["rev"] == theirs.body["rev"], (mine.body, theirs.body)
    return theirs.body["rev"]


BODIES = [
    {"a": 1}, {"b": 2, "a": 1}, {"a": 1, "b": 2}, {}, {"x": [1, 2, 3]}, {"x": [1, 2, 300]}, {"x": []}, {"x": {}},
    {"f": 1.5, "g": 1.0, "h": 100.0, "i": -3, "j": -0.0},
    {"big": 123456789012345678901234567890, "neg": -2147483649, "i32": 2147483647},
    {"s": "\u00e9t\u00e9 \U0001F600", "n": None, "t": True, "f": False},
    {"nested": {"a": [{"b": "c"}, [256, -1]]}},
    {"_replication_state": "x", "v": 1},
    {"long": "x" * 70000}, {"bytes": [1] * 70000},
]


async def test_first_revisions(server, couchdb):
    for body in BODIES:
        await same_rev(server, couchdb, [put("/{db}/d", body)])
    await same_rev(server, couchdb, [put("/{db}/_design/d", {"views": {"v": {"map": "function(doc) {}"}}})])
    await same_rev(server, couchdb, [Req("POST", "/{db}", body={"_id": "p", "z": 1, "a": 2}, endpoint="POST /{db}")])


async def test_edits_and_deletions(server, couchdb):
    first = put("/{db}/u", {"v": 1})
    await same_rev(server, couchdb, [first, put("/{db}/u", {"_rev": "$rev:u", "v": 2})])
    await same_rev(server, couchdb, [first, delete("/{db}/u", rev="$rev:u")])
    await same_rev(server, couchdb, [first, put("/{db}/u", {"_rev": "$rev:u", "_deleted": True, "k": 1})])
    # a deleted document recreated without a rev continues its tombstone
    await same_rev(server, couchdb, [first, delete("/{db}/u", rev="$rev:u"), put("/{db}/u", {"v": 3})])
    # parents that are not 32 hex digits (written by a replicator) are hashed as their text
    for parent in ("1-abc", "1-ABCDEF0123456789ABCDEF0123456789"):
        await same_rev(server, couchdb, [put("/{db}/c", {"_rev": parent, "v": 1}, new_edits="false"),
                                         put("/{db}/c", {"_rev": parent, "v": 2})])


async def test_attachments_in_the_order_couchdb_keeps_them(server, couchdb):
    text, binary = inline(b"hello world hello world", "text/plain"), inline(b"\x00\x01binary", "application/octet-stream")
    two = put("/{db}/x", {"v": 1, "_attachments": {"t.txt": text, "b.bin": binary}})
    await same_rev(server, couchdb, [two])
    await same_rev(server, couchdb, [put("/{db}/x", {"v": 1, "_attachments": {"b.bin": binary, "t.txt": text}})])
    stubs = put("/{db}/x", {"_rev": "$rev:x", "v": 2, "_attachments": {"b.bin": {"stub": True}, "t.txt": {"stub": True}}})
    await same_rev(server, couchdb, [two, stubs])
    # a standalone attachment goes first, a replaced one too
    added = put_att("/{db}/x/c.txt", b"third", "text/plain", rev="$rev:x")
    await same_rev(server, couchdb, [two, stubs, added])
    replaced = put_att("/{db}/x/t.txt", b"replaced", "text/plain", rev="$rev:x")
    await same_rev(server, couchdb, [two, stubs, added, replaced])
    await same_rev(server, couchdb, [two, stubs, added, replaced, delete("/{db}/x/b.bin", rev="$rev:x")])
    await same_rev(server, couchdb, [put_att("/{db}/n/a.bin", b"xyz", "application/octet-stream")])
