"""One Nouveau index: a Tantivy index directory kept up to date with a database, and its queries.

Layout: `<db dir>/nouveau/<signature>/` holds `tantivy/` (the Tantivy index) and `state.json`
(the database sequence and purge sequence indexed so far, and the type of each field name).

Incremental like a view: the changes since `seq` are read in batches, their documents run through
the index function in the JavaScript query server (`index(type, name, value, options)` calls come
back as rows), and each changed document id is deleted and re-added. Crash safety rests on order:
`state.json` is replaced (written, fsynced, renamed) only after the Tantivy commit holding those
changes returned, so the index on disk is always at or past `state.json`'s `seq`; replaying changes
after a crash deletes and re-adds the same documents, which is idempotent. A state that cannot be
read, or that does not match the index directory, means a rebuild from sequence 0.

Tantivy fixes a schema when an index is created, while Nouveau fields appear as documents call
`index()`. The field types seen so far are kept in `state.json`; a batch that brings a new field
name recreates the index with the larger schema and reads the database again from 0 (at most once
per new field name; before anything was written it is just a new empty index). A name indexed with
a second type keeps its first one; the values of the other type are left out (and logged).

Ordering: hits are ordered by the sort keys (relevance by default), then by the document's
sequence, a total order; a bookmark is the last hit's key and the next page starts after it
(search-after, as Nouveau's bookmarks do), so paging an unchanging index yields every hit once.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import tantivy

from .. import purge
from ..docinfo import DocInfo
from ..envswap import fsync_path
from ..errors import NotFound
from ..query_server import ViewFunctions
from ..updates import META_KEY
from . import analyzers, lucene, termrange
from .lucene import MUST, MUST_NOT, SHOULD, QueryParseError
from .params import IndexSpec, SearchArgs, SortKey, pack_bookmark

log = logging.getLogger("couchpy.fulltext")

BATCH = 500          # changes per map call
COMMIT_EVERY = 5000  # documents added between Tantivy commits during a long build (progress kept on a crash)
WRITER_HEAP = 64_000_000
MAX_COUNTS = 10000   # distinct values one `counts` facet reports at most

_OCCUR = {MUST: tantivy.Occur.Must, SHOULD: tantivy.Occur.Should, MUST_NOT: tantivy.Occur.MustNot}

# The index function as a map function: `__nouveau` (couchpy/query_server/js_engine.py) enables
# `index()` while the user's function runs and turns its calls into emitted rows.


def wrap_source(src: str) -> str:
    return "__nouveau(" + src.rstrip().rstrip(";").rstrip() + "\n)"


class FullTextIndex:
    def __init__(self, db: Any, spec: IndexSpec, pool: Any):
        self.db = db
        self.spec = spec
        self.pool = pool
        self.fns = ViewFunctions("javascript", (wrap_source(spec.index),), (), (spec.name,))
        self.directory: Path = db.directory / "nouveau" / spec.sig
        self.closed = False
        self._lock = threading.Lock()       # one updater at a time
        self._read_lock = threading.Lock()  # the searcher and schema a query uses
        self._build: Any = None
        self._conflicts_logged: set[str] = set()
        self.seq = 0
        self.purge_seq = 0
        self.fields: dict[str, str] = {}
        self._open()

    # ------------------------------------------------------------ storage

    @property
    def _state_path(self) -> Path:
        return self.directory / "state.json"

    def _read_state(self) -> dict | None:
        try:
            st = orjson.loads(self._state_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(st, dict) or not isinstance(st.get("seq"), int) or not isinstance(st.get("fields"), dict):
            return None
        return st

    def _write_state(self, seq: int | None = None) -> None:
        tmp = self.directory / "state.json.tmp"
        seq = self.seq if seq is None else seq
        data = orjson.dumps({"seq": seq, "purge_seq": self.purge_seq, "fields": self.fields,
                             "sig": self.spec.sig})
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._state_path)
        fsync_path(self.directory)

    def _schema(self) -> tantivy.Schema:
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("_id", stored=True, tokenizer_name="raw")
        sb.add_unsigned_field("_seq", stored=False, indexed=False, fast=True)
        sb.add_bytes_field("_stored", stored=True, indexed=False)
        for name, typ in sorted(self.fields.items()):
            if typ == "text":
                an = self.spec.analyzer_of(name)
                sb.add_text_field(name, tokenizer_name=analyzers.tokenizer_name(an))
            elif typ == "string":
                sb.add_text_field(name, tokenizer_name="raw", fast=True)
            elif typ == "double":
                sb.add_float_field(name, indexed=True, fast=True)
        return sb.build()

    def _open_tantivy(self, create: bool) -> None:
        path = self.directory / "tantivy"
        if create:
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        schema = self._schema()
        index = tantivy.Index(schema, str(path), reuse=not create)
        for an in {self.spec.default_analyzer, *(a for _, a in self.spec.field_analyzers)}:
            index.register_tokenizer(analyzers.tokenizer_name(an), analyzers.build(an))
        self.schema = schema
        self.index = index
        self.writer: Any = None
        index.reload()
        self.searcher = index.searcher()

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        st = self._read_state()
        # a state with no index beside it (removed, never committed) is no state: rebuild
        tdir = self.directory / "tantivy"
        if st is not None and st.get("sig") == self.spec.sig and tdir.is_dir() and tantivy.Index.exists(str(tdir)):
            self.seq, self.purge_seq, self.fields = st["seq"], st.get("purge_seq", 0), dict(st["fields"])
            try:
                self._open_tantivy(create=False)
                return
            except Exception as exc:  # a schema that no longer matches, a damaged directory
                log.warning("nouveau index %s: rebuilding (%s)", self.directory, exc)
        self.seq, self.purge_seq, self.fields = 0, 0, {}
        self._open_tantivy(create=True)
        self._write_state()

    def _reset(self, fields: dict[str, str]) -> None:
        """A new, empty index with `fields` in its schema, to be filled from sequence 0."""
        if self.writer is not None:
            try:
                self.writer.rollback()
            except Exception:
                pass
            self.writer = None
        self.seq, self.purge_seq, self.fields = 0, 0, dict(fields)
        # the state goes first: a crash between the two steps leaves seq 0 over whatever is there
        self._write_state()
        with self._read_lock:
            self._open_tantivy(create=True)

    def _writer(self) -> Any:
        if self.writer is None:
            self.writer = self.index.writer(WRITER_HEAP, 1)
        return self.writer

    def _commit(self, seq: int) -> None:
        if self.writer is not None:
            self.writer.commit()
        # `seq` (what _nouveau_info reports) moves only once the state saying so is durable
        self._write_state(seq)
        self.seq = seq
        with self._read_lock:
            self.index.reload()
            self.searcher = self.index.searcher()

    # ------------------------------------------------------------ updating

    def current(self) -> bool:
        return self.seq >= self.db.update_seq

    def update_sync(self) -> int:
        with self._lock:
            if self.closed:
                raise NotFound("missing")
            try:
                while not self._update_locked():
                    pass  # a new field name restarted the build with a larger schema
            except BaseException:
                if self.writer is not None:
                    try:
                        self.writer.rollback()
                    except Exception:
                        pass
                raise
            finally:
                # the writer holds the directory's lock: held between updates, an index object
                # that outlived its database's close (a build running then) would keep the next
                # one for the same directory from writing
                self.writer = None
            return self.seq

    def _update_locked(self) -> bool:
        """One pass to the database's current sequence; False when it must start over."""
        db = self.db
        target = db.update_seq
        if self.seq >= target:
            return True
        if not self._catch_up_purges():
            return False
        it = db.changes_since(self.seq)
        written = 0
        last = self.seq
        while True:
            infos = list(islice(it, BATCH))
            if not infos:
                break
            rows = self._map(infos)
            new = self._new_fields(rows)
            if new:
                fields = {**self.fields, **new}
                fresh = self.seq == 0 and written == 0 and self.index.searcher().num_docs == 0
                self._reset(fields)
                if not fresh:
                    return False
            w = self._writer()
            for info in infos:
                w.delete_documents_by_term("_id", info.id)
                doc = self._document(info, rows.get(info.id))
                if doc is not None:
                    w.add_document(doc)
                    written += 1
            last = max(last, max(i.seq for i in infos))
            if written >= COMMIT_EVERY:
                self._commit(last)
                written = 0
        # a purge moves update_seq on without a change of its own: every change up to `target`
        # has been read
        self._commit(max(last, target))
        return True

    def _catch_up_purges(self) -> bool:
        """Remove documents purged since the index last looked. False when purge infos it has not
        read were already dropped: which documents they named is unknown, so it starts over."""
        db = self.db
        with db.store.read() as txn:
            purged = list(purge.purged_since(txn, db.store.db(purge.SUBDB), self.purge_seq))
            raw = txn.get(META_KEY, db=db._meta_db)
        total = orjson.loads(raw).get("purge_seq", 0) if raw else 0
        if total <= self.purge_seq:
            return True
        if self.seq > 0 and (not purged or purged[0][0] > self.purge_seq + 1):
            self._reset(self.fields)
            self.purge_seq = total
            self._write_state()
            return False
        w = self._writer()
        for _, docid in purged:
            if db.get_docinfo(docid) is None:
                w.delete_documents_by_term("_id", docid)
        self.purge_seq = total
        self._commit(self.seq)
        return True

    def _map(self, infos: list[DocInfo]) -> dict[str, list]:
        """docid -> the index() calls of its document ([type, name, value, store, facet]);
        documents whose function threw, deleted ones and design documents have none."""
        to_map = [i for i in infos if not i.deleted and not i.id.startswith("_design/")]
        if not to_map:
            return {}
        docs = self.db.load_docs(to_map)
        pairs = [(i, d) for i, d in zip(to_map, docs) if d is not None]
        if not pairs:
            return {}
        mapped = self.pool.map_docs(self.fns, [d for _, d in pairs])
        out: dict[str, list] = {}
        for (info, _), per_fun in zip(pairs, mapped):
            if per_fun and per_fun[0]:
                out[info.id] = [k for k, _v in per_fun[0]]
        return out

    def _new_fields(self, rows: dict[str, list]) -> dict[str, str]:
        new: dict[str, str] = {}
        for calls in rows.values():
            for typ, name, *_ in calls:
                if typ != "stored" and name not in self.fields and name not in new:
                    new[name] = typ
        return new

    def _document(self, info: DocInfo, calls: list | None) -> tantivy.Document | None:
        if not calls:
            return None
        doc = tantivy.Document()
        doc.add_text("_id", info.id)
        doc.add_unsigned("_seq", info.seq)
        stored: dict[str, Any] = {}
        for typ, name, value, store, _facet in calls:
            if typ == "stored":
                _store(stored, name, value)
                continue
            if self.fields.get(name) != typ:
                if name not in self._conflicts_logged:
                    self._conflicts_logged.add(name)
                    log.info("nouveau index %s: field %r is %s, a %s value is left out",
                             self.spec.name, name, self.fields.get(name), typ)
                continue
            if typ == "double":
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                doc.add_float(name, float(value))
            else:
                doc.add_text(name, value)
            if store:
                _store(stored, name, value)
        doc.add_bytes("_stored", orjson.dumps(stored))
        return doc

    # ------------------------------------------------------------ queries

    def search(self, args: SearchArgs) -> dict:
        """One page of hits (docs not included) with counts and ranges; blocking."""
        tree = lucene.parse(args.q)
        with self._read_lock:
            searcher, schema, fields = self.searcher, self.schema, dict(self.fields)
        query = _Builder(self, schema, fields).build(tree)
        if args.partition is not None:
            # as Nouveau: the query AND the partition; the filter adds nothing to the scores
            only = tantivy.Query.const_score_query(self._partition_filter(schema, args.partition), 0.0)
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, only)])
        sort = args.sort or [SortKey(None, True)]
        for k in sort:
            if k.field is not None and k.type is not None and fields.get(k.field, k.type) != k.type:
                raise QueryParseError(f"{k.field} is not a {k.type} field")
        total = searcher.search(query, 1, count=True).count
        page: list = []
        addrs: list = []
        if total:
            quick = self._top_page(searcher, query, tree, sort, args, total)
            if quick is not None:
                page, addrs = quick
            else:
                hits = searcher.search(query, total, count=False).hits
                addrs = [a for _, a in hits]
                seqs = searcher.fast_field_values("_seq", addrs)
                columns = [self._column(searcher, query, k, fields, hits, addrs, total) for k in sort]
                keys = [(tuple(col[i] for col in columns), seqs[i], i) for i in range(len(hits))]
                keys = _sorted(keys, sort)
                start = 0
                if args.bookmark is not None:
                    after = _bookmark_key(args.bookmark, sort, fields)
                    start = len(keys)
                    for n, k in enumerate(keys):
                        if _compare(k, after, sort) > 0:
                            start = n
                            break
                page = keys[start:start + args.limit]
        out_hits = []
        for vals, _seq, i in page:
            stored = searcher.doc(addrs[i]).to_dict()
            docid = stored["_id"][0]
            raw = stored.get("_stored")
            order = [_order_value(k, v, fields) for k, v in zip(sort, vals)]
            order.append({"@type": "string", "value": docid})
            out_hits.append({"order": order, "id": docid,
                             "fields": orjson.loads(raw[0]) if raw else {}})
        if page:
            vals, seq, _ = page[-1]
            bookmark = pack_bookmark([list(vals), seq])
        else:
            bookmark = pack_bookmark(args.bookmark) if args.bookmark is not None else pack_bookmark([[], 0])
        res: dict = {"total_hits_relation": "EQUAL_TO", "total_hits": total, "hits": out_hits,
                     "bookmark": bookmark}
        res["counts"] = self._counts(searcher, query, args.counts, fields) if args.counts is not None else None
        res["ranges"] = self._ranges(searcher, query, args.ranges, schema, fields) if args.ranges is not None else None
        return res

    def _partition_filter(self, schema: Any, partition: str) -> Any:
        """The documents of one partition: their ids begin with `partition:`. Nouveau indexes a
        document's partition only in a partitioned database, so elsewhere none has one."""
        if not self.db.partitioned:
            return tantivy.Query.empty_query()
        return tantivy.Query.regex_query(schema, "_id", termrange.literal(partition + ":") + termrange.ANY)

    def _top_page(self, searcher: Any, query: Any, tree: Any, sort: list[SortKey], args: SearchArgs,
                  total: int) -> tuple[list, list] | None:
        """The page without ordering every hit, where that gives the same page: relevance order
        with no bookmark when the (limit+1)th hit scores strictly less than the limit-th (the
        first `limit` are then exactly the hits scoring at least that much), and `*:*` (every
        score 1.0: sequence order, a bookmark as a sequence range). None otherwise."""
        if len(sort) != 1 or sort[0].field is not None or not sort[0].descending:
            return None
        if isinstance(tree, lucene.MatchAll) and tree.boost == 1.0:
            q = query
            if args.bookmark is not None:
                after = _bookmark_key(args.bookmark, sort, self.fields)
                if after[1] >= 0:
                    rng = tantivy.Query.range_query(self.schema, "_seq", tantivy.FieldType.Unsigned,
                                                    after[1], None, False, True)
                    q = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, rng)])
            hits = searcher.search(q, min(args.limit, total), count=False, order_by_field="_seq",
                                   order=tantivy.Order.Asc).hits
            addrs = [a for _, a in hits]
            return [((1.0,), seq, i) for i, (seq, _) in enumerate(hits)], addrs
        if args.bookmark is not None:
            return None
        hits = searcher.search(query, min(args.limit, total) + 1, count=False).hits
        if len(hits) > args.limit and not hits[args.limit][0] < hits[args.limit - 1][0]:
            return None  # ties across the page boundary: which of them come first needs them all
        hits = hits[:args.limit]
        addrs = [a for _, a in hits]
        seqs = searcher.fast_field_values("_seq", addrs)
        keys = _sorted([((score,), seqs[i], i) for i, (score, _) in enumerate(hits)], sort)
        return keys, addrs

    def _column(self, searcher: Any, query: Any, key: SortKey, fields: dict, hits: list,
                addrs: list, total: int) -> list:
        if key.field is None:
            return [score for score, _ in hits]
        typ = fields.get(key.field)
        if typ == "double":
            return searcher.fast_field_values(key.field, addrs)
        if typ == "string":
            # Tantivy orders by a text fast field and hands back each hit's value
            ordered = searcher.search(query, total, count=False, order_by_field=key.field).hits
            by_addr = {(a.segment_ord, a.doc): v for v, a in ordered}
            return [by_addr.get((a.segment_ord, a.doc)) for a in addrs]
        return [None] * len(addrs)

    def _counts(self, searcher: Any, query: Any, names: list[str], fields: dict) -> dict:
        out: dict = {}
        for name in names:
            if fields.get(name) != "string":
                out[name] = {}
                continue
            agg = searcher.aggregate(query, {"c": {"terms": {"field": name, "size": MAX_COUNTS}}})
            out[name] = {b["key"]: b["doc_count"] for b in agg["c"]["buckets"]}
        return out

    def _ranges(self, searcher: Any, query: Any, ranges: dict, schema: Any, fields: dict) -> dict:
        out: dict = {}
        for name, items in ranges.items():
            out[name] = {}
            for r in items:
                if fields.get(name) != "double":
                    out[name][r["label"]] = 0
                    continue
                lo, hi = r["min"], r["max"]
                lo_incl = r["min_inclusive"] if lo is not None else True
                hi_incl = r["max_inclusive"] if hi is not None else True
                rq = (tantivy.Query.exists_query(name) if lo is None and hi is None else
                      tantivy.Query.range_query(schema, name, tantivy.FieldType.Float,
                                                None if lo is None else float(lo),
                                                None if hi is None else float(hi), lo_incl, hi_incl))
                both = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, rq)])
                out[name][r["label"]] = searcher.search(both, 1, count=True).count
        return out

    def info(self) -> dict:
        size = 0
        for root, _dirs, files in os.walk(self.directory):
            for f in files:
                try:
                    size += os.path.getsize(os.path.join(root, f))
                except OSError:
                    pass
        with self._read_lock:
            num = self.searcher.num_docs
        return {"update_seq": self.seq, "purge_seq": self.purge_seq, "num_docs": num,
                "disk_size": size, "signature": self.spec.sig}

    def close(self) -> None:
        self.closed = True
        if self._lock.acquire(blocking=False):
            try:
                if self.writer is not None:
                    try:
                        self.writer.rollback()
                    except Exception:
                        pass
                    self.writer = None
            finally:
                self._lock.release()


def _store(stored: dict, name: str, value: Any) -> None:
    """A stored field: one value, or a list when a document stores the name more than once."""
    if name in stored:
        prev = stored[name]
        stored[name] = prev + [value] if isinstance(prev, list) else [prev, value]
    else:
        stored[name] = value


def _order_value(key: SortKey, v: Any, fields: dict) -> dict:
    if key.field is None:
        return {"@type": "float", "value": v}
    return {"@type": "double" if fields.get(key.field) == "double" else "string", "value": v}


def _cmp_values(a: Any, b: Any) -> int:
    # a missing value sorts after every present one, whichever the direction
    if a is None or b is None:
        return 0 if a is b else (1 if a is None else -1)
    return (a > b) - (a < b)


def _compare(a: tuple, b: tuple, sort: list[SortKey]) -> int:
    """Order of two (values, seq, ...) keys under `sort`, ties broken by sequence."""
    for k, x, y in zip(sort, a[0], b[0]):
        c = _cmp_values(x, y)
        if c and x is not None and y is not None and k.descending:
            c = -c
        if c:
            return c
    return (a[1] > b[1]) - (a[1] < b[1])


def _sorted(keys: list[tuple], sort: list[SortKey]) -> list[tuple]:
    """`keys` in `_compare`'s order, by stable sorts from the last criterion to the first (native
    key sorts: a Python comparator costs ~10x on tens of thousands of hits)."""
    keys = sorted(keys, key=lambda k: k[1])
    for j in range(len(sort) - 1, -1, -1):
        present = [k for k in keys if k[0][j] is not None]
        missing = [k for k in keys if k[0][j] is None]
        present.sort(key=lambda k: k[0][j], reverse=sort[j].descending)  # stable when reversed too
        keys = present + missing
    return keys


def _bookmark_key(raw: list, sort: list[SortKey], fields: dict[str, str]) -> tuple:
    """The (values, seq) a bookmark holds, checked against the sort it must have come from (a
    forged one is a 400, never a comparison of a number with a string)."""
    if (len(raw) != 2 or not isinstance(raw[0], list) or not isinstance(raw[1], int)
            or isinstance(raw[1], bool) or not -1 <= raw[1] < 2 ** 63):
        raise QueryParseError("Invalid bookmark")
    if not raw[0]:
        return (tuple([None] * len(sort)), -1)
    if len(raw[0]) != len(sort):
        raise QueryParseError("bookmark does not match the sort order")
    for k, v in zip(sort, raw[0]):
        numeric = k.field is None or fields.get(k.field) != "string"
        ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) if numeric else isinstance(v, str))
        if not ok:
            raise QueryParseError("bookmark does not match the sort order")
    return (tuple(raw[0]), raw[1])


class _Builder:
    """Tantivy queries from a Lucene tree, by the types of this index's fields."""

    def __init__(self, ix: FullTextIndex, schema: Any, fields: dict[str, str]):
        self.ix = ix
        self.schema = schema
        self.fields = fields

    def build(self, node: Any) -> Any:
        q = self._build(node)
        boost = getattr(node, "boost", 1.0)
        return q if boost == 1.0 else tantivy.Query.boost_query(q, boost)

    def _empty(self) -> Any:
        return tantivy.Query.empty_query()

    def _field(self, name: str | None) -> tuple[str, str | None]:
        name = "default" if name is None else name
        return name, self.fields.get(name)

    def _build(self, node: Any) -> Any:
        if isinstance(node, lucene.MatchAll):
            return tantivy.Query.all_query()
        if isinstance(node, lucene.Bool):
            subs = [(_OCCUR[o], self.build(n)) for o, n in node.clauses]
            if all(o == MUST_NOT for o, _ in node.clauses):
                return self._empty()  # Lucene: a purely negative query matches nothing
            return tantivy.Query.boolean_query(subs)
        name, typ = self._field(node.field)
        if typ is None:
            return self._empty()  # a field no document has: no match (Lucene answers the same)
        if isinstance(node, lucene.Range):
            return self._range(name, typ, node)
        if isinstance(node, lucene.Phrase):
            return self._phrase(name, typ, node)
        return self._term(name, typ, node)

    def _tokens(self, name: str, text: str) -> list[str]:
        return analyzers.build(self.ix.spec.analyzer_of(name)).analyze(text)

    def _term(self, name: str, typ: str, node: lucene.Term) -> Any:
        if typ == "double":
            if node.kind != "term":
                raise QueryParseError(f"{name} is a double field: no wildcard or fuzzy terms on it")
            v = _number(node.text)
            return tantivy.Query.range_query(self.schema, name, tantivy.FieldType.Float, v, v)
        text = node.text
        if typ == "text" and node.kind != "term" and analyzers.lowercases(self.ix.spec.analyzer_of(name)):
            text = text.lower()
        if node.kind == "prefix":
            return tantivy.Query.regex_query(self.schema, name, lucene.wildcard_regex(text + "\0*"))
        if node.kind == "wildcard":
            return tantivy.Query.regex_query(self.schema, name, lucene.wildcard_regex(text))
        if node.kind == "fuzzy":
            return tantivy.Query.fuzzy_term_query(self.schema, name, text, node.fuzz, True, False)
        if typ == "string":
            return tantivy.Query.term_query(self.schema, name, text)
        tokens = self._tokens(name, text)
        if not tokens:
            return self._empty()
        if len(tokens) == 1:
            return tantivy.Query.term_query(self.schema, name, tokens[0])
        # Lucene's classic parser: a term the analyzer splits is a disjunction of its parts
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, name, t))
                                            for t in tokens])

    def _phrase(self, name: str, typ: str, node: lucene.Phrase) -> Any:
        if typ == "string":
            return tantivy.Query.term_query(self.schema, name, node.text)
        if typ == "double":
            v = _number(node.text)
            return tantivy.Query.range_query(self.schema, name, tantivy.FieldType.Float, v, v)
        tokens = self._tokens(name, node.text)
        if not tokens:
            return self._empty()
        if len(tokens) == 1:
            return tantivy.Query.term_query(self.schema, name, tokens[0])
        return tantivy.Query.phrase_query(self.schema, name, tokens, node.slop)

    def _range(self, name: str, typ: str, node: lucene.Range) -> Any:
        if typ == "double":
            lo = _number(node.lo, allow_inf=True) if node.lo is not None else None
            hi = _number(node.hi, allow_inf=True) if node.hi is not None else None
            lo = None if lo == float("-inf") else lo
            hi = None if hi == float("inf") else hi
            if lo is None and hi is None:
                return tantivy.Query.exists_query(name)
            return tantivy.Query.range_query(self.schema, name, tantivy.FieldType.Float, lo, hi,
                                             node.lo_incl or lo is None, node.hi_incl or hi is None)
        # string and text ranges compare terms (couchpy.fulltext.termrange); a text field's
        # bounds are lowercased where its analyzer lowercases, as its terms are
        lo, hi = node.lo, node.hi
        if typ == "text" and analyzers.lowercases(self.ix.spec.analyzer_of(name)):
            lo, hi = (None if lo is None else lo.lower()), (None if hi is None else hi.lower())
        regexes = [] if lo is None else [termrange.at_least(lo, node.lo_incl)]
        if hi is not None:
            upper = termrange.at_most(hi, node.hi_incl)
            if upper is None:
                return self._empty()
            regexes.append(upper)
        queries = [tantivy.Query.regex_query(self.schema, name, r) for r in regexes or [termrange.ANY]]
        if len(queries) == 1:
            return queries[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in queries])


def _number(text: str, allow_inf: bool = False) -> float:
    t = text.strip()
    if allow_inf and t in ("Infinity", "+Infinity", "-Infinity"):
        return float("-inf") if t.startswith("-") else float("inf")
    try:
        v = float(t)
    except ValueError:
        raise QueryParseError(f"{text!r} is not a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise QueryParseError(f"{text!r} is not a number")
    return v

