"""Running one request sequence on couchpy and on CouchDB and finding where they differ."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import normalize
from .client import Target, fresh_db_name, run_sequence
from .compare import Difference, differences
from .known_differences import KnownDifference, known
from .model import Req


@dataclass
class Outcome:
    compared: int = 0
    # the first unexplained difference of the sequence (later answers may be its cascade)
    unexplained: tuple[int, Difference] | None = None
    explained: list[tuple[int, Difference, KnownDifference]] = field(default_factory=list)


def _changes_state(req: Req, d: Difference) -> bool:
    """Whether after this difference the two databases may hold different things."""
    if req.method in ("GET", "HEAD"):
        return False
    if d.kind == "status":
        mine, theirs = d.what.split(" vs ")
        return mine[:1] == "2" or theirs[:1] == "2"
    return False


def compare(reqs: list[Req], couchpy: Target, couchdb: Target) -> Outcome:
    given = normalize.given_hashes("\n".join(r.describe() for r in reqs))
    # one name on both servers: it shows in answers (db_name, Location)
    db = fresh_db_name()
    mine_answers = run_sequence(couchpy, reqs, db)
    their_answers = run_sequence(couchdb, reqs, db)
    mine_hashes, their_hashes = normalize.Hashes(given), normalize.Hashes(given)
    out = Outcome()
    for i, (req, a, b) in enumerate(zip(reqs, mine_answers, their_answers)):
        out.compared += 1
        na = normalize.answer(a.status, a.headers, a.body, mine_hashes)
        nb = normalize.answer(b.status, b.headers, b.body, their_hashes)
        diverged = False
        for d in differences(req.endpoint, na, nb):
            k = known(req, d)
            if k is None:
                out.unexplained = (i, d)
                return out
            out.explained.append((i, d, k))
            diverged = diverged or _changes_state(req, d)
        # an explained difference may show one server's hashes the other's answer did not: the two
        # normalisers then name later hashes differently, so what follows cannot be compared
        if diverged or len(mine_hashes.names) != len(their_hashes.names):
            break
    return out


def report(reqs: list[Req], outcome: Outcome) -> str:
    if outcome.unexplained is None:
        return "no unexplained difference"
    i, d = outcome.unexplained
    lines = [f"class: {d.klass}", f"  couchpy: {d.couchpy!r:.600}", f"  couchdb: {d.couchdb!r:.600}",
             "sequence (the difference is at the last request):"]
    lines += [f"  {n}. {r.describe()}" for n, r in enumerate(reqs[: i + 1])]
    return "\n".join(lines)
