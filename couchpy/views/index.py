"""A view index: the rows of a design document's views in one LMDB environment, kept up to date.

Layout (`<db>/views/<signature>/`, one environment per signature):
- `rows`: view number byte + stored row key -> marshal((key, docid, value)) (rows.py has the
  format); the row key is collate.encode(key) + raw(docid) + emit number, so LMDB's order is
  CouchDB's (key, docid) order. Row keys have no length limit: the stored key is
  `longkeys.ordered(row key)`, and a row stored under a prefix and a digest carries its row key as
  a fourth member (readers restore the order of such rows, see query.py);
- `ids`: `longkeys.point(docid)` -> (view, collate key, emit number) of each row the document
  produced (to remove them);
- `tree`: partial reductions per view (tree.py); every view keeps at least a row count there, which
  answers `total_rows` and `offset` without scanning;
- `meta`: the database sequence the index reflects, and whether the partials are current.

Updating reads the database's by-sequence index after the index's sequence in batches, maps the
documents in the query-server workers, and commits each batch (rows, back-index, partials and the
new sequence in one transaction). A large catch-up (an initial build) skips partial maintenance
while it writes and rebuilds the partials in one ordered pass at the end, which is much cheaper
than updating them per batch. One build per index runs at a time; concurrent queries wait on it.

LMDB reuses the pages updates free, so an index stops growing at about twice its live size (rows
rewritten once leave their old pages behind). Compaction (`compact_sync`, `_compact/{ddoc}`) gives
that space back: with updates held off, a copy of the environment is written beside it
(`<signature>.compact`) with every sub-database in key order, so its pages are full, made
durable, and swapped in as a database's environment is (couchpy.envswap); queries keep reading
the old environment until the moment of the swap. A first build of many documents ends with the
same rewrite: it writes rows in document order, which leaves pages about two thirds full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import orjson

from .. import collate, envswap, longkeys, partitions, purge
from ..docinfo import DocInfo
from ..errors import NotFound
from ..mango.native import MangoMapper
from ..query_server import ViewFunctions
from ..storage import Store
from ..updates import META_KEY
from . import erlang_order, rows, tree
from .builtin_reduce import Builtin, builtin, is_builtin
from .ddoc import DesignSpec

log = logging.getLogger("couchpy.views")

BATCH_DOCS = 2000  # per transaction: two query-server calls of 1000, run in parallel

# Map calls wait on worker processes (releasing the GIL); running them here lets the indexing
# thread read and write the neighbouring batches meanwhile.
_MAPPER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="view-map")


def _encoded_rows(enc: Any, emitted: list) -> list[tuple[bytes, Any, Any]]:
    """(encoded key, key, value) of one document's rows in one view, in index order. Rows whose
    key cannot be encoded are left out. CouchDB stores the rows a document emits under one key
    sorted by the Erlang term order of their values (not by emission), which queries show."""
    out = []
    for k, v in emitted:
        try:
            out.append((enc(k), k, v))
        except (TypeError, ValueError):
            continue
    if len(out) > 1:
        out.sort(key=lambda row: (row[0], erlang_order.term_key(row[2])))
    return out


class CountReducer:
    """Every view's tree keeps (count, user partial) so total_rows/offset are O(log n)."""

    def __init__(self, user: Any | None):
        self.user = user

    def reduce(self, rows: list) -> Any:
        return (len(rows), self.user.reduce(rows) if self.user is not None else None)

    def rereduce(self, partials: list) -> Any:
        count = 0
        users = []
        for c, u in partials:
            count += c
            if u is not None:
                users.append(u)
        if self.user is None or not users:
            return (count, None)
        return (count, users[0] if len(users) == 1 else self.user.rereduce(users))


class BuiltinAdapter:
    def __init__(self, b: Builtin):
        self.b = b

    def reduce(self, rows: list) -> Any:
        return self.b.reduce([r[0] for r in rows], [r[2] for r in rows])

    def rereduce(self, partials: list) -> Any:
        return self.b.rereduce(partials)

    def finalize(self, partial: Any) -> Any:
        return self.b.finalize(partial)


class CustomAdapter:
    def __init__(self, pool: Any, fns: Any, idx: int):
        self.pool, self.fns, self.idx = pool, fns, idx

    def reduce(self, rows: list) -> Any:
        return self.pool.reduce(self.fns, self.idx, [[r[0], r[1]] for r in rows], [r[2] for r in rows])

    def rereduce(self, partials: list) -> Any:
        return self.pool.rereduce(self.fns, self.idx, partials)

    def finalize(self, partial: Any) -> Any:
        return partial


class ViewIndex:
    def __init__(self, db: Any, spec: DesignSpec, pool: Any):
        self.db = db
        self.spec = spec
        if spec.language == "query":
            pool = MangoMapper(tuple(v.map for v in spec.views))
        self.pool = pool
        self.directory = db.directory / "views" / spec.sig
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with self._across_processes():
            envswap.recover(self.directory.parent, spec.sig)  # a compaction a crash cut short
            self.store = Store(self.directory, ("meta", "ids", "rows", "tree"))
            self._ino = self._disk_ino()
        self._bind()
        custom = tuple(None if (v.reduce is None or is_builtin(v.reduce)) else v.reduce for v in spec.views)
        self.fns = ViewFunctions(spec.language, tuple(v.map for v in spec.views), custom,
                                 tuple(v.name for v in spec.views), spec.lib)
        self.user_reducers: list[Any] = []
        self.trees: list[tree.ReduceTree] = []
        self.encoders = []
        for i, v in enumerate(spec.views):
            if v.reduce is None:
                user = None
            elif is_builtin(v.reduce):
                user = BuiltinAdapter(builtin(v.reduce))
            else:
                user = CustomAdapter(pool, self.fns, i)
            self.user_reducers.append(user)
            self.trees.append(tree.ReduceTree(self._rows, self._tree, bytes([i]), CountReducer(user)))
            self.encoders.append(collate.encoder(v.collation))
        self._lock = threading.Lock()
        self._build: asyncio.Future | None = None
        self.compact_running = False
        self.closed = False
        self.purge_seq = 0
        self._seq_seen = -1  # the highest index sequence read so far

    # ------------------------------------------------------------------ meta

    def _bind(self) -> None:
        """The sub-database handles of the current environment (again after a compaction)."""
        self._meta = self.store.db("meta")
        self._ids = self.store.db("ids")
        self._rows = self.store.db("rows")
        self._tree = self.store.db("tree")
        for t in getattr(self, "trees", ()):
            t.rows_db, t.tree_db = self._rows, self._tree

    @contextlib.contextmanager
    def _across_processes(self) -> Iterator[None]:
        """Hold the index's lock file while building, compacting or recovering it, when other
        server processes share the data directory (`node.shared`): two processes never build
        the same index at once (the second finds it current when it gets the lock), and none
        opens or recovers the environment while another swaps in its compacted copy."""
        if not getattr(self.db.node, "shared", False):
            yield
            return
        with envswap.flock(self.directory.parent / f"{self.spec.sig}.lock"):
            yield

    def _disk_ino(self) -> int:
        return envswap.data_file_ino(self.directory)

    def _follow_swap(self) -> None:
        """Under the lock file: if another process compacted the index (a new environment at
        this path), open that one; the old one is gone from the directory, and updates written
        into it would be lost."""
        ino = self._disk_ino()
        if ino != self._ino:
            self.store.swap(lambda: None, self._bind)
            self._ino = self._disk_ino()
            self._seq_seen = -1

    def _get_meta(self, txn: Any, key: bytes, default: Any) -> Any:
        raw = txn.get(key, db=self._meta)
        return default if raw is None else marshal.loads(raw)

    @property
    def seq(self) -> int:
        with self.store.read() as txn:
            seq = self._get_meta(txn, b"seq", 0)
        if seq > self._seq_seen:
            self._seq_seen = seq
        return seq

    def current(self) -> bool:
        """Whether the index reflects the database's latest sequence; reads no transaction when
        the answer is already known (the index's sequence only grows, also when another server
        process updates or compacts it)."""
        target = self.db.update_seq
        return self._seq_seen >= target or self.seq >= target

    def tree_valid(self, txn: Any) -> bool:
        return self._get_meta(txn, b"tree_valid", True)

    # ------------------------------------------------------------------ building

    def update_sync(self, task: Any = None) -> int:
        """Bring the index up to the database's current sequence (blocking; runs in a thread)."""
        with self._lock:
            try:
                with self._across_processes():
                    if self.db.node.shared and not self.closed:
                        self._follow_swap()
                    return self._update_locked(task)
            finally:
                self._close_if_closed()

    def _update_locked(self, task: Any) -> int:
        if self.closed:
            raise NotFound("missing")  # dropped (its design document is gone) while it waited
        db = self.db
        with self.store.read() as txn:
            seq = self._get_meta(txn, b"seq", 0)
            ndocs = txn.stat(self._ids)["entries"]
            valid = self.tree_valid(txn)
        target = db.update_seq
        if seq >= target:
            return seq
        pending = target - seq
        # Maintaining partials per batch costs ~a block read per changed row; for a big catch-up
        # one ordered rebuild at the end is far cheaper.
        bulk = pending > 2 * BATCH_DOCS and pending * 4 > ndocs
        if bulk and valid:
            self.store.write(lambda txn: txn.put(b"tree_valid", marshal.dumps(False), db=self._meta))
            valid = False
        self._catch_up_purges(seq, valid)
        done = 0
        it = db.changes_since(seq)
        # Pipeline: while the workers map batch k, this thread reads batch k+1 and writes k-1.
        pending_map = None
        while True:
            infos = list(islice(it, BATCH_DOCS))
            nxt = self._start_batch(infos) if infos else None
            if pending_map is not None:
                self._finish_batch(*pending_map, maintain_tree=valid)
                done += len(pending_map[0])
                if task is not None:
                    task.update(changes_done=done, total_changes=max(pending, done),
                                progress=min(100, int(100 * done / max(pending, 1))))
            if nxt is None:
                break
            pending_map = nxt
        if not valid:
            def finish(txn: Any) -> None:
                for t in self.trees:
                    t.rebuild(txn)
                txn.put(b"tree_valid", marshal.dumps(True), db=self._meta)

            self.store.write(finish)
        if self.seq < target:
            # a purge moves update_seq on without a change of its own: every change up to
            # `target` has been read
            self.store.write(lambda txn: txn.put(b"seq", marshal.dumps(target), db=self._meta))
        if bulk and seq == 0:
            # a first build wrote its rows in document order, leaving pages about two thirds
            # full: rewritten in key order they take about two thirds of the space
            self._compact_locked()
        return self.seq

    def _catch_up_purges(self, seq: int, maintain_tree: bool) -> None:
        """Drop the rows of documents purged since the index last looked (its `purge_seq`).
        A document that kept revisions has a new sequence and is re-mapped with the changes;
        one purged whole has none, so its rows are removed here, as a deletion's would be."""
        db = self.db
        with self.store.read() as txn:
            done = self._get_meta(txn, b"purge_seq", 0)
        with db.store.read() as txn:
            purged = list(purge.purged_since(txn, db.store.db(purge.SUBDB), done))
            # read in the same snapshot: a purge committed meanwhile is left for the next look
            raw = txn.get(META_KEY, db=db._meta_db)
        total = orjson.loads(raw).get("purge_seq", 0) if raw else 0
        if total <= done:
            return
        if not purged or purged[0][0] > done + 1:
            # purge infos this index has not read were dropped (beyond `purged_infos_limit`):
            # which documents they named is unknown, so every document the index holds is checked
            ids = dict.fromkeys(self._indexed_ids())
        else:
            ids = dict.fromkeys(docid for _, docid in purged)
        # a purge request may name the empty id, and is recorded like any other, but no document
        # has it (nor can the index look it up: LMDB refuses an empty key)
        gone = [DocInfo(docid, "", True, seq) for docid in ids if docid and db.get_docinfo(docid) is None]
        if gone:
            self._apply_batch(gone, maintain_tree)
        last = total
        self.store.write(lambda txn: txn.put(b"purge_seq", marshal.dumps(last), db=self._meta))
        self.purge_seq = last

    def _indexed_ids(self) -> list[str]:
        """The ids of the documents that have rows in this index (the back-index names each)."""
        out = []
        with self.store.read() as txn:
            for did, back in txn.cursor(db=self._ids).iternext():
                out.append(rows.back_docid(did, back))
        return out

    def _apply_batch(self, infos: list, maintain_tree: bool) -> None:
        self._finish_batch(*self._start_batch(infos), maintain_tree=maintain_tree)

    def _start_batch(self, infos: list) -> tuple:
        """Read the batch's documents and hand them to the mapper (returns a future of the rows)."""
        spec = self.spec
        to_map = [
            i for i in infos
            if not i.deleted and (spec.include_design or not i.id.startswith("_design/"))
            # a partitioned index holds the documents of partitions only
            and (not spec.partitioned or partitions.partition_of(i.id) is not None)
        ]
        # map functions see the document as couchjs gets it: with its (deleted) conflicts
        docs = self.db.load_docs(to_map, conflicts=True, deleted_conflicts=True) if to_map else []
        pairs = [(info, doc) for info, doc in zip(to_map, docs) if doc is not None]
        if spec.local_seq:
            for info, doc in pairs:
                doc["_local_seq"] = info.seq
        docs_only = [d for _, d in pairs]
        fut = _MAPPER.submit(self.pool.map_docs, self.fns, docs_only) if pairs else None
        return infos, pairs, fut

    def _finish_batch(self, infos: list, pairs: list, fut: Any, maintain_tree: bool) -> None:
        spec = self.spec
        mapped = fut.result() if fut is not None else []
        results = {info.id: rows for (info, _), rows in zip(pairs, mapped)}
        last_seq = max(i.seq for i in infos)
        encoders = self.encoders
        nviews = len(spec.views)
        partitioned = spec.partitioned

        def fn(txn: Any) -> None:
            changed: list[dict[bytes, bool]] = [{} for _ in range(nviews)]
            put, delete, get = txn.put, txn.delete, txn.get
            rows_db, ids_db = self._rows, self._ids
            for info in infos:
                raw_id = info.id.encode("utf-8", "surrogatepass")
                did = longkeys.point(raw_id)
                old = get(did, db=ids_db)
                rid = collate.raw_string(info.id)
                # a partitioned index orders rows by partition first: one partition's rows
                # are one range (couchpy.partitions)
                pp = partitions.row_prefix(partitions.partition_of(info.id) or "") if partitioned else b""
                if old is not None:
                    for j, rk in rows.back_rowkeys(old, pp, rid):
                        delete(bytes([j]) + rk, db=rows_db)
                        changed[j][rk] = False
                back = []
                per_view = results.get(info.id)
                if per_view:
                    for j, emitted in enumerate(per_view):
                        if not emitted:
                            continue
                        vp = bytes([j])
                        for n, (ek, k, v) in enumerate(_encoded_rows(encoders[j], emitted)):
                            rk, raw = rows.pack(k, info.id, v, rows.row_key(pp, ek, rid, n))
                            put(vp + rk, raw, db=rows_db)
                            changed[j][rk] = True
                            back.append((j, ek, n))
                if back:
                    put(did, rows.pack_back(back, info.id if did != raw_id else None), db=ids_db)
                elif old is not None:
                    delete(did, db=ids_db)
            if maintain_tree:
                for j, t in enumerate(self.trees):
                    t.update(txn, changed[j])
            put(b"seq", marshal.dumps(last_seq), db=self._meta)

        self.store.write(fn)

    async def update(self, node: Any = None, ddoc_id: str | None = None) -> None:
        """Await an up-to-date index; concurrent callers share one build."""
        if self.current():
            return
        loop = asyncio.get_running_loop()
        while True:
            if self._build is not None and not self._build.done():
                await asyncio.shield(self._build)
                if self.seq >= self.db.update_seq:
                    return
                continue
            if self.seq >= self.db.update_seq:
                return
            task = None
            if node is not None and hasattr(node, "tasks"):
                task = node.tasks.add(type="indexer", database=self.db.name, design_document=ddoc_id,
                                      progress=0, changes_done=0, total_changes=0)

            def run() -> int:
                try:
                    return self.update_sync(task)
                finally:
                    if task is not None:
                        task.done()

            self._build = loop.run_in_executor(None, run)
            await asyncio.shield(self._build)
            return

    # ------------------------------------------------------------------ compaction

    def compact_sync(self) -> tuple[int, int]:
        """Give back the pages updates left free (blocking; runs in a thread). Returns the data
        file's size before and after."""
        with self._lock:  # no update writes meanwhile; queries go on reading
            if self.closed:
                return (0, 0)
            try:
                with self._across_processes():
                    if self.db.node.shared:
                        self._follow_swap()
                    return self._compact_locked()
            finally:
                self._close_if_closed()

    def _compact_locked(self) -> tuple[int, int]:
        parent, live = self.directory.parent, self.spec.sig
        copy = parent / envswap.names(live)[1]
        self.compact_running = True
        try:
            before = self.store.file_size()
            envswap.discard_copy(parent, live)
            copy.mkdir()
            self._dense_copy(copy)
            envswap.seal(copy)
            self.store.swap(lambda: envswap.install(parent, live), self._bind)
            self._ino = self._disk_ino()
            envswap.finish(parent, live)
            return before, self.store.file_size()
        finally:
            self.compact_running = False

    def _dense_copy(self, copy: Any) -> None:
        """Write the environment's sub-databases into a new environment at `copy`, each in key
        order with `append`, which fills every page. LMDB's own compacting copy leaves out free
        pages but keeps each page as full as it was, about two thirds after inserts in random
        key order (as view rows and back-index entries are written)."""
        src = self.store
        names = tuple(src.subdb_names())
        dst = Store(copy, names, map_size=src.env.info()["map_size"], durable=False)
        try:
            with src.read() as rtxn:
                for name in names:
                    handle, out = src.db(name), dst.db(name)
                    # a fresh cursor per attempt: Store.write redoes fn after growing the map
                    dst.write(lambda t, handle=handle, out=out:
                              t.cursor(db=out).putmulti(rtxn.cursor(db=handle).iternext(), append=True))
            dst.sync()
        finally:
            dst.close()

    # ------------------------------------------------------------------ info

    def _get_meta_now(self, key: bytes) -> int:
        with self.store.read() as txn:
            return self._get_meta(txn, key, 0)

    def info(self) -> dict:
        with self.store.read() as txn:
            seq = self._get_meta(txn, b"seq", 0)
        size = self.store.file_size()
        return {
            "signature": self.spec.sig,
            "language": self.spec.language,
            "sizes": {"file": size, "external": 0, "active": self.store.used_bytes()},
            "update_seq": seq,
            "purge_seq": self._get_meta_now(b"purge_seq"),
            "updater_running": self._build is not None and not self._build.done(),
            "compact_running": self.compact_running,
            "waiting_clients": 0,
            "waiting_commit": False,
            "updates_pending": {"minimum": 0, "preferred": 0, "total": max(self.db.update_seq - seq, 0)},
            "collator_versions": [collate.ICU_VERSION],
        }

    def close(self) -> None:
        """Close the environment now, or, while a build or a compaction holds the index in a
        thread, let that thread close it when it is done (closing under it would pull the map
        from under its transaction)."""
        if self.closed:
            return
        self.closed = True
        if self._lock.acquire(blocking=False):
            try:
                self.store.close()
            finally:
                self._lock.release()

    def _close_if_closed(self) -> None:
        """End of a thread's work under `_lock`: the close that was deferred to it."""
        if self.closed:
            self.store.close()

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)
