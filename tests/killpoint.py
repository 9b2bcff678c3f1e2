"""Run the couchpy server, SIGKILLing itself just before its Nth file-system step under a path.

    KILLPOINT_AT=3 KILLPOINT_UNDER=/data/dbs KILLPOINT_LOG=/tmp/k.log \\
        python -m tests.killpoint serve --data-dir /data --port 5984

The steps counted are the calls that make a swap of directories durable or undo one: os.rename,
os.replace, os.fsync, os.unlink and os.rmdir (shutil.rmtree removes through the last two), on a
path under KILLPOINT_UNDER (LMDB's own commits fsync in C and are not counted). Before the kill
the step is appended to KILLPOINT_LOG, so a test knows where each run died. Every step before it
ran for real: this is a crash at that exact point, with the product code unchanged.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys

AT = int(os.environ["KILLPOINT_AT"])
UNDER = os.environ["KILLPOINT_UNDER"]
LOG = os.environ["KILLPOINT_LOG"]
_seen = 0


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def _path(arg, dir_fd=None) -> str:
    if isinstance(arg, int):
        return _fd_path(arg)
    path = os.fsdecode(arg)
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(_fd_path(dir_fd), path)
    return os.path.abspath(path)


def _step(name: str, *paths: str) -> None:
    global _seen
    if not any(p.startswith(UNDER) for p in paths):
        return
    _seen += 1
    if _seen == AT:
        with open(LOG, "a") as f:
            f.write(f"{AT} {name} {' '.join(p[len(UNDER):] for p in paths)}\n")
            f.flush()
            os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)


def _wrap_two(name: str, real):
    def call(src, dst, *args, src_dir_fd=None, dst_dir_fd=None, **kw):
        _step(name, _path(src, src_dir_fd), _path(dst, dst_dir_fd))
        return real(src, dst, *args, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, **kw)

    return call


def _wrap_one(name: str, real):
    def call(path, *args, dir_fd=None, **kw):
        _step(name, _path(path, dir_fd))
        if dir_fd is None:
            return real(path, *args, **kw)
        return real(path, *args, dir_fd=dir_fd, **kw)

    return call


def _fsync(real):
    def call(fd):
        if not isinstance(fd, int):
            fd = fd.fileno()
        _step("fsync", _fd_path(fd))
        return real(fd)

    return call


os.rename = _wrap_two("rename", os.rename)
os.replace = _wrap_two("replace", os.replace)
os.unlink = _wrap_one("unlink", os.unlink)
os.rmdir = _wrap_one("rmdir", os.rmdir)
os.fsync = _fsync(os.fsync)

if __name__ == "__main__":
    sys.argv = ["couchpy_cli", *sys.argv[1:]]
    runpy.run_module("couchpy_cli", run_name="__main__", alter_sys=True)
