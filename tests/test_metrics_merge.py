"""The node's metrics merged from several workers' registries (`Metrics.merged`) are those of one
registry that saw every worker's traffic: counters and gauges summed; a histogram's count, sum,
min and max exact, and its percentiles those of the pooled samples (while each worker still holds
all its samples)."""

from __future__ import annotations

import math

import orjson
from hypothesis import given
from hypothesis import strategies as st

from couchpy.metrics import RESERVOIR, Metrics

PATHS = [("couchdb", "httpd", "requests"), ("couchdb", "httpd_status_codes", "404"), ("couchdb", "x", "rare")]
HISTS = [("couchdb", "request_time"), ("mango", "query_time"), ("couchdb", "x", "rare_time")]
samples = st.floats(min_value=0, max_value=1e6, allow_nan=False)
events = st.lists(st.one_of(st.tuples(st.just("inc"), st.sampled_from(PATHS), st.integers(1, 5)),
                            st.tuples(st.just("observe"), st.sampled_from(HISTS), samples)), max_size=60)


def _apply(m: Metrics, evs) -> None:
    for kind, path, x in evs:
        if kind == "inc":
            m.inc(path, x)
        else:
            m.observe(path, x)


@given(st.lists(events, min_size=1, max_size=4), st.lists(st.integers(0, 50), min_size=4, max_size=4))
def test_merged_workers_equal_one_registry_that_saw_everything(per_worker, open_dbs):
    workers = []
    whole = Metrics()
    for i, evs in enumerate(per_worker):
        m = Metrics()
        m.gauge(("couchdb", "open_databases"), "number of open databases", lambda i=i: open_dbs[i])
        _apply(m, evs)
        _apply(whole, evs)
        workers.append(m)
    # through JSON, as the snapshots travel between workers
    merged = Metrics.merged([orjson.loads(orjson.dumps(m.snapshot())) for m in workers])
    assert merged.counters == {p: v for p, v in whole.counters.items()}
    tree, expected = merged.stats_tree(), whole.stats_tree()
    assert tree["couchdb"]["open_databases"]["value"] == sum(open_dbs[: len(workers)])
    for path in set(whole.histograms) | set(merged.histograms):
        got, want = merged.histograms[path].value(), whole.histograms[path].value()
        assert got["n"] == want["n"]
        assert math.isclose(merged.histograms[path].total, whole.histograms[path].total, rel_tol=1e-9, abs_tol=1e-6)
        assert (got["min"], got["max"]) == (want["min"], want["max"])
        for (p, a), (_, b) in zip(got["percentile"], want["percentile"]):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (path, p, a, b)
    whole.gauge(("couchdb", "open_databases"), "number of open databases", lambda: sum(open_dbs[: len(workers)]))
    # the same exposition, but for float sums added in another order
    got_lines = [line for line in merged.prometheus().splitlines() if "_sum " not in line]
    assert got_lines == [line for line in whole.prometheus().splitlines() if "_sum " not in line]


def test_merged_percentiles_pool_the_workers_recent_samples():
    fast, slow = Metrics(), Metrics()
    for _ in range(RESERVOIR * 2):  # more than a reservoir each: n counts all, percentiles the recent
        fast.observe(("couchdb", "request_time"), 1.0)
        slow.observe(("couchdb", "request_time"), 100.0)
    merged = Metrics.merged([fast.snapshot(), slow.snapshot()])
    value = merged.stats_tree()["couchdb"]["request_time"]["value"]
    assert value["n"] == RESERVOIR * 4
    assert (value["min"], value["max"]) == (1.0, 100.0)
    assert value["arithmetic_mean"] == 50.5
    percentiles = dict(value["percentile"])
    assert percentiles[50] == 50.5 and percentiles[75] == 100.0  # half the pooled samples are slow
    assert "couchdb_request_time_seconds_count 4096" in merged.prometheus()


def test_the_node_uptime_is_the_longest_worker_uptime():
    old, restarted = Metrics(), Metrics()
    old.started -= 120
    assert Metrics.merged([restarted.snapshot(), old.snapshot()]).uptime() == 120
