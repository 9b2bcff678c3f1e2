"""The per-document record the engine keeps beside the bodies, and the LMDB key encodings.

`DocInfo` is what is known of a document without reading any body: its revision tree, the winning
revision, whether that winner is a deletion, and the update sequence of its latest change. It is
stored under the document id as `b"L"|b"D"` (live/deleted winner: counting live documents needs no
decoding) followed by JSON.

Document ids have no length limit: the by-id index stores `longkeys.ordered(id)` (a long id keeps a
prefix and a digest, and its record carries the full id), bodies are stored under
`longkeys.point(id + NUL + rev)`.
"""

from __future__ import annotations

import struct

import orjson

from . import jsonutil, longkeys, revtree

_SEQ = struct.Struct(">Q")


def seq_key(seq: int) -> bytes:
    return _SEQ.pack(seq)


def body_key(docid: str, rev: str) -> bytes:
    return longkeys.point(docid.encode() + b"\x00" + rev.encode())


def docs_key(docid: bytes) -> bytes:
    """The by-id index key of a document id (UTF-8); the id must not be empty."""
    return docid if len(docid) <= longkeys.PREFIX else longkeys.ordered(docid)


def id_of(key: bytes, raw: bytes) -> bytes:
    """The document id (UTF-8) of a by-id index entry: the key itself unless it is a long id's."""
    if len(key) <= longkeys.PREFIX:
        return key
    return orjson.loads(raw[raw.index(b"\x00") + 1:])["id"].encode()


def splice_doc(docid: str, rev: str, raw_body: bytes, tail: bytes = b"") -> bytes:
    """`{"_id":..,"_rev":.., <stored body fields>, <tail>}` from the stored JSON body bytes."""
    head = b'{"_id":' + orjson.dumps(docid) + b',"_rev":' + orjson.dumps(rev)
    inner = jsonutil.readable(raw_body).strip()[1:-1].strip()
    if inner:
        return head + b"," + inner + tail + b"}"
    return head + tail + b"}"


def local_key(docid: str) -> bytes:
    """The `local` sub-database key of a `_local/` id (never empty: it has the prefix)."""
    return longkeys.ordered(docid.encode())


def local_record(docid: str, rev: str, body: dict) -> bytes:
    """The stored `_local` document; a long id is kept in it (its key is a prefix and a digest)."""
    data: dict = {"rev": rev, "body": body}
    if longkeys.is_long(local_key(docid)):
        data["id"] = docid
    return jsonutil.dumps_stored(data)


def local_id(key: bytes, value: bytes) -> bytes:
    """The id of a `local` entry stored under a long id's key."""
    return jsonutil.loads(value)["id"].encode()


class DocInfo:
    """What the engine knows of one document without reading any body.

    Stored as `b"L"|b"D"` (live/deleted winner) + winning rev + `\0` + JSON `{seq, tree}`: a
    listing (`_all_docs`, `_changes`) reads the winner from the head and parses no JSON at all;
    the sequence and the revision tree are decoded only when asked for. (A revision id never
    contains a NUL byte: docrules refuses one.)
    """

    __slots__ = ("id", "rev", "deleted", "_seq", "_tree", "_raw")

    def __init__(self, id: str, rev: str, deleted: bool, seq: int | None, tree: revtree.Tree | None = None,
                 raw: bytes | None = None):
        self.id = id
        self.rev = rev  # the winning revision
        self.deleted = deleted  # the winner is a deletion (tombstone)
        self._seq = seq
        self._tree = tree
        self._raw = raw  # the JSON tail, parsed on demand

    def _parse(self) -> None:
        data = orjson.loads(self._raw or b"{}")
        if self._seq is None:
            self._seq = data.get("seq", 0)
        if self._tree is None:
            self._tree = revtree.decode(data.get("tree") or [])

    @property
    def seq(self) -> int:
        if self._seq is None:
            self._parse()
        return self._seq

    @property
    def tree(self) -> revtree.Tree:
        if self._tree is None:
            self._parse()
        return self._tree

    def encode(self) -> bytes:
        data = {"seq": self.seq, "tree": revtree.encode(self.tree)}
        if len(self.id) * 4 > longkeys.PREFIX and len(self.id.encode()) > longkeys.PREFIX:
            data["id"] = self.id  # stored under a prefix and a digest: the id is only here
        return (b"D" if self.deleted else b"L") + self.rev.encode() + b"\x00" + orjson.dumps(data)

    @classmethod
    def decode(cls, docid: str, raw: bytes, seq: int | None = None) -> DocInfo:
        """From the stored value; `seq` when the caller already knows it (the by-seq index)."""
        cut = raw.index(b"\x00")
        return cls(docid, raw[1:cut].decode(), raw[:1] == b"D", seq, raw=raw[cut + 1:])

    def leaves(self) -> list[str]:
        return revtree.leaves(self.tree)
