"""One LMDB environment, safely shared by the event loop and a writer thread.

Each database lives in its own LMDB environment (independent writer locks; deleting a database is
removing a directory; compaction is a copy). LMDB readers never block the writer, so reads run
directly on the event loop, while write transactions run on a worker thread (the commit's fsync
releases the GIL).

The one thing LMDB does not do for us is grow: a write that does not fit the memory map fails with
`MapFullError`, and `set_mapsize` may only be called while no transaction is open in this process.
So every reader registers itself, and the writer that hits a full map aborts, waits for the
readers to leave, doubles the map and redoes its transaction. Readers must therefore never hold a
transaction across an `await` (callers read in bounded chunks).

A map that cannot grow (the process's address space is exhausted or limited) is a full disk for
the client: the write is refused with 507 and the environment keeps serving what it holds. It
must be found out before `set_mapsize`, which unmaps the old map first and, if the new one cannot
be mapped, leaves the environment closed for good.

With several server processes on one data directory, compaction in one of them replaces the
environment at this path by a new one (couchpy.envswap). A store that `follow`s (a database's, in
that case) moves to the new one when it finds its environment replaced: a write transaction looks
for the retired mark the compactor committed into the old environment (RETIRED_KEY) and whether
the data file at the path is still its own (it is not if the compactor was killed between the
renames and that commit); a read looks for the mark whenever the environment's transaction id
moved since it last looked. Either then reopens the store at the path (`reopen`) and goes on there.
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TypeVar

import lmdb

from couchpy import envswap
from couchpy.errors import InsufficientStorage, Unavailable

T = TypeVar("T")

INITIAL_MAP_SIZE = 64 << 20  # grows by doubling; address space only, not disk
MAX_NAMED_DBS = 32
# A failed commit with less free space than this on the data's filesystem is a full disk. (LMDB
# reports a short page write as EIO, so the error text alone does not say so.)
FULL_DISK_FREE_BYTES = 1 << 20
# LMDB's lock file holds one 64-byte slot per reader after a small header. It is written through
# a shared memory map, and a page of a map that the filesystem cannot back kills the process with
# SIGBUS; so its blocks are reserved before LMDB maps it, and a full disk is a clear error instead.
LOCK_FILE_BYTES = 64 * 1024 + 64 * 1024
MAP_CANNOT_GROW = "The database's memory map cannot grow: the server's address space is exhausted"
# In the `meta` sub-database of an environment compaction replaced: writes and reads belong in the
# environment now at the path (see `follow`).
RETIRED_KEY = b"retired"
MAX_REOPENS = 100  # environments replaced one after the other while one write waited


class _Reader:
    """Registers a reader so that a map resize waits for it (a class: cheaper than a generator)."""

    __slots__ = ("store", "txn")

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> lmdb.Transaction:
        store = self.store
        for _ in range(MAX_REOPENS):
            try:
                self._enter()
            except lmdb.MapResizedError:
                # another process grew the map past this one's: adopt its size (no transaction
                # of this process may be open then) and begin again
                if store._local.depth > 0:
                    raise Unavailable("The database grew in another process; try again") from None
                store._adopt_mapsize()
                continue
            txn = self.txn
            local = store._local
            if store._guard is None or local.depth > 1 or local.writing or txn.id() == store._seen_txnid:
                return txn
            # Another process committed since this one last looked: perhaps the mark that
            # retires this environment. (Not in a nested read, which the outer one holds in this
            # environment, nor in a write of this thread, which found it not retired and holds
            # LMDB's writer lock, so no mark can come meanwhile.)
            generation = store.generation
            if not store._retired_in(txn):
                store._seen_txnid = txn.id()
                return txn
            self.__exit__()
            store.reopen(generation)
        raise Unavailable("The database's environment keeps being replaced; try again")

    def _enter(self) -> None:
        store = self.store
        with store._cond:
            while store._resizing:
                store._cond.wait()
            store._readers += 1
        local = store._local
        local.depth = getattr(local, "depth", 0) + 1
        if not hasattr(local, "writing"):
            local.writing = False
        try:
            self.txn = store.env.begin(buffers=False)
        except BaseException:
            self._leave()
            raise

    def __exit__(self, *exc) -> None:
        self.txn.abort()
        self._leave()

    def _leave(self) -> None:
        store = self.store
        store._local.depth -= 1
        with store._cond:
            store._readers -= 1
            if store._readers == 0 and store._resizing:
                store._cond.notify_all()


def _address_space_for(size: int) -> bool:
    """Whether a mapping of `size` bytes fits in the process's address space now (an inaccessible
    anonymous mapping: it takes address space only, no memory or disk)."""
    try:
        probe = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=0)
    except OSError as exc:
        if exc.errno == errno.ENOMEM:
            return False
        raise
    probe.close()
    return True


def _reserve(path: Path, size: int) -> None:
    """Allocate the file's blocks up to `size` (never shrinks it); 507 when the disk is full."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InsufficientStorage("No space left on the device holding the database") from exc
        raise
    finally:
        os.close(fd)


Guard = Callable[[], AbstractContextManager]


class Store:
    def __init__(self, path: Path, subdbs: tuple[str, ...], map_size: int | None = None, durable: bool = True,
                 follow: Guard | None = None):
        """`durable=False` is for an environment nobody depends on until it is synced (`sync`),
        like a compaction's copy. `follow`: other processes may replace the environment at this
        path (it needs a `meta` sub-database); every open is made holding `follow()`
        (couchpy.envswap.opening), and `rebind` is called after the store moved to another one."""
        self.path = Path(path)
        self.durable = durable
        self._guard = follow
        self.rebind: Callable[[], None] = lambda: None
        self.generation = 0  # environments opened at this path after the first
        self._ino = -1  # the data file's inode when the environment was opened
        self._seen_txnid = -1  # the last transaction id a reader checked for the retired mark
        self._local = threading.local()  # this thread's open reads (`depth`)
        self._follow_lock = threading.Lock()
        # held by a write transaction of this process: the environment is not closed under it
        self._write_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._resizing = False
        self._handles: dict[str, object] = {}
        self.env = self._open(map_size or INITIAL_MAP_SIZE)
        for name in subdbs:
            self.db(name)

    def _open(self, map_size: int) -> lmdb.Environment:
        with self._guard() if self._guard is not None else nullcontext():
            env = self._open_here(map_size)
            self._ino = self._disk_ino()
            return env

    def _open_here(self, map_size: int) -> lmdb.Environment:
        self.path.mkdir(parents=True, exist_ok=True)
        _reserve(self.path / "lock.mdb", LOCK_FILE_BYTES)
        try:
            return lmdb.open(
                str(self.path),
                map_size=map_size,
                max_dbs=MAX_NAMED_DBS,
                max_readers=1024,
                sync=self.durable,  # a commit returns after fsync: acknowledged writes survive SIGKILL/power loss
                metasync=self.durable,
                readahead=False,
                lock=True,
            )
        except lmdb.MemoryError as exc:
            raise InsufficientStorage(MAP_CANNOT_GROW) from exc

    def swap(self, install: Callable[[], None], rebind: Callable[[], None]) -> None:
        """Close the environment once no reader is inside it, let `install` put another one at
        this path, open that one, and `rebind` the caller's handles before any reader comes back
        (readers arriving meanwhile wait, as for a resize). A write transaction of this process
        in another thread is waited for (the caller keeps later writes out)."""
        with self._write_lock:
            self._swap(install, rebind)

    def _swap(self, install: Callable[[], None], rebind: Callable[[], None]) -> None:
        with self._cond:
            self._resizing = True
            while self._readers:
                self._cond.wait()
        try:
            map_size = self.env.info()["map_size"]
            self.env.close()
            try:
                install()
            finally:
                self.env = self._open(map_size)
                self._handles = {name: self.env.open_db(name.encode()) for name in self._handles}
                rebind()
        finally:
            with self._cond:
                self._resizing = False
                self._cond.notify_all()

    def _disk_ino(self) -> int:
        return envswap.data_file_ino(self.path)

    def _moved(self) -> bool:
        """Whether the data file at the path is no longer this environment's. A missing one is
        a swap a crash cut short (completed by the next open), unless the whole database
        directory is gone: deleted, and then there is nothing to move to."""
        ino = self._disk_ino()
        if ino == -1:
            return self.path.parent.is_dir()
        return ino != self._ino

    def _retired_in(self, txn: lmdb.Transaction) -> bool:
        return txn.get(RETIRED_KEY, db=self._handles["meta"]) is not None

    def reopen(self, generation: int) -> None:
        """Move to the environment now at the path, unless the store already moved since
        `generation` (another thread found the same)."""
        with self._follow_lock:
            if self.generation != generation:
                return
            self.swap(lambda: None, self.rebind)
            self._seen_txnid = -1
            self.generation += 1

    def last_txnid(self) -> int:
        """The environment's last committed transaction id (the environment is not closed or
        swapped meanwhile: this may be called from any thread)."""
        with self._cond:
            while self._resizing:
                self._cond.wait()
            return self.env.info()["last_txnid"]

    def reader_check(self) -> None:
        """Free the reader slots of dead processes (as `last_txnid`, from any thread)."""
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self.env.reader_check()

    def db(self, name: str):
        """Handle of a named sub-database, created on first use."""
        handle = self._handles.get(name)
        if handle is None:
            with self._cond:
                handle = self._handles.get(name)
                if handle is None:
                    handle = self.env.open_db(name.encode())
                    self._handles[name] = handle
        return handle

    def read(self) -> _Reader:
        """`with store.read() as txn:` a read-only snapshot; never hold it across an await."""
        return _Reader(self)

    def write(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        """Run fn in a write transaction and commit durably; grow the map and redo on MapFullError.

        fn must have no effect outside the transaction, since it may run more than once (also
        in another environment at this path, when the store `follow`s and this one is retired).
        """
        reopens = 0
        while True:
            with self._write_lock:
                done, result = self._attempt(fn)
            if done:
                return result  # type: ignore[return-value]
            reopens += 1
            if reopens > MAX_REOPENS:
                raise Unavailable("The database's environment keeps being replaced; try again")
            self.reopen(self.generation)

    def _attempt(self, fn: Callable[[lmdb.Transaction], T]) -> tuple[bool, T | None]:
        """(True, fn's result) of a committed write transaction (begun again after the map
        grew: each new transaction looks again whether the environment was retired meanwhile);
        (False, None) when it was, and the store must move first."""
        while True:
            try:
                txn = self.env.begin(write=True)
            except lmdb.MapResizedError:  # another process grew the map: adopt its size
                self._adopt_mapsize()
                continue
            self._local.writing = True
            try:
                # Holding the environment's writer lock (LMDB's, shared by every process): a
                # compactor that retires it holds it from its last copy to the mark.
                if self._guard is not None and (self._retired_in(txn) or self._moved()):
                    txn.abort()
                    return False, None
                result = fn(txn)
                txn.commit()
                return True, result
            except lmdb.MapFullError:
                txn.abort()
            except lmdb.Error as exc:
                txn.abort()
                if self._disk_full(exc):
                    # Nothing of this transaction is committed; the next write may succeed once
                    # space is freed, so this is the client's clear error, not a crash.
                    raise InsufficientStorage("No space left on the device holding the database") from exc
                raise
            except BaseException:
                txn.abort()
                raise
            finally:
                self._local.writing = False
            self._grow()

    def _disk_full(self, exc: lmdb.Error) -> bool:
        if "No space left" in str(exc):
            return True
        try:
            return shutil.disk_usage(self.path).free < FULL_DISK_FREE_BYTES
        except OSError:
            return False

    def _grow(self) -> None:
        size = self.env.info()["map_size"] * 2
        # the old map stays while the new one is probed: enough room now is enough after the swap
        if not _address_space_for(size):
            raise InsufficientStorage(MAP_CANNOT_GROW)
        self._set_mapsize(size)

    def _adopt_mapsize(self) -> None:
        """Take the map size another server process gave the environment (LMDB answers
        MDB_MAP_RESIZED to a transaction begun with a smaller map than the data now needs)."""
        self._set_mapsize(0)

    def _set_mapsize(self, size: int) -> None:
        """Resize the map (0: to the size the environment records), once no transaction of this
        process is open; the readers that come meanwhile wait."""
        with self._cond:
            self._resizing = True
            try:
                while self._readers:
                    self._cond.wait()
                self.env.set_mapsize(size)
            finally:
                self._resizing = False
                self._cond.notify_all()

    def file_size(self) -> int:
        try:
            return (self.path / "data.mdb").stat().st_size
        except OSError:
            return 0

    def subdb_names(self) -> list[str]:
        """Every named sub-database of the environment (the main database's keys)."""
        with self.read() as txn:
            return [k.decode() for k in txn.cursor().iternext(keys=True, values=False)]

    def used_bytes(self, exclude: tuple[str, ...] = ()) -> int:
        """Bytes of the pages in use (the B-trees of every sub-database but `exclude`, and the two
        meta pages); free pages LMDB would reuse are not counted."""
        main = self.env.stat()
        with self.read() as txn:
            stats = [txn.stat(h) for name, h in list(self._handles.items()) if name not in exclude]
        pages = 2 + sum(s["branch_pages"] + s["leaf_pages"] + s["overflow_pages"] for s in [main, *stats])
        return pages * main["psize"]

    def sync(self) -> None:
        self.env.sync(True)

    def close(self) -> None:
        """Close once no reader is inside (a reader in another thread may be inside LMDB without
        the GIL; unmapping under it would crash the process)."""
        with self._cond:
            self._resizing = True
            while self._readers:
                self._cond.wait()
        try:
            self.env.close()
        finally:
            with self._cond:
                self._resizing = False
                self._cond.notify_all()


def retire(path: Path) -> None:
    """Mark the environment at `path` retired (if it is not yet), for the processes that still
    have it open: this process must not have it open itself (LMDB allows one handle per process)."""
    store = Store(path, ("meta",))
    try:
        with store.read() as txn:
            if store._retired_in(txn):
                return
        store.write(lambda txn: txn.put(RETIRED_KEY, b"1", db=store.db("meta")))
    finally:
        store.close()
