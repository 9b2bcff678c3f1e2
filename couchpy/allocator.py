"""The C allocator's policy for a process that opens and closes many LMDB environments.

Every open LMDB environment mallocs about 3 MB of transaction bookkeeping (its dirty-page and
free-page lists) and frees it on close. glibc's default raises its mmap threshold after the first
such free, so every later environment got that memory from the main heap, touched it and never
gave it back: about 2 MB of resident memory per database ever opened (1.1 GB after 1,500
databases with 500 open, in a server; 50 → 900 MB in an application replicating 400 databases
through `couchpy.open`). With the threshold fixed, those lists are mappings whose untouched pages
cost nothing and whose release returns the memory (about 100 MB for the same server run).

The policy is the whole process's, so it is set once, by the first node opened: a server and an
application embedding the engine get the same memory behaviour. An allocation of 1 MiB or more
then always gets its own mapping, which is glibc's behaviour before its first large free anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
THRESHOLD = 1 << 20

_done = False


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at 1 MiB (once a process). False where the C library is not
    glibc: its allocator has a policy of its own."""
    global _done
    if not _done:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _done = bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
        except (OSError, AttributeError):
            return False
    return _done
