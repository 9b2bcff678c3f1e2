"""`couchpy serve --workers N`: N server processes on one port and one data directory.

The parent is a supervisor only: it prepares the configuration once (so every worker reads the
same admins, session secret and node uuid), starts the workers (`couchpy serve --worker-index i`),
prints the address when all of them listen, restarts a worker that dies, and on SIGTERM or SIGINT
stops them all. It opens no database itself. Each worker binds the port with SO_REUSEPORT, so the
kernel spreads connections over them, and a UNIX socket under `DATA_DIR/.workers/` through which
the others reach worker 0 (http_api/workers.py). Worker 0 runs the node's daemons.

A worker asks the kernel to kill it when the supervisor dies (PR_SET_PDEATHSIG), so a supervisor
killed with SIGKILL leaves no worker serving on its own. SIGKILL, not SIGTERM: a worker whose event
loop hangs would never act on a polite signal, and would go on holding the port (SO_REUSEPORT)
beside the next server started, taking a share of its connections and answering none. Nothing
acknowledged is lost to it (every write is durable before its answer); the supervisor's own
SIGTERM still stops its workers gracefully.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from http_api.workers import LOCKOUT_DIR, SOCKETS_DIR

READY_FD_ENV = "COUCHPY_WORKER_READY_FD"
STOP_GRACE_SECONDS = 15.0
START_TIMEOUT_SECONDS = 60.0
# a worker that dies sooner than this after its start is restarted only after a pause, which
# doubles up to the maximum while it keeps failing (a broken configuration must not spin)
HEALTHY_AFTER_SECONDS = 5.0
MAX_RESTART_DELAY = 10.0
POLL_SECONDS = 0.2

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the supervisor's own shutdown still stops them
        pass


class Worker:
    def __init__(self, index: int, argv: list[str]):
        self.index = index
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.delay = 0.0
        self.restart_at: float | None = None

    def start(self) -> int:
        """Start the process; the read end of its readiness pipe."""
        r, w = os.pipe()
        env = dict(os.environ, **{READY_FD_ENV: str(w)})
        self.proc = subprocess.Popen([*self.argv, "--worker-index", str(self.index)], env=env,
                                     pass_fds=(w,), preexec_fn=_die_with_parent)
        os.close(w)
        self.started = time.monotonic()
        self.restart_at = None
        return r


def _wait_ready(fds: dict[int, Worker], deadline: float) -> None:
    """Until every worker wrote its readiness byte (or exited, which is an error)."""
    pending = dict(fds)
    while pending:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise RuntimeError("workers did not start in time: " + ", ".join(str(w.index) for w in pending.values()))
        ready, _, _ = select.select(list(pending), [], [], min(timeout, POLL_SECONDS))
        for fd in ready:
            data = os.read(fd, 1)
            os.close(fd)
            worker = pending.pop(fd)
            if not data:
                raise RuntimeError(f"worker {worker.index} exited while starting")
        for fd, worker in list(pending.items()):
            if worker.proc is not None and worker.proc.poll() is not None:
                os.close(fd)
                raise RuntimeError(f"worker {worker.index} exited while starting (status {worker.proc.returncode})")


def worker_argv(args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "couchpy_cli", "serve", "--data-dir", str(Path(args.data_dir).resolve()),
            "--workers", str(args.workers), "--log-format", args.log_format]
    if args.host:
        argv += ["--host", args.host]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    if args.config:
        argv += ["--config", str(Path(args.config).resolve())]
    return argv


def supervise(args: argparse.Namespace, banner) -> int:
    """Run `args.workers` workers until SIGTERM/SIGINT; `banner()` prints the address once all
    of them listen."""
    data_dir = Path(args.data_dir).resolve()
    (data_dir / SOCKETS_DIR).mkdir(parents=True, exist_ok=True)
    # a new start forgets failed logins, as CouchDB's in-memory table (no worker has it open yet)
    shutil.rmtree(data_dir / SOCKETS_DIR / LOCKOUT_DIR, ignore_errors=True)
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    argv = worker_argv(args)
    workers = [Worker(i, argv) for i in range(args.workers)]
    try:
        # worker 0 first: it creates the system databases and the catalog before the others open it
        _wait_ready({workers[0].start(): workers[0]}, time.monotonic() + START_TIMEOUT_SECONDS)
        _wait_ready({w.start(): w for w in workers[1:]}, time.monotonic() + START_TIMEOUT_SECONDS)
    except RuntimeError as exc:
        print(f"couchpy: {exc}", file=sys.stderr, flush=True)
        _stop_all(workers)
        return 1
    banner()
    while not stopping:
        time.sleep(POLL_SECONDS)
        now = time.monotonic()
        for w in workers:
            if stopping:
                break
            if w.proc is not None and w.proc.poll() is not None and w.restart_at is None:
                lived = now - w.started
                w.delay = 0.0 if lived >= HEALTHY_AFTER_SECONDS else min(MAX_RESTART_DELAY, max(0.5, w.delay * 2))
                w.restart_at = now + w.delay
                print(f"couchpy: worker {w.index} (pid {w.proc.pid}) exited with status {w.proc.returncode}; "
                      f"restarting in {w.delay:.1f}s", file=sys.stderr, flush=True)
            if w.restart_at is not None and now >= w.restart_at:
                os.close(w.start())  # serving again once it listens; nobody waits for that here
    _stop_all(workers)
    return 0


def _stop_all(workers: list[Worker]) -> None:
    running = [w.proc for w in workers if w.proc is not None and w.proc.poll() is None]
    for p in running:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for p in running:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def signal_ready() -> None:
    """In a worker: tell the supervisor this worker listens."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"1")
        os.close(int(fd))
    except OSError:
        pass
