"""The differential tester in CI: random request sequences on couchpy and on CouchDB 3.4.3.

A bounded, reproducible run (`derandomize`): every difference it meets must be one of the known,
documented differences (known_differences.py, docs/interop.md). Longer runs: long_run.py.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from .client import Target
from .known_differences import KNOWN, OPEN
from .runner import compare, report
from .strategies import sequences

EXAMPLES = 100
INTEROP = Path(__file__).resolve().parents[2] / "docs" / "interop.md"


def test_no_unexplained_difference(server, couchdb):
    couchpy, peer = Target(server.url, False), Target(couchdb.url, True)

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(sequences())
    def run(reqs):
        outcome = compare(reqs, couchpy, peer)
        assert outcome.unexplained is None, report(reqs, outcome)

    run()


def test_known_differences_are_documented():
    text = INTEROP.read_text()
    section = text.split("## Known differences from CouchDB", 1)[1].split("\n## ", 1)[0]
    for k in KNOWN + OPEN:
        assert f"`{k.name}`" in section, f"{k.name} is not described in docs/interop.md"
