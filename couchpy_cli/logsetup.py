"""Logging for `couchpy serve`: CouchDB's `[log] level`, plain or JSON lines on stderr.

Plain lines look like CouchDB's (`[info] 2026-12-02T11:42:00.123Z couchpy@127.0.0.1 ...`); with
`--log-format json` each record is one JSON object (`ts`, `level`, `logger`, `msg`, and for access
lines `method`, `path`, `status`, `ms`, `user`, `peer`), for log shippers.
"""

from __future__ import annotations

import datetime
import logging
import sys

from couchpy import jsonutil
from http_api.node_api import LOG_LEVELS, NODE_NAME

ACCESS_FIELDS = ("method", "path", "status", "ms", "user", "peer")


def _iso(created: float) -> str:
    return datetime.datetime.fromtimestamp(created, datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class CouchFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = {"WARNING": "warning", "CRITICAL": "critical"}.get(record.levelname, record.levelname.lower())
        line = f"[{level}] {_iso(record.created)} {NODE_NAME} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": _iso(record.created), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return jsonutil.dumps(out).decode()


def setup(level_name: str | None, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else CouchFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # libraries: warnings and worse
    level = LOG_LEVELS.get((level_name or "info").strip().lower(), logging.INFO)
    logging.getLogger("couchpy").setLevel(level)
