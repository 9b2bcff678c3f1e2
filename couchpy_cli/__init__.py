"""The `couchpy` command: `serve` (the default), `replicate`, `dump`/`load`/`compact`, `cluster`.

This package is the composition root: it wires the engine (`couchpy`), the HTTP application
(`http_api`) and the replicator (`replicator`) together; none of those imports it.

`couchpy serve` with no flags uses an embedded default: a data directory `./couchpy-data`, bound to
127.0.0.1:5984. On first start with no admin configured it creates `admin` with a random password,
stores only its salted PBKDF2 hash in the data directory's `couchpy.ini`, and prints the URL and the
credentials once. Plain-text `[admins]` entries (as CouchDB allows in local.ini) are hashed on start.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import secrets
import signal
import sys
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

import couchpy
from couchpy.config import Config
from couchpy.node import Node
from couchpy.passwords import hash_password, is_hashed
from http_api.app import make_app
from replicator.cli import main as replicate_main

from http_api import workers as http_workers

from . import backup, cluster, logsetup, workers
from .backup import resume_point
from .compact import compact
from .dbclient import ClientError, DbClient
from .progress import Progress

DEFAULT_DATA_DIR = "couchpy-data"


def prepare_config(data_dir: Path, config_path: Path | None) -> tuple[Config, str | None]:
    """Load the config, hash plain-text admins, create the first admin. Returns (config, new password)."""
    config = Config(config_path or data_dir / "couchpy.ini")
    # CouchDB 3.x reads [chttpd_auth] first and falls back to the older [couch_httpd_auth].
    iterations = (
        config.get_int("chttpd_auth", "iterations", 0)
        or config.get_int("couch_httpd_auth", "iterations", 600000)
        or 600000
    )
    changed = config.ensure_generated()
    for name, value in config.section("admins").items():
        if not is_hashed(value):
            config.set("admins", name, hash_password(value, iterations))
            changed = True
    generated = None
    if not config.section("admins"):
        generated = secrets.token_urlsafe(18)
        config.set("admins", "admin", hash_password(generated, iterations))
        changed = True
    if changed:
        config.save()
    return config, generated


def tune_gc() -> None:
    """Collect cyclic garbage less often. Reference counting frees almost everything a request
    allocates; the cyclic collector's default (a pass every 700 allocations) mostly rescans the
    thousands of young objects a large listing or bulk write is building, which halved the
    throughput of `_changes` and `_all_docs`. Objects alive after start-up are frozen out of
    every future pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit. Every open feed, replication
    connection and open database holds descriptors, and distributions often default the soft
    limit to 1024 while allowing far more; raising the hard limit itself is the OS's business
    (see docs/benchmarks.md). Returns the (soft, hard) limits in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        # an unlimited hard limit still has the kernel's fs.nr_open as its ceiling
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # above fs.nr_open: keep what we have
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _address(args: argparse.Namespace, config: Config) -> tuple[str, int]:
    host = args.host or config.get("chttpd", "bind_address") or "127.0.0.1"
    port = args.port if args.port is not None else int(config.get("chttpd", "port") or 5984)
    return host, port


def _banner(host: str, port: int, data_dir: Path, generated: str | None) -> None:
    shown_host = f"[{host}]" if ":" in host else host
    print(f"couchpy listening on http://{shown_host}:{port}/ (data: {data_dir})", flush=True)
    if generated:
        print(f"Created server admin -- user: admin  password: {generated}", flush=True)
        print(f"  try: curl http://admin:{generated}@{shown_host}:{port}/", flush=True)
        print("  (only its PBKDF2 hash is stored; this is the only time the password is shown)", flush=True)


def default_workers() -> int:
    """`--workers` when not given: one server process per core this process may run on."""
    return len(os.sched_getaffinity(0))


def start(args: argparse.Namespace) -> int:
    """`couchpy serve`: one server process, or the supervisor of `--workers` of them
    (couchpy_cli.workers). Without `--workers`, one per core, and one for a node of a cluster
    (several workers are not available there yet)."""
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare_config(data_dir, Path(args.config) if args.config else None)
    config, generated = prepared
    clustered = bool(args.node_name or args.cluster or config.section("cluster"))
    if args.workers is None:
        args.workers = 1 if clustered else default_workers()
    if args.workers == 1:
        return _serve_here(args, prepared)
    if clustered:
        print("couchpy: --workers above 1 is not available for a node of a cluster yet", file=sys.stderr)
        return 2
    host, port = _address(args, config)
    return workers.supervise(args, lambda: _banner(host, port, data_dir, generated))


async def serve(args: argparse.Namespace, prepared: tuple[Config, str | None] | None = None) -> None:
    """One server process: the only one, or worker `args.worker_index` of several. `prepared`:
    what `prepare_config` returned, when the caller has run it already (its generated admin
    password is shown only once)."""
    raise_open_files_limit()
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config, generated = prepared or prepare_config(data_dir, Path(args.config) if args.config else None)
    logsetup.setup(config.get("log", "level"), args.log_format)
    host, port = _address(args, config)
    worker = args.worker_index  # None: the only server process
    node = Node(data_dir, config, workers=args.workers if worker is not None else 1, worker_index=worker or 0)
    if node.primary:
        node.ensure_system_dbs()
    app = make_app(node, cluster.agent_for(node, args))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    # several workers bind the same port: the kernel spreads connections over them
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True, reuse_port=worker is not None)
    await site.start()
    if worker is not None:
        path = http_workers.socket_path(data_dir, worker)
        Path(path).unlink(missing_ok=True)  # left by a worker that was killed
        await web.UnixSite(runner, path).start()
        workers.signal_ready()
    else:
        _banner(host, port, data_dir, generated)
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover - non-Unix
            pass
    await stop.wait()
    await runner.cleanup()


def _db_command(args: argparse.Namespace) -> int:
    """dump, load and compact: clients of a server's database, named by URL."""
    try:
        return asyncio.run(_run_db_command(args))
    except (ClientError, ValueError, aiohttp.ClientError, OSError) as exc:
        print(f"couchpy {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _run_db_command(args: argparse.Namespace) -> int:
    client = DbClient(args.url)
    try:
        if args.command == "dump":
            progress = Progress("dump")
            if args.output:
                path = Path(args.output)
                since = resume_point(path) if args.resume else None
                with open(path, "ab" if since is not None else "wb") as out:
                    await backup.dump(client, out, mode=args.mode, since=since or 0, header=since is None,
                                      progress=progress)
                    out.flush()
                    os.fsync(out.fileno())
            else:
                await backup.dump(client, sys.stdout.buffer, mode=args.mode, progress=progress)
                sys.stdout.buffer.flush()
        elif args.command == "load":
            progress = Progress("load")
            if args.input:
                with open(args.input, "rb") as f:
                    result = await backup.load(client, f, progress=progress,
                                               total_bytes=os.fstat(f.fileno()).st_size)
            else:
                result = await backup.load(client, sys.stdin.buffer, progress=progress, total_bytes=None)
            return 1 if result["failed"] else 0
        elif args.command == "compact":
            await compact(client, design=args.design, progress=Progress("compact"))
        return 0
    finally:
        await client.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="couchpy", description="A CouchDB-compatible database server.")
    parser.add_argument("--version", action="version", version=f"couchpy {couchpy.__version__}")
    sub = parser.add_subparsers(dest="command")
    sp = sub.add_parser("serve", help="run the server (the default)")
    for p in (parser, sp):
        p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=None, help="port (default 5984)")
        p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="data directory (default ./couchpy-data)")
        p.add_argument("--config", default=None, help="INI file (default DATA_DIR/couchpy.ini)")
        p.add_argument("--log-format", choices=("plain", "json"), default="plain",
                       help="log lines as CouchDB writes them (plain) or one JSON object each")
        p.add_argument("--workers", type=int, default=None,
                       help="server processes sharing the port and the data directory "
                            "(default: one per CPU core; 1 for a node of a cluster)")
        p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
        cluster.add_serve_arguments(p)
    sub.add_parser("replicate", help="replicate SOURCE to TARGET (see `couchpy replicate --help`)")
    dp = sub.add_parser("dump", help="write a database to JSON lines (stdout or --output)")
    dp.add_argument("url", help="database URL, credentials in it (http://admin:pw@127.0.0.1:5984/db)")
    dp.add_argument("--mode", choices=("all", "winners"), default="all",
                    help="every leaf revision (conflicts, deleted branches) or winners only")
    dp.add_argument("--output", "-o", help="write to this file instead of stdout")
    dp.add_argument("--resume", action="store_true", help="continue an interrupted dump into --output")
    lp = sub.add_parser("load", help="write a dump (ours or couchbackup's) into a database")
    lp.add_argument("url", help="database URL (created when missing)")
    lp.add_argument("--input", "-i", help="read this file instead of stdin")
    cp = sub.add_parser("compact", help="compact a database (or a design document's views) and wait")
    cp.add_argument("url", help="database URL")
    cp.add_argument("--design", help="compact this design document's view indexes instead")
    cluster.add_subcommand(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "replicate":
        return replicate_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command in ("dump", "load", "compact"):
        return _db_command(args)
    if args.command == "cluster":
        return cluster.main(args)
    if args.workers is not None and args.workers < 1:
        print("couchpy: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.worker_index is None:
        return start(args)
    return _serve_here(args)


def _serve_here(args: argparse.Namespace, prepared: tuple[Config, str | None] | None = None) -> int:
    uvloop.install()
    try:
        asyncio.run(serve(args, prepared))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
