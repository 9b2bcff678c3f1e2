"""A database: documents with revision trees, the by-sequence index and `_local` documents in LMDB.

Layout of the environment (named sub-databases):

    docs    doc id -> b"L" | b"D" (live/deleted winner) + rev + b"\\0" + JSON {seq, tree}
    seqs    update seq (8 bytes, big endian) -> doc id; one live entry per document
    bodies  doc id + b"\\0" + rev -> JSON body of that revision (user fields and `_attachments`)
    local   `_local/...` id -> JSON {rev: "0-N", body}

Ids of any length: keys of `docs` and `local` are `longkeys.ordered(id)` (a long id's record then
carries the id), keys of `bodies` are `longkeys.point(...)` (see couchpy.longkeys).
    meta    b"meta" -> JSON {update_seq, doc_count, doc_del_count, revs_limit, purge_seq, security}
    timeseq time bucket -> commit times and sequences written in it (couchpy.timeseq)

Reads are synchronous and run on the event loop. Writes are queued to a group-commit writer
(couchpy.writer): everything queued while a commit is in flight is applied in the next LMDB
transaction, and every caller is answered only after that transaction is durably committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import lmdb
import orjson

from . import (access, bodycodec, compactor, docrules, envswap, jsonutil, longkeys, partition_sizes, partitions,
               purge, replication_owners, revtree, scans, security, timeseq, updates, users, validation)
from .attachments import hooks as att_hooks
from .attachments import migrate as att_migrate
from .docinfo import DocInfo, body_key, docs_key, local_id, local_key, splice_doc
from .errors import BadRequest, Conflict, CouchError, NotFound, NotImplemented_, PreconditionFailed, TooLarge, Unavailable
from .storage import Store, retire
from .updates import META_KEY
from .waiters import Direct, Listener, Waiters
from .views import ddoc as view_ddoc
from .views import ddoc_fields
from .views.manager import avalidate_design_doc
from .writer import GroupCommitWriter

log = logging.getLogger("couchpy.database")

# Embedded sync (`Database.replicate_to` ...) is the replicator's: the engine never imports it.
# `import couchpy_sync` installs it here (an object with `replicate(db, source, target, **options)`
# and `sync(db, url, **options)`).
sync_provider: Any = None

SUBDBS = ("docs", "seqs", "bodies", "local", "meta", "attachments", purge.SUBDB, timeseq.SUBDB,
          partition_sizes.SUBDB)


class Database:
    # commit times of the time index (couchpy.timeseq); replaceable so tests can move the clock
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, node, name: str, directory: Path):
        self.node = node
        self.name = name
        self.directory = Path(directory)
        self.closed = False
        if not node.shared:  # a compaction cut short by a crash is completed first
            envswap.recover(self.directory, retire=retire)  # (shared: as the store opens)
        self.open_store()
        with self.store.read() as txn:
            raw = txn.get(META_KEY, db=self._meta_db)
            self._meta_txnid = txn.id()
        self._meta: dict[str, Any] = jsonutil.loads(raw) if raw else {
            "update_seq": 0,
            "doc_count": 0,
            "doc_del_count": 0,
            "revs_limit": 1000,
            "purge_seq": 0,
            "security": {},
            "created": time.time(),
            "external_size": 0,
            "live_body_size": 0,  # see couchpy.sizes
        }
        self.max_document_size = self.config.get_int("couchdb", "max_document_size", 8000000)
        self.max_docid_length = self.config.get_int("couchdb", "max_document_id_length")
        self.writer = GroupCommitWriter(self)
        # CouchDB's handle of a database loads its validation functions lazily; whether it has
        # decides how an edit of a missing document is answered (validation.checks_skipped)
        self.validators_loaded = False
        self._waiters = Waiters()  # feeds waiting for the next commit
        self._notified_seq = self._meta["update_seq"]  # the last sequence feeds were woken for
        self._published_seq = self._meta["update_seq"]  # the last sequence apply_meta published
        self.pins = 0
        self.release_when_unpinned = False  # see Node._still_catalogued
        self.compact_running = False
        self._dict_tried = False  # one background dictionary training per open (maybe_train)
        self._train_task: asyncio.Task | None = None
        self._close_hooks: list = []
        self.closed = False

    def open_store(self) -> None:
        # With other server processes, the one that compacts replaces the environment, and this
        # store follows (couchpy.storage); it opens only under the swap lock (couchpy.envswap).
        # Neither hook refers to the database itself: a store referring back to its database would
        # make a reference cycle, and a closed database would stay in memory until the cyclic
        # collector ran (tests/test_scale_memory.py)
        directory = self.directory
        follow = (lambda: envswap.opening(directory, retire)) if self.node.shared else None
        self.store = Store(self.directory / "main", SUBDBS, follow=follow)
        bind = weakref.WeakMethod(self.bind_store)

        def rebind() -> None:
            method = bind()
            if method is not None:
                method()

        self.store.rebind = rebind
        self.bind_store()
        # Attachment digests stored by earlier versions become CouchDB's (once; then one read).
        att_migrate.migrate(self.store, self._bodies, self.store.db("attachments"), self.codec)

    def bind_store(self) -> None:
        """The sub-database handles and the body codec of the store's environment, again after
        compaction swapped it (Store.swap calls this while readers wait, so it reads through the
        environment itself)."""
        self._docs = self.store.db("docs")
        self._seqs = self.store.db("seqs")
        self._bodies = self.store.db("bodies")
        self._local = self.store.db("local")
        self._meta_db = self.store.db("meta")
        self._meta_txnid = -1  # transaction ids of another environment say nothing here
        store = self.store
        with store.env.begin() as txn:
            # `load`: another server process may train and store the dictionary (maybe_train);
            # it refers to the store, not the database (no reference cycle), and reads as every
            # reader does, so that a map resize waits for it
            self.codec = bodycodec.Codec(txn.get(bodycodec.DICT_KEY, db=self._meta_db),
                                         load=lambda: _stored_dictionary(store))

    # ------------------------------------------------------------------ properties

    @property
    def meta(self) -> dict[str, Any]:
        """The database's metadata (counts, sequences, security, ...) as last committed. With
        several server processes on one data directory (`node.shared`) another process may have
        committed since; and while this process's writer commits in its thread, a reader may
        already see the new documents before the writer publishes the new metadata on the event
        loop (tests/test_meta_after_commit.py). In both cases LMDB's last transaction id says
        cheaply whether the record must be read again."""
        if (self.node.shared or self.writer.in_flight) and not self.closed:
            self._reload_meta()
        return self._meta

    @meta.setter
    def meta(self, value: dict[str, Any]) -> None:
        self._meta = value

    def _reload_meta(self) -> None:
        if self.store.last_txnid() == self._meta_txnid:
            return
        with self.store.read() as txn:
            raw = txn.get(META_KEY, db=self._meta_db)
            txnid = txn.id()
        if raw is not None:
            self._meta = jsonutil.loads(raw)
        self._meta_txnid = txnid

    def meta_for_write(self, txn: lmdb.Transaction) -> dict[str, Any]:
        """A copy of the metadata to change inside the write transaction `txn`. Another server
        process may have committed since this one last looked; LMDB serializes write
        transactions across processes, so the record read here is the latest, and sequence
        numbers and counts continue from it."""
        if self.node.shared:
            raw = txn.get(META_KEY, db=self._meta_db)
            if raw is not None:
                return jsonutil.loads(raw)
        return dict(self._meta)

    def poll_commits(self) -> None:
        """Wake the feeds waiting here if another process committed a change (`node.shared`;
        the node polls the databases that have waiting feeds)."""
        if self.closed:
            return
        self._reload_meta()
        if self._meta["update_seq"] != self._notified_seq:
            self._notified_seq = self._meta["update_seq"]
            self._waiters.wake()

    @property
    def feeds_waiting(self) -> bool:
        return len(self._waiters) > 0

    @property
    def update_seq(self) -> int:
        return self.meta["update_seq"]

    @property
    def revs_limit(self) -> int:
        return self.meta["revs_limit"]

    @property
    def partitioned(self) -> bool:
        return bool(self.meta.get("props", {}).get("partitioned"))

    @property
    def config(self):
        return self.node.config

    def idle(self) -> bool:
        return self.pins == 0 and self.writer.idle() and not self.compact_running

    def pin(self) -> None:
        self.pins += 1

    def unpin(self) -> None:
        self.pins -= 1
        if self.pins == 0 and self.release_when_unpinned and self.writer.idle():
            self.store.close()  # deleted by another server process while a request used it

    def add_close_hook(self, fn) -> None:
        """fn() is called when this database is closed (evicted from the LRU or deleted)."""
        self._close_hooks.append(fn)

    def info(self) -> dict:
        m = self.meta
        return {
            "db_name": self.name,
            "purge_seq": self.node.format_seq(self, m["purge_seq"]),
            "update_seq": self.node.format_seq(self, m["update_seq"]),
            "sizes": {
                "file": self.store.file_size(),
                "external": m.get("external_size", 0),
                "active": self._active_size(),
            },
            "props": {**m.get("props", {}), **({"access": True} if access.is_access_db(self.meta) else {})},
            "doc_del_count": m["doc_del_count"],
            "doc_count": m["doc_count"],
            "disk_format_version": 8,
            # with several workers, worker 0 compacts: any worker sees its compaction lock held
            "compact_running": self.compact_running
            or (self.node.shared and envswap.compaction_running(self.directory)),
            "cluster": {"q": 1, "n": 1, "w": 1, "r": 1},
            "instance_start_time": "0",
        }

    def partition_info(self, partition: str) -> dict:
        """A partition's counts and sizes, from its record (couchpy.partition_sizes); a database
        whose records are not built yet counts the partition's id range instead."""
        if self.meta.get(partition_sizes.READY):
            with self.store.read() as txn:
                counts = partition_sizes.read(txn, self.store.db(partition_sizes.SUBDB), partition)
        else:
            counts = self._count_partition(partition)
        return {"sizes": {"active": counts.active, "external": counts.external}, "partition": partition,
                "doc_count": counts.doc_count, "doc_del_count": counts.doc_del_count}

    def _count_partition(self, partition: str) -> partition_sizes.Counts:
        """A partition's counts read from its documents (its id range, never the database's)."""
        lo, hi = partitions.id_range(partition)
        total = partition_sizes.ZERO
        for info in self.iter_docinfos(lo, hi, False, False):
            with self.store.read() as txn:
                bodies = self.stored_bodies(txn, info.id, info.leaves())
            total = total + partition_sizes.doc_counts(info.deleted, bodies)
        return total

    def _active_size(self) -> int:
        live = self.meta.get("live_body_size")
        if live is None:  # not counted yet (written before the count existed): pages in use
            return self.store.used_bytes()
        return self.store.used_bytes(exclude=("bodies",)) + live

    # ------------------------------------------------------------------ reads

    def stored_bodies(self, txn: lmdb.Transaction, docid: str, revs: Iterable[str]) -> list[tuple[bytes, Any, bytes]]:
        """(key, body as decoded, bytes as stored) of each of `revs` whose body is stored: what
        the size counters (couchpy.sizes, couchpy.partition_sizes) count of a document."""
        out = []
        for rev in revs:
            bkey = body_key(docid, rev)
            stored = txn.get(bkey, db=self._bodies)
            if stored is not None:
                out.append((bkey, self.codec.decode(stored), stored))
        return out

    def get_docinfo(self, docid: str, txn: lmdb.Transaction | None = None) -> DocInfo | None:
        try:
            key = docid.encode()
        except UnicodeEncodeError:
            return None
        if not key:
            return None  # no document has the empty id (and LMDB refuses an empty key)
        key = docs_key(key)
        if txn is None:
            with self.store.read() as t:
                raw = t.get(key, db=self._docs)
        else:
            raw = txn.get(key, db=self._docs)
        return DocInfo.decode(docid, raw) if raw else None

    def read_body(self, docid: str, rev: str, txn: lmdb.Transaction | None = None) -> dict | None:
        if txn is None:
            with self.store.read() as t:
                raw = t.get(body_key(docid, rev), db=self._bodies)
        else:
            raw = txn.get(body_key(docid, rev), db=self._bodies)
        return jsonutil.loads(self.codec.decode(raw)) if raw else None

    def get(
        self,
        docid: str,
        rev: str | None = None,
        revs: bool = False,
        revs_info: bool = False,
        conflicts: bool = False,
        deleted_conflicts: bool = False,
        local_seq: bool = False,
        latest: bool = False,
    ) -> dict:
        """A document as CouchDB's GET returns it; NotFound when missing or deleted."""
        if docid.startswith("_local/"):
            return self.get_local(docid)
        with self.store.read() as txn:
            info, rev = self._resolve(docid, rev, txn, latest)
            body = self.read_body(docid, rev, txn)
            if body is None:
                raise NotFound("missing")
            return self.build_doc(
                info, rev, body, txn,
                revs=revs, revs_info=revs_info, conflicts=conflicts,
                deleted_conflicts=deleted_conflicts, local_seq=local_seq,
            )

    def _resolve(self, docid: str, rev: str | None, txn, latest: bool = False) -> tuple[DocInfo, str]:
        """The document and the revision a read names: the winner by default (404 "deleted" when
        it is a tombstone), or `rev` (404 "missing" when unknown; its newest leaf with `latest`)."""
        info = self.get_docinfo(docid, txn)
        if info is None:
            raise NotFound("missing")
        if rev is None:
            if info.deleted:
                raise NotFound("deleted")
            return info, info.rev
        if rev not in info.tree:
            raise NotFound("missing")
        if latest:
            rev = max(revtree.latest(info.tree, rev), key=lambda r: revtree._winner_key(info.tree, r))
        return info, rev

    def get_json(self, docid: str, rev: str | None = None) -> tuple[str, bytes]:
        """A plain GET's answer, (rev, JSON bytes), spliced from the stored body: no parse, no
        re-serialization. NotFound as `get`."""
        with self.store.read() as txn:
            info, rev = self._resolve(docid, rev, txn)
            deleted = info.tree[rev][1] if rev != info.rev else info.deleted
            raw = txn.get(body_key(docid, rev), db=self._bodies)
        if raw is None:
            raise NotFound("missing")
        return rev, splice_doc(docid, rev, self.codec.decode(raw), b',"_deleted":true' if deleted else b"")

    def build_doc(
        self,
        info: DocInfo,
        rev: str,
        body: dict,
        txn: lmdb.Transaction | None = None,
        revs: bool = False,
        revs_info: bool = False,
        conflicts: bool = False,
        deleted_conflicts: bool = False,
        local_seq: bool = False,
    ) -> dict:
        """Assemble the JSON of one revision in CouchDB's field order."""
        doc: dict[str, Any] = {"_id": info.id, "_rev": rev}
        atts = None
        for key, value in body.items():
            if key == "_attachments":
                atts = value
            else:
                doc[key] = value
        # the winner's own flag: a plain read of a document with a long history (up to
        # revs_limit revisions) then never parses its revision tree
        if info.deleted if rev == info.rev else info.tree.get(rev, (None, False))[1]:
            doc["_deleted"] = True
        if revs:
            doc["_revisions"] = revtree.revisions_field(info.tree, rev, self.revs_limit)
        if atts is not None:
            doc["_attachments"] = atts
        if conflicts and rev == info.rev:
            c = revtree.conflicts(info.tree)
            if c:
                doc["_conflicts"] = c
        if deleted_conflicts and rev == info.rev:
            dc = revtree.deleted_conflicts(info.tree)
            if dc:
                doc["_deleted_conflicts"] = dc
        if revs_info:
            doc["_revs_info"] = self._revs_info(info, rev, txn)
        if local_seq:
            doc["_local_seq"] = info.seq
        return doc

    def load_winner_fragments(self, winners: list[tuple[str, str]]) -> list[orjson.Fragment | None]:
        """As `load_doc_fragments`, for live winners named by (id, rev): no DocInfo needed."""
        out: list[orjson.Fragment | None] = []
        decode = self.codec.decode
        with self.store.read() as txn:
            get, bodies = txn.get, self._bodies
            for docid, rev in winners:
                raw = get(body_key(docid, rev), db=bodies)
                out.append(None if raw is None else orjson.Fragment(splice_doc(docid, rev, decode(raw))))
        return out

    def load_doc_fragments(self, infos: list[DocInfo], conflicts: bool = False) -> list[orjson.Fragment | None]:
        """The winning revisions as ready-made JSON, for listings (`_all_docs`, `_changes`).

        The stored body already is JSON: splicing `_id`/`_rev` (and `_deleted`, `_conflicts`) into
        it saves parsing and re-serializing every document of a large listing.
        """
        out: list[orjson.Fragment | None] = []
        with self.store.read() as txn:
            for info in infos:
                raw = txn.get(body_key(info.id, info.rev), db=self._bodies)
                if raw is None:
                    out.append(None)
                    continue
                tail = b',"_deleted":true' if info.deleted else b""
                if conflicts:
                    c = revtree.conflicts(info.tree)
                    if c:
                        tail += b',"_conflicts":' + orjson.dumps(c)
                out.append(orjson.Fragment(splice_doc(info.id, info.rev, self.codec.decode(raw), tail)))
        return out

    def load_docs(self, infos: list[DocInfo], conflicts: bool = False,
                  deleted_conflicts: bool = False) -> list[dict | None]:
        """Winning revisions of many documents in one read transaction (None where unreadable)."""
        out: list[dict | None] = []
        with self.store.read() as txn:
            for info in infos:
                body = self.read_body(info.id, info.rev, txn)
                out.append(None if body is None else self.build_doc(
                    info, info.rev, body, conflicts=conflicts, deleted_conflicts=deleted_conflicts))
        return out

    def _revs_info(self, info: DocInfo, rev: str, txn) -> list[dict]:
        out = []
        for r in revtree.ancestry(info.tree, rev):
            if info.tree[r][1]:
                status = "deleted"
            elif txn is not None and txn.get(body_key(info.id, r), db=self._bodies) is not None:
                status = "available"
            else:
                status = "missing"
            out.append({"rev": r, "status": status})
        return out

    def open_revs(self, docid: str, revs: list[str] | str, latest: bool = False, with_revs: bool = False) -> list[dict]:
        """`open_revs=all` or a list: [{"ok": doc} | {"missing": rev}] as CouchDB answers."""
        with self.store.read() as txn:
            info = self.get_docinfo(docid, txn)
            if revs == "all":
                if info is None:
                    return []
                wanted = info.leaves()
            else:
                wanted = list(revs)
            out: list[dict] = []
            seen: set[str] = set()
            for rev in wanted:
                if info is None or rev not in info.tree:
                    out.append({"missing": rev})
                    continue
                targets = revtree.latest(info.tree, rev) if latest else [rev]
                for r in targets:
                    if r in seen:
                        continue
                    seen.add(r)
                    body = self.read_body(docid, r, txn)
                    if body is None:
                        out.append({"missing": r})
                    else:
                        out.append({"ok": self.build_doc(info, r, body, txn, revs=with_revs)})
            return out

    def revs_diff(self, request: dict, sees: Callable[[str], bool] | None = None) -> dict:
        """{docid: [revs]} -> {docid: {missing: [...], possible_ancestors: [...]}} for missing ones.

        `sees`: the documents the reader may know of (per-document access); the others are
        answered as if they did not exist."""
        out: dict[str, dict] = {}
        with self.store.read() as txn:
            for docid, revs in request.items():
                if not isinstance(revs, list):
                    raise BadRequest("revs must be a list")
                if not all(revtree.parse_rev(r) for r in revs):
                    # CouchDB parses every revision first (a non-string one crashes it: 500)
                    raise BadRequest("Invalid rev format")
                info = self.get_docinfo(docid, txn)
                if info is not None and sees is not None and not sees(docid):
                    info = None
                tree = info.tree if info else {}
                missing = revtree.missing(tree, revs)
                if missing:
                    entry: dict[str, Any] = {"missing": missing}
                    ancestors: list[str] = []
                    for m in missing:
                        for a in revtree.possible_ancestors(tree, m):
                            if a not in ancestors:
                                ancestors.append(a)
                    if ancestors:
                        entry["possible_ancestors"] = ancestors
                    out[docid] = entry
        return out

    # ------------------------------------------------------------------ ranges (couchpy.scans)

    iter_docinfos = scans.iter_docinfos
    id_chunks = scans.id_chunks
    count_live_before = scans.count_live_before
    changes_since = scans.changes_since
    seq_chunks = scans.seq_chunks
    count_changes_after = scans.count_changes_after
    seq_since_time = scans.seq_since_time
    seq_until_time = scans.seq_until_time

    # ------------------------------------------------------------------ local docs

    def get_local(self, docid: str) -> dict:
        with self.store.read() as txn:
            raw = txn.get(local_key(docid), db=self._local)
        if raw is None:
            raise NotFound("missing")
        data = jsonutil.loads(raw)
        return {"_id": docid, "_rev": data["rev"], **data["body"]}

    def iter_local(self, start: str | None, end: str | None, descending: bool, inclusive_end: bool) -> list[dict]:
        rows = []
        with self.store.read() as txn:
            cur = txn.cursor(db=self._local)
            entries = cur.iterprev() if descending else cur.iternext()
            for raw_key, value in longkeys.restore_order(entries, local_id, descending):
                key = raw_key.decode()
                if descending:
                    if start is not None and key > start:
                        continue
                    if end is not None and (key < end or (not inclusive_end and key == end)):
                        break
                else:
                    if start is not None and key < start:
                        continue
                    if end is not None and (key > end or (not inclusive_end and key == end)):
                        break
                data = jsonutil.loads(value)
                rows.append({"_id": key, "_rev": data["rev"], **data["body"]})
        return rows

    # ------------------------------------------------------------------ writes

    def _check_size(self, doc: dict) -> None:
        limit = self.max_document_size
        if limit is not None:
            # as CouchDB 3.x: attachments count against max_attachment_size, not the document
            if "_attachments" in doc:
                doc = {k: v for k, v in doc.items() if k != "_attachments"}
            size = len(jsonutil.dumps(doc))
            if size > limit:
                raise TooLarge(str(doc.get("_id", "")), error="document_too_large")

    async def _prepare(self, doc: Any, new_edits: bool, followers=None, size_known_ok: bool = False) -> dict:
        """Validate one document (before it is queued) and store its attachment data.

        `size_known_ok`: the caller knows the document is within max_document_size (e.g. the
        whole request body was), which saves serializing it again just to measure it.
        """
        if not isinstance(doc, dict):
            raise BadRequest("Document must be a JSON object")
        if "_id" not in doc:
            raise BadRequest("Document must have an _id", error="illegal_docid")
        # the body's special members in its order (its `_id` among them), then its attachments'
        # names, before anything else is looked at, as CouchDB reads a write
        docrules.check_members(doc, self.max_docid_length, stored=att_hooks.is_prepared)
        att_hooks.check_names(doc)
        docid = doc["_id"]
        if self.partitioned:
            partitions.validate_docid(docid)
        rev = doc.get("_rev")
        if (not new_edits or "_revisions" in doc) and not docid.startswith("_local/"):
            docrules.revisions_path(doc)
        elif not new_edits and rev is None:
            raise BadRequest(docrules.NEEDS_REV)  # a replicated local document needs its rev too
        if not size_known_ok:
            self._check_size(doc)
        access.refuse_outside(self.meta, doc)
        if access.is_access_db(self.meta):
            doc = self._guard_access(docid, doc)
        if not docid.startswith("_local/"):
            doc = await self._guard(docid, doc)
        if docid.startswith("_design/") and not doc.get("_deleted"):
            try:
                ddoc_fields.check(doc)
                view_ddoc.check_partitioned(doc, self.partitioned)
                # as CouchDB: a design document whose views do not compile is refused on save (400)
                await avalidate_design_doc(self.node, doc)
            except CouchError:
                # CouchDB validates a design document once the edit has been checked against the
                # current revision (couch_db:prep_and_validate_update): a conflicting edit is a 409
                if new_edits and self.would_conflict(docid, doc.get("_rev")):
                    raise Conflict() from None
                raise
        if docid.startswith("_local/"):
            att_hooks.check_local(doc)
        elif followers or "_attachments" in doc:
            await att_hooks.prepare(self, doc, followers)
        return doc

    def has_revision(self, doc: dict) -> bool:
        """Whether a replicated revision (`new_edits=false`) of a document is already here."""
        docid = doc["_id"]
        if docid.startswith(("_local/", "_design/")):
            return False
        info = self.get_docinfo(docid)
        return info is not None and docrules.revisions_path(doc)[0] in info.tree

    def would_conflict(self, docid: str, rev: str | None) -> bool:
        """Whether an interactive edit of `docid` from `rev` is a conflict now: it must name a
        leaf of the document, or no revision when the document is missing or deleted."""
        info = self.get_docinfo(docid)
        if info is None:
            return rev is not None
        if rev is None:
            return not info.deleted
        return rev not in revtree.leaf_set(info.tree)

    async def _guard(self, docid: str, doc: dict) -> dict:
        """Who may write this document: design documents need a db admin; in `_replicator`,
        documents belong to their writer; in `_users`, the writer's own document only (unless a db
        admin), and a password is hashed before it is stored (off the event loop: PBKDF2 is
        deliberately slow)."""
        sec = self.meta.get("security") or {}
        if docid.startswith("_design/"):
            denial = security.may_write_design(validation.current_ctx(), sec)
            if denial is not None:
                raise denial.to_error()
        if self.name == replication_owners.REPLICATOR_DB:
            info = self.get_docinfo(docid)
            body = self.read_body(docid, info.rev) if info is not None and not info.deleted else None
            doc = replication_owners.stamp_owner(doc, body, validation.current_ctx(), sec)
        if self.name == security.USERS_DB:
            users.check_writer(docid, validation.current_ctx(), sec)
            if doc.get("password") is not None:
                iterations = (self.config.get_int("chttpd_auth", "iterations", 0)
                              or self.config.get_int("couch_httpd_auth", "iterations", 600000) or 600000)
                doc = await asyncio.get_running_loop().run_in_executor(None, users.hash_password, doc, iterations)
        return doc

    def _guard_access(self, docid: str, doc: dict) -> dict:
        """Per-document access (`couchpy.access`): the writer must see the document it replaces
        and stay listed in its `_access`."""
        if docid.startswith("_local/"):
            try:
                old: dict | None = self.get_local(docid)
            except NotFound:
                old = None
        else:
            info = self.get_docinfo(docid)
            old = self.read_body(docid, info.rev) if info is not None else None
        doc, denial = access.guard_write(validation.current_ctx(), self.meta.get("security") or {}, docid, doc, old)
        if denial is not None:
            raise denial.to_error()
        return doc

    def _size_known_ok(self, body_size: int | None) -> bool:
        return body_size is not None and (self.max_document_size is None or body_size <= self.max_document_size)

    async def put(self, doc: dict, new_edits: bool = True, batch: bool = False, followers=None,
                  body_size: int | None = None) -> dict:
        """Write one document; raises Conflict (409) etc. Result: {"ok", "id", "rev"}.

        `body_size`: length of the JSON the document was parsed from, when known.
        """
        doc = await self._prepare(doc, new_edits, followers, self._size_known_ok(body_size))
        if new_edits and not batch:
            # stubs are merged before the edit's revision is checked: stubs on a document that
            # is not there are a 412 missing_stub, not a conflict, as in CouchDB (a batch=ok
            # write is answered 202 before any of that)
            self.check_stubs(doc)
        (refused,) = await validation.validate(self, [doc])
        if refused is not None:
            validation.note_writes(self, [doc], [refused])
            raise refused
        self._refuse_if_fenced([doc])
        known = not new_edits and self.has_revision(doc)
        fut = self.writer.submit([doc], new_edits, new_edits and validation.checks_skipped(self, [doc]))
        if batch:
            fut.add_done_callback(_ignore_result)
            return {"ok": True, "id": doc["_id"]}
        (result,) = await fut
        if not known:  # a revision CouchDB already has is not validated (nor loads validators)
            validation.note_writes(self, [doc], [result])
        if isinstance(result, CouchError):
            raise result
        if not new_edits and result is None:
            return {"ok": True, "id": doc["_id"], "rev": docrules.revisions_path(doc)[0]}
        return result

    def _refuse_if_fenced(self, docs: list[dict]) -> None:
        """A fenced database (Node.fence) takes no document writes. Checked right before the
        writer is handed the documents, with no await in between, so that a fence set while a
        request was being prepared still stops it, and `fence` draining the writer covers every
        write that got past this."""
        reason = self.node.fence_reason(self.name)
        if reason is not None and any(not d["_id"].startswith("_local/") for d in docs):
            raise Unavailable(reason)

    def check_stubs(self, doc: dict) -> None:
        """CouchDB refuses a whole `_bulk_docs` request (412 missing_stub) when an edit's stub
        names an attachment the revision it edits does not have (couch_doc:merge_stubs runs
        before anything is written). An edit of a revision that is not there is left to its row's
        conflict."""
        stubs = _stub_names(doc)
        if not stubs:
            return
        info = self.get_docinfo(doc["_id"])
        rev = doc.get("_rev")
        if info is not None and (rev is None and not info.deleted or rev is not None and rev not in info.tree):
            return
        parent = self.read_body(doc["_id"], rev or info.rev) if info is not None else None
        _match_stubs(doc, stubs, parent)

    def check_replicated_stubs(self, doc: dict) -> None:
        """As `check_stubs`, for a replicated revision (`new_edits=false`): its stubs must name
        attachments of the nearest revision of its history this database has (couch_db merges
        the stubs with that revision's before writing anything). A revision already there is
        passed by."""
        stubs = _stub_names(doc)
        if not stubs:
            return
        path = docrules.revisions_path(doc)
        info = self.get_docinfo(doc["_id"])
        if info is not None and path[0] in info.tree:
            return
        parent = None
        for rev in path[1:] if info is not None else ():
            # the nearest revision whose body is still there (compaction drops those of inner ones)
            parent = self.read_body(doc["_id"], rev) if rev in info.tree else None
            if parent is not None:
                break
        _match_stubs(doc, stubs, parent)

    async def bulk_docs(self, docs: list, new_edits: bool = True, body_size: int | None = None) -> list[dict]:
        """CouchDB `_bulk_docs`: one result per document (only failures when new_edits=false).

        `body_size`: length of the JSON the documents were parsed from, when known.
        """
        size_ok = self._size_known_ok(body_size)
        if not new_edits:
            for doc in docs:
                if isinstance(doc, dict) and "_rev" not in doc and "_revisions" not in doc:
                    raise BadRequest(docrules.NEEDS_REV)
        prepared: list[Any] = []
        docs = [
            {"_id": uuid.uuid4().hex, **doc} if new_edits and isinstance(doc, dict) and "_id" not in doc else doc
            for doc in docs
        ]
        if self.partitioned:
            # as CouchDB: an id outside any partition refuses the whole request, not its row
            for doc in docs:
                if isinstance(doc, dict) and isinstance(doc.get("_id"), str):
                    docid = docrules.validate_docid(doc["_id"], self.max_docid_length, allow_local=True)
                    partitions.validate_docid(docid)
        for doc in docs:
            try:
                prepared.append(await self._prepare(doc, new_edits, size_known_ok=size_ok))
            except users.NotYours:
                raise
            except CouchError as exc:
                prepared.append(exc)
        ok = [i for i, d in enumerate(prepared) if not isinstance(d, CouchError)]
        for i, refused in zip(ok, await validation.validate(self, [prepared[i] for i in ok])):
            if refused is not None:
                prepared[i] = refused
        # CouchDB applies a batch in document-id order (couch_db groups its updates by id), which
        # is then the order of their sequences in _changes; a stable sort keeps repeats of one id
        # in request order
        order = sorted((i for i, d in enumerate(prepared) if not isinstance(d, CouchError)),
                       key=lambda i: prepared[i]["_id"].encode())
        batch = [prepared[i] for i in order]
        adopt = new_edits and validation.checks_skipped(self, batch)
        # replicated revisions CouchDB already has are passed by unvalidated (see note_writes)
        known = set() if new_edits else {i for i in order if self.has_revision(prepared[i])}
        self._refuse_if_fenced(batch)
        written = dict(zip(order, await self.writer.submit(batch, new_edits, adopt) if order else []))
        noted = [i for i in range(len(docs)) if i not in known]
        validation.note_writes(self, [docs[i] for i in noted], [written.get(i, prepared[i]) for i in noted])
        out: list[dict] = []
        for i, (d, doc) in enumerate(zip(prepared, docs)):
            res = d if isinstance(d, CouchError) else written[i]
            if isinstance(res, CouchError):
                docid = doc.get("_id") if isinstance(doc, dict) else None
                out.append({"id": docid, "error": res.error, "reason": res.reason})
            elif res is not None:
                out.append(res)
        return out

    # ------------------------------------------------------------------ the write transaction (couchpy.updates)

    apply_updates = updates.apply_updates

    def apply_meta(self, meta: dict) -> None:
        """Called on the event loop after a commit: publish the new state and wake the feeds."""
        self._meta = meta
        # compared with what this method published last, not with `_meta`: a reader may have
        # loaded this very metadata already while the commit was in flight (`meta`)
        if meta["update_seq"] != self._published_seq:
            self._published_seq = meta["update_seq"]
            self.node.db_updates.note_updated(self.name)
        if meta["update_seq"] != self._notified_seq:
            self._notified_seq = meta["update_seq"]
            self._waiters.wake()

    def wake_feeds(self) -> None:
        """Wake every waiting feed without a change (it then checks whether it should end)."""
        self._waiters.wake()

    @property
    def feeds_should_end(self) -> bool:
        return self.closed or self.node.closing

    def wait_for_change(self, since: int, timeout: float | None, direct: Direct | None = None) -> Awaitable[None]:
        """Wait (at most `timeout` seconds) for a commit after `since` that `direct` does not
        take (couchpy.waiters).

        A plain function returning what to await, not a coroutine of its own: an idle feed
        waits here for as long as it is open, and every suspended frame is memory it holds."""
        if self.update_seq > since:
            return _ready()
        return self._waiters.wait(timeout, direct)

    def listen(self, listener: Listener) -> None:
        """`listener.on_commit()` at every commit from now on, and when the database closes,
        until it returns False or `unlisten` (couchpy.waiters)."""
        self._waiters.listen(listener)

    def unlisten(self, listener: Listener) -> None:
        self._waiters.unlisten(listener)

    async def purge(self, requests: dict[str, list[str]]) -> dict[str, list[str]]:
        """Purge leaf revisions ({docid: [rev, ...]}, see couchpy.purge); {docid: [revs purged]}."""
        def fn(txn):
            # the handle of this environment: a compaction may have swapped it in since the call
            meta = self.meta_for_write(txn)
            return purge.apply_purge(self, txn, self.store.db(purge.SUBDB), requests, meta), meta

        async def publish(result) -> None:
            self.apply_meta(result[1])

        purged, _ = await self.writer.run_exclusive(fn, then=publish)
        return purged

    def purged_infos(self) -> list[dict]:
        with self.store.read() as txn:
            return purge.infos(txn, self.store.db(purge.SUBDB))

    @property
    def purged_infos_limit(self) -> int:
        return self.meta.get("purged_infos_limit", purge.DEFAULT_LIMIT)

    async def set_purged_infos_limit(self, limit: int) -> None:
        """A new `purged_infos_limit`, the purge infos beyond it dropped in the same transaction
        (indexes that had not read them yet recheck their documents, see views.index)."""
        def fn(txn):
            meta = self.meta_for_write(txn)
            meta["purged_infos_limit"] = limit
            purge.trim(txn, self.store.db(purge.SUBDB), meta)  # this environment's (see purge)
            txn.put(META_KEY, jsonutil.dumps(meta), db=self._meta_db)
            return meta

        async def publish(meta: dict) -> None:
            self.apply_meta(meta)

        await self.writer.run_exclusive(fn, then=publish)

    async def set_meta_field(self, key: str, value: Any) -> None:
        def fn(txn):
            meta = self.meta_for_write(txn)
            meta[key] = value
            txn.put(META_KEY, jsonutil.dumps(meta), db=self._meta_db)
            return meta

        async def publish(meta: dict) -> None:
            # before any later write starts: the next group commit must begin from this metadata,
            # or it writes back the metadata as it was before this change
            self.apply_meta(meta)

        await self.writer.run_exclusive(fn, then=publish)

    # ------------------------------------------------------------------ embedded sync

    def replicate_to(self, target: Any, continuous: bool = False, **options: Any):
        """Replicate this database to `target` (a URL, or {"url", "headers"}) in this process
        with couchpy's replicator; a handle to await (the result) or to `stop()`. Needs
        `import couchpy_sync`. `options`: the `_replicate` body's (`filter`, `doc_ids`, ...)."""
        return _sync().replicate(self, self.name, target, continuous=continuous, **options)

    def replicate_from(self, source: Any, continuous: bool = False, **options: Any):
        """Replicate `source` into this database; as `replicate_to`."""
        return _sync().replicate(self, source, self.name, continuous=continuous, **options)

    def sync(self, url: Any, continuous: bool = False, **options: Any):
        """Both directions at once, as PouchDB's `db.sync(url)`."""
        return _sync().sync(self, url, continuous=continuous, **options)

    # ------------------------------------------------------------------ maintenance

    def maybe_train(self) -> None:
        """Give a database that compresses nothing yet its body dictionary (couchpy.bodycodec)
        once it holds enough to learn from, instead of waiting for its first compaction. Called
        by the writer after each commit; cheap when there is nothing to do. With several server
        processes, whichever gets there first stores its dictionary and the others adopt it:
        when they try (from then on they compress too) or when they first read a body
        compressed with it."""
        if self._dict_tried or self.codec.dictionary is not None or self.compact_running or self.closed:
            return
        m = self.meta
        if m.get("doc_count", 0) < bodycodec.AUTO_DOCS and m.get("external_size", 0) < bodycodec.AUTO_BYTES:
            return
        if (self.config.get("couchdb", "file_compression") or "").strip().lower() == "none":
            return
        self._dict_tried = True
        # kept: the loop holds only a weak reference to a task
        self._train_task = asyncio.get_running_loop().create_task(self._train_dictionary())

    async def _train_dictionary(self) -> None:
        codec = self.codec
        try:
            stored = _stored_dictionary(self.store)
            if stored is not None:  # another server process trained one
                codec.adopt(stored)
                return
            dictionary = await asyncio.get_running_loop().run_in_executor(None, self._train_sync, codec)
            if dictionary is None or self.closed:
                return

            def put(txn: Any) -> bytes | None:
                """The dictionary to adopt once committed: this one, or the one another
                process stored first (the write transaction is the processes' one writer)."""
                # a compaction may have swapped in an environment with a dictionary of its own
                if self.codec is not codec or codec.dictionary is not None:
                    return None
                first = txn.get(bodycodec.DICT_KEY, db=self._meta_db)
                if first is not None:
                    return bytes(first)
                txn.put(bodycodec.DICT_KEY, dictionary, db=self._meta_db)
                return dictionary

            async def adopt(chosen: bytes | None) -> None:
                # after the commit, before any later write: every body written with the
                # dictionary is in a file that holds it
                if chosen is not None:
                    codec.adopt(chosen)

            await self.writer.run_exclusive(put, then=adopt)
        except Exception:  # noqa: BLE001 - bodies stay plain until compaction trains one
            log.exception("training the body dictionary of %s failed", self.name)
        finally:
            self._train_task = None  # a finished task keeps its context (a request's pins)

    def _train_sync(self, codec: bodycodec.Codec) -> bytes | None:
        samples: list[bytes] = []
        with self.store.read() as txn:
            for _k, raw in txn.cursor(db=self._bodies).iternext():
                samples.append(codec.decode(raw))
                if len(samples) >= bodycodec.SAMPLES:
                    break
        return bodycodec.train(samples)

    async def compact(self, progress=None) -> None:
        """Rewrite the environment with only what is live, online (couchpy.compactor).
        `progress(fields)` is called with the task's `changes_done`, `total_changes`, `progress`."""
        if self.compact_running:
            return
        if self.node.shared and not self.node.primary:
            # one compactor per node: the other workers forward `_compact` to worker 0
            # (http_api.workers), and only its automatic compactor runs
            raise NotImplemented_("Database compaction runs in the node's worker 0")
        self.compact_running = True
        try:
            await compactor.compact(self, progress)
        finally:
            self.compact_running = False

    async def close(self) -> None:
        await self.writer.drain()
        self.closed = True
        self.wake_feeds()  # waiting feeds wake up and see `closed`
        for fn in self._close_hooks:
            try:
                fn()
            except Exception:  # a subsystem failing to close must not keep the db open
                pass
        self.store.close()


async def _ready() -> None:
    """What `wait_for_change` gives when there is a change already: nothing to wait for."""


def _sync():
    if sync_provider is None:
        raise RuntimeError("embedded sync needs the replicator: `import couchpy_sync` first "
                           "(or open the node with couchpy_sync.open(path))")
    return sync_provider


def _stub_names(doc: dict) -> list[str]:
    """The attachments a written document gives as stubs; none for a `_local` one (it has no
    attachments to merge with) or one without a string `_id` (its own validation refuses it)."""
    atts = doc.get("_attachments")
    if not isinstance(atts, dict) or not isinstance(doc.get("_id"), str) or doc["_id"].startswith("_local/"):
        return []
    return [name for name, e in atts.items() if isinstance(e, dict) and e.get("stub") is True]


def _match_stubs(doc: dict, stubs: list[str], parent: dict | None) -> None:
    """412 missing_stub unless every stub names an attachment of `parent` (the revision the stubs
    are merged with), at its revpos when the stub gives one."""
    atts = doc["_attachments"]
    have = (parent or {}).get("_attachments") or {}
    for name in stubs:
        given = atts[name].get("revpos")
        if name not in have or given is not None and given != have[name].get("revpos"):
            raise PreconditionFailed(f"Invalid attachment stub in {doc['_id']} for {name}", error="missing_stub")


def _ignore_result(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


def _stored_dictionary(store: Any) -> bytes | None:
    """The body dictionary stored in a database's environment, if any (a read of its own)."""
    with store.read() as txn:
        value = txn.get(bodycodec.DICT_KEY, db=store.db("meta"))
    return bytes(value) if value is not None else None
