"""The parent side of the query servers: a supervised pool of worker processes per language.

Calls are synchronous and meant for worker threads (the indexer runs off the event loop). A call
takes an idle worker (starting one if fewer than `size` run), makes sure it has the right functions
loaded (`prepare`, skipped when the worker already holds them), sends the request and waits at most
`os_process_timeout` for the reply. A worker that times out, crashes or hits its memory limit is
killed and forgotten; the next call starts a fresh one. So a looping or crashing function costs one
failed request (500 os_process_error), never the server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import jsonutil
from ..errors import BadRequest
from ..query_language import RUNNABLE
from .errors import CompilationError, OSProcessError, QueryServerError
from .protocol import write_frame

log = logging.getLogger("couchpy.query_server")

BATCH = 1000  # documents per map call: per-call overhead dominates below a few hundred
LANGUAGES = RUNNABLE  # the names couchpy.query_language.canonical gives them


class UnknownLanguage(BadRequest):
    error = "unknown_query_language"


@dataclass(frozen=True)
class ViewFunctions:
    """The user code of one index: map sources, custom reduce sources (None: built-in or none), lib."""

    language: str
    maps: tuple[str, ...]
    reduces: tuple[str | None, ...] = ()
    names: tuple[str, ...] = ()
    lib: Any = None
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            digest = hashlib.sha256(
                jsonutil.dumps([self.language, list(self.maps), list(self.reduces), self.lib])
            ).hexdigest()
            object.__setattr__(self, "key", digest)

    def spec(self) -> dict:
        return {"map": list(self.maps), "reduce": list(self.reduces), "lib": self.lib}


STARTUP_GRACE_S = 30.0


class Worker:
    def __init__(self, language: str, memory_mb: int, timeout: float):
        self.language = language
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "couchpy.query_server.worker", language, str(memory_mb), str(timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C for the server is not delivered to workers twice
        )
        self.prepared: str | None = None
        self.dead = False
        self.started = False  # has it answered once? (its first answer includes starting up)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        self.dead = True
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass

    def _read_exact(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        # poll, not select: a server holding many databases and feeds has descriptors past
        # select's FD_SETSIZE (1024), where select refuses the worker's pipe outright
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        chunks: list[bytes] = []
        got = 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not poller.poll(left * 1000):
                raise TimeoutError
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def request(self, payload: bytes, timeout: float) -> tuple[bytes, bytes]:
        """Send one request; returns (kind, body). Kills the worker on timeout or crash."""
        try:
            write_frame(self.proc.stdin, payload)
            # Starting the interpreter and V8 is not the user's function running: on a busy machine
            # it alone can take longer than os_process_timeout, so the first answer gets a grace.
            deadline = time.monotonic() + timeout + (0.0 if self.started else STARTUP_GRACE_S)
            head = self._read_exact(4, deadline)
            body = self._read_exact(int.from_bytes(head, "big"), deadline)
        except TimeoutError:
            self.kill()
            raise OSProcessError(f"The {self.language} query server timed out (os_process_timeout)") from None
        except (EOFError, BrokenPipeError, OSError, ValueError):
            code = self.proc.poll()
            self.kill()
            raise OSProcessError(f"The {self.language} query server exited unexpectedly (status {code})") from None
        self.started = True
        return body[:1], body[1:]


class QueryServerPool:
    def __init__(self, size: int = 2, timeout: float = 5.0, memory_mb: int = 512,
                 python_enabled: bool = False, reduce_limit: bool = True):
        self.size = size
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.python_enabled = python_enabled
        self.reduce_limit = reduce_limit
        self._idle: dict[str, list[Worker]] = {lang: [] for lang in LANGUAGES}
        self._count: dict[str, int] = {lang: 0 for lang in LANGUAGES}
        self._cond = threading.Condition()
        self._executor = ThreadPoolExecutor(max_workers=max(size, 1), thread_name_prefix="qs-map")
        self.closed = False
        self.restarts = 0

    @classmethod
    def from_config(cls, config: Any) -> QueryServerPool:
        """Settings: [couchdb] os_process_timeout (ms), [query_servers] python (enables Python),
        [query_server_config] os_process_limit, os_process_memory_mb, reduce_limit."""
        timeout_ms = config.get_int("couchdb", "os_process_timeout", 5000) or 5000
        qs = config.section("query_servers")
        py = str(qs.get("python", "")).strip().lower()
        enabled = py not in ("", "false", "0", "no", "off")
        size = config.get_int("query_server_config", "os_process_limit", 2) or 2
        mem = config.get_int("query_server_config", "os_process_memory_mb", 512) or 512
        limit = (config.get("query_server_config", "reduce_limit", "true") or "true").strip().lower() != "false"
        return cls(size=size, timeout=timeout_ms / 1000.0, memory_mb=mem, python_enabled=enabled, reduce_limit=limit)

    # ------------------------------------------------------------------ workers

    def check_language(self, language: str) -> None:
        if language not in LANGUAGES or (language == "python" and not self.python_enabled):
            raise UnknownLanguage(f"Unknown query language: {language}" if language not in LANGUAGES
                                  else "The python query server is not enabled ([query_servers] python)")

    def _acquire(self, language: str) -> Worker:
        self.check_language(language)
        with self._cond:
            while True:
                if self.closed:
                    raise QueryServerError("query servers are shutting down")
                idle = self._idle[language]
                if idle:
                    return idle.pop()
                if self._count[language] < self.size:
                    self._count[language] += 1
                    break
                self._cond.wait()
        try:
            return Worker(language, self.memory_mb, self.timeout)
        except Exception:
            with self._cond:
                self._count[language] -= 1
                self._cond.notify()
            raise

    def _release(self, w: Worker) -> None:
        with self._cond:
            if w.dead or self.closed:
                self._count[w.language] -= 1
                if not w.dead:
                    w.kill()
                if not self.closed:
                    self.restarts += 1 if w.dead else 0
            else:
                self._idle[w.language].append(w)
            self._cond.notify()

    def _call(self, fns: ViewFunctions, payload: bytes) -> bytes:
        w = self._acquire(fns.language)
        try:
            if w.prepared != fns.key:
                # `prepare` replaces the worker's functions first: one that fails to compile
                # leaves it holding none, not the ones it held before
                w.prepared = None
                kind, body = w.request(b"J" + jsonutil.dumps(["prepare", fns.spec()]), self.timeout)
                if kind != b"O":
                    self._raise(kind, body, w)
                err = jsonutil.loads(body)
                if err is not None:
                    which, idx, msg = err
                    names = fns.names or ()
                    name = names[idx] if idx < len(names) else str(idx)
                    raise CompilationError(f"Compilation of the {which} function in the '{name}' view failed: {msg}")
                w.prepared = fns.key
            kind, body = w.request(payload, self.timeout)
            if kind != b"O":
                self._raise(kind, body, w)
            return body
        finally:
            self._release(w)

    @staticmethod
    def _raise(kind: bytes, body: bytes, w: Worker) -> None:
        error, reason = jsonutil.loads(body)
        if error == "os_process_error":
            w.kill()  # a terminated V8 or an exhausted heap: start clean
            raise OSProcessError(reason)
        if error == "compilation_error":
            raise CompilationError(reason)
        raise QueryServerError(reason, error=error)

    # ------------------------------------------------------------------ API

    def compile(self, fns: ViewFunctions) -> None:
        """Raise CompilationError (400) if any function does not compile."""
        self._call(fns, b"J" + jsonutil.dumps(["ping"]))

    def map_docs(self, fns: ViewFunctions, docs: Sequence[dict]) -> list[list[list | None]]:
        """rows[i][j]: the [key, value] pairs map function j emitted for docs[i] (None if it threw)."""
        if not docs:
            return []
        batches = [docs[i:i + BATCH] for i in range(0, len(docs), BATCH)]
        if len(batches) == 1:
            return self._map_batch(fns, batches[0])
        out: list = []
        for part in self._executor.map(lambda b: self._map_batch(fns, b), batches):
            out.extend(part)
        return out

    def _map_batch(self, fns: ViewFunctions, docs: Sequence[dict]) -> list:
        body = self._call(fns, b"M" + jsonutil.dumps(list(docs)))
        results, errors, logs = jsonutil.loads(body)
        for docid, j, msg in errors:
            name = fns.names[j] if j < len(fns.names) else j
            log.info("map function %s threw for document %r: %s (document skipped)", name, docid, msg)
        for line in logs:
            log.info("view log: %s", line)
        return results

    def filter_docs(self, language: str, src: str, docs: Sequence[dict], req: Any) -> list[bool]:
        """A design document filter function (`filters.<name>`) over documents: one bool each.
        A JavaScript function that throws fails the call with the error it throws (500), as
        couchjs fails the request."""
        if not docs:
            return []
        fns = ViewFunctions(language, ())  # no map functions to prepare: filters compile on demand
        out: list[bool] = []
        for i in range(0, len(docs), BATCH):
            head = jsonutil.dumps([src, req])
            body = self._call(fns, b"F" + head + b"\n" + jsonutil.dumps(list(docs[i:i + BATCH])))
            res, logs, *thrown = jsonutil.loads(body)
            for line in logs:
                log.info("filter log: %s", line)
            if thrown:
                error, reason = thrown[0]
                raise QueryServerError(reason, error=error)
            out.extend(res)
        return out

    def check_function(self, language: str, src: str) -> None:
        """Raise CompilationError (400) unless `src` compiles to a function. It is compiled the
        way filters are, and run over no document: no user code runs."""
        self._call(ViewFunctions(language, ()), b"F" + jsonutil.dumps([src, {}]) + b"\n[]")

    def update(self, language: str, src: str, doc: dict | None, req: dict) -> tuple[dict | None, Any]:
        """An update handler (`updates.<name>`): (document to save or None, response)."""
        body = self._call(ViewFunctions(language, ()), b"U" + jsonutil.dumps([src, req]) + b"\n" + jsonutil.dumps(doc))
        new_doc, resp, logs, *thrown = jsonutil.loads(body)
        for line in logs:
            log.info("update handler log: %s", line)
        if thrown:
            error, reason = thrown[0]
            raise QueryServerError(reason, error=error)
        return new_doc, resp

    def validate_docs(self, language: str, src: str, items: Sequence[tuple[dict, dict | None]],
                      user_ctx: dict, sec_obj: dict) -> list[dict | None]:
        """A `validate_doc_update` function over (new doc, old doc) pairs: None where accepted,
        {"forbidden": msg} or {"unauthorized": msg} where rejected."""
        if not items:
            return []
        fns = ViewFunctions(language, ())
        out: list[dict | None] = []
        for i in range(0, len(items), BATCH):
            head = jsonutil.dumps([src, user_ctx, sec_obj])
            body = self._call(fns, b"V" + head + b"\n" + jsonutil.dumps([list(p) for p in items[i:i + BATCH]]))
            res, logs = jsonutil.loads(body)
            for line in logs:
                log.info("validate_doc_update log: %s", line)
            out.extend(res)
        return out

    def reduce(self, fns: ViewFunctions, idx: int, keys: list, values: list) -> Any:
        """Custom reduce of map rows; keys are [key, docid] pairs."""
        req = jsonutil.dumps(["reduce", idx, keys, values])
        return self._reduce_call(fns, req)

    def rereduce(self, fns: ViewFunctions, idx: int, values: list) -> Any:
        for v in values:
            if isinstance(v, dict) and "reduce_overflow_error" in v and len(v) == 1:
                return v  # an overflowed partial stays the answer, as in CouchDB
        req = jsonutil.dumps(["rereduce", idx, values])
        return self._reduce_call(fns, req)

    def _reduce_call(self, fns: ViewFunctions, req: bytes) -> Any:
        body = self._call(fns, b"J" + req)
        out, logs = jsonutil.loads(body)
        for line in logs:
            log.info("view log: %s", line)
        if self.reduce_limit:
            out_json = jsonutil.dumps(out)
            if len(out_json) > 200 and len(out_json) * 2 > len(req):
                text = out_json[:100].decode("utf-8", "replace")
                return {
                    "reduce_overflow_error": "Reduce output must shrink more rapidly: Current output: '"
                    + text + f"'... (first 100 of {len(out_json)} bytes)"
                }
        return out

    def worker_pids(self, language: str) -> list[int]:
        with self._cond:
            return [w.pid for w in self._idle[language]]

    def close(self) -> None:
        with self._cond:
            self.closed = True
            workers = [w for ws in self._idle.values() for w in ws]
            for ws in self._idle.values():
                ws.clear()
            self._cond.notify_all()
        for w in workers:
            try:
                w.proc.stdin.close()  # EOF: the worker exits by itself
                w.proc.wait(timeout=2)
            except Exception:
                w.kill()
        self._executor.shutdown(wait=False)
