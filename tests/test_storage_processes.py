"""Two server processes on one LMDB environment (`couchpy serve --workers`): when one grows the
memory map for its writes, the other adopts the new size on its next transaction instead of
failing. LMDB answers MDB_MAP_RESIZED to a transaction begun with a smaller map than the data
now needs; with two workers writing one growing database, every read and write of the other
worker failed with a 500 (met by CI, test_workers_compaction)."""

from __future__ import annotations

import subprocess
import sys

from couchpy.storage import Store

GROWER = """
import sys
from couchpy.storage import Store
store = Store(sys.argv[1], ("d",), map_size=1 << 20)
prefix, count = sys.argv[2].encode(), int(sys.argv[3])
for i in range(count):
    store.write(lambda txn, i=i: txn.put(prefix + b"%03d" % i, b"x" * 65536, db=store.db("d")))
print(store.env.info()["map_size"])
store.close()
"""


def _grow_elsewhere(tmp_path, prefix: str, count: int) -> int:
    """`count` values of 64 KiB written by another process; the map size it ended with."""
    out = subprocess.run([sys.executable, "-c", GROWER, str(tmp_path / "env"), prefix, str(count)],
                         capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout)


def test_a_map_grown_by_another_process_is_adopted(tmp_path):
    store = Store(tmp_path / "env", ("d",), map_size=1 << 20)
    try:
        store.write(lambda txn: txn.put(b"mine", b"1", db=store.db("d")))
        with store.read() as txn:  # this process's map is 1 MiB, in use
            assert txn.get(b"mine", db=store.db("d")) == b"1"
        grown = _grow_elsewhere(tmp_path, "k", 64)
        assert grown > 4 << 20  # the other process doubled the map several times
        with store.read() as txn:
            assert len(txn.get(b"k063", db=store.db("d"))) == 65536
        assert store.env.info()["map_size"] == grown
        store.write(lambda txn: txn.put(b"mine", b"2", db=store.db("d")))
        with store.read() as txn:
            assert txn.get(b"mine", db=store.db("d")) == b"2"
        # and a write as the first transaction after the other process grew the map
        grown = _grow_elsewhere(tmp_path, "m", 200)
        store.write(lambda txn: txn.put(b"mine", b"3", db=store.db("d")))
        assert store.env.info()["map_size"] == grown
        with store.read() as txn:
            assert (txn.get(b"mine", db=store.db("d")), len(txn.get(b"m199", db=store.db("d")))) == (b"3", 65536)
    finally:
        store.close()
