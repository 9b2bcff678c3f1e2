"""Three couchpy nodes as one cluster behind HAProxy (tests/cluster_harness.py), on loopback.

Databases are placed on n = 2 of the 3 nodes; whatever node is asked creates, deletes and secures
them on their replicas; clients write through HAProxy while a replica is SIGKILLed and restarted,
and afterwards every replica holds the same revision trees and every acknowledged write.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
import time
import urllib.request

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from couchpy.placement import Candidate, place

from .cluster_harness import Cluster
from .serverproc import ROOT

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("cluster"), nodes=3, n=2) as cl:
        yield cl


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def _session(cl: Cluster) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", cl.password),
                                 timeout=aiohttp.ClientTimeout(total=30))


async def _get(s, url):
    async with s.get(url) as r:
        return r.status, await r.json()


async def _pulls(s, srv, name: str) -> list[str]:
    """The sources of the replications running into the node's copy of `name`."""
    status, jobs = await _get(s, f"{srv.base}/_scheduler/jobs")
    return [j["source"] for j in jobs["jobs"] if j["target"] == name]


def expected_nodes(cl: Cluster, name: str) -> list[str]:
    return place(name, [Candidate(n) for n in cl.names], 2)


def test_membership_shows_every_node_on_every_node(cluster):
    async def go():
        async with await _session(cluster) as s:
            for srv in cluster.servers:
                assert await _get(s, srv.base + "/_membership") == (200, {
                    "all_nodes": cluster.names, "cluster_nodes": cluster.names})
    run(go())


def test_a_database_created_through_any_node_lives_on_its_replicas(cluster):
    async def go():
        async with await _session(cluster) as s:
            for i, name in enumerate(["placed-a", "placed-b", "placed-c"]):
                asked = cluster.servers[i]
                async with s.put(f"{asked.base}/{name}") as r:
                    assert (r.status, await r.json()) == (201, {"ok": True})
                async with s.put(f"{cluster.servers[(i + 1) % 3].base}/{name}") as r:
                    assert r.status == 412 and (await r.json())["error"] == "file_exists"
                replicas = expected_nodes(cluster, name)
                for node_name, srv in zip(cluster.names, cluster.servers, strict=True):
                    async with s.head(f"{srv.base}/{name}") as r:
                        assert r.status == 200  # from its own copy, or through a replica
                    # a replica holds a copy that pulls from the other replica; the other node neither
                    if node_name in replicas:
                        other = cluster.servers[cluster.names.index(next(n for n in replicas if n != node_name))]
                        # shown as CouchDB shows a URL's password: never in clear
                        want = [f"http://admin:*****@127.0.0.1:{other.port}/{name}/"]
                    else:
                        want = []
                    deadline = time.monotonic() + 10  # a pull from a copy not yet created is retried
                    while (pulls := await _pulls(s, srv, name)) != want:
                        assert time.monotonic() < deadline, (name, node_name, pulls)
                        await asyncio.sleep(0.1)
                    status, record = await _get(s, f"{srv.base}/_dbs/{name}")
                    assert status == 200 and record["nodes"] == replicas
                    status, dbs = await _get(s, f"{srv.base}/_all_dbs")
                    assert name in dbs and "_dbs" not in dbs
                    if node_name in replicas:
                        status, info = await _get(s, f"{srv.base}/{name}")
                        assert info["cluster"] == {"q": 1, "n": 2, "w": 2, "r": 1}  # w: a majority of 2
    run(go())


def test_a_node_without_a_copy_answers_through_a_replica(cluster):
    name = "elsewhere"
    outsider = next(srv for n, srv in zip(cluster.names, cluster.servers, strict=True)
                    if n not in expected_nodes(cluster, name))
    replicas = [cluster.servers[cluster.names.index(n)] for n in expected_nodes(cluster, name)]

    async def go():
        async with await _session(cluster) as s:
            async with s.put(f"{outsider.base}/{name}") as r:
                assert r.status == 201
            async with s.put(f"{outsider.base}/{name}/doc?w=2", json={"x": 1}) as r:
                assert r.status == 201  # ?w= goes with the request to the replica, which counts
                rev = (await r.json())["rev"]
            for srv in replicas:  # both copies held it when the answer came
                assert (await _get(s, f"{srv.base}/{name}/doc"))[0] == 200
            status, doc = await _get(s, f"{outsider.base}/{name}/doc")
            assert (status, doc) == (200, {"_id": "doc", "_rev": rev, "x": 1})
            status, info = await _get(s, f"{outsider.base}/{name}")
            assert status == 200 and info["doc_count"] == 1 and info["cluster"]["n"] == 2
            async with s.head(f"{outsider.base}/{name}/doc") as r:
                assert r.status == 200 and r.headers["ETag"] == f'"{rev}"'
            async with aiohttp.ClientSession() as anon:  # the replica refuses what it would refuse
                async with anon.get(f"{outsider.base}/{name}/doc") as r:
                    assert r.status == 401
            # both replicas keep it (pushed by the w=2 write, pulled anyway)
            deadline = time.monotonic() + 20
            for srv in replicas:
                while (await _get(s, f"{srv.base}/{name}/doc"))[0] != 200:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
            async with s.head(f"{outsider.base}/{name}", allow_redirects=False) as r:
                assert r.status == 200
            async with s.put(f"{outsider.base}/{name}/doc3?w=3", json={}) as r:
                assert r.status == 202  # two copies only
    run(go())


def test_security_and_design_documents_reach_every_replica(cluster):
    name = "secured"
    first, second = (cluster.servers[cluster.names.index(n)] for n in expected_nodes(cluster, name))
    security = {"admins": {"names": [], "roles": []}, "members": {"names": ["alice"], "roles": []}}
    ddoc = {"views": {"all": {"map": "function (doc) { emit(doc._id, null); }"}}}

    async def go():
        async with await _session(cluster) as s:
            async with s.put(f"{first.base}/{name}") as r:
                assert r.status == 201
            async with s.put(f"{first.base}/{name}/_security", json=security) as r:
                assert r.status == 200
            # applied on the other replica before the answer
            assert await _get(s, f"{second.base}/{name}/_security") == (200, security)
            async with s.put(f"{second.base}/{name}/_design/d", json=ddoc) as r:
                assert r.status == 201
            deadline = time.monotonic() + 20
            while (await _get(s, f"{first.base}/{name}/_design/d"))[0] != 200:
                assert time.monotonic() < deadline, "design document not replicated"
                await asyncio.sleep(0.1)
    run(go())


def test_different_revisions_on_two_replicas_become_one_conflict_everywhere(cluster):
    """As when two replicas each took an update while they could not replicate."""
    name = "conflicted"
    first, second = (cluster.servers[cluster.names.index(n)] for n in expected_nodes(cluster, name))
    base = {"_id": "d", "_rev": "1-" + "0" * 32, "v": 0, "_revisions": {"start": 1, "ids": ["0" * 32]}}

    def edit(rev_id: str, v: str) -> dict:
        return {"_id": "d", "_rev": f"2-{rev_id}", "v": v, "_revisions": {"start": 2, "ids": [rev_id, "0" * 32]}}

    async def go():
        async with await _session(cluster) as s:
            async with s.put(f"{first.base}/{name}") as r:
                assert r.status == 201
            for srv, doc in ((first, edit("a" * 32, "a")), (second, edit("b" * 32, "b"))):
                async with s.post(f"{srv.base}/{name}/_bulk_docs", json={"docs": [base, doc], "new_edits": False}) as r:
                    assert r.status == 201
            deadline = time.monotonic() + 30
            while True:
                seen = [await _get(s, f"{srv.base}/{name}/d?conflicts=true") for srv in (first, second)]
                if all(doc.get("_conflicts") for _, doc in seen):
                    break
                assert time.monotonic() < deadline, seen
                await asyncio.sleep(0.1)
            # the same winner (the higher revision id) and the same conflict on both replicas
            for status, doc in seen:
                assert (status, doc) == (200, {"_id": "d", "_rev": "2-" + "b" * 32, "v": "b",
                                               "_conflicts": ["2-" + "a" * 32]})
            # resolved by the client like any conflict: deleting the losing revision
            async with s.delete(f"{cluster.proxy_base}/{name}/d?rev=2-{'a' * 32}") as r:
                assert r.status == 200
            while True:
                seen = [await _get(s, f"{srv.base}/{name}/d?conflicts=true") for srv in (first, second)]
                if not any("_conflicts" in doc for _, doc in seen):
                    break
                assert time.monotonic() < deadline, seen
                await asyncio.sleep(0.1)
    run(go())


def test_a_database_deleted_through_any_node_is_gone_everywhere(cluster):
    name = "doomed"

    async def go():
        async with await _session(cluster) as s:
            async with s.put(f"{cluster.servers[0].base}/{name}") as r:
                assert r.status == 201
            async with s.delete(f"{cluster.servers[2].base}/{name}") as r:
                assert (r.status, await r.json()) == (200, {"ok": True})
            for srv in cluster.servers:
                async with s.head(f"{srv.base}/{name}") as r:
                    assert r.status == 404
                assert name not in (await _get(s, f"{srv.base}/_all_dbs"))[1]
            async with s.delete(f"{cluster.servers[1].base}/{name}") as r:
                assert r.status == 404
            async with s.put(f"{cluster.servers[1].base}/{name}") as r:  # and created again
                assert r.status == 201
    run(go())


async def _trees(s, base: str, db: str) -> dict[str, list]:
    """Every document's leaves with their full revision paths: the revision tree, comparable."""
    ids = [row["id"] for row in (await _get(s, f"{base}/{db}/_all_docs"))[1]["rows"]]
    async with s.post(f"{base}/{db}/_bulk_get?revs=true", json={"docs": [{"id": i} for i in ids]}) as r:
        rows = (await r.json())["results"]
    out = {}
    for row in rows:
        leaves = sorted(json.dumps(d["ok"], sort_keys=True) for d in row["docs"] if "ok" in d)
        out[row["id"]] = leaves
    return out


def test_writes_through_haproxy_survive_a_replica_killed_and_restarted(cluster):
    names = ["load-a", "load-b", "load-c"]
    acked: dict[str, dict[str, str]] = {name: {} for name in names}
    failures = itertools.count()

    async def writer(s, db: str, w: int, stop: asyncio.Event) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            doc_id = f"w{w}-{i}"
            try:
                async with s.put(f"{cluster.proxy_base}/{db}/{doc_id}", json={"w": w, "i": i}) as r:
                    body = await r.json(content_type=None)
                    if r.status in (201, 202):
                        acked[db][doc_id] = body["rev"]
                    else:
                        next(failures)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                next(failures)
                await asyncio.sleep(0.05)

    async def go():
        async with await _session(cluster) as s:
            for name in names:
                async with s.put(f"{cluster.proxy_base}/{name}") as r:
                    assert r.status == 201
        await asyncio.to_thread(cluster.refresh_proxy)
        # the node HAProxy sends most of these databases to is the one to lose
        victim_name = expected_nodes(cluster, names[0])[0]
        victim = cluster.names.index(victim_name)
        async with await _session(cluster) as s:
            stop = asyncio.Event()
            writers = [asyncio.create_task(writer(s, db, w, stop)) for db in names for w in range(2)]
            await asyncio.sleep(2)
            cluster.kill(victim)
            killed_at = time.monotonic()
            await asyncio.sleep(3)
            await asyncio.to_thread(cluster.restart, victim)
            restarted_after = time.monotonic() - killed_at
            await asyncio.sleep(2)
            stop.set()
            await asyncio.gather(*writers)
            writes_done = time.monotonic()
            total = sum(len(a) for a in acked.values())
            assert total > 50, "the writers got almost nothing through"
            # converge: every replica of every database holds the same revision trees
            deadline = writes_done + 60
            while True:
                agree = True
                for db in names:
                    replicas = [cluster.servers[cluster.names.index(n)] for n in expected_nodes(cluster, db)]
                    trees = [await _trees(s, srv.base, db) for srv in replicas]
                    if any(t != trees[0] for t in trees) or not set(acked[db]) <= set(trees[0]):
                        agree = False
                        break
                if agree:
                    break
                assert time.monotonic() < deadline, "replicas did not converge within 60 s"
                await asyncio.sleep(0.2)
            converged = time.monotonic() - writes_done
            # no acknowledged write lost: each acknowledged revision is on every replica
            for db in names:
                for srv in (cluster.servers[cluster.names.index(n)] for n in expected_nodes(cluster, db)):
                    trees = await _trees(s, srv.base, db)
                    for doc_id, rev in acked[db].items():
                        assert any(json.loads(leaf)["_rev"] == rev for leaf in trees[doc_id]), (db, doc_id)
            print(f"\ncluster: {total} acknowledged writes, {next(failures)} refused or cut while a node was "
                  f"down {restarted_after:.1f}s; replicas identical {converged:.2f}s after the writes stopped")
    run(go())


def test_haproxy_config_watch_rewrites_and_reloads_when_placement_changes(cluster):
    cfg = cluster.proxy_cfg  # the file the running HAProxy reads
    map_file = cfg.with_name(cfg.name + ".map")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "couchpy_cli", "cluster", "haproxy-config", "--cluster", str(cluster.cluster_ini),
         "--output", str(cfg), "--bind", f"127.0.0.1:{cluster.proxy_port}", "--watch", "0.3",
         "--reload-pid", str(cluster.proxy_pidfile)], cwd=str(ROOT))
    try:
        def header() -> str:
            with urllib.request.urlopen(cluster.proxy_base + "/_up", timeout=5) as r:
                return r.headers["X-Couchpy-Placement"]

        deadline = time.monotonic() + 30
        before = header()

        async def create():
            async with await _session(cluster) as s:
                async with s.put(f"{cluster.servers[0].base}/watched-new") as r:
                    assert r.status == 201
        run(create())
        # the map gains the database and HAProxy (master-worker) reloads the new configuration
        while "watched-new " not in map_file.read_text() or header() == before:
            assert time.monotonic() < deadline, "placement change not picked up"
            time.sleep(0.2)
        assert header() == re.search(r"X-Couchpy-Placement (\w+)", cfg.read_text()).group(1)
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_access_databases_are_refused_in_a_cluster(cluster):
    """Replicas are not created in access mode: a cluster refuses rather than create an open database."""
    async def go():
        async with await _session(cluster) as s:
            async with s.put(f"{cluster.servers[0].base}/cluster-access?access=true") as r:
                assert (r.status, await r.json()) == (400, {
                    "error": "bad_request", "reason": "Access databases are not available in a cluster."})
            assert (await _get(s, cluster.servers[0].base + "/cluster-access"))[0] == 404
    run(go())


def _ancestry(leaf: dict) -> set[str]:
    revs = leaf["_revisions"]
    return {f"{revs['start'] - i}-{rid}" for i, rid in enumerate(revs["ids"])}


ops = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 1), st.integers(0, 3), st.sampled_from(["proxy", 0, 1, 2])),
    st.tuples(st.just("kill"), st.integers(0, 2)),
    st.tuples(st.just("restart")),
    st.tuples(st.just("pause"), st.floats(0, 0.3)),
)


@settings(max_examples=1, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(ops, min_size=4, max_size=14))
# one run that surely loses a node in the middle of writes, besides the random one
@example(steps=[("write", 0, 0, "proxy"), ("write", 1, 1, 0), ("kill", 0), ("write", 0, 0, "proxy"),
                ("write", 1, 2, "proxy"), ("write", 0, 3, 1), ("write", 1, 1, 2), ("restart",),
                ("write", 0, 0, "proxy"), ("kill", 1), ("write", 1, 1, "proxy"), ("write", 0, 2, 2)])
def test_random_writes_kills_and_restarts_converge(cluster, steps):
    """Random writes (through HAProxy or straight to a node, new documents and updates of the same
    few), one node at a time SIGKILLed and restarted; at the end every replica agrees and holds
    every acknowledged revision."""
    dbs = ["random-0", "random-1"]
    acked: dict[tuple[str, str], set[str]] = {}
    down: list[int] = []

    async def write(s, db: str, doc_id: str, via) -> None:
        base = cluster.proxy_base if via == "proxy" else cluster.servers[via].base
        try:
            status, doc = await _get(s, f"{base}/{db}/{doc_id}")
            body = {"n": time.monotonic()}
            if status == 200:
                body["_rev"] = doc["_rev"]
            async with s.put(f"{base}/{db}/{doc_id}", json=body) as r:
                status, rev = r.status, (await r.json()).get("rev")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return  # a node that is down, or a conflict: nothing acknowledged
        if status in (201, 202):
            acked.setdefault((db, doc_id), set()).add(rev)
        # the default w is 2 of the 2 copies: after a 201 both hold it (one that is down fails this)
        if status == 201:
            for node_name in expected_nodes(cluster, db):
                srv = cluster.servers[cluster.names.index(node_name)]
                async with s.get(f"{srv.base}/{db}/{doc_id}", params={"rev": rev}) as held:
                    assert held.status == 200, (db, doc_id, rev, node_name)

    async def go():
        async with await _session(cluster) as s:
            for db in dbs:
                async with s.put(f"{cluster.proxy_base}/{db}") as r:
                    assert r.status in (201, 412)
        await asyncio.to_thread(cluster.refresh_proxy)
        async with await _session(cluster) as s:
            for step in steps:
                if step[0] == "write":
                    await write(s, dbs[step[1]], f"doc{step[2]}", step[3])
                elif step[0] == "kill" and not down:
                    cluster.kill(step[1])
                    down.append(step[1])
                elif step[0] == "restart" and down:
                    await asyncio.to_thread(cluster.restart, down.pop())
                elif step[0] == "pause":
                    await asyncio.sleep(step[1])
            while down:
                await asyncio.to_thread(cluster.restart, down.pop())
            deadline = time.monotonic() + 60
            for db in dbs:
                replicas = [cluster.servers[cluster.names.index(n)] for n in expected_nodes(cluster, db)]
                while True:
                    trees = [await _trees(s, srv.base, db) for srv in replicas]
                    if all(t == trees[0] for t in trees):
                        break
                    assert time.monotonic() < deadline, f"{db}: replicas did not converge"
                    await asyncio.sleep(0.2)
                for (adb, doc_id), revs in acked.items():
                    if adb == db:
                        held = set().union(*(_ancestry(json.loads(leaf)) for leaf in trees[0][doc_id]))
                        assert revs <= held, (db, doc_id, revs - held)
    run(go())
