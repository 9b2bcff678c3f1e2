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

    The revision tree is decoded only when asked for: listing documents (`_all_docs`, `_changes`)
    needs just the winner, which is stored beside the tree.
    """

    __slots__ = ("id", "rev", "deleted", "seq", "_tree", "_raw_tree")

    def __init__(self, id: str, rev: str, deleted: bool, seq: int, tree: revtree.Tree | None = None,
                 raw_tree: list | None = None):
        self.id = id
        self.rev = rev  # the winning revision
        self.deleted = deleted  # the winner is a deletion (tombstone)
        self.seq = seq
        self._tree = tree
        self._raw_tree = raw_tree

    @property
    def tree(self) -> revtree.Tree:
        if self._tree is None:
            self._tree = revtree.decode(self._raw_tree or [])
        return self._tree

    def encode(self) -> bytes:
        return (b"D" if self.deleted else b"L") + orjson.dumps(
            {"rev": self.rev, "seq": self.seq, "tree": revtree.encode(self.tree)}
        )

    @classmethod
    def decode(cls, docid: str, raw: bytes) -> DocInfo:
        data = orjson.loads(raw[1:])
        return cls(docid, data["rev"], raw[:1] == b"D", data["seq"], raw_tree=data["tree"])

    def leaves(self) -> list[str]:
        return revtree.leaves(self.tree)
