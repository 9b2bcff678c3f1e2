"""A hypothesis state machine over a real server: random security objects, random principals,
random reads and writes. A small model written here (not couchpy.security) says what each
principal may do; the server must never let a principal read or change what the model denies,
and never refuse what it allows. After every refused write, the database is checked unchanged."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.principals import create_users, http, password

TAG = uuid.uuid4().hex[:6]
USERS = {f"u1{TAG}": ["ra"], f"u2{TAG}": ["rb"], f"u3{TAG}": []}
NAMES = list(USERS)
ROLES = ["ra", "rb"]


# ---- the model ----

def listed(name, roles, part: dict) -> bool:
    return (name is not None and name in part.get("names", [])) or any(r in part.get("roles", []) for r in roles)


def model_admin(name, roles, sec) -> bool:
    return "_admin" in roles or listed(name, roles, sec.get("admins", {}))


def model_member(name, roles, sec) -> bool:
    members = sec.get("members", {})
    if model_admin(name, roles, sec):
        return True
    return (not members.get("names") and not members.get("roles")) or listed(name, roles, members)


section = st.fixed_dictionaries({}, optional={
    "names": st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
    "roles": st.lists(st.sampled_from(ROLES), max_size=2, unique=True)})
secobjs = st.fixed_dictionaries({}, optional={"members": section, "admins": section})
principals = st.sampled_from([None, *NAMES])


@pytest.fixture(scope="module")
def users(server):
    create_users(server, USERS)
    return server


class SecurityMachine(RuleBasedStateMachine):
    server = None

    @initialize()
    def setup(self):
        self.base = self.server.base
        self.admin = (self.server.user, self.server.password)
        self.db = f"state-{uuid.uuid4().hex[:10]}"
        assert http(self.base, "PUT", f"/{self.db}", self.admin)[0] == 201
        assert http(self.base, "PUT", f"/{self.db}/doc", self.admin, {"v": 0})[0] == 201
        self.sec = {"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}}
        self.docs = {"doc"}

    def teardown(self):
        if hasattr(self, "db"):
            http(self.base, "DELETE", f"/{self.db}", self.admin)

    def who(self, name):
        return None if name is None else (name, password(name))

    def refusal(self, name, status, body):
        assert status == (401 if name is None else 403), (name, status, body)
        assert body["error"] == ("unauthorized" if name is None else "forbidden")

    @rule(sec=secobjs)
    def admin_sets_security(self, sec):
        assert http(self.base, "PUT", f"/{self.db}/_security", self.admin, sec)[0] == 200
        self.sec = sec

    @rule(name=principals)
    def read(self, name):
        roles = USERS.get(name, [])
        for path in (f"/{self.db}/doc", f"/{self.db}/_all_docs", f"/{self.db}/_changes", f"/{self.db}"):
            status, body = http(self.base, "GET", path, self.who(name))
            if model_member(name, roles, self.sec):
                assert status == 200, (name, path, self.sec, status, body)
            else:
                self.refusal(name, status, body)
                assert "v" not in json.dumps(body)

    @rule(name=principals, design=st.booleans())
    def write(self, name, design):
        roles = USERS.get(name, [])
        docid = ("_design/" if design else "") + "w" + uuid.uuid4().hex[:8]
        status, body = http(self.base, "PUT", f"/{self.db}/{docid}", self.who(name), {"v": 1})
        allowed = model_admin(name, roles, self.sec) if design else model_member(name, roles, self.sec)
        if allowed:
            assert status == 201, (name, docid, self.sec, status, body)
            self.docs.add(docid)
        else:
            assert status in (401, 403), (name, docid, self.sec, status, body)

    @rule(name=principals, sec=secobjs)
    def user_sets_security(self, name, sec):
        roles = USERS.get(name, [])
        status, body = http(self.base, "PUT", f"/{self.db}/_security", self.who(name), sec)
        if model_admin(name, roles, self.sec):
            assert status == 200, (name, self.sec, status, body)
            self.sec = sec
        else:
            assert status in (401, 403), (name, self.sec, status, body)

    @invariant()
    def nothing_changed_behind_the_model(self):
        if not hasattr(self, "db"):
            return
        status, sec = http(self.base, "GET", f"/{self.db}/_security", self.admin)
        assert status == 200 and sec == self.sec
        status, body = http(self.base, "GET", f"/{self.db}/_all_docs", self.admin)
        design = {r["id"] for r in http(self.base, "GET", f"/{self.db}/_design_docs", self.admin)[1]["rows"]}
        assert {r["id"] for r in body["rows"]} | design == self.docs


def test_security_state_machine(users):
    SecurityMachine.server = users
    machine = SecurityMachine.TestCase
    machine.settings = settings(max_examples=12, stateful_step_count=8, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow])
    machine().runTest()
