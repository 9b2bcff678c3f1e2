"""Stored document bodies: plain JSON, or zstd with a dictionary trained on the database's own
documents.

Small JSON documents barely compress on their own (zstd, lz4 and snappy keep 76-98% of a
300-byte profile), because each is too short to learn from; a dictionary trained on a sample
of the database's documents keeps about 30% (benchmarks/codecs.py). Compaction trains the
dictionary (`train`) and stores it in the copy's meta sub-database (`DICT_KEY`); from then on
the database writes its bodies compressed with it.

A stored body is JSON (it starts with `{`: everything written before, and any body the codec
does not shrink) or `TAG` + a zstd frame. So existing data needs no conversion, and a plain
read of a body stored as JSON is still spliced as it is.

zstd contexts are not safe to share between threads (the event loop reads while the writer and
a compaction write), so each thread gets its own.
"""

from __future__ import annotations

import threading

import zstandard

TAG = b"\x01"
DICT_KEY = b"zstd_dict"  # in the `meta` sub-database
DICT_SIZE = 16 << 10
LEVEL = 3
MIN_SAMPLES = 100  # fewer documents than this: no dictionary (too little to learn from)
SAMPLES = 2000  # documents a dictionary is trained on


class Codec:
    def __init__(self, dictionary: bytes | None = None) -> None:
        self.dictionary = dictionary
        self._dict = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
        self._local = threading.local()

    def _contexts(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = (zstandard.ZstdCompressor(level=LEVEL, dict_data=self._dict, write_checksum=False,
                                            write_content_size=True, write_dict_id=False),
                   zstandard.ZstdDecompressor(dict_data=self._dict))
            self._local.ctx = ctx
        return ctx

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
