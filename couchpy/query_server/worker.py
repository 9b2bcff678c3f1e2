"""A query-server worker process: `python -m couchpy.query_server.worker <language> <memory_mb> <timeout_s>`.

Reads framed requests on stdin, answers on stdout (the real stdout is kept for frames and the
Python-level stdout is pointed at stderr, so a stray print in user code cannot corrupt the stream).

Requests (first byte selects the kind):
    b"J" + JSON array   ["prepare", spec] | ["reduce", idx, keys, values] | ["rereduce", idx, values]
    b"M" + JSON array of documents (map them with the prepared functions)
Replies:
    b"O" + JSON result  |  b"E" + JSON [error, reason]
A map reply is `[results, errors, logs]` where results[i][j] is the rows function j emitted for
document i, or null when it threw (that document is skipped for that view).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time

from .. import jsonutil
from .js_engine import EngineError, JSEngine
from .protocol import dumps, read_frame, write_frame
from .py_engine import PyEngine


def main(argv: list[str]) -> None:
    lang = argv[0]
    memory_mb = int(argv[1]) if len(argv) > 1 else 0
    timeout = float(argv[2]) if len(argv) > 2 else 0.0
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = os.fdopen(os.dup(0), "rb")

    _watch_parent()

    if lang == "javascript":
        engine = JSEngine(max_memory=memory_mb << 20 if memory_mb else None, timeout=timeout or None)
    elif lang == "python":
        if memory_mb:
            cap = memory_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        engine = PyEngine()
    else:
        raise SystemExit(f"unknown language {lang}")

    while True:
        frame = read_frame(inp)
        if frame is None:
            break
        kind, body = frame[:1], frame[1:]
        try:
            if kind == b"M":
                reply = b"O" + engine.map_raw(body)
            elif kind == b"F":
                # b"F" + JSON [src, req] + b"\n" + JSON array of documents
                head, docs = body.split(b"\n", 1)
                src, req = jsonutil.loads(head)
                reply = b"O" + engine.filter(src, docs, req)
            elif kind == b"U":
                # b"U" + JSON [src, req] + b"\n" + JSON document (or null)
                head, doc = body.split(b"\n", 1)
                src, req = jsonutil.loads(head)
                reply = b"O" + engine.update(src, doc, req)
            elif kind == b"V":
                # b"V" + JSON [src, userCtx, secObj] + b"\n" + JSON array of [newDoc, oldDoc]
                head, items = body.split(b"\n", 1)
                src, user_ctx, sec_obj = jsonutil.loads(head)
                reply = b"O" + engine.validate(src, items, user_ctx, sec_obj)
            else:
                msg = jsonutil.loads(body)
                cmd = msg[0]
                if cmd == "prepare":
                    reply = b"O" + dumps(engine.prepare(msg[1]))
                elif cmd == "reduce":
                    reply = b"O" + _dumps(engine.reduce(msg[1], msg[2], msg[3], False))
                elif cmd == "rereduce":
                    reply = b"O" + _dumps(engine.reduce(msg[1], None, msg[2], True))
                elif cmd == "ping":
                    reply = b"O" + dumps(os.getpid())
                else:
                    reply = b"E" + dumps(["unknown_command", str(cmd)])
        except EngineError as exc:
            reply = b"E" + dumps([exc.error, exc.reason])
        except MemoryError:
            reply = b"E" + dumps(["os_process_error", "memory limit reached"])
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the worker lives on
            reply = b"E" + dumps(["query_server_error", f"{type(exc).__name__}: {exc}"])
        write_frame(out, reply)
    engine.close()
    out.flush()
    os._exit(0)  # V8's threads would otherwise keep the process alive


def _watch_parent() -> None:
    """Exit when the server goes away, even if user code is looping (no orphaned workers)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _dumps(obj):
    return jsonutil.dumps(obj)


if __name__ == "__main__":
    main(sys.argv[1:])
