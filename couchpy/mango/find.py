"""`_find` and `_explain`: choose an index for a selector, read the index range, filter, project.

Planning follows CouchDB's mango_cursor_view in spirit:
- a JSON index is *usable* when the selector guarantees every indexed field exists (documents
  missing a field are not in the index) and, if the query sorts, the sort fields are the index's
  leading fields (after fields the selector pins with `$eq`), in one direction; partial indexes are
  used only when named in `use_index`;
- among usable indexes the one whose leading columns the selector constrains most wins (`$eq`
  columns, then one range column), then the narrower index, then the name;
- with no usable JSON index the query scans `_all_docs` (with `_id` bounds when the selector has
  them) and says so in `warning`; a sort nothing can serve is 400 `no_usable_index`.
The chosen range is only a superset: every candidate document is checked against the full selector.
"""

from __future__ import annotations

import asyncio
import base64
import marshal
import time
from collections.abc import Callable
from typing import Any

import orjson

from .. import collate, erlterm, jsonutil, longkeys, partitions
from ..docinfo import body_key, splice_doc
from ..errors import NotFound
from ..longkeys import LMDB_MAX
from ..views import manager
from ..views.query import TooBig, _iter_rows, _values_asc
from ..views.rows import row_of
from .indexes import ALL_DOCS, IndexDef, list_indexes, sort_list
from .selector import MangoError, _MISSING, compile_normalized, get_field, has_required_fields, normalize, parse_field

HIGH = b"\xff"
# Index rows (or documents) a query may examine on the event loop before it moves to a thread.
LOOP_KEYS = 500  # an exact plan: ~2 us a row when the index is current
LOOP_DOCS = 200  # otherwise each document is parsed and matched
NO_INDEX_WARNING = "No matching index found, create an index to optimize query time."


def _non_neg(name: str, v: Any, default: int) -> int:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise MangoError(f"{erlterm.w(v)} is not an integer greater than or equal to zero",
                         "invalid_non_neg_integer")
    return v


def parse_sort(sort: Any) -> list[tuple[str, str]]:
    if sort is None:
        return []
    return sort_list(sort)


def _top_conditions(norm: dict) -> dict[str, dict]:
    """field -> {op: arg} for operators reachable through top-level $and only."""
    out: dict[str, dict] = {}
    stack = [norm]
    while stack:
        node = stack.pop()
        if not node:
            continue
        ((k, v),) = node.items()
        if k == "$and":
            stack.extend(v)
        elif not k.startswith("$") and isinstance(v, dict) and len(v) == 1:
            ((op, arg),) = v.items()
            if op in ("$eq", "$gt", "$gte", "$lt", "$lte"):
                out.setdefault(k, {}).setdefault(op, arg)
    return out


def _score(idx: IndexDef, conds: dict) -> int:
    n = 0
    for f, _d in idx.fields:
        c = conds.get(f)
        if not c:
            break
        n += 1
        if "$eq" not in c:
            break
    return n


def _sort_ok(idx: IndexDef, sort: list[tuple[str, str]], norm: dict, conds: dict) -> bool:
    if not sort:
        return True
    cols = [f for f, _ in idx.fields]
    sfields = [f for f, _ in sort]
    # leading columns pinned by $eq may be skipped, as CouchDB does
    i = 0
    while cols[i:i + len(sfields)] != sfields and i < len(cols) and "$eq" in conds.get(cols[i], {}):
        i += 1
    return cols[i:i + len(sfields)] == sfields


class Plan:
    def __init__(self, index: IndexDef, lo: Any, hi: Any, descending: bool, warning: str | None,
                 exact: bool = False, scope: bytes = b"", nothing: bool = False):
        self.index, self.lo, self.hi, self.descending, self.warning = index, lo, hi, descending, warning
        self.scope = scope  # the row prefix of the partition a partitioned index is read in
        self.exact = exact  # the index range holds exactly the matching documents
        self.nothing = nothing  # the range holds no key at all (`_all_docs` and a non-string bound)


def _exact(norm: dict, idx: IndexDef) -> bool:
    """True when the selector is only $eq on leading index columns plus at most one lower and one
    upper bound on the next column: then the key range is the answer and no re-check is needed."""
    nodes = norm["$and"] if list(norm) == ["$and"] else [norm]
    per: dict[str, dict] = {}
    for node in nodes:
        if len(node) != 1:
            return False
        ((f, cond),) = node.items()
        if f.startswith("$") or f == "_id" or not isinstance(cond, dict) or len(cond) != 1:
            return False
        ((op, _arg),) = cond.items()
        if op not in ("$eq", "$gt", "$gte", "$lt", "$lte"):
            return False
        ops = per.setdefault(f, {})
        if op in ops or ("$eq" in ops) or (op == "$eq" and ops):
            return False
        if (op in ("$gt", "$gte") and ({"$gt", "$gte"} & set(ops))) or (
                op in ("$lt", "$lte") and ({"$lt", "$lte"} & set(ops))):
            return False
        ops[op] = _arg
    cols = [f for f, _ in idx.fields]
    k = 0
    while k < len(cols) and cols[k] in per:
        k += 1
    if k != len(per) or k == 0:
        return False
    # every pinned column but the last must be an equality
    return all("$eq" in per[c] for c in cols[: k - 1])


def plan(db: Any, norm: dict, sort: list, use_index: Any, partition: str | None = None) -> Plan:
    """`partition`: a query of one partition (in a partitioned database), which partitioned
    indexes serve; a global query is served by global indexes only."""
    conds = _top_conditions(norm)
    if partition is not None and not db.partitioned:
        raise MangoError("partition specified on non-partitioned db", "bad_request")
    indexes = [i for i in list_indexes(db) if i.type != "json" or i.partitioned == (partition is not None)]
    wanted = None
    if use_index is not None:
        if isinstance(use_index, str):
            wanted = (use_index if use_index.startswith("_design/") else "_design/" + use_index, None)
        elif isinstance(use_index, list) and 1 <= len(use_index) <= 2 and all(isinstance(x, str) for x in use_index):
            d = use_index[0] if use_index[0].startswith("_design/") else "_design/" + use_index[0]
            wanted = (d, use_index[1] if len(use_index) == 2 else None)
        elif use_index != []:
            raise MangoError(f"Invalid index name: {erlterm.w(use_index)}", "invalid_index_name")
    usable = []
    for idx in indexes:
        if idx.type != "json":
            continue
        named = wanted is not None and idx.ddoc == wanted[0] and (wanted[1] is None or wanted[1] == idx.name)
        if idx.partial and not named:
            continue
        # as CouchDB: the sort's fields and _id/_rev need not be required by the selector
        sorted_on = {f for f, _ in sort}
        required = [f for f, _ in idx.fields if f not in sorted_on and f not in ("_id", "_rev")]
        if not has_required_fields(norm, required):
            continue
        if not _sort_ok(idx, sort, norm, conds):
            continue
        usable.append((idx, named))
    warning = None
    chosen = None
    if wanted is not None:
        for idx, named in usable:
            if named:
                chosen = idx
                break
        if chosen is None:
            # CouchDB's two wordings: a design document names no valid index; a named index is none
            if wanted[1] is None:
                warning = f"{wanted[0]} was not used because it does not contain a valid index for this query."
            else:
                warning = f"{wanted[0]}, {wanted[1]} was not used because it is not a valid index for this query."
    if chosen is None and usable:
        chosen = sorted(usable, key=lambda t: (-_score(t[0], conds), len(t[0].fields), t[0].ddoc or "", t[0].name))[0][0]
    desc = bool(sort) and sort[0][1] == "desc"
    if chosen is None:
        # mango_idx_special: _all_docs serves a sort (on _id alone) only when the selector has an
        # indexable condition on _id
        if sort and ([f for f, _ in sort] != ["_id"] or not has_required_fields(norm, ["_id"])):
            raise MangoError("No index exists for this sort, try indexing by the sort fields.", "no_usable_index")
        lo, hi = _id_range(conds.get("_id", {}))
        if partition is not None:
            lo, hi = _partition_ids(partition, lo, hi)
        w = NO_INDEX_WARNING if warning is None else warning + "\n" + NO_INDEX_WARNING
        return Plan(ALL_DOCS, lo, hi, desc, w, nothing=_id_range_is_empty(conds.get("_id", {})))
    scope = partitions.row_prefix(partition) if partition is not None else b""
    lo, hi = _json_range(chosen, conds, scope)
    return Plan(chosen, lo, hi, desc, warning, exact=not chosen.partial and _exact(norm, chosen), scope=scope)


def _design_doc_matches(db: Any, docid: str, matcher: Any) -> bool:
    (doc,) = _load(db, [docid], False)
    return doc is not None and matcher(doc)


def _id_range_is_empty(c: dict) -> bool:
    """Whether an `_id` condition's bounds leave `_all_docs` nothing to read. Every id is a
    string, and a selector compares `_id` raw, in Erlang's term order, where every other JSON
    value (null, booleans, numbers, objects, arrays) sorts before every string: an upper bound
    or an equality that is no string holds no id. CouchDB reads that empty range and examines
    no key."""
    if "$eq" in c and not isinstance(c["$eq"], str):
        return True
    return any(op in c and not isinstance(c[op], str) for op in ("$lt", "$lte"))


def _partition_ids(partition: str, lo: Any, hi: Any) -> tuple[Any, Any]:
    """An `_all_docs` scan's (id, inclusive) bounds narrowed to one partition's ids."""
    plo, phi = partitions.id_range(partition)
    if lo is None or lo[0] < plo:
        lo = (plo, True)
    if hi is None or hi[0] >= phi:
        hi = (phi, False)
    return lo, hi


def _id_range(c: dict) -> tuple[Any, Any]:
    lo = hi = None  # (id, inclusive)
    if isinstance(c.get("$eq"), str):
        return (c["$eq"], True), (c["$eq"], True)
    for op in ("$gt", "$gte"):
        if isinstance(c.get(op), str):
            lo = (c[op], op == "$gte")
    for op in ("$lt", "$lte"):
        if isinstance(c.get(op), str):
            hi = (c[op], op == "$lte")
    return lo, hi


def _json_range(idx: IndexDef, conds: dict, scope: bytes = b"") -> tuple[bytes, bytes]:
    """The index range the conditions select; `scope`: a partition's row prefix."""
    enc = collate.encode
    p = scope + collate.T_ARR
    for f, _d in idx.fields:
        c = conds.get(f, {})
        if f == "_id":  # selectors compare _id raw, the index by ICU: no range on it
            break
        if "$eq" in c:
            p += enc(c["$eq"])
            continue
        lo, hi = p, p + HIGH
        if "$gt" in c:
            lo = p + enc(c["$gt"]) + HIGH
        elif "$gte" in c:
            lo = p + enc(c["$gte"])
        if "$lt" in c:
            hi = p + enc(c["$lt"])
        elif "$lte" in c:
            hi = p + enc(c["$lte"]) + HIGH
        return lo, hi
    return p, p + HIGH


def _json_keys(idx: IndexDef, conds: dict) -> dict:
    """The index range as CouchDB's _explain shows it (JSON keys, "<MAX>" for an open end)."""
    start: list = []
    end: list = []
    for f, _d in idx.fields:
        c = conds.get(f, {})
        if f == "_id":
            break
        if "$eq" in c:
            start.append(c["$eq"])
            end.append(c["$eq"])
            continue
        lo = c.get("$gt", c.get("$gte"))
        hi = c.get("$lt", c.get("$lte"))
        if "$gt" in c or "$gte" in c:
            start.append(lo)
        end.append(hi if ("$lt" in c or "$lte" in c) else "<MAX>")
        break
    else:
        end.append("<MAX>")
    return {"start_key": start, "end_key": end}


def _project(doc: dict, fields: list[str] | None) -> dict:
    if not fields:
        return doc
    out: dict = {}
    for f in fields:
        path = parse_field(f)
        v = get_field(doc, path)
        if v is _MISSING:
            continue
        cur = out
        for part in path[:-1]:
            nxt = cur.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                cur[part] = nxt
            cur = nxt
        cur[path[-1]] = v
    return out


def _encode_bookmark(obj: Any) -> str:
    return base64.urlsafe_b64encode(jsonutil.dumps(obj)).decode().rstrip("=")


def _decode_bookmark(bm: Any) -> Any:
    if bm is None or bm == "nil":
        return None
    try:
        s = bm + "=" * (-len(bm) % 4)
        return jsonutil.loads(base64.urlsafe_b64decode(s.encode()))
    except Exception:
        raise MangoError(f"Invalid bookmark value: {jsonutil.dumps(bm).decode()}", "invalid_bookmark") from None


# the members of a `_find` body, in the order CouchDB checks them (mango_opts:validate_find);
# a member it does not know is reported only once all of these passed
FIND_KEYS = ("selector", "use_index", "bookmark", "limit", "skip", "sort", "fields", "partition", "r",
             "conflicts", "stale", "update", "stable", "execution_stats", "allow_fallback")


def _use_index(value: Any) -> list[str] | None:
    """`use_index` as CouchDB reads it: a name `D`, `_design/D`, `D/V` or `_design/D/V`, or a
    list of one or two names; [design document id, index name]."""
    if value is None or value == []:
        return None
    if isinstance(value, str):
        parts = value.split("/")
        if parts[0] == "_design" and len(parts) in (2, 3):
            parts = parts[1:]
        if len(parts) in (1, 2):
            return parts
    elif isinstance(value, list) and len(value) in (1, 2) and all(isinstance(x, str) for x in value):
        return value
    raise MangoError(f"Invalid index name: {erlterm.w(value)}", "invalid_index_name")


def _boolean(body: dict, key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise MangoError(f"Invalid boolean value: {erlterm.w(value)}", "invalid_boolean")
    return value


def parse_request(body: Any) -> dict:
    if not isinstance(body, dict):
        raise MangoError("Request body must be a JSON object", "bad_request")
    if "selector" not in body:
        raise MangoError("Missing required key: selector", "missing_required_key")
    norm = normalize(body["selector"])
    use_index = _use_index(body.get("use_index"))
    bookmark = _decode_bookmark(body.get("bookmark"))
    limit = _non_neg("limit", body.get("limit"), 25)
    skip = _non_neg("skip", body.get("skip"), 0)
    sort = parse_sort(body.get("sort"))
    fields = body.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise MangoError(f"Fields must be an array of strings, not: {erlterm.w(fields)}",
                         "invalid_fields")
    partition = body.get("partition", "")
    if not isinstance(partition, str):
        raise MangoError("Partition must be a string", "illegal_partition")
    if partition:
        partitions.validate_partition(partition)
    r = body.get("r", 1)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise MangoError(f"{erlterm.w(r)} is not an integer greater than zero", "invalid_pos_integer")
    conflicts = _boolean(body, "conflicts", False)
    if body.get("stale", False) not in ("ok", "false", False):
        # CouchDB fails with a 500 (an unhandled invalid_ok_or_false_value); the client's to fix
        raise MangoError(f"Invalid value for stale: {erlterm.w(body['stale'])}", "invalid_ok_or_false_value")
    update = _boolean(body, "update", True)
    _boolean(body, "stable", False)
    execution_stats = _boolean(body, "execution_stats", False)
    _boolean(body, "allow_fallback", True)
    for k in body:
        if k not in FIND_KEYS:
            raise MangoError(f"Invalid key {k} for this request.", "invalid_key")
    return {
        "selector": body["selector"],
        "norm": norm,
        "limit": limit,
        "skip": skip,
        "sort": sort,
        "fields": fields,
        "use_index": use_index,
        "bookmark": bookmark,
        "raw_bookmark": body.get("bookmark", "nil"),
        "update": update,
        "execution_stats": execution_stats,
        "conflicts": conflicts,
        "partition": partition or None,
        "r": r,
    }


async def find(node: Any, db: Any, body: Any, sees: Callable[[dict], bool] | None = None) -> dict:
    """`sees`: the documents the reader may see (per-document access); the others never match."""
    t0 = time.monotonic()
    req = parse_request(body)
    p = plan(db, req["norm"], req["sort"], req["use_index"], req["partition"])
    # An exact plan over a current index never consults the matcher: compile it on first use.
    matcher = _LazyMatcher(req["norm"]) if p.exact else compile_normalized(req["norm"])
    if sees is not None:
        p.exact = False  # every candidate goes through the matcher, which checks access first
        selected = matcher
        matcher = lambda doc: sees(doc) and selected(doc)  # noqa: E731
    ix = vi = None
    if p.index.type == "json":
        ix = manager.index_by_name(node, db, p.index.ddoc)
        vi = ix.spec.view_index(p.index.name)
        if vi is None:
            raise NotFound("missing_named_view")
        if req["update"]:
            await ix.update(node, p.index.ddoc)
    try:
        # Most queries read a few hundred rows: cheaper on the loop than a thread hand-off (LMDB
        # reads never block on writers). Past the budget the query runs again, whole, in a thread.
        result = _execute(db, ix, vi, p, req, matcher, budget=LOOP_KEYS if p.exact else LOOP_DOCS)
    except TooBig:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, _execute, db, ix, vi, p, req, matcher)
    docs, bookmark, stats = result
    out: dict[str, Any] = {"docs": docs, "bookmark": bookmark}
    if p.warning:
        out["warning"] = p.warning
    if req["execution_stats"]:
        stats["execution_time_ms"] = round((time.monotonic() - t0) * 1000, 3)
        out["execution_stats"] = stats
    return out


class _LazyMatcher:
    """A matcher compiled on its first call (the selector is already validated by normalize)."""

    __slots__ = ("norm", "fn")

    def __init__(self, norm: dict):
        self.norm = norm
        self.fn = None

    def __call__(self, doc: Any) -> bool:
        if self.fn is None:
            self.fn = compile_normalized(self.norm)
        return self.fn(doc)


def _execute(db: Any, ix: Any, vi: Any, p: Plan, req: dict, matcher: Any,
             budget: int | None = None) -> tuple[list, str, dict]:
    """`budget`: raise TooBig rather than examine more keys than that (a query on the loop)."""
    limit, skip = req["limit"], req["skip"]
    stats = {"total_keys_examined": 0, "total_docs_examined": 0, "total_quorum_docs_examined": 0,
             "results_returned": 0}
    docs: list[Any] = []
    last = None
    bm = req["bookmark"]
    max_keys = budget if budget is not None else float("inf")
    # As CouchDB's cursors, a scan reads on past the last result it returns: the next result it
    # meets ends it, and counts as examined (`limit: 0` reads up to the first result).
    if p.index.type == "json":
        lo, hi = p.lo, p.hi
        if isinstance(bm, dict) and "key" in bm and isinstance(bm.get("id"), str):
            mark = p.scope + collate.encode(bm["key"]) + collate.raw_string(bm["id"])
            if p.descending:
                hi = mark if hi is None or mark < hi else hi
            else:
                mark += HIGH
                lo = mark if lo is None or mark > lo else lo
        vp = bytes([vi])
        with ix.store.read() as txn:
            ix_seq = ix._get_meta(txn, b"seq", 0)
            # Exact plan, whole documents: splice stored JSON instead of parsing it (documents
            # changed since the index was read are parsed and checked as usual).
            raw_ok = p.exact and not req["fields"] and not req["conflicts"]
            fast = None
            if raw_ok and ix_seq >= db.update_seq:
                fast = _exact_current(db, txn, ix._rows, vp, lo, hi, p.descending, skip, limit, max_keys)
            if fast is not None:
                docs, returned, last, examined = fast
                stats["total_keys_examined"] = stats["total_docs_examined"] = examined
                stats["results_returned"] = returned
            else:
                it = _iter_rows(txn, ix._rows, vp, lo, hi, p.descending)
                done = False
                while not done:
                    batch: list = []
                    for rk, raw in it:
                        batch.append(row_of(rk, raw))
                        if len(batch) >= min(200, limit + skip + 1):
                            break
                    if not batch:
                        break
                    stats["total_keys_examined"] += len(batch)
                    if stats["total_keys_examined"] > max_keys:
                        raise TooBig()
                    ids = [r[1] for r in batch]
                    if raw_ok and ix_seq >= db.update_seq and all(isinstance(r[2], str) for r in batch):
                        loaded = _load_current(db, batch)
                        exact = True
                    elif raw_ok:
                        loaded = _load_exact(db, ids, ix_seq, matcher)
                        exact = True
                    else:
                        loaded = _load(db, ids, req["conflicts"])
                        exact = p.exact and ix_seq >= db.update_seq
                    stats["total_docs_examined"] += len(loaded)
                    for n, ((key, docid, _v), doc) in enumerate(zip(batch, loaded)):
                        if doc is None or not (exact or matcher(doc)):
                            continue
                        if skip:
                            skip -= 1
                            continue
                        if len(docs) >= limit:
                            # the rows of the batch after this one were not examined
                            stats["total_keys_examined"] -= len(batch) - n - 1
                            stats["total_docs_examined"] -= len(batch) - n - 1
                            done = True
                            break
                        docs.append(doc if raw_ok else _project(doc, req["fields"]))
                        last = {"key": key, "id": docid}
    else:
        lo, hi = p.lo, p.hi
        start = lo[0] if lo else None
        end = hi[0] if hi else None
        if p.descending:
            start, end = end, start
        after = bm.get("id") if isinstance(bm, dict) and isinstance(bm.get("id"), str) else None
        if after is not None:
            start = after
        inclusive_end = (hi[1] if hi else True) if not p.descending else (lo[1] if lo else True)
        batch_infos: list = []
        designs = 0  # design documents examined (not counted with a read quorum: below)

        def flush() -> bool:
            nonlocal skip, last, designs
            loaded = _load(db, [i.id for i, _, _ in batch_infos], req["conflicts"])
            for (info, keys_so_far, designs_so_far), doc in zip(batch_infos, loaded):
                if doc is None or not matcher(doc):
                    continue
                if skip:
                    skip -= 1
                    continue
                if len(docs) >= limit:
                    stats["total_keys_examined"] = keys_so_far  # the keys after this one were not read
                    designs = designs_so_far
                    return True
                docs.append(_project(doc, req["fields"]))
                last = {"id": info.id}
            return False

        scanned = 0
        infos = () if p.nothing else db.iter_docinfos(start=start, end=end, descending=p.descending,
                                                      inclusive_end=inclusive_end)
        for info in infos:
            scanned += 1  # tombstones cost a read too
            if scanned > max_keys:
                raise TooBig()
            if after is not None and info.id == after:
                continue
            # an excluded end ($gt, $lt) is read and examined as CouchDB reads it: the selector
            # turns it down
            if info.deleted:
                continue
            if info.id.startswith("_design/"):  # design documents are not query results
                # A design document the selector matches reaches CouchDB's coordinator as a row,
                # which passes it by uncounted (mango_cursor_view:handle_all_docs_message); one it
                # does not match was turned down on the shard, where it counts as examined.
                if not _design_doc_matches(db, info.id, matcher):
                    stats["total_keys_examined"] += 1
                    designs += 1
                continue
            stats["total_keys_examined"] += 1
            batch_infos.append((info, stats["total_keys_examined"], designs))
            if len(batch_infos) >= 200:
                if flush():
                    batch_infos = []
                    break
                batch_infos = []
        else:
            if batch_infos:
                flush()
        # CouchDB reads the document of every key it examines (design documents too, to turn them down)
        stats["total_docs_examined"] = stats["total_keys_examined"]
        if req.get("r", 1) > 1:
            # with a read quorum CouchDB's shards send their rows without documents and the
            # coordinator reads them, design documents passed by before they are counted
            stats["total_keys_examined"] -= designs
            stats["total_docs_examined"] = stats["total_keys_examined"]
    if req.get("r", 1) > 1:
        # ... so the documents it examined are quorum reads (mango_cursor_view, include_docs=false)
        stats["total_quorum_docs_examined"] = stats["total_docs_examined"]
        stats["total_docs_examined"] = 0
    if not isinstance(docs, orjson.Fragment):
        stats["results_returned"] = len(docs)
    bookmark = _encode_bookmark(last) if last is not None else (req["raw_bookmark"] or "nil")
    return docs, bookmark, stats


def _exact_current(db: Any, txn: Any, rows_db: Any, vp: bytes, lo: bytes | None, hi: bytes | None,
                   descending: bool, skip: int, limit: int, max_keys: float) -> tuple | None:
    """An exact plan over an index as new as the database: every row in the range is a result and
    names the winning revision, so each document is its stored body with `_id`/`_rev` spliced in,
    read in the same pass as the index rows (no parsing, no doc-info lookups). The documents come
    back as one ready-made JSON array.

    Returns (documents, how many, bookmark position, rows examined), or None when a row carries no
    revision (an index written before rows did): the caller takes the general path.
    """
    loads = marshal.loads
    dumps = orjson.dumps
    parts: list[bytes] = [b"["]
    extend = parts.extend
    n = 0
    last = None
    examined = 0
    if descending:
        values = (raw for _rk, raw in _iter_rows(txn, rows_db, vp, lo, hi, True))
    else:
        values = _values_asc(txn, rows_db, vp, lo, hi)
    with db.store.read() as dtxn:
        # handles and codec inside the read: a compaction may have swapped the environment
        decode = db.codec.decode
        get = dtxn.cursor(db=db.store.db("bodies")).get  # a third cheaper than txn.get(key, db=...)
        for raw in values:
            examined += 1
            if examined > max_keys:
                raise TooBig()
            row = loads(raw)  # (key, docid, value[, row key]): rows.py
            key, docid, rev = row[0], row[1], row[2]
            if type(rev) is not str:
                return None
            # body_key and splice_doc inlined: stored bodies are compact JSON objects
            bkey = docid.encode() + b"\x00" + rev.encode()
            body = get(bkey if len(bkey) <= LMDB_MAX else longkeys.point(bkey))
            if body is None:
                continue
            if skip:
                skip -= 1
                continue
            if n >= limit:
                break  # the row after the last result, read as CouchDB reads it
            body = jsonutil.readable(decode(body))
            if len(body) > 2:
                extend((b'{"_id":', dumps(docid), b',"_rev":', dumps(rev), b",", body[1:], b","))
            else:
                extend((b'{"_id":', dumps(docid), b',"_rev":', dumps(rev), b"},"))
            n += 1
            last = (key, docid)
    if n:
        parts[-1] = parts[-1][:-1]  # the last document's trailing comma
    parts.append(b"]")
    return (orjson.Fragment(b"".join(parts)), n, None if last is None else {"key": last[0], "id": last[1]},
            examined)


def _load_current(db: Any, rows: list) -> list[Any]:
    """The index is as new as the database: each row names the winning revision; splice its body."""
    out: list[Any] = []
    with db.store.read() as txn:
        bodies = db.store.db("bodies")
        get = txn.get
        for _key, docid, rev in rows:
            raw = get(body_key(docid, rev), db=bodies)
            out.append(None if raw is None else orjson.Fragment(splice_doc(docid, rev, db.codec.decode(raw))))
    return out


def _load_exact(db: Any, ids: list[str], ix_seq: int, matcher: Any) -> list[Any]:
    """For an exact plan: stored JSON of documents unchanged since the index's sequence (they match
    by construction); a document changed since is parsed and checked; None where it does not match."""
    infos = []
    with db.store.read() as txn:
        for docid in ids:
            infos.append(db.get_docinfo(docid, txn))
    live = [i for i in infos if i is not None and not i.deleted and i.seq <= ix_seq]
    frags = iter(db.load_doc_fragments(live)) if live else iter(())
    out: list[Any] = []
    for docid, info in zip(ids, infos):
        if info is None or info.deleted:
            out.append(None)
        elif info.seq <= ix_seq:
            out.append(next(frags))
        else:
            (doc,) = _load(db, [docid], False)
            out.append(doc if doc is not None and matcher(doc) else None)
    return out


def _load(db: Any, ids: list[str], conflicts: bool) -> list[dict | None]:
    """Current revisions of many documents in one read transaction (None: missing or deleted)."""
    out: list[dict | None] = []
    with db.store.read() as txn:
        for docid in ids:
            info = db.get_docinfo(docid, txn)
            if info is None or info.deleted:
                out.append(None)
                continue
            body = db.read_body(docid, info.rev, txn)
            if body is None:
                out.append(None)
            elif conflicts:
                out.append(db.build_doc(info, info.rev, body, txn, conflicts=True))
            else:
                # The winner of a live document, in CouchDB's field order (_attachments last);
                # without conflicts the revision tree is not needed.
                doc = {"_id": docid, "_rev": info.rev}
                atts = body.pop("_attachments", None) if "_attachments" in body else None
                doc.update(body)
                if atts is not None:
                    doc["_attachments"] = atts
                out.append(doc)
    return out


async def explain(node: Any, db: Any, body: Any) -> dict:
    req = parse_request(body)
    try:
        p = plan(db, req["norm"], req["sort"], req["use_index"], req["partition"])
    except MangoError as exc:
        if exc.error != "no_usable_index":
            raise
        p = None  # CouchDB explains a query no index can sort too: with index null, no mrargs
    fields = req["fields"] if req["fields"] else "all_fields"
    out = {
        "dbname": db.name,
        "index": None,
        "partitioned": db.partitioned,
        "selector": req["norm"],
        "opts": {
            "use_index": req["use_index"] if req["use_index"] is not None else [],
            "bookmark": req["raw_bookmark"] or "nil",
            "limit": req["limit"],
            "skip": req["skip"],
            "sort": {f: d for f, d in req["sort"]},
            "fields": fields,
            "partition": req["partition"] or "",
            "r": [49],
            "conflicts": req["conflicts"],
            "update": req["update"],
            "stable": False,
            "execution_stats": req["execution_stats"],
        },
        "limit": req["limit"],
        "skip": req["skip"],
        "fields": fields,
    }
    if p is None:
        return out
    if p.index.type == "json":
        mr = _json_keys(p.index, _top_conditions(req["norm"]))
    else:
        # the selector's own bounds (a partition's are not shown, as in CouchDB)
        lo, hi = _id_range(_top_conditions(req["norm"]).get("_id", {}))
        mr = {"start_key": lo[0] if lo else None, "end_key": hi[0] if hi else "<MAX>"}
    return {
        **out,
        "index": p.index.json(),
        "mrargs": {
            "include_docs": True,
            "view_type": "map",
            "reduce": False,
            "direction": "rev" if p.descending else "fwd",
            "update": req["update"],
            "stable": False,
            "conflicts": "undefined",
            "partition": req["partition"],
            **mr,
        },
        "covering": False,
        **({"warning": p.warning} if p.warning else {}),
    }
