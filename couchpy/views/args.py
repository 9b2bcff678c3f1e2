"""View query parameters, parsed and validated as CouchDB's couch_mrview_http/util do.

Parameters arrive as query-string text (JSON for keys, `true`/`false`, integers) or as the typed
members of a POST body. Errors are `query_parse_error` (400) with CouchDB's wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import collate, erlterm, jsonutil, partitions, queryvalues
from ..errors import QueryParseError

_MISSING = object()


@dataclass
class QueryArgs:
    keys: list | None = None
    start_key: Any = _MISSING
    end_key: Any = _MISSING
    start_key_docid: str | None = None
    end_key_docid: str | None = None
    inclusive_end: bool = True
    descending: bool = False
    group: bool | None = None
    group_level: int | None = None
    reduce: bool | None = None
    include_docs: bool = False
    attachments: bool = False  # inline attachment data in included documents
    conflicts: bool | None = None
    limit: int | None = None
    skip: int = 0
    update: str = "true"  # true | false | lazy
    update_seq: bool = False
    partition: str | None = None  # a partitioned view's queries name one partition
    extra: dict = field(default_factory=dict)

    @property
    def has_start(self) -> bool:
        return self.start_key is not _MISSING

    @property
    def has_end(self) -> bool:
        return self.end_key is not _MISSING


def _bool(name: str, v: Any, text: bool) -> bool:
    return queryvalues.view_bool(v) if text and isinstance(v, str) else queryvalues.body_bool(v)


def _pos_int(v: Any, text: bool) -> int:
    return queryvalues.view_pos_int(v) if text and isinstance(v, str) else queryvalues.body_pos_int(v)


def _json(v: Any, text: bool) -> Any:
    return jsonutil.loads(v) if text else v


def parse(raw: dict[str, Any], text: bool) -> QueryArgs:
    """`text`: values are query-string strings (JSON-encoded keys); else typed JSON members."""
    return parse_in_order([(raw, text)])


def parse_in_order(sources: list[tuple[dict[str, Any], bool]]) -> QueryArgs:
    """Parameters read one source after the other, each in its order, a later word overriding an
    earlier one (a POSTed view: its body, then its query string; `/queries`: the query string,
    then each query's members). `text` as in `parse`."""
    a = QueryArgs()
    for raw, text in sources:
        _read(a, raw, text)
    return a


def _read(a: QueryArgs, raw: dict[str, Any], text: bool) -> None:
    for name, v in raw.items():
        if name == "key":
            k = _json(v, text)
            a.start_key = k
            a.end_key = k
        elif name == "keys":
            ks = _json(v, text)
            if not isinstance(ks, list):
                raise QueryParseError("`keys` must be an array of strings.")
            if len(ks) == 1:
                # one key reads as `key` does, where it stands: the range K..K, not a lookup
                # (`keys=["a"]&startkey="b"` is a reversed range, `startkey="b"&keys=["a"]` is "a")
                a.start_key = a.end_key = ks[0]
            else:
                a.keys = ks
        elif name in ("startkey", "start_key"):
            a.start_key = _json(v, text)
        elif name in ("endkey", "end_key"):
            a.end_key = _json(v, text)
        elif name in ("startkey_docid", "start_key_doc_id"):
            if not isinstance(v, str):
                raise QueryParseError("`start_key_docid` must be a string.")
            a.start_key_docid = v
        elif name in ("endkey_docid", "end_key_doc_id"):
            if not isinstance(v, str):
                raise QueryParseError("`end_key_docid` must be a string.")
            a.end_key_docid = v
        elif name == "inclusive_end":
            a.inclusive_end = _bool(name, v, text)
        elif name == "descending":
            a.descending = _bool(name, v, text)
        elif name == "group":
            a.group = _bool(name, v, text)
        elif name == "group_level":
            a.group_level = _pos_int(v, text)
        elif name == "reduce":
            a.reduce = _bool(name, v, text)
        elif name == "include_docs":
            a.include_docs = _bool(name, v, text)
        elif name == "conflicts":
            a.conflicts = _bool(name, v, text)
        elif name == "attachments":
            a.attachments = _bool(name, v, text)
        elif name == "limit":
            a.limit = _pos_int(v, text)
        elif name == "skip":
            a.skip = _pos_int(v, text)
        elif name == "update_seq":
            a.update_seq = _bool(name, v, text)
        elif name == "stale":
            if v == "ok":
                a.update = "false"
            elif v == "update_after":
                a.update = "lazy"
            elif v != "false":
                raise QueryParseError("Invalid value for `stale`.")
        elif name == "update":
            val = v if isinstance(v, str) else ("true" if v is True else "false" if v is False else None)
            if val not in ("true", "false", "lazy"):
                raise QueryParseError("Invalid value for `update`.")
            a.update = val
        elif name == "partition":
            if not isinstance(v, str):
                raise QueryParseError("`partition` must be a string.")
            a.partition = partitions.validate_partition(v)
        elif name == "sorted":
            a.extra[name] = _bool(name, v, text)  # read as a boolean (couch_mrview_http), unused here
        elif name == "stable":
            if v not in ("true", "false", True, False):
                raise QueryParseError("Invalid value for `stable`.")
            a.extra[name] = v
        elif name in ("att_encoding_info", "r", "list"):
            a.extra[name] = v


# couch_mrview's ?MAX_VIEW_LIMIT: the `limit` of a query that names none
MAX_VIEW_LIMIT = 0x10000000


def check_partition(a: QueryArgs, partitioned: bool) -> None:
    """A partitioned view answers queries of one partition only; a global view none."""
    if partitioned and a.partition is None:
        raise QueryParseError("`partition` parameter is mandatory for queries to this view.")
    if not partitioned and a.partition is not None:
        raise QueryParseError("`partition` parameter is not supported in this design doc")


def limit_setting(partitioned: bool) -> str:
    """The `[query_server_config]` key that caps a query's `limit`: partitioned views have their
    own (`partition_query_limit`), as in CouchDB."""
    return "partition_query_limit" if partitioned else "query_limit"


def capped_limit(limit: int | None, cap: int | None) -> int | None:
    """A query's `limit` under the configured cap (None: no cap): a query naming none gets the
    cap, one naming more is refused, as couch_mrview_util:apply_limit does."""
    if cap is None or cap >= MAX_VIEW_LIMIT:
        return limit
    if limit is None:
        return cap
    if limit > cap:
        raise QueryParseError(f"Limit is too large, must not exceed {cap}")
    return limit


def apply_limit(a: QueryArgs, partitioned: bool, config: Any) -> None:
    a.limit = capped_limit(a.limit, config.get_int("query_server_config", limit_setting(partitioned),
                                                   MAX_VIEW_LIMIT))


def validate(a: QueryArgs, has_reduce: bool, collation: str | None) -> bool:
    """Check the combination against the view; return whether the query reduces."""
    if a.group is False and a.group_level is not None and a.group_level > 0:
        raise QueryParseError("Can't specify group=false and group_level>0 at the same time")
    if a.reduce is True and not has_reduce:
        raise QueryParseError("Reduce is invalid for map-only views.")
    reducing = has_reduce and a.reduce is not False
    # a group_level given decides, also over group=true (couch_mrview_util:determine_group_level):
    # `group=true&group_level=0` reads a map view
    grouping = group_level_of(a) is not False
    if grouping and not reducing:
        raise QueryParseError("Invalid use of grouping on a map view.")
    if reducing and a.keys is not None and group_level_of(a) is not None:
        raise QueryParseError("Multi-key fetches for reduce views must use `group=true`")
    if a.keys and (a.has_start or a.has_end):  # an empty `keys` goes with a range (and finds nothing)
        raise QueryParseError("`keys` is incompatible with `key`, `start_key` and `end_key`")
    if reducing and a.include_docs:
        raise QueryParseError("`include_docs` is invalid for reduce")
    if reducing and a.conflicts is not None:
        raise QueryParseError("`conflicts` is invalid for reduce views.")
    if a.has_start and a.has_end and not a.keys and not erlterm.equal(a.start_key, a.end_key):
        # a range whose ends are the same term (`=:=`: `1` and `1.0` differ) is never reversed,
        # whatever its document ids (couch_mrview_util:check_range)
        enc = collate.encoder(collation)
        sk, ek = enc(a.start_key), enc(a.end_key)
        skd = (a.start_key_docid if a.start_key_docid is not None else ("" if not a.descending else None))
        ekd = (a.end_key_docid if a.end_key_docid is not None else (None if not a.descending else ""))
        s = sk + (collate.raw_string(skd) if skd is not None else b"\xff")
        e = ek + (collate.raw_string(ekd) if ekd is not None else b"\xff")
        if not a.descending and s > e:
            raise QueryParseError(
                "No rows can match your key range, reverse your start_key and end_key or set descending=true")
        if a.descending and s < e:
            raise QueryParseError(
                "No rows can match your key range, reverse your start_key and end_key or set descending=false")
    return reducing


def group_level_of(a: QueryArgs) -> int | None | bool:
    """None: exact (group=true); an int: that level; False: no grouping."""
    if a.group_level is not None:
        return a.group_level if a.group_level > 0 else False
    if a.group:
        return None
    return False
