"""The per-document record the engine keeps beside the bodies, and the LMDB key encodings.

`DocInfo` is what is known of a document without reading any body: its revision tree, the winning
revision, whether that winner is a deletion, and the update sequence of its latest change. It is
stored under the document id as `b"L"|b"D"` (live/deleted winner: counting live documents needs no
decoding) followed by JSON.
"""

from __future__ import annotations

import struct

import orjson

from . import revtree

_SEQ = struct.Struct(">Q")


def seq_key(seq: int) -> bytes:
    return _SEQ.pack(seq)


def body_key(docid: str, rev: str) -> bytes:
    return docid.encode() + b"\x00" + rev.encode()


def splice_doc(docid: str, rev: str, raw_body: bytes, tail: bytes = b"") -> bytes:
    """`{"_id":..,"_rev":.., <stored body fields>, <tail>}` from the stored JSON body bytes."""
    head = b'{"_id":' + orjson.dumps(docid) + b',"_rev":' + orjson.dumps(rev)
    inner = raw_body.strip()[1:-1].strip()
    if inner:
        return head + b"," + inner + tail + b"}"
    return head + tail + b"}"


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
        return (
            (b"D" if self.deleted else b"L") + self.rev.encode() + b"\x00"
            + orjson.dumps({"seq": self.seq, "tree": revtree.encode(self.tree)})
        )

    @classmethod
    def decode(cls, docid: str, raw: bytes, seq: int | None = None) -> DocInfo:
        """From the stored value; `seq` when the caller already knows it (the by-seq index)."""
        cut = raw.index(b"\x00")
        return cls(docid, raw[1:cut].decode(), raw[:1] == b"D", seq, raw=raw[cut + 1:])

    def leaves(self) -> list[str]:
        return revtree.leaves(self.tree)
