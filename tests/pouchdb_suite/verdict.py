"""Which differences from the CouchDB baseline fail the run (pure: no I/O).

`compare.js --json` (shipped with the suite) lists, by label (a test's full title, plus its file
when the title repeats), the tests that pass on the baseline server and fail, or did not run, on
couchpy. Each is a regression unless `divergences.toml` names it with the reason why couchpy's
answer is the right one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Divergence:
    part: str
    title: str
    reason: str


@dataclass
class Verdict:
    regressions: list[tuple[str, str]] = field(default_factory=list)  # (label, why)
    accepted: list[Divergence] = field(default_factory=list)  # listed and seen failing
    stale: list[Divergence] = field(default_factory=list)  # listed but not failing any more

    @property
    def ok(self) -> bool:
        return not self.regressions


def parse_divergences(data: dict[str, Any]) -> list[Divergence]:
    """`[[divergence]]` tables of divergences.toml; every entry needs a part, a title and a reason."""
    out = []
    for i, entry in enumerate(data.get("divergence", [])):
        missing = [k for k in ("part", "title", "reason") if not str(entry.get(k, "")).strip()]
        if missing:
            raise ValueError(f"divergence #{i + 1} lacks {', '.join(missing)}")
        out.append(Divergence(entry["part"], entry["title"], entry["reason"]))
    return out


def failed_hooks(result: dict[str, Any]) -> list[str]:
    """Titles of the hooks that failed in one part's mocha result.

    A failing `before`/`after` hook makes mocha skip the rest of its suite, and `--retries` retries
    tests, never hooks: one hook that trips over a race of the suite's own (its local leveldb
    adapter, say) would count every test after it as a regression. The runner runs such a part
    again rather than judge a run that stopped early.
    """
    return [t.get("fullTitle") or t.get("title", "") for t in result.get("failures", [])
            if t.get("type") == "hook" or str(t.get("title", "")).startswith(('"before', '"after'))]


def judge(part: str, comparison: dict[str, Any], divergences: list[Divergence]) -> Verdict:
    """Regressions of one part from compare.js's JSON, minus the accepted divergences."""
    listed = {d.title: d for d in divergences if d.part == part}
    seen: set[str] = set()
    verdict = Verdict()
    for kind, why in (("passInAFailInB", "fails"), ("passInANotRunInB", "did not run")):
        for item in comparison.get(kind, []):
            label = item["title"]
            if label in listed:
                seen.add(label)
                verdict.accepted.append(listed[label])
            else:
                detail = item.get("error") or ""
                verdict.regressions.append((label, f"{why}{': ' + detail if detail else ''}"))
    verdict.stale = [d for title, d in listed.items() if title not in seen]
    return verdict
