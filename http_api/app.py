"""The aiohttp application: CouchDB's HTTP API over a couchpy node.

Route order matters: aiohttp tries dynamic routes in registration order, so specific paths
(`/{db}/_all_docs`, `/{db}/_design/{ddoc}/_view/{view}`) come before the generic document route
`/{db}/{docid}`, and that before attachments `/{db}/{docid}/{att}`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

import replicator
from couchpy import conflict_resolver, smoosh, tombstones
from couchpy.credentials import Authenticator
from couchpy.node import Node

from . import cluster as cluster_routes
from . import (alldocs, alone_quorum, attachments, bulk, changes, conflict_policy, cors, databases, db_updates,
               documents, mango, node_api, nouveau, openapi, partitions, purge, replication, server, session, updates,
               utils, views, workers)
from .middleware import couch_middleware
from .parkedfeed import IDLE_KEY, close_idle

log = logging.getLogger("couchpy.http")


def make_app(node: Node, cluster: Any = None) -> web.Application:
    """The application; with `cluster` (couchpy_cli.cluster_agent.ClusterAgent) the node serves as
    one of a cluster (http_api/cluster.py)."""
    config = node.config
    max_body = config.get_int("chttpd", "max_http_request_size", 4294967296) or 4294967296
    middlewares = [node_api.metrics_middleware, couch_middleware]
    if cluster is not None:  # before authentication: the replica a request goes to does its own
        middlewares.insert(1, cluster_routes.forward_middleware)
        middlewares.append(cluster_routes.quorum_middleware)  # innermost: after authorization
    else:
        middlewares.append(alone_quorum.alone_quorum_middleware)  # ?w= with one copy of everything
    if node.shared:  # one of several server processes (couchpy serve --workers)
        middlewares.insert(0, workers.workers_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=max_body)
    app["node"] = node
    app[IDLE_KEY] = set()  # http_api/parkedfeed.py: connections kept alive after their feeds
    app["slow_request_ms"] = [None, 5000.0]  # node_api's cache of `[log] slow_request_ms`
    # what handlers keep per app is set here, before the app starts: aiohttp refuses (for now,
    # warns) a key set on a started application
    app["changes_memo"] = {}  # http_api.changes: rows shared by the feeds of each database
    if node.shared:
        workers.install(app)
    app["auth"] = Authenticator(node, workers.shared_lockout(node) if node.shared else None)
    app.on_response_prepare.append(cors.on_response_prepare)
    if cluster is not None:
        app["cluster"] = cluster
        app.router.add_routes(cluster_routes.routes_list())
    app.router.add_routes(server.routes_list())
    app.router.add_routes(openapi.routes_list())
    app.router.add_routes(node_api.routes_list())
    app.router.add_routes(db_updates.routes_list())
    app.router.add_routes(session.routes_list())
    app.router.add_routes(utils.routes)
    db_level = ("/{db}", "/{db}/")
    app.router.add_routes([r for r in databases.routes_list() if r.path == "/{db}"])
    app.router.add_routes(documents.hot_routes())
    # views and Mango next: their paths are distinct from the other `/{db}/_special` ones, and
    # view and _find queries are the next most frequent requests
    for mod in (views, mango, nouveau, partitions, replication, updates):
        app.router.add_routes(mod.routes())
    for mod in (alldocs, bulk, changes, purge, conflict_policy):
        app.router.add_routes(mod.routes_list())
    db_specific = [r for r in databases.routes_list() if r.path not in db_level]
    app.router.add_routes(db_specific)
    app.router.add_routes(documents.routes_list())
    app.router.add_routes(attachments.routes())
    app.router.add_routes([r for r in databases.routes_list() if r.path == "/{db}/"])

    compactions = smoosh.Daemon(node)
    resolver = conflict_resolver.Resolver(node)
    app["conflict_resolver"] = resolver
    expiry = tombstones.Daemon(node)

    shared_watch: list[asyncio.Task] = []  # the task polling other workers' commits

    async def on_startup(app: web.Application) -> None:
        if node.shared:
            shared_watch.append(asyncio.get_running_loop().create_task(node.watch_shared()))
        if node.primary:  # the node's daemons: once per node, in worker 0
            replicator.start(node)
            compactions.start()
            resolver.start()
            expiry.start()
        if cluster is not None:
            await cluster.start()

    async def on_shutdown(app: web.Application) -> None:
        # Runs before aiohttp waits for in-flight handlers: end what would otherwise keep them
        # open (replication jobs reading feeds, clients' continuous feeds).
        node.begin_shutdown()
        close_idle(app[IDLE_KEY])
        for task in shared_watch:
            task.cancel()
        await compactions.stop()
        await resolver.stop()
        await expiry.stop()
        if cluster is not None:
            await cluster.close()
        await replicator.stop(node)

    async def on_cleanup(app: web.Application) -> None:
        await node.aclose()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
