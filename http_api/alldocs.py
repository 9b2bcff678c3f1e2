"""_all_docs, _design_docs and _local_docs (GET, and POST with `keys`)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from couchpy import erlterm, queryvalues, scans
from couchpy.attachments import hooks as att_hooks
from couchpy.docinfo import DocInfo
from couchpy.errors import BadRequest, QueryParseError

from . import params
from .access import visible
from .databases import get_db
from .responses import json_response, not_allowed

routes = web.RouteTableDef()


_BODY_FLAGS = ("descending", "include_docs", "conflicts", "inclusive_end", "update_seq")


def _options(request: web.Request, body: dict | None, members_win: bool = False) -> dict:
    """A listing's options from the query string and a POST body. For a request's own body the
    query string wins where both name an option (CouchDB reads the body, then the query string
    over it); for one query of `/queries` its members win (`members_win`), as each query is read
    over the query string's parameters."""
    q = request.query
    if not members_win:
        _check_in_order(request, body)
    opts = {
        "descending": params.view_flag(request, "descending"),
        "inclusive_end": params.view_flag(request, "inclusive_end", True),
        "limit": params.integer(request, "limit"),
        "skip": params.integer(request, "skip", 0),
        "include_docs": params.view_flag(request, "include_docs"),
        "attachments": params.view_flag(request, "attachments"),
        "conflicts": params.view_flag(request, "conflicts"),
        "update_seq": params.view_flag(request, "update_seq"),
        "sorted": params.view_flag(request, "sorted", True),  # read as a boolean, as CouchDB does
        "key": params.json_value(request, "key"),
        "has_key": "key" in q,
        "keys": params.json_value(request, "keys"),
    }
    if body:
        for name in ("keys", "limit", "skip", "descending", "include_docs", "conflicts", "key", "inclusive_end",
                     "update_seq"):
            if name in body:
                value = body[name]
                if name in ("limit", "skip"):
                    value = queryvalues.body_pos_int(value)
                elif name in _BODY_FLAGS:
                    value = queryvalues.body_bool(value)
                if name != "keys" and name in q and not members_win:
                    continue  # CouchDB reads the body, then the query string over it
                opts[name] = value
                if name == "key":
                    opts["has_key"] = True
    in_body = bool(body) and "keys" in body
    # a body's `"keys": null` is no more an array than any other non-list (CouchDB's 400)
    if (opts["keys"] is not None or in_body) and not isinstance(opts["keys"], list):
        where = "body member" if in_body else "parameter"  # CouchDB names the source
        raise BadRequest(f"`keys` {where} must be an array.")
    if request.method == "POST" and not members_win and "keys" in q:
        # CouchDB reads a POST's body, then its query string: a `keys` parameter of several keys
        # (or none) replaces the body's, one of a single key only sets the range K..K (as `key`
        # does), so without a body's `keys` the answer is that range's, offset included
        qs_keys = params.json_value(request, "keys")
        if not isinstance(qs_keys, list):
            raise BadRequest("`keys` parameter must be an array.")
        if len(qs_keys) != 1:
            opts["keys"] = qs_keys
        elif not in_body:
            opts["keys"] = None
    opts["startkey"], opts["endkey"] = _key_range(request, body, opts["keys"], members_win)
    return opts


_QS_FLAGS = ("descending", "inclusive_end", "include_docs", "attachments", "conflicts", "update_seq", "sorted")
_JSON = ("key", "keys", "startkey", "start_key", "endkey", "end_key")


def _check_in_order(request: web.Request, body: dict | None) -> None:
    """Raise the fault CouchDB names first, where a listing's options are wrong in several ways.

    CouchDB decodes a GET's `keys` (which must be an array) before any other parameter
    (chttpd_db:all_docs_view), and a POST's body `keys`; then it reads the body's members, then
    the query string's parameters, each in the order given (couch_mrview_http:parse_params). The
    values themselves are taken by `_options`, which reads the same parsers in a fixed order."""
    q = request.query
    if request.method == "GET" and "keys" in q:
        if not isinstance(params.decode_json("keys", q["keys"]), list):
            raise BadRequest("`keys` parameter must be an array.")
    if body and "keys" in body and not isinstance(body["keys"], list):
        raise BadRequest("`keys` body member must be an array.")
    for name, value in (body or {}).items():
        if name in ("limit", "skip"):
            queryvalues.body_pos_int(value)
        elif name in _BODY_FLAGS:
            queryvalues.body_bool(value)
    for name, raw in q.items():
        if name in ("limit", "skip"):
            params.integer(request, name)
        elif name in _QS_FLAGS:
            queryvalues.view_bool(raw)
        elif name in _JSON:
            params.decode_json(name, raw)


# the parameters that set an end of the range: `key` sets both
_RANGE = {"key": "key", "startkey": "start", "start_key": "start", "endkey": "end", "end_key": "end"}


def _key_range(request: web.Request, body: dict | None, keys: list | None, members_win: bool = False) -> tuple:
    """(start, end) as CouchDB parses them: the body's members, then the query string's, each in
    the order given, the last word winning (`key=1&startkey=0` is the range 0..1). A `keys` of a
    single key K sets the range K..K where it is read (as `key` does), so with a non-empty `keys`
    a range is a 400 unless it ends up K..K (as CouchDB 3.4.3 answers: `key=b&keys=["a"]` is
    tolerated, `keys=["a"]&key=b` is not)."""
    start = end = None  # as the range params alone set it
    k_start = k_end = None  # as the range params and a single key's `keys` set it (CouchDB's range)
    given = set()  # the ends set, null or not (a given null is a key, which an unset end is not)
    ranged = False
    sources = [("body", body.items())] if body else []
    sources.insert(len(sources) if not members_win else 0, ("query", request.query.items()))
    for source, items in sources:
        for name, raw in items:
            if name == "keys":
                value = raw if source == "body" else _json_or_none(name, raw)
                if isinstance(value, list) and len(value) == 1:
                    k_start = k_end = value[0]
                    given |= {"k_start", "k_end"}
                    ranged = True
                continue
            kind = _RANGE.get(name)
            if kind is None:
                continue
            value = raw if source == "body" else params.decode_json(name, raw)
            if kind != "end":
                start = k_start = value
                given |= {"start", "k_start"}
            if kind != "start":
                end = k_end = value
                given |= {"end", "k_end"}
            ranged = True
    if keys and ranged and not (len(keys) == 1 and erlterm.equal(k_start, keys[0]) and erlterm.equal(k_end, keys[0])):
        raise QueryParseError("`keys` is incompatible with `key`, `start_key` and `end_key`")

    def marked(value, name: str):
        return NULL_KEY if value is None and name in given else value
    if keys is None:
        return marked(k_start, "k_start"), marked(k_end, "k_end")
    return marked(start, "start"), marked(end, "end")


class _NullKey:
    """A range end given as JSON `null`: a key that sorts before every document id (and every
    local document id), unlike an end not given (None)."""

    def __repr__(self) -> str:
        return "null"


NULL_KEY = _NullKey()


def _json_or_none(name: str, raw: str):
    """A query string's `keys` (already checked to be JSON by the caller when it is the one used)."""
    try:
        return params.decode_json(name, raw)
    except BadRequest:
        return None


def _names(db, prefix: str) -> list[str]:
    """The live documents of a namespace: _design_docs counts design documents only
    (couch_mrview get_total_rows); they are few."""
    hi = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return [i.id for i in db.iter_docinfos(prefix, hi, False, False) if not i.deleted]


def _keys(opts: dict, prefix: str | None) -> list:
    """The `keys` a listing answers for, in answer order: reversed when descending, and for
    _design_docs/_local_docs only those in the listing's namespace (CouchDB answers no row at
    all, not even not_found, for the others)."""
    keys = opts["keys"][::-1] if opts["descending"] else opts["keys"]
    if prefix is None:
        return keys
    return [k for k in keys if isinstance(k, str) and k.startswith(prefix)]


def _below_ids(value) -> bool:
    """Whether a range end given as JSON sorts before every document id (see _query)."""
    return value is not None and not isinstance(value, str)


def _row(info, doc=None, include_docs=False) -> dict:
    row = {"id": info.id, "key": info.id, "value": {"rev": info.rev}}
    if include_docs:
        row["doc"] = doc
    return row


def _query(db, opts: dict, prefix: str | None = None) -> dict:
    total = db.meta["doc_count"]
    include_docs = opts["include_docs"]
    rows: list[dict] = []
    if opts["keys"] is not None:
        for key in _keys(opts, prefix):
            info = db.get_docinfo(key) if isinstance(key, str) else None
            if info is None:
                rows.append({"key": key, "error": "not_found"})
            elif info.deleted:
                row = {"id": info.id, "key": key, "value": {"rev": info.rev, "deleted": True}}
                if include_docs:
                    row["doc"] = None
                rows.append(row)
            else:
                doc = db.load_docs([info], opts["conflicts"])[0] if include_docs else None
                if doc and opts["attachments"] and doc.get("_attachments"):
                    doc = att_hooks.inline_data(db, doc)
                rows.append(_row(info, doc, include_docs))
        skip = opts["skip"]
        rows = rows[skip:]
        if opts["limit"] is not None:
            rows = rows[: opts["limit"]]
        if prefix is not None:
            total = len(_names(db, prefix))
        result = {"total_rows": total, "offset": None, "rows": rows}
    else:
        start, end = opts["startkey"], opts["endkey"]
        inclusive_end = opts["inclusive_end"]
        descending = opts["descending"]
        # CouchDB orders _all_docs by Erlang term order, where every JSON value but a string sorts
        # before any string, so before every id: such a start is the beginning of an ascending
        # listing and past the end of a descending one; such an end, the reverse
        below_start, below_end = _below_ids(start), _below_ids(end)
        start = None if below_start else start
        end = None if below_end else end
        nothing = below_start if descending else below_end
        if prefix is not None:
            lo, hi = prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
            if descending:
                start = hi if start is None else start
                end = lo if end is None else end
            else:
                start = lo if start is None else start
                end = hi if end is None else end
        # a reversed range is no error for _all_docs (unlike views): it holds no rows
        reversed_range = start is not None and end is not None and (
            (start > end) if not descending else (start < end))
        skip, limit = opts["skip"], opts["limit"]
        # (id bytes, stored DocInfo bytes) of the live documents in range: the winner's rev is
        # the head of the stored bytes, so most listings decode nothing else
        picked: list[tuple[bytes, bytes]] = []
        if limit != 0 and not reversed_range and not nothing:
            for batch in db.id_chunks(start, end, descending, inclusive_end):
                for key, raw in batch:
                    if raw[0] == 68:  # b"D": the winner is a deletion
                        continue
                    if skip:
                        skip -= 1
                        continue
                    picked.append((key, raw))
                    if limit is not None and len(picked) >= limit:
                        break
                if limit is not None and len(picked) >= limit:
                    break
        if include_docs and (opts["attachments"] or opts["conflicts"]):
            infos = [DocInfo.decode(key.decode(), raw) for key, raw in picked]
            if opts["attachments"]:
                docs = [att_hooks.inline_data(db, d) if d and d.get("_attachments") else d
                        for d in db.load_docs(infos, opts["conflicts"])]
            else:
                docs = db.load_doc_fragments(infos, opts["conflicts"])
            rows = [_row(i, d, True) for i, d in zip(infos, docs)]
        else:
            winners = [(key.decode(), raw[1:raw.index(b"\x00")].decode()) for key, raw in picked]
            rows = [{"id": i, "key": i, "value": {"rev": r}} for i, r in winners]
            if include_docs:
                for row, doc in zip(rows, db.load_winner_fragments(winners)):
                    row["doc"] = doc
        if prefix is None:
            before = db.count_live_before(start, descending) if start is not None else 0
        else:
            # CouchDB counts every document the id btree holds before the range's start (not only
            # design documents), then clamps the offset to total_rows
            total = len(_names(db, prefix))
            if not isinstance(start, str):
                start = prefix[:-1] + chr(ord(prefix[-1]) + 1) if descending else prefix
            before = scans.count_live_before_capped(db, start, descending, total)
        # a skip past the last row leaves the offset at the end (couch_mrview counts the rows
        # it skipped, and there are no more than that)
        offset = total if below_start and descending else min(before + opts["skip"], total)
        result = {"total_rows": total, "offset": offset, "rows": rows}
    if opts["update_seq"]:
        # a `keys` lookup reads no index sequence: CouchDB answers `null` (fabric_view_all_docs)
        result["update_seq"] = None if opts["keys"] is not None else db.node.format_seq(db, db.update_seq)
    return result


def _restricted_query(db, opts: dict, prefix: str | None, sees: Callable[[str], bool]) -> dict:
    """`_query` for a reader of an access database: only the documents `sees` admits count, as
    rows, in `total_rows` and in `offset`; another user's id in `keys` is not_found. (Access
    databases keep no per-user index: this reads the whole namespace.)"""
    result = _query(db, {**opts, "skip": 0, "limit": None}, prefix)
    if opts["keys"] is not None:
        rows = [r if "id" not in r or sees(r["id"]) else {"key": r["key"], "error": "not_found"}
                for r in result["rows"]]
    else:
        rows = [r for r in result["rows"] if sees(r["id"])]
    rows = rows[opts["skip"]:]
    if opts["limit"] is not None:
        rows = rows[: opts["limit"]]
    hi = None if prefix is None else prefix[:-1] + chr(ord(prefix[-1]) + 1)
    names = [i.id for i in db.iter_docinfos(prefix, hi, False, prefix is None) if not i.deleted and sees(i.id)]
    result["rows"], result["total_rows"] = rows, len(names)
    if opts["keys"] is None:
        start = opts["startkey"]
        before = 0
        if isinstance(start, str):
            before = sum(1 for n in names if (n > start if opts["descending"] else n < start))
        result["offset"] = min(before + opts["skip"], len(names))
    return result


async def _handle(request: web.Request, prefix: str | None,
                  narrow: Callable[[dict], None] | None = None) -> web.Response:
    """A listing; `narrow(opts)` adjusts the parsed options first (a partition's id range)."""
    db = get_db(request)
    if request.method == "POST":
        params.require_json(request)
    body = await params.json_object(request) if request.method == "POST" else None
    opts = _options(request, body)
    if narrow is not None:
        narrow(opts)
    sees = visible(request, db)
    if sees is not None:
        return json_response(_restricted_query(db, opts, prefix, sees))
    return json_response(_query(db, opts, prefix))


async def _handle_queries(request: web.Request, prefix: str | None) -> web.Response:
    """`POST /{db}/_all_docs/queries` (and `_design_docs`): each query's members over the query
    string's parameters, answered as a list of listings, as CouchDB 3 does."""
    db = get_db(request)
    params.require_json(request)
    body = await params.json_object(request)
    sees = visible(request, db)
    results = []
    for q in params.queries(body):
        opts = _options(request, q, members_win=True)
        results.append(_query(db, opts, prefix) if sees is None else _restricted_query(db, opts, prefix, sees))
    return json_response({"results": results})


@routes.post("/{db}/_all_docs/queries")
async def all_docs_queries(request):
    return await _handle_queries(request, None)


@routes.post("/{db}/_design_docs/queries")
async def design_docs_queries(request):
    return await _handle_queries(request, "_design/")


async def all_docs(request: web.Request, narrow: Callable[[dict], None]) -> web.Response:
    """`_all_docs` (GET or POST) with its parsed options narrowed first."""
    return await _handle(request, None, narrow)


@routes.get("/{db}/_all_docs")
async def all_docs_get(request):
    return await _handle(request, None)


@routes.post("/{db}/_all_docs")
async def all_docs_post(request):
    return await _handle(request, None)


@routes.get("/{db}/_design_docs")
async def design_docs_get(request):
    return await _handle(request, "_design/")


@routes.post("/{db}/_design_docs")
async def design_docs_post(request):
    return await _handle(request, "_design/")


async def _local_docs(request: web.Request) -> web.Response:
    db = get_db(request)
    if request.method == "POST":
        params.require_json(request)
    body = await params.json_object(request) if request.method == "POST" else None
    opts = _options(request, body)
    sees = visible(request, db)
    if sees is not None:
        # filtered before skip and limit apply
        skip, limit = opts["skip"], opts["limit"]
        opts = {**opts, "skip": 0, "limit": None}
    if opts["keys"] is not None:
        rows = []
        for key in _keys(opts, "_local/"):
            try:
                doc = db.get_local(key)
                rows.append({"id": key, "key": key, "value": {"rev": doc["_rev"]},
                             **({"doc": doc} if opts["include_docs"] else {})})
            except Exception:
                rows.append({"key": key, "error": "not_found"})
    else:
        start, end = opts["startkey"], opts["endkey"]
        if opts["has_key"]:
            start = end = NULL_KEY if opts["key"] is None else opts["key"]
        # ordered as _all_docs (see _query): a bound that is no string sorts before every id
        below_start, below_end = _below_ids(start), _below_ids(end)
        nothing = below_start if opts["descending"] else below_end
        start = None if below_start else start
        end = None if below_end else end
        docs = [] if nothing else db.iter_local(start, end, opts["descending"],
                                                opts["inclusive_end"] or opts["has_key"])
        docs = docs[opts["skip"]:]
        if opts["limit"] is not None:
            docs = docs[: opts["limit"]]
        rows = [{"id": d["_id"], "key": d["_id"], "value": {"rev": d["_rev"]},
                 **({"doc": d} if opts["include_docs"] else {})} for d in docs]
    if sees is not None:
        rows = [r for r in rows if "id" not in r or sees(r["id"])] if opts["keys"] is None else [
            r if "id" not in r or sees(r["id"]) else {"key": r["key"], "error": "not_found"} for r in rows]
        rows = rows[skip:] if limit is None else rows[skip:skip + limit]
    return json_response({"total_rows": None, "offset": None, "rows": rows})


def routes_list() -> list:
    return list(routes) + [
        web.get("/{db}/_local_docs", _local_docs),
        web.post("/{db}/_local_docs", _local_docs),
        not_allowed("/{db}/_all_docs", "GET,HEAD,POST"),
        not_allowed("/{db}/_design_docs", "GET,HEAD,POST"),
        not_allowed("/{db}/_local_docs", "GET,HEAD,POST"),
    ]
