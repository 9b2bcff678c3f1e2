"""Two couchpy nodes running the same conflict policy and a plain CouchDB 3.4.3, edited at random and
concurrently, replicating in random directions: once edits stop and replication has run both
ways, every replica holds the same single live leaf per document, its body the policy's merge, and
resolution stops (a further round of replication writes nothing, no ping-pong).

The policy is `{"tags": "union", "n": "max"}` and every client edit is a read-modify-write that
adds one new tag and never lowers `n`: so whatever the interleaving, the merged document must hold
every tag ever written and the greatest `n` ever written -- a resolution that lost a branch, or
one node's resolution undoing the other's, shows up as a missing tag.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from couchpy import docrules
from tests.interop import name, ok, req, snapshot, wait_for
from tests.serverproc import CouchpyServer

POLICY = {"type": "fields", "fields": {"tags": "union", "n": "max"}}
KEYS = 3
OPS = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["edit", "edit", "sibling", "broadcast", "replicate", "replicate"]),
              st.integers(0, KEYS - 1), st.integers(0, 100), st.integers(0, 5)),
    min_size=1, max_size=14)
PAIRS = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]


async def _replicate(driver, peers, dbs, src: int, dst: int) -> None:
    spec = {"source": f"{peers[src].url}/{dbs[src]}", "target": f"{peers[dst].url}/{dbs[dst]}"}
    await ok(await req(driver, "POST", "/_replicate", spec), 200)


async def _write(peer, db: str, key: int, value: int, sibling: bool, expected: dict,
                 also: tuple = ()) -> None:
    path = f"/{db}/k{key}"
    tag = uuid.uuid4().hex[:8]
    expected[key]["tags"].add(tag)
    if not sibling:
        # a client's read-modify-write; the node's resolver may write in between, and the client
        # then gets 409 and retries, as CouchDB clients do
        for _ in range(10):
            doc = await ok(await req(peer, "GET", path), 200)
            body = {"tags": list(doc.get("tags", [])) + [tag], "n": max(doc.get("n", 0), value)}
            status, res = await req(peer, "PUT", path, {**body, "_rev": doc["_rev"]})
            if status != 409:
                assert status == 201, (status, res)
                expected[key]["n"] = max(expected[key]["n"], body["n"])
                return
        raise AssertionError("an edit kept conflicting with the resolver")
    doc = await ok(await req(peer, "GET", path, revs="true"), 200)
    body = {"tags": list(doc.get("tags", [])) + [tag], "n": max(doc.get("n", 0), value)}
    expected[key]["n"] = max(expected[key]["n"], body["n"])
    # a branch beside the current winner (from its parent, or a second root), as a replication
    # from a replica we do not model brings one
    ids = doc["_revisions"]["ids"]
    gen = doc["_revisions"]["start"]
    h = uuid.uuid4().hex
    history = [h] + ids[1:2]
    branch = {"_id": f"k{key}", **body, "_rev": f"{gen}-{h}", "_revisions": {"start": gen, "ids": history}}
    for p, d in ((peer, db), *also):  # `also`: the same branch reaching other replicas at once
        await ok(await req(p, "POST", f"/{d}/_bulk_docs", {"new_edits": False, "docs": [branch]}), 201)


async def _no_conflicts(peer, db: str) -> bool:
    for key in range(KEYS):
        status, doc = await req(peer, "GET", f"/{db}/k{key}", conflicts="true")
        if status != 200 or "_conflicts" in doc:
            return False
    return True


async def _seq(peer, db: str) -> str:
    return (await ok(await req(peer, "GET", f"/{db}"), 200))["update_seq"]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """Two couchpy nodes for the module (hypothesis runs many examples in one test call)."""
    nodes = [CouchpyServer(tmp_path_factory.mktemp(n), name=n) for n in ("cva", "cvb")]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


# no shrinking: each example runs replications between three servers, too slow to shrink in a test run
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(ops=OPS)
async def test_replicas_converge_to_the_policy_merge_and_resolution_stops(two_nodes, couchdb, ops):
    a, b = two_nodes
    peers = [a, b, couchdb]
    dbs = [name("cva"), name("cvb"), name("cvc")]
    try:
        for peer, db in zip(peers, dbs):
            await ok(await req(peer, "PUT", f"/{db}"), 201)
        for peer, db in zip(peers[:2], dbs[:2]):
            await ok(await req(peer, "PUT", f"/{db}/_conflict_policy", POLICY))
        expected = {k: {"tags": set(), "n": 0} for k in range(KEYS)}
        await ok(await req(a, "POST", f"/{dbs[0]}/_bulk_docs",
                           {"docs": [{"_id": f"k{k}", "tags": [], "n": 0} for k in range(KEYS)]}), 201)
        for dst in (1, 2):
            await _replicate(a, peers, dbs, 0, dst)
        writes = 0
        for side, op, key, value, pair in ops:
            if op == "replicate":
                await _replicate(a, peers, dbs, *PAIRS[pair])
            else:
                writes += 1
                # broadcast: the same conflict reaches every replica, so both couchpy nodes
                # resolve it concurrently, each on its own
                others = tuple((p, d) for i, (p, d) in enumerate(zip(peers, dbs)) if i != side) if op == "broadcast" else ()
                await _write(peers[side], dbs[side], key, value, op != "edit", expected, others)
        # edits stop: replicate every way until the replicas agree (bounded rounds)
        # (all directions at once, as continuous replications run: both couchpy nodes then get
        # each other's resolutions at the same time and resolve concurrently)
        for rounds in range(1, 7):
            await asyncio.gather(*(_replicate(a, peers, dbs, src, dst) for src, dst in PAIRS))
            for peer, db in zip(peers[:2], dbs[:2]):
                await wait_for(lambda peer=peer, db=db: _no_conflicts(peer, db), timeout=30, interval=0.2)
            snaps = [await snapshot(p, d, bodies=False) for p, d in zip(peers, dbs)]
            if snaps[0] == snaps[1] == snaps[2] and await _no_conflicts(couchdb, dbs[2]):
                break
        else:
            raise AssertionError("replicas did not converge in 6 rounds of replication")
        for key in range(KEYS):
            # (`revs=true`, not `revs_info`: which ancestors' bodies a replica kept differs by
            # how revisions reached it, in CouchDB too)
            docs = [await ok(await req(p, "GET", f"/{d}/k{key}", revs="true"), 200) for p, d in zip(peers, dbs)]
            assert docs[0] == docs[1] == docs[2]
            doc = docs[0]
            assert set(doc["tags"]) == expected[key]["tags"] and len(doc["tags"]) == len(expected[key]["tags"])
            assert doc["n"] == expected[key]["n"]
            # bounded: every write adds a generation at most, and so does each resolution, of which
            # there is at most one per node per replication
            assert int(doc["_rev"].split("-")[0]) <= 1 + writes + 2 * (len(ops) + 6 * rounds)
        # resolution has stopped: one more round of replication and a wait write nothing
        before = [await _seq(p, d) for p, d in zip(peers, dbs)]
        await asyncio.gather(*(_replicate(a, peers, dbs, src, dst) for src, dst in PAIRS))
        await asyncio.sleep(2.5)
        assert [await _seq(p, d) for p, d in zip(peers, dbs)] == before
    finally:
        for peer, db in zip(peers, dbs):
            await req(peer, "DELETE", f"/{db}")


async def test_two_nodes_resolving_the_same_conflict_write_the_same_revision(new_server):
    """The same conflict reaching two nodes: each resolves it on its own, to the same revision id,
    and replicating their resolutions to each other adds nothing."""
    a, b = new_server(name="sa"), new_server(name="sb")
    db = "same"
    root = docrules.new_rev(None, False, {"n": 0})
    docs = [{"_id": "d", "n": 0, "_rev": root}]
    docs += [{"_id": "d", "n": n, "tags": [f"t{n}"], "_rev": f"2-{n:032x}",
              "_revisions": {"start": 2, "ids": [f"{n:032x}", root.split("-")[1]]}} for n in (1, 2, 3)]
    for peer in (a, b):
        await ok(await req(peer, "PUT", f"/{db}"), 201)
        await ok(await req(peer, "PUT", f"/{db}/_conflict_policy", POLICY))
        await ok(await req(peer, "POST", f"/{db}/_bulk_docs", {"new_edits": False, "docs": docs}), 201)
    for peer in (a, b):
        await wait_for(lambda peer=peer: _no_conflicts_one(peer, db), timeout=30)
    da = await ok(await req(a, "GET", f"/{db}/d"), 200)
    assert da == await ok(await req(b, "GET", f"/{db}/d"), 200) and da["n"] == 3 and sorted(da["tags"]) == ["t1", "t2", "t3"]
    before = [await _seq(p, db) for p in (a, b)]
    for src, dst in ((a, b), (b, a)):
        await ok(await req(a, "POST", "/_replicate", {"source": f"{src.url}/{db}", "target": f"{dst.url}/{db}"}), 200)
    await asyncio.sleep(2)
    assert [await _seq(p, db) for p in (a, b)] == before
    snaps = [await snapshot(p, db, bodies=False) for p in (a, b)]
    assert snaps[0] == snaps[1]


async def _no_conflicts_one(peer, db: str) -> bool:
    status, doc = await req(peer, "GET", f"/{db}/d", conflicts="true")
    return status == 200 and "_conflicts" not in doc


async def test_continuous_replication_between_two_resolving_nodes_settles(new_server):
    """The deployment the policies are for: two nodes replicating continuously both ways, clients
    editing the same documents on both at once. Each node resolves what reaches it while the other
    does the same; the nodes end with the same single leaf per document, holding every client's
    tag, and then stay quiet (no resolution ping-pong)."""
    a, b = new_server(name="ca"), new_server(name="cb")
    db = "live"
    for peer in (a, b):
        await ok(await req(peer, "PUT", f"/{db}"), 201)
        await ok(await req(peer, "PUT", f"/{db}/_conflict_policy", POLICY))
    await ok(await req(a, "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": f"k{k}", "tags": [], "n": 0} for k in range(KEYS)]}), 201)
    for src, dst in ((a, b), (b, a)):
        await ok(await req(src, "POST", "/_replicate",
                           {"source": f"{src.url}/{db}", "target": f"{dst.url}/{db}", "continuous": True}), 202)
    await wait_for(lambda: _no_conflicts(b, db), timeout=30)
    expected = {k: {"tags": set(), "n": 0} for k in range(KEYS)}
    # both nodes edited at once, a few times over, each edit its own tag
    for value in range(4):
        await asyncio.gather(*(_write(peer, db, key, value * 10 + i, False, expected)
                               for i, peer in enumerate((a, b)) for key in range(KEYS)))

    async def settled() -> bool:
        docs = []
        for peer in (a, b):
            for key in range(KEYS):
                status, doc = await req(peer, "GET", f"/{db}/k{key}", conflicts="true")
                if status != 200 or "_conflicts" in doc or set(doc["tags"]) != expected[key]["tags"]:
                    return False
                docs.append(doc)
        return docs[:KEYS] == docs[KEYS:]

    await wait_for(settled, timeout=60, interval=0.5)
    before = [await _seq(p, db) for p in (a, b)]
    await asyncio.sleep(3)
    assert [await _seq(p, db) for p in (a, b)] == before
    assert await settled()
    for key in range(KEYS):
        doc = await ok(await req(a, "GET", f"/{db}/k{key}"), 200)
        assert doc["n"] == expected[key]["n"]
