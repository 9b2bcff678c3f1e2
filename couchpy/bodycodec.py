"""Stored document bodies: plain JSON, or zstd with a dictionary trained on the database's own
documents.

Small JSON documents barely compress on their own (zstd, lz4 and snappy keep 76-98% of a
300-byte profile), because each is too short to learn from; a dictionary trained on a sample
of the database's documents keeps about 30% (benchmarks/codecs.py). A dictionary is trained
(`train`) and stored in the meta sub-database (`DICT_KEY`) either by the first compaction or,
before any, in the background once the database holds AUTO_DOCS documents or AUTO_BYTES of
bodies (couchpy.database `maybe_train`); from then on the database writes its bodies compressed
with it. Compaction re-encodes every body it copies with the dictionary it trains.

A stored body is JSON (it starts with `{`: everything written before, and any body the codec
does not shrink) or `TAG` + a zstd frame. So existing data needs no conversion, and a plain
read of a body stored as JSON is still spliced as it is.

zstd contexts are not safe to share between threads (the event loop reads while the writer and
a compaction write), so each thread gets its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import zstandard

TAG = b"\x01"
DICT_KEY = b"zstd_dict"  # in the `meta` sub-database
DICT_SIZE = 16 << 10
LEVEL = 3
MIN_SAMPLES = 100  # fewer documents than this: no dictionary (too little to learn from)
SAMPLES = 2000  # documents a dictionary is trained on
# A database without a dictionary gets one in the background once it holds this many documents
# or body bytes: enough to learn from, and enough data that the 16 KB dictionary pays for itself.
AUTO_DOCS = 1000
AUTO_BYTES = 512 << 10


class Codec:
    def __init__(self, dictionary: bytes | None = None,
                 load: Callable[[], bytes | None] | None = None) -> None:
        """`load` reads the dictionary stored in the environment, for a codec that meets a
        compressed body before it knows the dictionary: with several server processes, another
        one may have trained and stored it (couchpy.database `maybe_train`). The dictionary is
        committed before the first body compressed with it, so whoever can read such a body
        finds it stored."""
        self.dictionary = dictionary
        self._dict = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
        self._load = load
        self._local = threading.local()
        self._adopting = threading.Lock()

    def adopt(self, dictionary: bytes) -> None:
        """Start compressing with `dictionary` (a codec that had none; the dictionary is already
        committed to the environment). The same object changes, so a reader that took this codec
        (or its bound `decode`) before still decodes every body written after. Adopting the
        dictionary the codec has already is nothing (two threads may both find it stored)."""
        with self._adopting:
            if self._dict is not None:
                if dictionary == self.dictionary:
                    return
                raise ValueError("a codec's dictionary is set once")
            self._dict = zstandard.ZstdCompressionDict(dictionary)
            self.dictionary = dictionary

    def _contexts(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None or ctx[2] is not self._dict:  # none yet, or made before `adopt`
            ctx = (zstandard.ZstdCompressor(level=LEVEL, dict_data=self._dict, write_checksum=False,
                                            write_content_size=True, write_dict_id=False),
                   zstandard.ZstdDecompressor(dict_data=self._dict), self._dict)
            self._local.ctx = ctx
        return ctx[0], ctx[1]

    def encode(self, json: bytes) -> bytes:
        """What to store for a body's JSON."""
        if self._dict is None:
            return json
        packed = TAG + self._contexts()[0].compress(json)
        return packed if len(packed) < len(json) else json

    def decode(self, stored: bytes) -> bytes:
        """The JSON of a stored body."""
        if stored[:1] != TAG:
            return stored
        if self._dict is None:
            dictionary = self._load() if self._load is not None else None
            if dictionary is None:
                raise ValueError("a compressed body and no dictionary stored")
            self.adopt(dictionary)
        return self._contexts()[1].decompress(stored[1:])


PLAIN = Codec()


def train(samples: list[bytes]) -> bytes | None:
    """A dictionary for bodies like these, or None when there are too few to learn from."""
    if len(samples) < MIN_SAMPLES:
        return None
    try:
        return zstandard.train_dictionary(DICT_SIZE, samples).as_bytes()
    except zstandard.ZstdError:
        return None
