"""A node: the set of databases in one data directory.

The catalog (an LMDB environment of its own under `<data>/_node`) maps each database name to its
directory. Databases are opened on demand and kept in an LRU bounded by `[couchdb] max_dbs_open`,
so tens of thousands of databases (one per user is a common CouchDB pattern) fit one node: an idle
database is closed when the LRU is full and reopened on its next request.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import secrets
import shutil
import time
from collections import OrderedDict
from pathlib import Path

import orjson

from . import allocator, jsonutil, partition_sizes, security
from .config import Config
from .database import Database
from .db_updates import CREATED, DELETED, DbUpdates
from .errors import InvalidDatabaseName, NotFound, PreconditionFailed
from .longkeys import LMDB_MAX
from .metrics import Metrics
from .storage import Store
from .updates import META_KEY
from .tasks import TaskRegistry
from .views.manager import close_pool

# The databases the current request (or task) has opened: pinned until it ends, so the LRU never
# closes an environment under a handler that is still streaming from it.
_in_use: contextvars.ContextVar[list | None] = contextvars.ContextVar("couchpy_dbs_in_use", default=None)


class pinning_scope:  # noqa: N801 - used as the function it was: `with pinning_scope():`
    """Pin every database opened inside this scope until it exits.

    A class with slots rather than a generator context manager: every request holds one for
    as long as it runs, an idle feed for as long as it is open (~0.3 KB less each)."""

    __slots__ = ("held", "_token")

    def __init__(self) -> None:
        self.held: list = []
        self._token: contextvars.Token | None = None

    def __enter__(self) -> list:
        self._token = _in_use.set(self.held)
        return self.held

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _in_use.reset(self._token)
            self._token = None
        for db in self.held:
            db.unpin()


def _hold(db):
    held = _in_use.get()
    if held is not None and not any(d is db for d in held):
        db.pin()
        held.append(db)
    return db


DB_NAME_RE = re.compile(r"^[a-z][a-z0-9_$()+/-]*$")
MAX_DB_NAME = 238
# names CouchDB reserves for its system databases; `_dbs` is a cluster's database of databases
SYSTEM_DBS = {"_users", "_replicator", "_global_changes", "_dbs"}


def validate_db_name(name: str) -> str:
    if name in SYSTEM_DBS:
        return name
    if not isinstance(name, str) or len(name) > MAX_DB_NAME or not DB_NAME_RE.match(name):
        raise InvalidDatabaseName(
            "Name: '%s'. Only lowercase characters (a-z), digits (0-9), and any of the characters "
            "_, $, (, ), +, -, and / are allowed. Must begin with a letter." % name
        )
    return name


def _dir_name(name: str) -> str:
    safe = re.sub(r"[^a-z0-9_-]", lambda m: "%%%02X" % ord(m.group()), name)
    if len(safe) > 120:
        safe = safe[:60]
    # A random suffix: a re-created database never shares a directory with one being deleted.
    return f"{safe}.{secrets.token_hex(4)}"


# How often a node that shares its data directory with other server processes looks for their
# commits to the databases its feeds wait on (couchpy.node `watch_shared`).
SHARED_POLL_SECONDS = 0.05
STALE_READER_ROUNDS = 200  # every 10 s: the reader slots a killed process left are freed


class Node:
    def __init__(self, path, config: Config | None = None, workers: int = 1, worker_index: int = 0):
        """`workers` server processes share this data directory (`couchpy serve --workers`);
        this one is number `worker_index`, and number 0 runs the node's background daemons."""
        allocator.fix_mmap_threshold()  # before the first environment is opened
        self.path = Path(path)
        self.workers = max(1, workers)
        self.worker_index = worker_index
        # Other processes write the same LMDB environments: every cached view of their contents
        # (database metadata, the catalog, the feed of database events) is checked again.
        self.shared = self.workers > 1
        self.primary = worker_index == 0
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = config or Config(self.path / "couchpy.ini")
        (self.path / "dbs").mkdir(exist_ok=True)
        self._catalog = Store(self.path / "_node", ("dbs",))
        self._cat_db = self._catalog.db("dbs")
        # CouchDB's max_event_delay: how long database updates are coalesced before being listed
        delay = self.config.get_int("global_changes", "max_event_delay", 25)
        self.db_updates = DbUpdates(self._catalog, self._cat_db, 25 if delay is None else delay)
        self.db_updates.shared = self.shared
        self._open: OrderedDict[str, Database] = OrderedDict()
        self.max_open = self.config.get_int("couchdb", "max_dbs_open", 500) or 500
        if not self.config.get("couchdb", "uuid"):
            # The node's identity outlives the process: sequences and replication ids carry it,
            # so a library node (couchpy.open) reopened later is the same node, as a server is.
            self.config.ensure_generated()
            self.config.save()
        self.uuid = self.config.get("couchdb", "uuid")
        self.tasks = TaskRegistry()
        self.metrics = Metrics()
        self.metrics.gauge(("couchdb", "open_databases"), "number of open databases", lambda: len(self._open))
        self.closing = False
        # awaited first by `aclose` (subsystems living on this node, such as embedded sync's
        # replications, stop while its databases are still open)
        self.before_close: list = []
        # databases whose documents take no more writes, name -> the reason a refused writer is
        # given: a cluster copy leaving this node, which must hold still while it is drained
        self._fences: dict[str, str] = {}
        self._trash = self.path / ".trash"
        shutil.rmtree(self._trash, ignore_errors=True)  # leftovers of deletions cut short

    # sequences are opaque strings on the wire; the tag makes them look like what they are
    def format_seq(self, db: Database, seq: int) -> str:
        return f"{seq}-{self.uuid[:8]}"

    @staticmethod
    def parse_seq(value) -> int:
        """`since` as clients hand it back: 12, "12", "12-xyz", [12, ...]; NotFound-free, ValueError on junk."""
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int):
            return max(value, 0)
        if isinstance(value, list) and value and isinstance(value[0], int):
            return value[0]
        if isinstance(value, str):
            head = value.split("-", 1)[0]
            if head.isascii() and head.isdigit():
                return int(head)
        raise ValueError(value)

    def _lookup(self, name: str) -> dict | None:
        key = name.encode()
        if not 0 < len(key) <= LMDB_MAX:
            return None  # no database has this name (and LMDB refuses such a key)
        with self._catalog.read() as txn:
            raw = txn.get(key, db=self._cat_db)
        return orjson.loads(raw) if raw else None

    def exists(self, name: str) -> bool:
        if self.shared:  # another process may have created or deleted it
            return self._lookup(name) is not None
        return name in self._open or self._lookup(name) is not None

    async def fence(self, name: str, reason: str) -> None:
        """From now on refuse every write of documents (`_local` ones excepted: they never leave a
        copy) to `name`, and wait until the writes accepted before are committed: once this
        returns, what the database's documents hold changes no more until `unfence`."""
        self._fences[name] = reason
        db = self._open.get(name)
        if db is not None:
            await db.writer.drain()

    def unfence(self, name: str) -> None:
        self._fences.pop(name, None)

    def fence_reason(self, name: str) -> str | None:
        return self._fences.get(name)

    def get_db(self, name: str) -> Database:
        db = self._open.get(name)
        if db is not None and self.shared:
            db = self._still_catalogued(name, db)
        if db is not None:
            self._open.move_to_end(name)
            return _hold(db)
        entry = self._lookup(name)
        if entry is None:
            raise NotFound("Database does not exist.")
        db = Database(self, name, self.path / "dbs" / entry["dir"])
        self._open[name] = db
        self._evict()
        return _hold(db)

    def _still_catalogued(self, name: str, db: Database) -> Database | None:
        """`db` if the catalog still names its directory; else another process deleted (and
        perhaps re-created) the database, and this process lets its environment go."""
        entry = self._lookup(name)
        if entry is not None and entry["dir"] == db.directory.name:
            return db
        self._open.pop(name, None)
        db.closed = True
        db.wake_feeds()  # its feeds end, as they do when this process deletes it
        for fn in db._close_hooks:
            try:
                fn()
            except Exception:
                pass
        if db.pins == 0 and db.writer.idle():
            db.store.close()
        else:  # a request still reads it: closed when the last one lets go
            db.release_when_unpinned = True
        return None

    async def watch_shared(self) -> None:
        """With other server processes on this data directory (`shared`): wake the feeds of this
        process when one of them commits. A poll of LMDB's last transaction id, which lives in
        the environment's shared lock file, for the databases that have feeds waiting and for
        the catalog (`/_db_updates`); no message between processes to lose or to back up."""
        rounds = 0
        while True:
            await asyncio.sleep(SHARED_POLL_SECONDS)
            rounds += 1
            if rounds % STALE_READER_ROUNDS == 0:
                self._clear_stale_readers()
            try:
                for name, db in list(self._open.items()):
                    # a database another process deleted ends its feeds here too
                    if db.feeds_waiting and self._still_catalogued(name, db) is not None:
                        db.poll_commits()
                self.db_updates.poll_commits()
            except Exception:  # noqa: BLE001 - a database closed meanwhile; the next round sees
                continue

    def _clear_stale_readers(self) -> None:
        """Free the reader slots a killed server process left in the lock files of the
        environments open here: a slot of a dead process would otherwise keep its snapshot's
        pages from being reused, and the files would grow (LMDB clears them itself only when
        the first process opens an environment)."""
        for store in [self._catalog, *(db.store for db in self._open.values() if not db.closed)]:
            try:
                store.reader_check()
            except Exception:  # noqa: BLE001 - closed meanwhile
                pass

    def open_dbs(self) -> list[Database]:
        """The databases open right now (least recently used first)."""
        return list(self._open.values())

    def _evict(self) -> None:
        if len(self._open) <= self.max_open:
            return
        for name in list(self._open):
            if len(self._open) <= self.max_open:
                break
            db = self._open[name]
            if db.idle():
                del self._open[name]
                db.closed = True
                for fn in db._close_hooks:
                    try:
                        fn()
                    except Exception:
                        pass
                db.store.close()

    def create_db(self, name: str, access: bool = False, partitioned: bool = False) -> Database:
        validate_db_name(name)
        if self.exists(name):
            raise PreconditionFailed("The database could not be created, the file already exists.")
        stale = self._open.get(name)
        if stale is not None:  # deleted by another server process (exists() looked it up)
            self._still_catalogued(name, stale)
        dirname = _dir_name(name)
        db = Database(self, name, self.path / "dbs" / dirname)
        # as CouchDB 3: a new database is admin-only until its _security says otherwise
        db.meta["security"] = security.default_security(self.config.get("couchdb", "default_security"))
        if access:
            db.meta["access"] = True  # per-document access control (couchpy.access), for good
        if partitioned:
            db.meta["props"] = {"partitioned": True}
            db.meta[partition_sizes.READY] = True  # no documents: every partition's record is right
        db.store.write(lambda txn: txn.put(META_KEY, jsonutil.dumps(db.meta), db=db._meta_db))
        entry = orjson.dumps({"dir": dirname, "created": time.time()})

        def add(txn) -> int:
            # inside the write transaction: another server process may have created it meanwhile
            if txn.get(name.encode(), db=self._cat_db) is not None:
                raise PreconditionFailed("The database could not be created, the file already exists.")
            txn.put(name.encode(), entry, db=self._cat_db)
            return self.db_updates.record(txn, name, CREATED)

        try:
            self.db_updates.committed(self._catalog.write(add))
        except PreconditionFailed:
            db.store.close()
            shutil.rmtree(db.directory, ignore_errors=True)
            raise
        self._open[name] = db
        self._evict()
        return _hold(db)

    async def delete_db(self, name: str) -> None:
        entry = self._lookup(name)
        if entry is None:
            raise NotFound("Database does not exist.")

        def remove(txn) -> int:
            raw = txn.get(name.encode(), db=self._cat_db)
            if raw is None or orjson.loads(raw)["dir"] != entry["dir"]:
                raise NotFound("Database does not exist.")  # deleted by another process meanwhile
            txn.delete(name.encode(), db=self._cat_db)
            return self.db_updates.record(txn, name, DELETED)

        self.db_updates.committed(self._catalog.write(remove))
        db = self._open.pop(name, None)
        if db is not None:
            await db.close()
        directory = self.path / "dbs" / entry["dir"]
        self._trash.mkdir(exist_ok=True)
        target = self._trash / entry["dir"]
        try:
            directory.rename(target)
        except OSError:
            target = directory
        await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, target, True)

    def begin_shutdown(self) -> None:
        """Tell long-lived readers (changes feeds) to finish: the server is stopping."""
        self.closing = True
        for db in self._open.values():
            db.wake_feeds()
        self.db_updates.wake()

    def all_dbs(self) -> list[str]:
        with self._catalog.read() as txn:
            return [k.decode() for k in txn.cursor(db=self._cat_db).iternext(keys=True, values=False)]

    def ensure_system_dbs(self) -> None:
        for name in ("_users", "_replicator"):
            if not self.exists(name):
                self.create_db(name)

    async def aclose(self) -> None:
        for hook in list(self.before_close):
            await hook()
        self.before_close.clear()
        for db in list(self._open.values()):
            await db.close()
        self._open.clear()
        await self.db_updates.aclose()
        self._catalog.close()
        await asyncio.to_thread(close_pool, self)  # each worker exits on its pipe's end

    def close(self) -> None:
        """Synchronous close for library use outside an event loop."""
        for db in list(self._open.values()):
            db.store.close()
        self._open.clear()
        self.db_updates.flush_now()
        self._catalog.close()
        close_pool(self)
