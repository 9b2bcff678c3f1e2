"""Codecs for stored document bodies, measured on the storage benchmark's documents.

Each body is compressed on its own (as a store compresses one value at a time): bytes stored per
body and microseconds to compress and to decompress one, for zstd (with and without a dictionary
trained on the database's own first documents), lz4 and snappy.

    python -m benchmarks.codecs --docs 20000

Needs `zstandard`, `lz4` and `python-snappy` (pip); a missing one is reported, not skipped.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

import orjson

from benchmarks.storage import make_body


def _timed(fn: Callable[[bytes], bytes], items: list[bytes]) -> tuple[list[bytes], float]:
    t0 = time.perf_counter()
    out = [fn(x) for x in items]
    return out, (time.perf_counter() - t0) / len(items) * 1e6


def codecs(train: list[bytes], dict_size: int) -> dict[str, tuple[Callable, Callable]]:
    out: dict[str, tuple[Callable, Callable]] = {}
    try:
        import zstandard
    except ImportError:
        print("zstandard is not installed", file=sys.stderr)
    else:
        for level in (1, 3):
            c, d = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()
            out[f"zstd -{level}"] = (c.compress, d.decompress)
        zdict = zstandard.train_dictionary(dict_size, train)
        for level in (1, 3, 9):
            c = zstandard.ZstdCompressor(level=level, dict_data=zdict, write_checksum=False,
                                         write_content_size=True, write_dict_id=False)
            d = zstandard.ZstdDecompressor(dict_data=zdict)
            out[f"zstd -{level} + {dict_size // 1024} KiB dictionary"] = (c.compress, d.decompress)
    try:
        import lz4.block
    except ImportError:
        print("lz4 is not installed", file=sys.stderr)
    else:
        out["lz4 (block)"] = (lz4.block.compress, lz4.block.decompress)
    try:
        import snappy
    except ImportError:
        print("python-snappy is not installed", file=sys.stderr)
    else:
        out["snappy"] = (snappy.compress, snappy.decompress)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--train", type=int, default=1000, help="documents the dictionary is trained on")
    ap.add_argument("--dict-size", type=int, default=16384)
    args = ap.parse_args()
    rng = random.Random(0)
    bodies = [orjson.dumps(make_body(rng, i, 0)) for i in range(args.docs)]
    raw = sum(map(len, bodies))
    print(f"{args.docs:,} bodies, {raw / args.docs:.0f} bytes of JSON each on average; dictionary "
          f"trained on the first {args.train}\n")
    print("| codec | bytes per body | of the JSON | compress µs | decompress µs |")
    print("|---|---|---|---|---|")
    print(f"| none | {raw / args.docs:.0f} | 100% | - | - |")
    for name, (comp, decomp) in codecs(bodies[:args.train], args.dict_size).items():
        packed, c_us = _timed(comp, bodies)
        unpacked, d_us = _timed(decomp, packed)
        assert unpacked == bodies, name
        size = sum(map(len, packed))
        print(f"| {name} | {size / args.docs:.0f} | {size * 100 / raw:.0f}% | {c_us:.1f} | {d_us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
