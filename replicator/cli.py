"""`couchpy replicate SOURCE TARGET`: one replication from the command line.

Both ends are database URLs (credentials in the URL). Shows a live progress line on stderr (docs
processed / pending, rate) and a summary at the end; exits 0 on success, 1 on failure, 2 on bad
usage. `--continuous` runs until interrupted (Ctrl-C checkpoints and exits 0), restarting the run
with backoff after transient failures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time
from typing import Any, TextIO

from couchpy import jsonutil
from couchpy.errors import CouchError

from . import params as params_mod
from .endpoint import make_endpoint
from .errors import PermanentError, ReplicationError
from .job import Replication


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="couchpy replicate", description="Replicate SOURCE to TARGET (database URLs).")
    ap.add_argument("source")
    ap.add_argument("target")
    ap.add_argument("--continuous", action="store_true", help="keep replicating new changes until interrupted")
    ap.add_argument("--create-target", action="store_true", help="create the target database if missing")
    ap.add_argument("--doc-ids", nargs="+", metavar="ID", help="replicate only these documents (also comma-separated)")
    ap.add_argument("--selector", metavar="JSON", help="replicate only documents matching this Mango selector")
    ap.add_argument("--batch-size", type=int, default=500, help="changes per batch (worker_batch_size)")
    ap.add_argument("--no-checkpoints", action="store_true", help="neither read nor write checkpoints")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    ap.add_argument("--progress", action="store_true", help="show the progress line even when stderr is not a terminal")
    return ap


def _body(ns: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"source": ns.source, "target": ns.target, "continuous": ns.continuous,
                            "create_target": ns.create_target, "worker_batch_size": ns.batch_size,
                            "use_checkpoints": not ns.no_checkpoints}
    if ns.doc_ids:
        body["doc_ids"] = [d for arg in ns.doc_ids for d in arg.split(",") if d]
    if ns.selector:
        body["selector"] = jsonutil.loads(ns.selector)
    return body


class Progress:
    """The live line: processed / pending and the write rate."""

    def __init__(self, out: TextIO, enabled: bool):
        self.out = out
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.width = 0

    def line(self, rep: Replication) -> str:
        s = rep.stats
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        pending = rep.changes_pending
        pend = f" | {pending} pending" if isinstance(pending, int) else ""
        return (f"{s.missing_checked} checked | {s.docs_written} written | {s.doc_write_failures} failed"
                f"{pend} | {s.docs_written / elapsed:,.0f} docs/s | {elapsed:,.1f}s")

    def show(self, rep: Replication) -> None:
        if not self.enabled:
            return
        text = self.line(rep)
        pad = max(0, self.width - len(text))
        self.width = len(text)
        self.out.write("\r" + text + " " * pad)
        self.out.flush()

    def end(self) -> None:
        if self.enabled and self.width:
            self.out.write("\n")
            self.out.flush()


async def _run(params: params_mod.ReplicationParams, progress: Progress, err: TextIO) -> tuple[int, Replication | None]:
    delay = 1.0
    last: Replication | None = None
    while True:
        opts = dict(http_connections=params.http_connections, connection_timeout=params.connection_timeout,
                    retries_per_request=params.retries_per_request)
        source = make_endpoint(params.source, **opts)
        target = make_endpoint(params.target, **opts)
        rep = Replication(params, source, target)
        last = rep
        ticker = asyncio.create_task(_tick(rep, progress))
        try:
            await rep.run()
            return 0, rep
        except PermanentError as exc:
            progress.end()
            err.write(f"replication failed: {exc.reason}\n")
            return 1, rep
        except (ReplicationError, OSError) as exc:
            if not params.continuous:
                progress.end()
                err.write(f"replication failed: {getattr(exc, 'reason', exc)}\n")
                return 1, rep
            progress.end()
            err.write(f"replication crashed ({getattr(exc, 'reason', exc)}); restarting in {delay:.0f}s\n")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(rep.checkpoint(), 5)
            return 0, last
        finally:
            ticker.cancel()
            with contextlib.suppress(Exception):
                await source.close()
            with contextlib.suppress(Exception):
                await target.close()


async def _main(params: params_mod.ReplicationParams, progress: Progress, err: TextIO) -> tuple[int, Replication | None]:
    """Run with Ctrl-C / SIGTERM cancelling the replication (which checkpoints) instead of the loop."""
    loop = asyncio.get_running_loop()
    inner = asyncio.create_task(_run(params, progress, err))
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, inner.cancel)
    return await inner


async def _tick(rep: Replication, progress: Progress) -> None:
    while True:
        progress.show(rep)
        await asyncio.sleep(0.25)


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    ap = _parser()
    ns = ap.parse_args(argv)
    for url in (ns.source, ns.target):
        if "://" not in url:
            err.write(f"couchpy replicate: {url!r} is not a database URL (http://[user:pass@]host:port/db)\n")
            return 2
    try:
        params = params_mod.parse(_body(ns))
        # no node runs it: the host does (a "localhost" URL names another database on another host)
        params.node_uuid = f"host:{socket.gethostname()}"
    except CouchError as exc:
        err.write(f"couchpy replicate: {exc.reason}\n")
        return 2
    tty = hasattr(err, "isatty") and err.isatty()
    progress = Progress(err, not ns.quiet and (tty or ns.progress))
    t0 = time.monotonic()
    try:
        code, rep = asyncio.run(_main(params, progress, err))
    except KeyboardInterrupt:
        code, rep = 0, None
    progress.end()
    if rep is not None and code == 0:
        s = rep.stats
        elapsed = time.monotonic() - t0
        out.write(f"replicated {rep.source.display} -> {rep.target.display}\n")
        out.write(
            f"  checked {s.missing_checked}, missing {s.missing_found}, read {s.docs_read}, written {s.docs_written}, "
            f"failed {s.doc_write_failures} in {elapsed:.1f}s ({s.docs_written / max(elapsed, 1e-6):,.0f} docs/s)\n"
            f"  source seq {rep.through_seq}; session {rep.session_id}\n"
        )
    return code
