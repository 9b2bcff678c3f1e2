"""Replication over HTTP: POST /_replicate and the scheduler's views.

    POST /_replicate          one-shot: answers when done, with the session history (CouchDB's shape);
                              continuous: 202 {"ok": true, "_local_id": <id>} at once;
                              cancel: true (with the same source/target/options, or replication_id)
    GET  /_scheduler/jobs     running/pending/crashing jobs
    GET  /_scheduler/docs     states of the _replicator documents
    GET  /_scheduler/docs/{db}/{docid}

The work is done by the replicator package; `_active_tasks` lists running replications through the
node's task registry (see replicator.scheduler).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from aiohttp import web

import replicator
from couchpy import jsonutil
from couchpy.errors import BadRequest, NotFound
from replicator import filter_code
from replicator import params as params_mod
from replicator.errors import AuthError, DbNotFound, ReplicationError
from replicator.replicator_db import DBNAME, DocState
from replicator.scheduler import Job

from .responses import error_response, json_response

T = TypeVar("T")


async def _body(request: web.Request) -> dict:
    raw = await request.read()
    body = jsonutil.loads(raw)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


async def post_replicate(request: web.Request) -> web.Response:
    node = request.app["node"]
    params = await filter_code.resolved(params_mod.parse(await _body(request)), node)
    sched = replicator.get_scheduler(node)
    if params.cancel:
        rid = params.replication_id or sched.replication_id(params)
        job = sched.get(rid)
        if job is None:
            raise NotFound(f"Replication `{rid}` not found", "not_found")
        await sched.remove(job.rep_id)
        return json_response({"ok": True, "_local_id": job.rep_id})
    if params.continuous:
        job = sched.add(params, restart=True)
        return json_response({"ok": True, "_local_id": job.rep_id}, status=202)
    job = sched.add(params, restart=False)
    try:
        result = await job.done
    except DbNotFound as exc:
        return error_response(404, "db_not_found", exc.reason)
    except AuthError as exc:
        return error_response(401 if exc.status == 401 else 403, "unauthorized" if exc.status == 401 else "forbidden", exc.reason)
    except ReplicationError as exc:
        # a client's mistake (bad filter, bad parameters) keeps its 4xx; anything else is ours
        status = exc.status if isinstance(exc.status, int) and 400 <= exc.status < 500 else 500
        return error_response(status, exc.error, exc.reason)
    except Exception as exc:  # noqa: BLE001 - a crashed run is reported, not a 500 without a body
        return error_response(500, "replication_failed", f"{type(exc).__name__}: {exc}")
    return json_response(result)


def _page(request: web.Request, items: Sequence[T], render: Callable[[T], dict], key: str) -> web.Response:
    """One page of `items`; only the page's items are rendered, so a page stays cheap however many
    replications the node holds."""
    try:
        limit = int(request.query.get("limit", len(items)))
        skip = int(request.query.get("skip", 0))
    except ValueError:
        raise BadRequest("limit and skip must be integers") from None
    if limit < 0 or skip < 0:
        raise BadRequest("limit and skip must be >= 0")
    return json_response({"total_rows": len(items), "offset": skip,
                          key: [render(item) for item in items[skip : skip + limit]]})


async def scheduler_jobs(request: web.Request) -> web.Response:
    sched = replicator.get_scheduler(request.app["node"])
    jobs = [j for j in sched.jobs.values() if j.state not in ("completed", "failed")]
    return _page(request, jobs, Job.job_json, "jobs")


def _doc_states(request: web.Request) -> list[DocState]:
    rdb = replicator.get_replicator_db(request.app["node"])
    return rdb.states() if rdb is not None else []


async def scheduler_docs(request: web.Request) -> web.Response:
    return _page(request, _doc_states(request), DocState.doc_json, "docs")


async def scheduler_docs_db(request: web.Request) -> web.Response:
    db = request.match_info["db"]
    if db != "_replicator" and not request.app["node"].exists(db):
        raise NotFound("Database does not exist.")
    # every _replicator document this node watches lives in the one `_replicator` database
    return _page(request, _doc_states(request) if db == DBNAME else [], DocState.doc_json, "docs")


async def scheduler_doc(request: web.Request) -> web.Response:
    db, docid = request.match_info["db"], request.match_info["docid"]
    rdb = replicator.get_replicator_db(request.app["node"])
    state = rdb.docs.get(docid) if rdb is not None and db == DBNAME else None
    if state is None:
        raise NotFound("unknown document")
    return json_response(state.doc_json())


async def scheduler_job(request: web.Request) -> web.Response:
    sched = replicator.get_scheduler(request.app["node"])
    job = sched.get(request.match_info["jobid"])
    if job is None:
        raise NotFound("unknown job id")
    return json_response(job.job_json())


def routes() -> list[web.RouteDef]:
    return [
        web.post("/_replicate", post_replicate),
        web.get("/_scheduler/jobs", scheduler_jobs),
        web.get("/_scheduler/jobs/{jobid}", scheduler_job),
        web.get("/_scheduler/docs", scheduler_docs),
        web.get("/_scheduler/docs/{db}", scheduler_docs_db),
        web.get("/_scheduler/docs/{db}/{docid:.+}", scheduler_doc),
    ]
