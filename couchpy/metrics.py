"""Metrics with CouchDB's names: what `/_node/_local/_stats` and `_prometheus` report.

CouchDB keeps its metrics in a tree of named counters, gauges and histograms (couch_stats), e.g.
`couchdb.httpd.requests` (a counter) or `couchdb.request_time` (a histogram of milliseconds). Its
`_stats` endpoint renders the tree as JSON, each leaf `{"value": ..., "type": ..., "desc": ...}`,
and `_prometheus` flattens it: `couchdb.httpd.requests` becomes `couchdb_httpd_requests_total`,
`couchdb.httpd_status_codes.200` becomes `couchdb_httpd_status_codes{code="200"}`, and a histogram
of milliseconds becomes a summary in seconds with quantiles, `_sum` and `_count`.

    m = Metrics()
    m.inc(("couchdb", "httpd", "requests"))
    m.observe(("couchdb", "request_time"), 2.5)         # milliseconds
    m.stats_tree()["couchdb"]["httpd"]["requests"]  -> {"value": 1, "type": "counter", ...}
    m.prometheus()                                     -> text format 0.0.4

The registry is plain data with no I/O; gauges read their value from a function at render time.

Several server processes (`couchpy serve --workers N`) each keep their own registry; the node's
figures are `Metrics.merged` from each one's `snapshot()` (plain JSON data): counters and gauges
summed, a histogram's count, sum, min and max exact, and its percentiles taken over the union of
the workers' recent samples (percentiles cannot be added, samples can be pooled).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str, ...]

PERCENTILES = (50, 75, 90, 95, 99, 999)
RESERVOIR = 1024  # the most recent samples a histogram keeps for its percentiles

STATUS_CODES = ("200", "201", "202", "204", "206", "301", "302", "304", "400", "401", "403", "404",
                "405", "406", "409", "412", "413", "414", "415", "416", "417", "500", "501", "503")
METHODS = ("COPY", "DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT")

# label name for the last path element of counters that CouchDB's prometheus output labels
_LABELLED = {("couchdb", "httpd_status_codes"): "code", ("couchdb", "httpd_request_methods"): "method"}
_FAMILY_HELP = {("couchdb", "httpd_status_codes"): "number of HTTP responses by status code",
                ("couchdb", "httpd_request_methods"): "number of HTTP requests by method"}

# counters that also go down (couch_stats:decrement_counter), which couch_prometheus renders as
# gauges, without the `_total` of a counter
_DECREMENTED = frozenset({("couchdb", "httpd", "clients_requesting_changes")})

COUNTERS: dict[Path, str] = {
    ("couchdb", "httpd", "requests"): "number of HTTP requests",
    ("couchdb", "httpd", "bulk_requests"): "number of bulk requests",
    ("couchdb", "httpd", "view_reads"): "number of view reads",
    ("couchdb", "httpd", "clients_requesting_changes"): "number of clients for continuous _changes",
    ("couchdb", "database_reads"): "number of times a document was read from a database",
    ("couchdb", "database_writes"): "number of times a database was changed",
    ("couchdb", "document_inserts"): "number of documents inserted",
    ("couchdb", "document_writes"): "number of document write operations",
    ("couchdb", "local_document_writes"): "number of _local document write operations",
    ("couchdb", "auth_cache_hits"): "number of authentication cache hits",
    ("couchdb", "auth_cache_misses"): "number of authentication cache misses",
    ("couchdb", "mrview", "map_doc"): "number of documents mapped in the view server",
    ("couchdb", "query_server", "vdu_process_time"): "number of validate_doc_update calls",
    ("mango", "docs_examined"): "number of documents examined by mango queries",
    ("mango", "query_invalid_index"): "number of mango queries that generated an invalid index warning",
    ("couch_replicator", "jobs", "crashes"): "number of replicator job crashes",
    ("couch_replicator", "docs", "failed_state_updates"): "number of _replicator doc state update failures",
    ("couch_replicator", "requests"): "number of HTTP requests made by the replicator",
    ("couch_replicator", "responses", "failure"): "number of failed HTTP responses received by the replicator",
}
for _code in STATUS_CODES:
    COUNTERS[("couchdb", "httpd_status_codes", _code)] = f"number of HTTP {_code} responses"
for _method in METHODS:
    COUNTERS[("couchdb", "httpd_request_methods", _method)] = f"number of HTTP {_method} requests"

HISTOGRAMS: dict[Path, str] = {
    ("couchdb", "request_time"): "length of a request inside CouchDB without MochiWeb",
    ("couchdb", "db_open_time"): "milliseconds required to open a database",
    ("couchdb", "httpd", "bulk_docs"): "distribution of the number of docs in _bulk_docs requests",
    ("mango", "query_time"): "length of time processing a mango query",
}


@dataclass
class Histogram:
    """n, sum, min, max of everything observed, percentiles over the most recent samples."""

    n: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = 0.0
    recent: list[float] = field(default_factory=list)
    _next: int = 0

    def observe(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if len(self.recent) < RESERVOIR:
            self.recent.append(value)
        else:
            self.recent[self._next] = value
            self._next = (self._next + 1) % RESERVOIR

    def percentile(self, p: float) -> float:
        """Linear interpolation between closest ranks over the reservoir (p in 0..100)."""
        data = sorted(self.recent)
        if not data:
            return 0.0
        rank = (len(data) - 1) * p / 100.0
        lo = math.floor(rank)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (rank - lo)

    def state(self) -> dict[str, Any]:
        """Everything `merge` needs, as JSON data."""
        return {"n": self.n, "total": self.total, "low": self.low if self.n else None, "high": self.high,
                "recent": self.recent}

    def merge(self, state: dict[str, Any]) -> None:
        """Add another histogram's `state()`: n, sum, min and max as if this one had observed its
        values too; its recent samples join this one's (unbounded: a merged histogram is only
        rendered, never observed into)."""
        self.n += int(state["n"])
        self.total += float(state["total"])
        if state["low"] is not None:
            self.low = min(self.low, float(state["low"]))
        self.high = max(self.high, float(state["high"]))
        self.recent = self.recent + [float(x) for x in state["recent"]]

    def value(self) -> dict[str, Any]:
        data = sorted(self.recent)
        mean = self.total / self.n if self.n else 0.0
        var = (sum((x - mean) ** 2 for x in data) / len(data)) if data else 0.0
        return {
            "n": self.n,
            "min": 0.0 if self.n == 0 else self.low,
            "max": self.high,
            "arithmetic_mean": mean,
            "median": self.percentile(50),
            "variance": var,
            "standard_deviation": math.sqrt(var),
            "percentile": [[p, self.percentile(p / 10 if p > 100 else p)] for p in PERCENTILES],
            "histogram": _buckets(data),
        }


def _buckets(data: list[float]) -> list[list[float]]:
    """CouchDB's `histogram` member: [upper bound, count] for ten equal-width buckets."""
    if not data:
        return [[0, 0]]
    low, high = data[0], data[-1]
    width = (high - low) / 10 or 1.0
    bounds = [low + width * (i + 1) for i in range(10)]
    counts = [0] * 10
    for x in data:
        counts[min(bisect.bisect_left(bounds, x), 9)] += 1
    return [[b, c] for b, c in zip(bounds, counts) if c]


class Metrics:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.counters: dict[Path, int] = dict.fromkeys(COUNTERS, 0)
        self.histograms: dict[Path, Histogram] = {p: Histogram() for p in HISTOGRAMS}
        self.gauges: dict[Path, tuple[str, Callable[[], float]]] = {}

    def inc(self, path: Path, n: int = 1) -> None:
        """Count `n` more; a path not declared above is created (e.g. a rare status code)."""
        self.counters[path] = self.counters.get(path, 0) + n

    def observe(self, path: Path, value: float) -> None:
        hist = self.histograms.get(path)
        if hist is None:
            hist = self.histograms[path] = Histogram()
        hist.observe(value)

    def gauge(self, path: Path, desc: str, read: Callable[[], float]) -> None:
        self.gauges[path] = (desc, read)

    def uptime(self) -> int:
        return int(time.monotonic() - self.started)

    # ---------------------------------------------------------------- several workers

    def snapshot(self) -> dict[str, Any]:
        """This registry's figures as JSON data (gauges read now), for `merged`."""
        return {
            "uptime": time.monotonic() - self.started,
            "counters": [[list(path), value] for path, value in self.counters.items()],
            "histograms": [[list(path), hist.state()] for path, hist in self.histograms.items()],
            "gauges": [[list(path), desc, read()] for path, (desc, read) in self.gauges.items()],
        }

    @classmethod
    def merged(cls, snapshots: list[dict[str, Any]]) -> Metrics:
        """A registry holding the node's figures, rendered as any other: the sum of the workers'
        counters and gauges, their histograms merged (`Histogram.merge`), and the longest uptime
        (the node's: a restarted worker's is shorter)."""
        out = cls()
        longest = 0.0
        gauges: dict[Path, tuple[str, float]] = {}
        for snap in snapshots:
            longest = max(longest, float(snap["uptime"]))
            for path, value in snap["counters"]:
                out.inc(tuple(path), int(value))
            for path, state in snap["histograms"]:
                out.histograms.setdefault(tuple(path), Histogram()).merge(state)
            for path, desc, value in snap["gauges"]:
                total = gauges.get(tuple(path), (desc, 0))[1] + value
                gauges[tuple(path)] = (desc, total)
        for path, (desc, value) in gauges.items():
            out.gauge(path, desc, lambda value=value: value)
        out.started = time.monotonic() - longest
        return out

    # ---------------------------------------------------------------- rendering

    def stats_tree(self) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for path, value in self.counters.items():
            _put(tree, path, {"value": value, "type": "counter", "desc": _desc(path)})
        for path, hist in self.histograms.items():
            _put(tree, path, {"value": hist.value(), "type": "histogram", "desc": HISTOGRAMS.get(path, "")})
        for path, (desc, read) in self.gauges.items():
            _put(tree, path, {"value": read(), "type": "gauge", "desc": desc})
        return tree

    def prometheus(self) -> str:
        """Prometheus text exposition (0.0.4) with CouchDB's metric names."""
        lines: list[str] = []
        families: dict[str, list[str]] = {}
        for path, value in sorted(self.counters.items()):
            label = _LABELLED.get(path[:-1])
            if label:
                name = "_".join(path[:-1])
                head = [f"# HELP {name} {_FAMILY_HELP[path[:-1]]}", f"# TYPE {name} counter"]
                families.setdefault(name, head).append(f'{name}{{{label}="{path[-1]}"}} {value}')
            elif path in _DECREMENTED:
                name = "_".join(path)
                lines += [f"# HELP {name} {_desc(path)}", f"# TYPE {name} gauge", f"{name} {value}"]
            else:
                name = "_".join(path) + "_total"
                lines += [f"# HELP {name} {_desc(path)}", f"# TYPE {name} counter", f"{name} {value}"]
        for body in families.values():
            lines += body
        for path, hist in sorted(self.histograms.items()):
            name = "_".join(path) + ("_seconds" if path in _MILLISECONDS else "")
            scale = 1000.0 if path in _MILLISECONDS else 1.0
            lines += [f"# HELP {name} {HISTOGRAMS.get(path, '')}", f"# TYPE {name} summary"]
            for p in PERCENTILES:
                q = p / 1000 if p > 100 else p / 100
                lines.append(f'{name}{{quantile="{q}"}} {hist.percentile(q * 100) / scale}')
            lines += [f"{name}_sum {hist.total / scale}", f"{name}_count {hist.n}"]
        for path, (desc, read) in sorted(self.gauges.items()):
            name = "_".join(path)
            lines += [f"# HELP {name} {desc}", f"# TYPE {name} gauge", f"{name} {read()}"]
        lines += ["# HELP couchdb_uptime_seconds couchdb uptime", "# TYPE couchdb_uptime_seconds counter",
                  f"couchdb_uptime_seconds {self.uptime()}"]
        return "\n".join(lines) + "\n"


_MILLISECONDS = {("couchdb", "request_time"), ("couchdb", "db_open_time"), ("mango", "query_time")}


def _desc(path: Path) -> str:
    return COUNTERS.get(path) or ("number of HTTP " + path[-1] + (" responses" if path[-1].isdigit() else " requests"))


def _put(tree: dict[str, Any], path: Path, leaf: dict[str, Any]) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = leaf
