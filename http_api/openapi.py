"""couchpy's HTTP API as an OpenAPI 3.1 document, served at `GET /_openapi.json`.

The document is data built once at import from a few helpers (the same error body, the same
query parameters of view-like listings, ...). `tests/test_openapi.py` keeps it true: every route
of the application is described and every described path is routed, and it validates as OpenAPI
3.1; `tests/test_fuzz_openapi.py` sends Schemathesis' requests built from it to a live server and
checks the answers against it.

It is served like the admin UI's files (`/_utils`): to anyone the server serves at all (with
`[chttpd] require_valid_user` only to authenticated users). It says nothing about the node (no
configuration, databases or versions beyond what `GET /` already answers), only what the source
code of every couchpy says, and clients and fuzzers need it before they have credentials.

OpenAPI 3.1 has no COPY method: `COPY /{db}/{docid}` (and for design and `_local` documents) is
described in the path item's `x-copy` extension, which generic tools ignore.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .responses import json_response, not_allowed

PATH = "/_openapi.json"

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


OBJ: Schema = {"type": "object"}
ANY: Schema = {}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "CouchDB's error body",
        "required": ["error", "reason"],
        "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
    },
    "Ok": {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}},
    "DocWriteResult": {
        "type": "object",
        "required": ["ok", "id", "rev"],
        "properties": {"ok": {"const": True}, "id": {"type": "string"}, "rev": {"type": "string"}},
    },
    "Accepted": {
        "type": "object",
        "description": "a write accepted before it is committed (batch=ok): no revision yet",
        "required": ["ok", "id"],
        "properties": {"ok": {"const": True}, "id": {"type": "string"}, "rev": {"type": "string"}},
    },
    "BulkDocsRow": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "id": {"type": "string"}, "rev": {"type": "string"},
                       "error": {"type": "string"}, "reason": {"type": "string"}},
    },
    "Document": {
        "type": "object",
        "properties": {"_id": {"type": "string"}, "_rev": {"type": "string"}, "_deleted": {"type": "boolean"},
                       "_attachments": {"type": "object"}, "_revisions": {"type": "object"},
                       "_revs_info": {"type": "array"}, "_conflicts": {"type": "array"},
                       "_deleted_conflicts": {"type": "array"}, "_local_seq": ANY},
    },
    "DbInfo": {
        "type": "object",
        "required": ["db_name", "update_seq", "sizes", "doc_count", "doc_del_count"],
        "properties": {"db_name": {"type": "string"}, "update_seq": {"type": "string"},
                       "purge_seq": {"type": "string"}, "sizes": {"type": "object"},
                       "doc_count": {"type": "integer"}, "doc_del_count": {"type": "integer"},
                       "compact_running": {"type": "boolean"}, "instance_start_time": {"type": "string"}},
    },
    "Rows": {
        "type": "object",
        "description": "a view-like listing (_all_docs, views, _design_docs, _local_docs)",
        "required": ["rows"],
        "properties": {"total_rows": {"type": ["integer", "null"]}, "offset": {"type": ["integer", "null"]},
                       "update_seq": ANY, "rows": {"type": "array", "items": OBJ}},
    },
    "Changes": {
        "type": "object",
        "required": ["results", "last_seq"],
        "properties": {"results": {"type": "array", "items": OBJ}, "last_seq": ANY,
                       "pending": {"type": "integer"}},
    },
    "FindResult": {
        "type": "object",
        "required": ["docs"],
        "properties": {"docs": {"type": "array", "items": OBJ}, "bookmark": {"type": "string"},
                       "warning": {"type": "string"}, "execution_stats": OBJ},
    },
    "Security": {
        "type": "object",
        "properties": {"admins": OBJ, "members": OBJ},
    },
}

# ---- responses -------------------------------------------------------------------------------


def _json(schema: Schema, description: str = "") -> dict:
    return {"description": description or "JSON", "content": {JSON: {"schema": schema}}}


def _no_body(description: str) -> dict:
    return {"description": description}


# every 4xx answer carries CouchDB's error body (5xx are never documented: they are bugs)
ERROR_4XX = _json(_ref("Error"), "CouchDB's error body: bad request, unauthorized, forbidden, not found, "
                  "method not allowed, conflict, precondition failed, too large, unsupported media type")
ERROR_HEAD = _no_body("an error (a HEAD answer has no body)")

# ---- parameters ------------------------------------------------------------------------------


def _path_param(name: str, description: str, example: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}, "example": example}


PATH_PARAMS = {
    "db": _path_param("db", "database name (`^[a-z][a-z0-9_$()+/-]*$`, or `_users`, `_replicator`)", "fuzz"),
    "docid": _path_param("docid", "document id", "doc"),
    "ddoc": _path_param("ddoc", "design document name (without `_design/`)", "fuzz"),
    "ldoc": _path_param("ldoc", "`_local` document name (without `_local/`)", "checkpoint"),
    "att": _path_param("att", "attachment name", "att.txt"),
    "view": _path_param("view", "view name", "v"),
    "func": _path_param("func", "update function name", "u"),
    "index": _path_param("index", "Nouveau index name", "i"),
    "node": _path_param("node", "node name, or `_local`", "_local"),
    "section": _path_param("section", "configuration section", "couchdb"),
    "key": _path_param("key", "configuration key", "max_dbs_open"),
    "path": _path_param("path", "statistic group or name", "couchdb"),
    "name": _path_param("name", "a file of the admin UI", "app.js"),
    "jobid": _path_param("jobid", "replication job id", "x"),
    "type": _path_param("type", "index type (json)", "json"),
    "partition": _path_param("partition", "partition name (the part of document ids before `:`)", "p"),
    "rest": _path_param("rest", "any path", "x"),
}


def _q(name: str, schema: Schema, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            **({"description": description} if description else {})}


def _qs(names: str, schema: Schema) -> list[dict]:
    return [_q(n, schema) for n in names.split()]


BOOL = {"type": "string", "enum": ["true", "false"]}
INT = {"type": "string", "pattern": "^[0-9]+$"}
JSON_TEXT = {"type": "string", "description": "a JSON value"}
STR = {"type": "string"}

# the query parameters of view-like listings (views, _all_docs, _design_docs, _local_docs)
VIEW_QUERY = (
    _qs("conflicts descending include_docs inclusive_end attachments att_encoding_info update_seq "
        "sorted group reduce stable", BOOL)
    + _qs("key keys start_key startkey end_key endkey", JSON_TEXT)
    + _qs("startkey_docid start_key_doc_id endkey_docid end_key_doc_id update", STR)
    + _qs("limit skip group_level", INT)
)
DOC_QUERY = (_qs("attachments att_encoding_info conflicts deleted_conflicts latest local_seq meta revs "
                 "revs_info", BOOL)
             + [_q("rev", STR), _q("open_revs", JSON_TEXT, "`all` or a JSON array of revisions"),
                _q("atts_since", JSON_TEXT)])
WRITE_QUERY = [_q("rev", STR), _q("batch", {"type": "string", "enum": ["ok"]}), _q("new_edits", BOOL)]
FEED = {"type": "string", "enum": ["normal", "longpoll", "continuous", "eventsource"]}
CHANGES_QUERY = (
    [_q("feed", FEED), _q("since", STR, "a sequence, `now`, or an RFC 3339 time"),
     _q("until", STR, "couchpy: a sequence, `now`, or an RFC 3339 time the feed ends at"), _q("filter", STR), _q("view", STR), _q("doc_ids", JSON_TEXT),
     _q("style", {"type": "string", "enum": ["main_only", "all_docs"]})]
    + _qs("conflicts descending include_docs attachments att_encoding_info", BOOL)
    + _qs("limit timeout heartbeat seq_interval", INT)
)

# ---- operations ------------------------------------------------------------------------------


def _body(schema: Schema, content_types: tuple[str, ...] = (JSON,), required: bool = True) -> dict:
    return {"required": required, "content": {ct: {"schema": schema} for ct in content_types}}


def _op(summary: str, ok: dict[str, dict], query: list[dict] | None = None, body: dict | None = None,
        head: bool = False) -> dict:
    responses = dict(ok)
    responses["4XX"] = ERROR_HEAD if head else ERROR_4XX
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if query:
        op["parameters"] = query
    if body is not None:
        op["requestBody"] = body
    return op


def _head(summary: str, ok_statuses: tuple[str, ...] = ("200",), query: list[dict] | None = None) -> dict:
    return _op(summary, {s: _no_body("headers only") for s in ok_statuses}, query, head=True)


def _get_head(summary: str, schema: Schema, query: list[dict] | None = None,
              content: dict | None = None) -> dict:
    ok = {"200": content or _json(schema)}
    return {"get": _op(summary, ok, query), "head": _head(summary, query=query)}


def _only_errors(summary: str) -> dict:
    return {m: _op(summary, {}, head=(m == "head")) for m in ("get", "head", "put", "post", "delete")}


ANY_CONTENT = {"description": "the stored bytes, with their content type", "content": {"*/*": {"schema": ANY}}}
DOC_CONTENT = {"description": "the document (multipart/mixed or multipart/related when asked for)",
               "content": {JSON: {"schema": ANY}, "multipart/mixed": {"schema": ANY},
                           "multipart/related": {"schema": ANY}}}
WRITE_OK = {"201": _json(_ref("DocWriteResult"), "written"),
            "202": _json(_ref("Accepted"), "accepted (batch=ok, or not yet written on enough copies)")}
DOC_BODY = _body(_ref("Document"), (JSON, "multipart/related"))
# continuous feeds are lines of JSON under CouchDB's `application/json`: no one schema for the body
FEED_CONTENT = {"description": "the changes: one JSON object (normal, longpoll), one JSON object a line "
                               "(continuous) or events (eventsource)",
                "content": {JSON: {}, "text/event-stream": {}}}


def _document_item(summary: str) -> dict:
    # as CouchDB: a document (`_local`, design or other) written by a PUT of `{"_deleted": true}`
    # is a 200, whether it deletes one that exists or creates a deleted one
    put_ok = {**WRITE_OK, "200": _json(_ref("DocWriteResult"), "deleted")}
    return {
        "get": _op(f"read a {summary}", {"200": DOC_CONTENT}, DOC_QUERY),
        "head": _head(f"a {summary}'s current revision (ETag)", ("200",), [_q("rev", STR)]),
        "put": _op(f"create or update a {summary}", put_ok, WRITE_QUERY, DOC_BODY),
        "delete": _op(f"delete a {summary}", {"200": _json(_ref("DocWriteResult")),
                                              "202": _json(_ref("Accepted"))},
                      [_q("rev", STR), _q("batch", {"type": "string", "enum": ["ok"]})]),
        "x-copy": _op(f"copy a {summary} to the id in the Destination header", WRITE_OK, [_q("rev", STR)]),
    }


def _attachment_item() -> dict:
    return {
        "get": _op("read an attachment", {"200": ANY_CONTENT, "206": ANY_CONTENT}, [_q("rev", STR)]),
        "head": _head("an attachment's length, type and digest", ("200",), [_q("rev", STR)]),
        "put": _op("add or replace an attachment (the body is its bytes)", WRITE_OK, [_q("rev", STR)],
                   {"required": False, "content": {"*/*": {"schema": ANY}}}),
        "delete": _op("delete an attachment", {"200": _json(_ref("DocWriteResult")),
                                               "202": _json(_ref("Accepted"))},
                      [_q("rev", STR), _q("batch", {"type": "string", "enum": ["ok"]})]),
    }


def _db_item() -> dict:
    return {
        "get": _op("database information", {"200": _json(_ref("DbInfo"))}),
        "head": _head("whether the database exists"),
        "put": _op("create a database", {"201": _json(_ref("Ok")), "202": _json(_ref("Ok"))},
                   _qs("q n", INT) + [_q("partitioned", BOOL)]),
        "delete": _op("delete a database", {"200": _json(_ref("Ok")), "202": _json(_ref("Ok"))}),
        "post": _op("create a document with a generated id", WRITE_OK,
                    [_q("batch", {"type": "string", "enum": ["ok"]})], _body(_ref("Document"))),
    }


def _listing_item(summary: str, with_post: bool = True) -> dict:
    item = _get_head(summary, _ref("Rows"), VIEW_QUERY)
    if with_post:
        item["post"] = _op(summary + " (keys, or a query object, in the body)", {"200": _json(_ref("Rows"))},
                           VIEW_QUERY, _body(OBJ))
    return item


def _post(summary: str, schema: Schema, body: Schema | None = OBJ, query: list[dict] | None = None,
          status: str = "200", body_required: bool = True) -> dict:
    return {"post": _op(summary, {status: _json(schema)}, query,
                        None if body is None else _body(body, required=body_required))}


def _paths() -> dict[str, dict]:
    p: dict[str, dict] = {}
    # server
    p["/"] = _get_head("the welcome message: couchdb, version, vendor, features", OBJ)
    p[PATH] = _get_head("this document", OBJ)
    p["/_up"] = _get_head("health check", OBJ)
    p["/_all_dbs"] = _get_head("the databases' names", {"type": "array", "items": STR},
                               _qs("descending", BOOL) + _qs("start_key startkey end_key endkey", JSON_TEXT)
                               + _qs("limit skip", INT))
    p["/_dbs_info"] = _get_head("the databases' information", {"type": "array", "items": OBJ},
                                _qs("descending", BOOL) + _qs("start_key startkey end_key endkey", JSON_TEXT)
                                + _qs("limit skip", INT))
    p["/_dbs_info"].update(_post("the information of the databases named in `keys`",
                                 {"type": "array", "items": OBJ},
                                 {"type": "object", "properties": {"keys": {"type": "array", "items": STR}}}))
    p["/_uuids"] = _get_head("fresh UUIDs", {"type": "object", "properties": {"uuids": {"type": "array"}}},
                             [_q("count", INT)])
    p["/_active_tasks"] = _get_head("running tasks (compactions, indexers, replications)",
                                    {"type": "array", "items": OBJ})
    p["/_membership"] = _get_head("cluster membership", OBJ)
    p["/_cluster_setup"] = _get_head("cluster setup state", OBJ)
    p["/_db_updates"] = _get_head("the node's feed of database events", ANY,
                                  [_q("feed", FEED), _q("since", STR)] + _qs("timeout heartbeat limit", INT),
                                  FEED_CONTENT)
    p["/_session"] = _get_head("the session's user context", OBJ, [_q("basic", BOOL)])
    p["/_session"]["post"] = _op("log in (sets the AuthSession cookie)", {"200": _json(OBJ),
                                                                          "302": _no_body("redirect to next")},
                                 [_q("next", STR)],
                                 _body({"type": "object", "properties": {"name": STR, "password": STR}},
                                       (JSON, "application/x-www-form-urlencoded")))
    p["/_session"]["delete"] = _op("log out", {"200": _json(_ref("Ok"))})
    p["/_utils"] = {"get": _op("redirect to the admin UI", {"301": _no_body("to /_utils/")}),
                    "head": _head("redirect to the admin UI", ("301",))}
    html = {"description": "the admin UI's page", "content": {"text/html": {"schema": STR}}}
    p["/_utils/"] = {"get": _op("the admin UI", {"200": html}), "head": _head("the admin UI")}
    static = {"description": "a file of the admin UI", "content": {
        t: {"schema": STR} for t in ("text/html", "application/javascript", "text/css", "image/svg+xml")}}
    p["/_utils/{name}"] = {"get": _op("a file of the admin UI", {"200": static}),
                           "head": _head("a file of the admin UI")}
    p["/_replicate"] = _post("run or cancel a replication", OBJ,
                             {"type": "object", "properties": {
                                 "source": ANY, "target": ANY, "continuous": {"type": "boolean"},
                                 "create_target": {"type": "boolean"}, "cancel": {"type": "boolean"},
                                 "doc_ids": {"type": "array"}, "filter": STR, "selector": OBJ}})
    p["/_replicate"]["post"]["responses"]["202"] = _json(OBJ, "a continuous replication started")
    sched_q = _qs("limit skip", INT)
    p["/_scheduler/jobs"] = _get_head("replication jobs", OBJ, sched_q)
    p["/_scheduler/jobs/{jobid}"] = _get_head("one replication job", OBJ)
    p["/_scheduler/docs"] = _get_head("replication documents' states", OBJ, sched_q + [_q("states", STR)])
    p["/_scheduler/docs/{db}"] = _get_head("replication documents' states in one replicator database", OBJ,
                                           sched_q + [_q("states", STR)])
    p["/_scheduler/docs/{db}/{docid}"] = _get_head("one replication document's state", OBJ)
    # node
    p["/_node/{node}/_config"] = _get_head("the whole configuration (passwords hashed)", OBJ)
    p["/_node/{node}/_config/_reload"] = _post("reread the configuration files", _ref("Ok"), None)
    p["/_node/{node}/_config/{section}"] = _get_head("one configuration section", OBJ)
    value = {"description": "the value", "content": {JSON: {"schema": STR}}}
    p["/_node/{node}/_config/{section}/{key}"] = {
        "get": _op("one configuration value", {"200": value}),
        "head": _head("one configuration value"),
        "put": _op("set a value (answers the old one)", {"200": value}, None, _body(STR)),
        "delete": _op("delete a value (answers the old one)", {"200": value}),
    }
    p["/_node/{node}/_stats"] = _get_head("statistics", OBJ)
    p["/_node/{node}/_stats/{path}"] = _get_head("one group of statistics", OBJ)
    p["/_node/{node}/_system"] = _get_head("the Erlang-VM-like system figures", OBJ)
    prom = {"description": "Prometheus' text format", "content": {"text/plain": {"schema": STR}}}
    p["/_node/{node}/_prometheus"] = {"get": _op("statistics for Prometheus", {"200": prom}),
                                      "head": _head("statistics for Prometheus")}
    # databases
    p["/{db}"] = _db_item()
    p["/{db}/"] = _db_item()
    p["/{db}/_all_docs"] = _listing_item("all documents by id")
    p["/{db}/_design_docs"] = _listing_item("design documents by id")
    p["/{db}/_local_docs"] = _listing_item("`_local` documents by id")
    for listing in ("_all_docs", "_design_docs"):
        p[f"/{{db}}/{listing}/queries"] = _post(
            f"several `{listing}` queries", OBJ,
            {"type": "object", "properties": {"queries": {"type": "array", "items": OBJ}}})
    p["/{db}/_bulk_docs"] = _post("write many documents", {"type": "array", "items": _ref("BulkDocsRow")},
                                  {"type": "object", "properties": {"docs": {"type": "array", "items": OBJ},
                                                                    "new_edits": {"type": "boolean"}}},
                                  status="201")
    p["/{db}/_bulk_get"] = _post("read many documents' revisions", OBJ,
                                 {"type": "object", "properties": {"docs": {"type": "array", "items": OBJ}}},
                                 _qs("revs latest attachments", BOOL))
    p["/{db}/_bulk_get"]["post"]["responses"]["200"]["content"]["multipart/mixed"] = {"schema": ANY}
    p["/{db}/_revs_diff"] = _post("which revisions the database lacks", OBJ)
    p["/{db}/_missing_revs"] = _post("which revisions the database lacks", OBJ)
    p["/{db}/_changes"] = _get_head("the changes feed", ANY, CHANGES_QUERY, FEED_CONTENT)
    p["/{db}/_changes"]["post"] = _op("the changes feed (doc_ids or selector in the body)", {"200": FEED_CONTENT},
                                      CHANGES_QUERY, _body(OBJ, required=False))
    p["/{db}/_purge"] = _post("purge revisions", OBJ, status="201")
    p["/{db}/_purge"]["post"]["responses"]["202"] = _json(OBJ)
    limit = {"description": "the limit", "content": {JSON: {"schema": {"type": "integer"}}}}
    for name in ("_purged_infos_limit", "_revs_limit", "_tombstone_ttl"):
        p[f"/{{db}}/{name}"] = {"get": _op(f"the database's {name[1:]}", {"200": limit}),
                                "head": _head(f"the database's {name[1:]}"),
                                "put": _op(f"set the database's {name[1:]}", {"200": _json(_ref("Ok"))}, None,
                                           _body({"type": "integer"}))}
    p["/{db}/_conflict_policy"] = {"get": _op("the database's conflict policy (couchpy extension)", {"200": _json(OBJ)}),
                                   "head": _head("the database's conflict policy"),
                                   "put": _op("set the database's conflict policy ({} for none)",
                                              {"200": _json(_ref("Ok"))}, None, _body(OBJ))}
    p["/{db}/_purged_infos"] = _get_head("purged revisions", OBJ)
    p["/{db}/_compact"] = _post("compact the database", _ref("Ok"), OBJ, status="202", body_required=False)
    p["/{db}/_compact/{ddoc}"] = _post("compact a design document's indexes", _ref("Ok"), OBJ, status="202",
                                       body_required=False)
    p["/{db}/_view_cleanup"] = _post("remove index files no design document uses", _ref("Ok"), OBJ,
                                     status="202", body_required=False)
    p["/{db}/_ensure_full_commit"] = _post("a no-op kept for old clients (writes are durable when answered)",
                                           OBJ, OBJ, status="201", body_required=False)
    p["/{db}/_security"] = _get_head("the security object", _ref("Security"))
    p["/{db}/_security"]["put"] = _op("set the security object", {"200": _json(_ref("Ok"))}, None,
                                      _body(_ref("Security")))
    # Mango
    p["/{db}/_index"] = _get_head("the Mango indexes", OBJ)
    p["/{db}/_index"]["post"] = _op("create a Mango index", {"200": _json(OBJ)}, None, _body(OBJ))
    for path in ("/{db}/_index/{ddoc}/{type}/{name}", "/{db}/_index/_design/{ddoc}/{type}/{name}"):
        p[path] = {"delete": _op("delete a Mango index", {"200": _json(_ref("Ok"))})}
    p["/{db}/_find"] = _post("query with a selector", _ref("FindResult"))
    p["/{db}/_explain"] = _post("how a query would run", OBJ)
    # documents
    p["/{db}/{docid}"] = _document_item("document")
    p["/{db}/_design/{ddoc}"] = _document_item("design document")
    p["/{db}/_local/{ldoc}"] = _document_item("`_local` document")
    p["/{db}/_local/"] = _only_errors("always 400: a `_local` document needs a name")
    p["/{db}/_local/{ldoc}/{att}"] = _only_errors("always 400: `_local` documents have no attachments")
    p["/{db}/{docid}/{att}"] = _attachment_item()
    p["/{db}/_design/{ddoc}/{att}"] = _attachment_item()
    # partitions of a partitioned database
    part = "/{db}/_partition/{partition}"
    p["/{db}/_partition"] = _only_errors("always 400: a partition needs a name")
    p["/{db}/_partition/"] = _only_errors("always 400: a partition needs a name")
    p[part] = _get_head("a partition's information", OBJ)
    p[part + "/_all_docs"] = _listing_item("a partition's documents by id")
    p[part + "/_find"] = _post("query a partition with a selector", _ref("FindResult"))
    p[part + "/_explain"] = _post("how a partition query would run", OBJ)
    p[part + "/_design/{ddoc}/_view/{view}"] = _listing_item("query a view over one partition")
    p[part + "/_design/{ddoc}/_view/{view}/queries"] = _post(
        "several queries of one view over one partition", OBJ,
        {"type": "object", "properties": {"queries": {"type": "array", "items": OBJ}}})
    p[part + "/{rest}"] = _only_errors("always 404: nothing else is under a partition")
    # design functions
    view = "/{db}/_design/{ddoc}/_view/{view}"
    p[view] = _listing_item("query a view")
    p[view + "/queries"] = _post("several queries of one view", OBJ,
                                 {"type": "object", "properties": {"queries": {"type": "array", "items": OBJ}}})
    p["/{db}/_design/{ddoc}/_info"] = _get_head("a design document's index information", OBJ)
    # full-text search (docs/search.md)
    search = "/_design/{ddoc}/_nouveau/{index}"
    search_q = (_qs("q bookmark partition", STR) + _qs("limit", INT) + _qs("include_docs update", BOOL)
                + _qs("sort counts ranges", JSON_TEXT))
    for base, what in (("/{db}", ""), (part, " over one partition")):
        p[base + search] = _get_head("full-text search of a Nouveau index" + what, OBJ, search_q)
        p[base + search]["post"] = _op("full-text search" + what + ", the parameters in a JSON body",
                                       {"200": _json(OBJ)}, None, _body(OBJ))
        p[base + "/_design/{ddoc}/_nouveau_info/{index}"] = _get_head("a Nouveau index's information", OBJ)
    p["/{db}/_nouveau_cleanup"] = _post("remove full-text indexes no design document uses", _ref("Ok"), OBJ,
                                        status="202", body_required=False)
    p["/_nouveau_analyze"] = _post("the tokens an analyzer makes of a text",
                                   {"type": "object", "properties": {"tokens": {"type": "array", "items": STR}}},
                                   {"type": "object", "properties": {"analyzer": STR, "text": STR}})
    update_ok = {"200": ANY_CONTENT, "201": ANY_CONTENT, "202": ANY_CONTENT}
    upd_body = {"required": False, "content": {"*/*": {"schema": ANY}}}
    for path in ("/{db}/_design/{ddoc}/_update/{func}", "/{db}/_design/{ddoc}/_update/{func}/{docid}"):
        p[path] = {"post": _op("run an update function", update_ok, None, upd_body),
                   "put": _op("run an update function", update_ok, None, upd_body),
                   "get": _op("always 405: update functions need POST or PUT", {})}
    return p


def _with_path_parameters(paths: dict[str, dict]) -> dict[str, dict]:
    """Declare each `{name}` of a path template once, on its path item."""
    for path, item in paths.items():
        names = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if names:
            item["parameters"] = [PATH_PARAMS[n] for n in names]
    return paths


def build() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "couchpy HTTP API",
            "version": "3.4.3",
            "description": "Apache CouchDB 3.4.3's HTTP API as couchpy serves it. Every 4xx answer "
                           "is CouchDB's error body `{\"error\", \"reason\"}`. COPY operations are in "
                           "the `x-copy` extension of their path items (OpenAPI 3.1 has no COPY).",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "AuthSession"},
                                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{}, {"basic": []}, {"cookie": []}, {"bearer": []}],
        "paths": _with_path_parameters(_paths()),
    }


DOCUMENT = build()


async def serve(request: web.Request) -> web.Response:
    return json_response(DOCUMENT)


def routes_list() -> list[web.RouteDef]:
    return [web.get(PATH, serve), not_allowed(PATH, "GET,HEAD")]
