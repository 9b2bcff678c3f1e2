"""A hypothesis state machine over a real server and an access database: random users write,
update and delete documents with random `_access`, and every read route, asked by every principal,
must show exactly the documents a small model (written here from docs/security.md, not from
couchpy.access) lets them see: never a denied one (not even a fragment of its body), never hiding
an allowed one."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.principals import create_users, http, password

TAG = uuid.uuid4().hex[:6]
# u1, u2 by role, u3 by name are members; u4 is a db admin
USERS = {f"u1{TAG}": ["ra"], f"u2{TAG}": ["rb"], f"u3{TAG}": [], f"u4{TAG}": []}
NAMES = list(USERS)
U4 = NAMES[3]
IDS = [f"d{i}" for i in range(5)]
DDOC = "_design/app"
MISSING = object()


# ---- the model ----

def is_admin(name) -> bool:
    return name in ("_admin", U4)


def sees(name, docid: str, access) -> bool:
    if is_admin(name):
        return True
    if access is MISSING:
        return docid.startswith("_design/")
    return name is not None and (name in access or any(r in access for r in USERS[name]))


accesses = st.sampled_from([MISSING, [], ["ra"], ["rb"], ["ra", "rb"], [NAMES[0]], [NAMES[2]], [NAMES[1], NAMES[2]]])
writers = st.sampled_from(NAMES)
readers = st.sampled_from([*NAMES, *NAMES[:3], "_admin"])  # mostly users who do not see everything


@pytest.fixture(scope="module")
def users(server):
    create_users(server, USERS)
    return server


class AccessMachine(RuleBasedStateMachine):
    server = None

    @initialize(seeded=st.lists(accesses, min_size=3, max_size=len(IDS)))
    def setup(self, seeded):
        self.base = self.server.base
        self.admin = (self.server.user, self.server.password)
        self.db = f"access-state-{uuid.uuid4().hex[:10]}"
        assert http(self.base, "PUT", f"/{self.db}?access=true", self.admin)[0] == 201
        sec = {"members": {"roles": ["ra", "rb"], "names": [NAMES[2]]}, "admins": {"names": [U4]}}
        assert http(self.base, "PUT", f"/{self.db}/_security", self.admin, sec)[0] == 200
        ddoc = {"views": {"v": {"map": "function(doc){ if (doc.secret) emit(doc.secret, null); }"}}}
        assert http(self.base, "PUT", f"/{self.db}/{DDOC}", self.admin, ddoc)[0] == 201
        # docid -> (access or MISSING, deleted, secret); a tombstone keeps its _access
        self.docs: dict[str, tuple] = {}
        self.n = 0
        # a few documents from the start, so that most reads have something to hide
        for docid, access in zip(IDS, seeded):
            self.write("_admin", docid, access)

    def teardown(self):
        if hasattr(self, "db"):
            http(self.base, "DELETE", f"/{self.db}", self.admin)

    def who(self, name):
        return self.admin if name == "_admin" else (name, password(name))

    def secret(self, docid: str) -> str:
        self.n += 1
        return f"s3cr3t-{docid}-{self.n}-{TAG}"

    def current_rev(self, docid: str) -> str | None:
        status, body = http(self.base, "GET", f"/{self.db}/{docid}", self.admin)
        return body["_rev"] if status == 200 else None

    @rule(name=st.sampled_from(["_admin", *NAMES]), docid=st.sampled_from(IDS), access=accesses)
    def write(self, name, docid, access):
        old = self.docs.get(docid)
        secret = self.secret(docid)
        doc = {"secret": secret}
        if access is not MISSING:
            doc["_access"] = access
        rev = self.current_rev(docid)
        if rev is not None:
            doc["_rev"] = rev
        status, body = http(self.base, "PUT", f"/{self.db}/{docid}", self.who(name), doc)
        stored = access if access is not MISSING else (old[0] if old is not None else MISSING)
        if not is_admin(name):
            if stored is MISSING:
                stored = [name]
            allowed = (old is None or sees(name, docid, old[0])) and sees(name, docid, stored)
        else:
            allowed = True
        if allowed:
            assert status == 201, (name, docid, access, old, status, body)
            self.docs[docid] = (stored, False, secret)
        else:
            assert (status, body["error"]) == (403, "forbidden"), (name, docid, access, old, status, body)

    @rule(name=st.sampled_from(["_admin", *NAMES]), docid=st.sampled_from(IDS))
    def delete(self, name, docid):
        old = self.docs.get(docid)
        rev = self.current_rev(docid)
        if rev is None:
            return
        status, body = http(self.base, "DELETE", f"/{self.db}/{docid}?rev={rev}", self.who(name))
        if is_admin(name) or sees(name, docid, old[0]):
            assert status == 200, (name, docid, old, status, body)
            self.docs[docid] = (old[0], True, old[2])
        else:
            assert (status, body["error"]) == (403, "forbidden"), (name, docid, old, status, body)

    @rule(name=readers)
    def read_everything(self, name):
        who = self.who(name)
        live = {d for d, (a, deleted, _) in self.docs.items() if not deleted and sees(name, d, a)}
        gone = {d for d, (a, deleted, _) in self.docs.items() if deleted and sees(name, d, a)}
        hidden = [s for d, (a, _, s) in self.docs.items() if not sees(name, d, a)]
        answers = []

        def ask(method, path, body=None):
            status, got = http(self.base, method, f"/{self.db}{path}", who, body)
            assert status == 200, (name, path, status, got)
            answers.append(got)
            return got

        got = ask("GET", "/_all_docs?include_docs=true")
        assert {r["id"] for r in got["rows"]} == live | {DDOC}, (name, self.docs)
        assert got["total_rows"] == len(live) + 1
        got = ask("POST", "/_all_docs", {"keys": IDS})
        assert {r["key"] for r in got["rows"] if "id" in r} == live | gone
        for feed in ("normal", "longpoll"):
            got = ask("GET", f"/_changes?feed={feed}&include_docs=true&style=all_docs")
            assert {r["id"] for r in got["results"]} == live | gone | {DDOC}, (name, feed, self.docs)
        got = ask("GET", "/_changes?feed=continuous&timeout=1&include_docs=true")
        rows = got if isinstance(got, list) else [got]
        assert {r["id"] for r in rows if "id" in r} == live | gone | {DDOC}
        got = ask("POST", "/_changes?filter=_doc_ids", {"doc_ids": IDS})
        assert {r["id"] for r in got["results"]} == live | gone
        got = ask("POST", "/_bulk_get?revs=true", {"docs": [{"id": d} for d in IDS]})
        assert {r["id"] for r in got["results"] if "ok" in r["docs"][0]} == live | gone
        got = ask("POST", "/_find", {"selector": {"secret": {"$gt": None}}})
        assert {d["_id"] for d in got["docs"]} == live
        got = ask("GET", "/_design/app/_view/v?include_docs=true")
        assert {r["id"] for r in got["rows"]} == live and got["total_rows"] == len(live)
        got = ask("POST", "/_design/app/_view/v/queries", {"queries": [{"include_docs": True}, {"limit": 2}]})
        assert {r["id"] for r in got["results"][0]["rows"]} == live
        assert len(got["results"][1]["rows"]) == min(2, len(live))
        assert {r["id"] for r in got["results"][1]["rows"]} <= live
        got = ask("POST", "/_all_docs", {"keys": IDS, "include_docs": True})
        got = ask("POST", "/_revs_diff", {d: ["1-0"] for d in IDS})
        assert {d for d in IDS if "possible_ancestors" in got.get(d, {})} == set()  # no lower revision exists
        revs = {d: http(self.base, "GET", f"/{self.db}/_all_docs?key=%22{d}%22", self.admin)[1]["rows"]
                for d in IDS}
        asked = {d: [rows[0]["value"]["rev"]] for d, rows in revs.items() if rows}
        got = ask("POST", "/_missing_revs", asked)
        assert set(got["missing_revs"]) == {d for d in asked if d not in live}
        for docid in IDS:
            status, got = http(self.base, "GET", f"/{self.db}/{docid}", who)
            assert status == (200 if docid in live else 404), (name, docid, self.docs)
            answers.append(got)
        text = json.dumps(answers)
        for s in hidden:
            assert s not in text, (name, s)

    @invariant()
    def the_database_holds_what_the_model_says(self):
        if not hasattr(self, "db"):
            return
        status, body = http(self.base, "GET", f"/{self.db}/_all_docs?include_docs=true", self.admin)
        got = {r["id"]: r["doc"] for r in body["rows"] if r["id"] != DDOC}
        assert set(got) == {d for d, (_, deleted, _) in self.docs.items() if not deleted}
        for docid, doc in got.items():
            access, _, secret = self.docs[docid]
            assert doc["secret"] == secret
            assert doc.get("_access", MISSING) == access


def test_access_state_machine(users):
    AccessMachine.server = users
    machine = AccessMachine.TestCase
    machine.settings = settings(max_examples=10, stateful_step_count=10, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow])
    machine().runTest()
