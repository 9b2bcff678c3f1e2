"""The `[cluster]` definition: nodes, URLs (credentials never shown), zones and `n`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couchpy.cluster_config import ClusterConfigError, parse, strip_credentials


def test_nodes_urls_zones_and_n():
    cdef = parse({
        "n": "2",
        "b@h": "http://admin:pw@127.0.0.1:15985/ zone=z2",
        "a@h": "http://admin:pw@127.0.0.1:15984 zone=z1",
        "c@h": "http://127.0.0.1:15986",
    })
    assert cdef is not None and cdef.n == 2
    assert cdef.names == ["a@h", "b@h", "c@h"]
    assert cdef.node("b@h").url == "http://admin:pw@127.0.0.1:15985"
    assert cdef.node("b@h").public_url == "http://127.0.0.1:15985"
    assert [node.zone for node in cdef.nodes] == ["z1", "z2", None]


def test_no_nodes_is_a_single_node():
    assert parse({}) is None
    assert parse({"n": "3"}) is None


def test_n_defaults_to_three_or_every_node():
    assert parse({"a": "http://h:1", "b": "http://h:2"}).n == 2
    assert parse({k: f"http://h:{i}" for i, k in enumerate("abcd", 1)}).n == 3


@pytest.mark.parametrize("section", [
    {"n": "0", "a": "http://h:1"},
    {"n": "two", "a": "http://h:1"},
    {"n": "2", "a": "http://h:1"},
    {"a": "ftp://h:1"},
    {"a": ""},
    {"a": "http://h:1 rack=r1"},
    {"a": "http://h:99999"},
])
def test_bad_definitions_are_refused(section):
    with pytest.raises(ClusterConfigError):
        parse(section)


def test_refusals_never_show_credentials():
    with pytest.raises(ClusterConfigError) as err:
        parse({"a": "ftp://admin:topsecret@h:1"})
    assert "topsecret" not in str(err.value)


@given(st.text(alphabet="abcdefxyz0123456789", min_size=1, max_size=10),
       st.text(alphabet="abcdefxyz0123456789!$", min_size=1, max_size=10),
       st.integers(min_value=1, max_value=65535))
def test_strip_credentials_keeps_host_port_and_drops_secrets(user, password, port):
    url = f"http://{user}:{password}@10.0.0.1:{port}/"
    assert strip_credentials(url) == f"http://10.0.0.1:{port}"


def test_quorum_settings_are_not_nodes():
    cdef = parse({"n": "3", "w": "3", "r": "2", "request_timeout": "2500",
                  "a@h": "http://127.0.0.1:1", "b@h": "http://127.0.0.1:2", "c@h": "http://127.0.0.1:3"})
    assert cdef is not None and cdef.names == ["a@h", "b@h", "c@h"]
    assert (cdef.w, cdef.r, cdef.request_timeout) == (3, 2, 2.5)
    defaults = parse({"a@h": "http://127.0.0.1:1"})
    assert defaults is not None and (defaults.w, defaults.r, defaults.request_timeout) == (None, None, 10.0)


@pytest.mark.parametrize("key", ["w", "r", "request_timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_a_quorum_setting_is_a_positive_integer(key, value):
    with pytest.raises(ClusterConfigError, match=key):
        parse({key: value, "a@h": "http://127.0.0.1:1"})
