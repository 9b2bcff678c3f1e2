"""The HAProxy configuration `couchpy cluster haproxy-config` writes, checked by HAProxy itself."""

from __future__ import annotations

import shutil
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchpy.cluster_config import parse
from couchpy_cli.cluster_haproxy import ANY_BACKEND, backend_name, render

CDEF = parse({
    "n": "2",
    "node1@127.0.0.1": "http://admin:topsecret@127.0.0.1:15984 zone=a",
    "node2@127.0.0.1": "http://admin:topsecret@127.0.0.1:15985 zone=b",
    "node3@127.0.0.1": "https://admin:topsecret@127.0.0.1:15986",
})


def haproxy_check(tmp_path, cfg: str, mapping: str) -> subprocess.CompletedProcess:
    (tmp_path / "h.cfg.map").write_text(mapping)
    (tmp_path / "h.cfg").write_text(cfg)
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"  # a missing HAProxy fails, never skips
    return subprocess.run([haproxy, "-c", "-f", str(tmp_path / "h.cfg")], capture_output=True, text=True,
                          timeout=30)


def test_databases_go_to_their_replicas_and_the_rest_to_any_node(tmp_path):
    placement = {"alpha": ["node2@127.0.0.1", "node1@127.0.0.1"], "a/b": ["node1@127.0.0.1", "node3@127.0.0.1"],
                 "gamma": ["node1@127.0.0.1", "node2@127.0.0.1"]}
    cfg, mapping = render(CDEF, placement, bind="127.0.0.1:5984", map_path=str(tmp_path / "h.cfg.map"))
    result = haproxy_check(tmp_path, cfg, mapping)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "topsecret" not in cfg + mapping
    pair12 = backend_name(["node1@127.0.0.1", "node2@127.0.0.1"])
    pair13 = backend_name(["node1@127.0.0.1", "node3@127.0.0.1"])
    assert mapping.splitlines() == [f"a/b {pair13}", f"alpha {pair12}", f"gamma {pair12}"]
    blocks = {block.splitlines()[0]: block for block in cfg.split("\n\n")}
    replicas = blocks[f"backend {pair12}"]
    assert "balance uri depth 1" in replicas and "hash-type consistent" in replicas
    assert "option httpchk GET /_up" in replicas
    assert [line.split()[2] for line in replicas.splitlines() if line.strip().startswith("server")] == [
        "127.0.0.1:15984", "127.0.0.1:15985"]
    assert "ssl" in blocks[f"backend {pair13}"]  # node3 speaks https
    assert len([line for line in blocks[f"backend {ANY_BACKEND}"].splitlines() if "server" in line]) == 3


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_$()+/-]{0,20}", fullmatch=True),
                       st.lists(st.sampled_from(CDEF.names), min_size=1, max_size=3, unique=True), max_size=8))
def test_any_placement_gives_a_configuration_haproxy_accepts(tmp_path, placement):
    cfg, mapping = render(CDEF, placement, bind="127.0.0.1:5984", map_path=str(tmp_path / "h.cfg.map"))
    result = haproxy_check(tmp_path, cfg, mapping)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(line.split()[0] for line in mapping.splitlines()) == sorted(placement)
