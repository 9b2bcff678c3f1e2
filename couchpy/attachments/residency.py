"""Keep streamed attachment bytes from piling up in the process's resident set.

LMDB serves reads from a shared read-only memory map of the data file. Every page a read touches
stays mapped into the process (counted in its RSS as file-backed memory) until the kernel needs
the memory back, so streaming a 200 MB attachment out would leave 200 MB "resident" although the
process never holds it. After each few MB of attachment reads we tell the kernel we no longer need
the mapped pages (madvise MADV_DONTNEED). For a shared file mapping this only drops the page-table
entries: the data stays in the page cache and any later read faults it back in (a minor fault),
so it is safe while other threads read or write the environment.

Linux only; elsewhere (or if anything is unexpected) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

MADV_DONTNEED = 4

_libc = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        _libc.madvise.restype = ctypes.c_int
    except (OSError, AttributeError):
        _libc = None


def drop_mapped_pages(data_file: str) -> int:
    """Drop this process's mappings' resident pages of `data_file`; returns bytes advised."""
    if _libc is None:
        return 0
    target = os.path.realpath(data_file)
    advised = 0
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if not line.rstrip().endswith(target):
                    continue
                fields = line.split()
                if len(fields) < 6 or "w" in fields[1]:
                    continue  # only read-only maps (a writable map would be LMDB's writemap)
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                if _libc.madvise(lo, hi - lo, MADV_DONTNEED) == 0:
                    advised += hi - lo
    except OSError:
        return advised
    return advised
