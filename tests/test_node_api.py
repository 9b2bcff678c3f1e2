"""Node-level operations API: `_config` (persisted, applied live), `_stats`, `_system`,
`_prometheus` (parsed by prometheus_client's own parser), `_membership`."""

from __future__ import annotations

import configparser

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from couchpy.metrics import Histogram, Metrics


async def _json(resp):
    return resp.status, await resp.json()


# ------------------------------------------------------------------ configuration


async def test_config_key_round_trip_is_persisted_to_the_ini_file(client, server):
    path = "/_node/_local/_config/couchpy_test/colour"
    async with client.get(path) as r:
        assert await _json(r) == (404, {"error": "not_found", "reason": "unknown_config_value"})
    async with client.put(path, data='"blue"') as r:
        assert await _json(r) == (200, "")  # the old value, as CouchDB answers
    async with client.put(path, data='"green"') as r:
        assert await _json(r) == (200, "blue")
    async with client.get(path) as r:
        assert await _json(r) == (200, "green")
    async with client.get("/_node/_local/_config/couchpy_test") as r:
        assert await _json(r) == (200, {"colour": "green"})
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(server.data_dir / "couchpy.ini")
    assert ini.get("couchpy_test", "colour") == "green"
    async with client.delete(path) as r:
        assert await _json(r) == (200, "green")
    async with client.delete(path) as r:
        assert await _json(r) == (404, {"error": "not_found", "reason": "unknown_config_value"})
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(server.data_dir / "couchpy.ini")
    assert not ini.has_option("couchpy_test", "colour")


async def test_config_put_refuses_what_is_not_a_json_string(client):
    async with client.put("/_node/_local/_config/couchpy_test/x", data="bare") as r:
        assert await _json(r) == (400, {"error": "bad_request", "reason": "invalid UTF-8 JSON"})
    async with client.get("/_node/_local/_config/couchpy_test/x") as r:
        assert r.status == 404


async def test_config_unknown_node_is_404(client):
    async with client.get("/_node/bogus/_config") as r:
        assert await _json(r) == (404, {"error": "not_found", "reason": "no such node: bogus"})


async def test_config_needs_the_server_admin(anon):
    async with anon.get("/_node/_local/_config") as r:
        assert r.status == 401
    async with anon.put("/_node/_local/_config/log/level", data='"debug"') as r:
        assert r.status == 401


async def test_admin_set_through_config_is_stored_hashed_and_can_log_in(client, server, anon):
    async with client.put("/_node/_local/_config/admins/opsadmin", data='"s3cret-pw"') as r:
        assert r.status == 200
    async with client.get("/_node/_local/_config/admins/opsadmin") as r:
        stored = await r.json()
    assert stored.startswith("-pbkdf2") and "s3cret-pw" not in stored
    assert "s3cret-pw" not in (server.data_dir / "couchpy.ini").read_text()
    async with anon.get("/_all_dbs", auth=aiohttp.BasicAuth("opsadmin", "s3cret-pw")) as r:
        assert r.status == 200
    async with client.delete("/_node/_local/_config/admins/opsadmin") as r:
        assert r.status == 200


async def test_max_dbs_open_applies_live(client):
    async with client.get("/_node/_local/_config/couchdb/max_dbs_open") as r:
        before = await r.json()
    async with client.put("/_node/_local/_config/couchdb/max_dbs_open", data='"7"',
                          headers={"X-Couch-Persist": "false"}) as r:
        assert r.status == 200
    names = [f"maxopen-{i}" for i in range(12)]
    for n in names:
        async with client.put(f"/{n}") as r:
            assert r.status == 201
        async with client.get(f"/{n}") as r:
            assert r.status == 200
    async with client.get("/_node/_local/_system") as r:
        assert (await r.json())["open_databases"] <= 7
    async with client.put("/_node/_local/_config/couchdb/max_dbs_open", data=f'"{before}"') as r:
        assert r.status == 200
    for n in names:
        async with client.delete(f"/{n}"):
            pass


# ------------------------------------------------------------------ metrics


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _sample(fams: dict, family: str, name: str, **labels) -> float:
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((family, name, labels))


async def test_prometheus_parses_and_counters_move_with_requests(client, db):
    async with client.get("/_node/_local/_prometheus") as r:
        assert r.status == 200 and r.content_type == "text/plain"
        before = _families(await r.text())
    for i in range(5):
        async with client.get(f"/{db}/missing-{i}") as r:
            assert r.status == 404
    async with client.get("/_node/_local/_prometheus") as r:
        after = _families(await r.text())
    # CouchDB's names: counters end in _total, status codes and methods are labels
    req = ("couchdb_httpd_requests", "couchdb_httpd_requests_total")
    assert _sample(after, *req) - _sample(before, *req) >= 6
    codes = ("couchdb_httpd_status_codes", "couchdb_httpd_status_codes_total")
    assert _sample(after, *codes, code="404") - _sample(before, *codes, code="404") == 5
    gets = ("couchdb_httpd_request_methods", "couchdb_httpd_request_methods_total")
    assert _sample(after, *gets, method="GET") - _sample(before, *gets, method="GET") >= 6
    assert after["couchdb_request_time_seconds"].type == "summary"
    count = ("couchdb_request_time_seconds", "couchdb_request_time_seconds_count")
    assert _sample(after, *count) > _sample(before, *count)
    assert _sample(after, "couchdb_uptime_seconds", "couchdb_uptime_seconds_total") >= 0
    assert _sample(after, "couchdb_open_databases", "couchdb_open_databases") >= 1


async def test_stats_tree_has_couchdb_shapes(client):
    async with client.get("/_node/_local/_stats") as r:
        assert r.status == 200
        tree = await r.json()
    req = tree["couchdb"]["httpd"]["requests"]
    assert req["type"] == "counter" and req["value"] >= 1 and req["desc"] == "number of HTTP requests"
    rt = tree["couchdb"]["request_time"]
    assert rt["type"] == "histogram"
    assert set(rt["value"]) >= {"n", "min", "max", "arithmetic_mean", "median", "percentile", "histogram"}
    assert [p for p, _ in rt["value"]["percentile"]] == [50, 75, 90, 95, 99, 999]
    async with client.get("/_node/_local/_stats/couchdb/httpd/requests") as r:
        one = await r.json()
    assert one["type"] == "counter" and one["value"] >= req["value"]
    async with client.get("/_node/_local/_stats/couchdb/nope") as r:
        assert r.status == 404


async def test_system_reports_memory_uptime_and_files(client):
    async with client.get("/_node/_local/_system") as r:
        info = await r.json()
    assert info["memory"]["total"] > 10_000_000
    assert info["open_files"] > 3
    assert info["uptime"] >= 0


async def test_membership_lists_this_node(client):
    async with client.get("/_membership") as r:
        assert await _json(r) == (200, {"all_nodes": ["couchpy@127.0.0.1"],
                                        "cluster_nodes": ["couchpy@127.0.0.1"]})


async def test_cluster_setup_says_single_node_as_couchdb_set_up_alone(client, anon):
    # CouchDB 3.4.3 set up as a single node: {"state":"single_node_enabled"}, admins only, GET/POST
    async with client.get("/_cluster_setup") as r:
        assert await _json(r) == (200, {"state": "single_node_enabled"})
    async with anon.get("/_cluster_setup") as r:
        assert r.status == 401
    async with client.delete("/_cluster_setup") as r:
        assert r.status == 405


# ------------------------------------------------------------------ the registry itself


def test_histogram_percentiles_interpolate_between_ranks():
    h = Histogram()
    for v in range(1, 101):
        h.observe(float(v))
    assert h.percentile(50) == pytest.approx(50.5)
    assert h.percentile(99) == pytest.approx(99.01)
    assert h.value()["n"] == 100 and h.value()["min"] == 1.0 and h.value()["max"] == 100.0


def test_prometheus_text_round_trips_through_the_reference_parser():
    m = Metrics()
    m.inc(("couchdb", "httpd", "requests"), 3)
    m.inc(("couchdb", "httpd_status_codes", "418"))  # undeclared code: still rendered, labelled
    m.observe(("couchdb", "request_time"), 1500.0)
    fams = _families(m.prometheus())
    assert _sample(fams, "couchdb_httpd_requests", "couchdb_httpd_requests_total") == 3
    assert _sample(fams, "couchdb_httpd_status_codes", "couchdb_httpd_status_codes_total", code="418") == 1
    assert _sample(fams, "couchdb_request_time_seconds", "couchdb_request_time_seconds_sum") == 1.5
