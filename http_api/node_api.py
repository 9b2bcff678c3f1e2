"""Node-level endpoints: `/_node/{node}/_config`, `_stats`, `_system`, `_prometheus`, `/_membership`.

`{node}` is `_local` or this node's name, as in CouchDB. Configuration changes made here are
written to the INI file (unless `X-Couch-Persist: false`) and applied at once where CouchDB applies
them live: the log level, `max_dbs_open`, the replicator's `max_jobs`/`interval`/`max_churn`; the
authentication and CORS settings are read from the configuration on every use.

The metrics middleware counts every request by method and status and times it, so `_stats` and
`_prometheus` move with the traffic. With several workers (`couchpy serve --workers N`) these
endpoints and `_system` answer for the whole node, whichever worker a client reaches: it asks
every other worker for its own figures (`workers.ask_others`; `_stats` then answers a worker's
`Metrics.snapshot()`, `_system` its own figures) and merges them with its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time

from aiohttp import web

import replicator
from couchpy import jsonutil
from couchpy.errors import BadRequest, NotFound
from couchpy.metrics import Metrics
from couchpy.passwords import hash_password, is_hashed

from . import workers
from .responses import json_response, not_allowed

NODE_NAME = "couchpy@127.0.0.1"
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO, "warning": logging.WARNING,
              "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
              "alert": logging.CRITICAL, "emergency": logging.CRITICAL, "none": logging.CRITICAL + 10}

routes = web.RouteTableDef()
access_log = logging.getLogger("couchpy.access")
slow_log = logging.getLogger("couchpy.slow")


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    """Count and time every request; one access-log line each (at info, as CouchDB's notice
    lines), and a warning for one slower than `[log] slow_request_ms` (default 5000)."""
    metrics = request.app["node"].metrics
    if workers.asked(request):  # a worker asking another for its figures: no client's request
        return await handler(request)
    t0 = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        ms = (time.perf_counter() - t0) * 1000.0
        metrics.inc(("couchdb", "httpd", "requests"))
        metrics.inc(("couchdb", "httpd_request_methods", request.method))
        metrics.inc(("couchdb", "httpd_status_codes", str(status)))
        metrics.observe(("couchdb", "request_time"), ms)
        if access_log.isEnabledFor(logging.INFO):
            _log_access(access_log, logging.INFO, request, status, ms)
        if ms > _slow_ms(request.app):
            _log_access(slow_log, logging.WARNING, request, status, ms)


def _slow_ms(app: web.Application) -> float:
    config = app["node"].config
    cached = app["slow_request_ms"]  # [config version, threshold]: a started app's state is frozen
    if cached[0] != config.version:
        cached[:] = [config.version, float(config.get_int("log", "slow_request_ms", 5000) or 5000)]
    return cached[1]


def _log_access(logger: logging.Logger, level: int, request: web.Request, status: int, ms: float) -> None:
    """CouchDB's access line: peer, user, method, path, status, ok/error, milliseconds. Credentials
    never appear: they travel in headers, which are not logged."""
    user = request.get("user") or "undefined"
    peer = request.remote or "-"
    path = request.rel_url.raw_path_qs
    logger.log(level, "%s %s %s %s %d %s %d", peer, user, request.method, path, status,
               "ok" if status < 400 else "error", round(ms),
               extra={"method": request.method, "path": path, "status": status, "ms": round(ms, 3),
                      "user": user, "peer": peer})


def _check_node(request: web.Request) -> None:
    name = request.match_info["node"]
    if name not in ("_local", NODE_NAME):
        raise NotFound(f"no such node: {name}")


# ------------------------------------------------------------------ configuration


@routes.get("/_node/{node}/_config")
async def config_all(request: web.Request) -> web.Response:
    _check_node(request)
    config = request.app["node"].config
    return json_response({s: config.section(s) for s in config.sections()})


@routes.post("/_node/{node}/_config/_reload")
async def config_reload(request: web.Request) -> web.Response:
    _check_node(request)
    node = request.app["node"]
    node.config.reload()
    for section in node.config.sections():
        for key in node.config.section(section):
            apply_setting(request.app, section, key)
    return json_response({"ok": True})


@routes.get("/_node/{node}/_config/{section}")
async def config_section(request: web.Request) -> web.Response:
    _check_node(request)
    return json_response(request.app["node"].config.section(request.match_info["section"]))


@routes.get("/_node/{node}/_config/{section}/{key}")
async def config_get(request: web.Request) -> web.Response:
    _check_node(request)
    value = request.app["node"].config.get(request.match_info["section"], request.match_info["key"])
    if value is None:
        raise NotFound("unknown_config_value")
    return json_response(value)


@routes.put("/_node/{node}/_config/{section}/{key}")
async def config_put(request: web.Request) -> web.Response:
    _check_node(request)
    section, key = request.match_info["section"], request.match_info["key"]
    try:
        value = jsonutil.loads(await request.read())
    except ValueError:
        raise BadRequest("invalid UTF-8 JSON") from None
    if not isinstance(value, str):
        raise BadRequest("config values must be strings")
    config = request.app["node"].config
    old = config.get(section, key) or ""
    if section == "admins" and not is_hashed(value):
        iterations = config.get_int("chttpd_auth", "iterations", 0) or config.get_int(
            "couch_httpd_auth", "iterations", 600000) or 600000
        value = await _offload(hash_password, value, iterations)
    config.set(section, key, value)
    if request.headers.get("X-Couch-Persist", "true").lower() != "false":
        config.save()
    apply_setting(request.app, section, key)
    return json_response(old)


@routes.delete("/_node/{node}/_config/{section}/{key}")
async def config_delete(request: web.Request) -> web.Response:
    _check_node(request)
    section, key = request.match_info["section"], request.match_info["key"]
    config = request.app["node"].config
    if not config.has(section, key):
        raise NotFound("unknown_config_value")
    old = config.get(section, key) or ""
    config.delete(section, key)
    if request.headers.get("X-Couch-Persist", "true").lower() != "false":
        config.save()
    apply_setting(request.app, section, key)
    return json_response(old)


async def _offload(fn, *args):
    """PBKDF2 is slow on purpose: never on the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def apply_setting(app: web.Application, section: str, key: str) -> None:
    """Make a changed setting take effect in the running server, where CouchDB does so."""
    node = app["node"]
    config = node.config
    if (section, key) == ("log", "level"):
        level = LOG_LEVELS.get((config.get("log", "level") or "info").strip().lower(), logging.INFO)
        logging.getLogger("couchpy").setLevel(level)
    elif (section, key) == ("couchdb", "max_dbs_open"):
        node.max_open = config.get_int("couchdb", "max_dbs_open", 500) or 500
    elif section == "replicator" and key in ("max_jobs", "interval", "max_churn"):
        sched = replicator.get_scheduler(node)
        value = config.get_int("replicator", key, 0)
        if value:
            setattr(sched, key, value / 1000.0 if key == "interval" else value)
            asyncio.ensure_future(sched.rotate())  # start waiting jobs if there is room now


# ------------------------------------------------------------------ metrics


def _system(node) -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = _rss_bytes()
    try:
        open_files = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_files = None
    load1, load5, load15 = os.getloadavg()
    return {
        "uptime": node.metrics.uptime(),
        "memory": {"total": rss, "processes": rss},
        "run_queue": round(load1),
        "run_queue_dirty_cpu": 0,
        "load_average": [load1, load5, load15],
        "os_proc_count": 0,
        "process_count": len(node.tasks.list()),
        "open_files": open_files,
        "open_databases": len(node._open),
        "user_cpu_seconds": usage.ru_utime,
        "system_cpu_seconds": usage.ru_stime,
        "message_queues": {},
    }


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def _node_system(request: web.Request) -> dict:
    """`_system` for the whole node: with several workers, the sum of the workers' memory, open
    files and databases, processes and CPU seconds, the longest uptime, and each worker's own
    figures under `workers` (load and run queue are the machine's, the same in every worker)."""
    own = _system(request.app["node"])
    if not workers.asks_others(request):
        return own
    own["worker"] = request.app["node"].worker_index
    each = [own] + [s for s in await workers.ask_others(request, "/_node/_local/_system") if isinstance(s, dict)]
    each.sort(key=lambda s: s.get("worker", 0))
    out = {**own, "uptime": max(s["uptime"] for s in each), "workers": each}
    out.pop("worker")
    out["memory"] = {k: sum(s["memory"][k] for s in each) for k in own["memory"]}
    for key in ("process_count", "open_databases", "user_cpu_seconds", "system_cpu_seconds"):
        out[key] = sum(s[key] for s in each)
    files = [s["open_files"] for s in each]
    out["open_files"] = None if None in files else sum(files)
    return out


async def _node_metrics(request: web.Request) -> Metrics:
    """This worker's registry, or with several workers the node's (Metrics.merged)."""
    own = request.app["node"].metrics
    if not workers.asks_others(request):
        return own
    others = await workers.ask_others(request, "/_node/_local/_stats")
    return Metrics.merged([own.snapshot()] + [s for s in others if isinstance(s, dict)])


@routes.get("/_node/{node}/_stats")
async def stats(request: web.Request) -> web.Response:
    _check_node(request)
    if workers.asked(request):  # another worker merges this one's figures with its own
        return json_response(request.app["node"].metrics.snapshot())
    return json_response((await _node_metrics(request)).stats_tree())


@routes.get("/_node/{node}/_stats/{path:.+}")
async def stats_path(request: web.Request) -> web.Response:
    _check_node(request)
    out = (await _node_metrics(request)).stats_tree()
    for part in request.match_info["path"].strip("/").split("/"):
        if not isinstance(out, dict) or part not in out:
            raise NotFound("Unknown stat")
        out = out[part]
    return json_response(out)


@routes.get("/_node/{node}/_system")
async def system(request: web.Request) -> web.Response:
    _check_node(request)
    if workers.asked(request):
        own = _system(request.app["node"])
        return json_response({**own, "worker": request.app["node"].worker_index})
    return json_response(await _node_system(request))


@routes.get("/_node/{node}/_prometheus")
async def prometheus(request: web.Request) -> web.Response:
    _check_node(request)
    metrics, info = await asyncio.gather(_node_metrics(request), _node_system(request))
    extra = [
        "# HELP couchdb_memory_bytes resident memory of the server's processes",
        "# TYPE couchdb_memory_bytes gauge",
        f'couchdb_memory_bytes{{memory_type="total"}} {info["memory"]["total"]}',
    ]
    if info["open_files"] is not None:
        extra += ["# HELP couchdb_open_os_files_total number of file descriptors the server has open",
                  "# TYPE couchdb_open_os_files_total gauge", f"couchdb_open_os_files_total {info['open_files']}"]
    body = metrics.prometheus() + "\n".join(extra) + "\n"
    return web.Response(text=body, content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "must-revalidate"})


@routes.get("/_membership")
async def membership(request: web.Request) -> web.Response:
    return json_response({"all_nodes": [NODE_NAME], "cluster_nodes": [NODE_NAME]})


@routes.get("/_cluster_setup")
async def cluster_setup(request: web.Request) -> web.Response:
    # as CouchDB 3.4.3 set up as a single node answers; a cluster answers from http_api/cluster.py.
    # Setting up is done by configuration ([cluster] in the INI), so no POST actions.
    return json_response({"state": "single_node_enabled"})


def routes_list() -> list:
    return list(routes) + [
        not_allowed("/_node/{node}/_stats", "GET"),
        not_allowed("/_node/{node}/_system", "GET"),
        not_allowed("/_node/{node}/_prometheus", "GET"),
        not_allowed("/_membership", "GET"),
        not_allowed("/_cluster_setup", "GET"),
    ]
