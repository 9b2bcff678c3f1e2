"""The command line's cluster parts: `serve --node-name/--cluster` and `couchpy cluster ...`.

`couchpy cluster haproxy-config --cluster FILE --output haproxy.cfg` reads the placement of every
database from the first node that answers and writes HAProxy's configuration and its map file
(`haproxy.cfg.map`); with `--watch` it keeps polling and, when placement changes, rewrites them and
makes HAProxy (run in master-worker mode, `haproxy -W`) reload by sending SIGUSR2 to `--reload-pid`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from couchpy.cluster_config import ClusterConfigError, ClusterDef, parse
from couchpy.config import Config
from couchpy.node import Node

from .cluster_agent import DBS, ClusterAgent
from .cluster_haproxy import render


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node-name", default=None, help="this node's name in the [cluster] definition")
    p.add_argument("--cluster", default=None,
                   help="INI file holding the shared [cluster] section (default: the node's own config)")


def load_definition(path: str | None, config: Config | None = None) -> ClusterDef | None:
    section = Config(Path(path)).section("cluster") if path else (config.section("cluster") if config else {})
    return parse(section)


def agent_for(node: Node, args: argparse.Namespace) -> ClusterAgent | None:
    """The node's cluster agent when a cluster is defined, else None (a single node)."""
    try:
        cdef = load_definition(args.cluster, node.config)
        if cdef is None:
            if args.node_name:
                raise ClusterConfigError("--node-name given but no [cluster] definition names any node")
            return None
        if not args.node_name:
            raise ClusterConfigError("a [cluster] is defined: say which of its nodes this is (--node-name)")
        # a definition file is re-read while serving (a changed node list rebalances); one in the
        # node's own config changes with a restart
        reload = (lambda: load_definition(args.cluster)) if args.cluster else None
        return ClusterAgent(node, cdef, args.node_name, reload=reload)
    except ClusterConfigError as exc:
        print(f"couchpy serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def add_subcommand(sub) -> None:
    cp = sub.add_parser("cluster", help="cluster tools (see `couchpy cluster --help`)")
    csub = cp.add_subparsers(dest="cluster_command", required=True)
    hp = csub.add_parser("haproxy-config", help="write an HAProxy configuration routing databases to their replicas")
    hp.add_argument("--cluster", required=True, help="INI file holding the [cluster] section")
    hp.add_argument("--output", "-o", required=True, help="configuration file to write (map file: OUTPUT.map)")
    hp.add_argument("--bind", default="127.0.0.1:5984", help="where HAProxy listens (default 127.0.0.1:5984)")
    hp.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                    help="keep polling placement every SECONDS and rewrite on change")
    hp.add_argument("--reload-pid", default=None,
                    help="file holding HAProxy's master pid, sent SIGUSR2 after each rewrite")


async def fetch_placement(cdef: ClusterDef, session: aiohttp.ClientSession) -> dict[str, list[str]]:
    """{db: replica nodes} from the first node that answers."""
    last: Exception | None = None
    for node in cdef.nodes:
        try:
            async with session.get(f"{node.url}/{DBS}/_all_docs", params={"include_docs": "true"}) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientError(f"{node.public_url}/{DBS}: HTTP {resp.status}")
                rows = (await resp.json())["rows"]
                # a node taken out of the definition may still be listed until its databases moved
                return {row["id"]: [n for n in row["doc"]["nodes"] if n in cdef.names] for row in rows
                        if not row["id"].startswith("_design/") and row.get("doc")}
        except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, ValueError) as exc:
            last = exc
    raise aiohttp.ClientError(f"no node answered ({type(last).__name__}: {last})")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def _haproxy_config(args: argparse.Namespace) -> int:
    cdef = load_definition(args.cluster)
    if cdef is None:
        raise ClusterConfigError(f"{args.cluster}: its [cluster] section names no node")
    out = Path(args.output).resolve()
    map_path = out.with_name(out.name + ".map")
    written: dict[str, list[str]] | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while True:
            try:
                placement = await fetch_placement(cdef, session)
            except aiohttp.ClientError as exc:
                if args.watch is None:
                    raise
                print(f"couchpy cluster: {exc}", file=sys.stderr)
                placement = written
            if placement is not None and placement != written:
                cfg, mapping = render(cdef, placement, bind=args.bind, map_path=str(map_path))
                # what HAProxy may be serving already (e.g. written before this command started)
                if _read(map_path) != mapping or _read(out) != cfg + "\n":
                    _write_atomically(map_path, mapping)
                    _write_atomically(out, cfg + "\n")
                    if args.reload_pid:
                        os.kill(int(Path(args.reload_pid).read_text().split()[0]), signal.SIGUSR2)
                written = placement
            if args.watch is None:
                return 0
            await asyncio.sleep(args.watch)


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_haproxy_config(args))
    except (ClusterConfigError, aiohttp.ClientError, OSError, ValueError) as exc:
        print(f"couchpy cluster {args.cluster_command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
