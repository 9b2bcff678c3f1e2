"""Five couchpy nodes as one cluster (n = 3) in network namespaces of their own (tests/netns.py),
one of them cut off (`ip link set down` on its data link) while clients write at every database's
replicas, then healed.

During the cut the isolated node still takes writes (the test reaches it over its clean control
link) but no other copy can hold them: they are 202 Accepted, never 201, whatever `w` > 1 asks;
the other side, two copies of each database, answers the default `w = 2` with 201. An update of
one document on both sides becomes an ordinary conflict. After the heal: every copy of every
database has identical revision trees holding every acknowledged write, the same winner, and the
time to converge is printed. Needs root (network namespaces): without it the test fails.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import aiohttp
import pytest

from couchpy.placement import Candidate, place
from tests.netns import Netns, NetnsServer

pytestmark = pytest.mark.slow

NODES, N = 5, 3
DBS = ["net-a", "net-b", "net-c"]


class ClusterNode(NetnsServer):
    """A namespace's node sharing the cluster's admin (the credentials the nodes use together)."""

    def __init__(self, tmp: Path, ns: str, control_ip: str, data_ip: str, name: str, node_name: str,
                 password: str, cluster_ini: Path):
        super().__init__(tmp, ns, control_ip, data_ip, name)
        self.password = password
        (self.data_dir / "couchpy.ini").write_text(
            f"[admins]\nadmin = {password}\n[couch_httpd_auth]\niterations = 1000\n"
            "[replicator]\ncheckpoint_interval = 1000\n")
        self.args += ["--cluster", str(cluster_ini), "--node-name", node_name]


async def call(s, method: str, url: str, **kw):
    async with s.request(method, url, **kw) as r:
        return r.status, await r.json(content_type=None)


async def trees(s, srv, db: str) -> dict[str, list[str]]:
    """Every document's leaves with their histories on one copy."""
    status, listing = await call(s, "GET", f"{srv.base}/{db}/_all_docs")
    assert status == 200, listing
    out = {}
    for row in listing["rows"]:
        status, leaves = await call(s, "GET", f"{srv.base}/{db}/{row['id']}",
                                    params={"open_revs": "all", "revs": "true"}, headers={"Accept": "application/json"})
        out[row["id"]] = sorted(json.dumps(leaf, sort_keys=True) for leaf in leaves)
    return out


async def leaf_revs(s, srv, db: str) -> dict[str, list[str]]:
    status, feed = await call(s, "GET", f"{srv.base}/{db}/_changes", params={"style": "all_docs"})
    assert status == 200, feed
    return {row["id"]: sorted(c["rev"] for c in row["changes"]) for row in feed["results"]}


async def wait_live(s, servers, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for srv in servers:
        while len((await call(s, "GET", f"{srv.base}/_membership"))[1]["all_nodes"]) != count:
            assert time.monotonic() < deadline, "membership did not settle"
            await asyncio.sleep(0.2)


async def test_five_nodes_a_cut_link_gives_202_on_the_cut_side_and_converges_after_the_heal(tmp_path):
    password = secrets.token_hex(8)
    with Netns(NODES) as net:
        names = [f"node{i}@cluster" for i in range(NODES)]
        ini = tmp_path / "cluster.ini"
        ini.write_text("[cluster]\n" + f"n = {N}\n" + "".join(
            f"{name} = http://admin:{password}@{net.data_ip(i)}:5984\n" for i, name in enumerate(names)))
        servers = [ClusterNode(tmp_path, ns, net._ctl(i)[1], net.data_ip(i), f"n{i}", names[i], password, ini)
                   for i, ns in enumerate(net.nss)]
        net.servers = servers  # stopped with the namespaces
        t0 = time.monotonic()
        await asyncio.gather(*(asyncio.to_thread(srv.start, 90) for srv in servers))
        print(f"\n5 nodes started in {time.monotonic() - t0:.1f}s")
        placement = {db: place(db, [Candidate(n) for n in names], N) for db in DBS}
        # the node cut off: a copy of every database if one is, else of the most
        victim = max(range(NODES), key=lambda i: sum(names[i] in nodes for nodes in placement.values()))
        acked: dict[str, dict[str, str]] = {db: {} for db in DBS}
        statuses: dict[str, list[int]] = {"isolated": [], "majority": []}

        async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", password),
                                         timeout=aiohttp.ClientTimeout(total=30)) as s:
            await wait_live(s, servers, NODES)
            for db in DBS:
                assert (await call(s, "PUT", f"{servers[0].base}/{db}"))[0] == 201
            shared = {}
            for db in DBS:  # one document every side will update
                status, body = await call(s, "PUT", f"{servers[0].base}/{db}/shared?w=3", json={"v": 0})
                assert status == 201
                shared[db] = body["rev"]

            async def writer(db: str, i: int, side: str, stop: asyncio.Event) -> None:
                k = 0
                while not stop.is_set() and k < 200:
                    status, body = await call(s, "PUT", f"{servers[i].base}/{db}/{side}-{i}-{k}", json={"k": k})
                    assert status in (201, 202), body
                    acked[db][body["id"]] = body["rev"]
                    statuses[side].append(status)
                    k += 1

            net.cut(victim)
            cut_at = time.monotonic()
            await wait_live(s, [servers[victim]], 1)  # the isolated node sees nobody
            stop = asyncio.Event()
            tasks = []
            for db, nodes in placement.items():
                for node_name in nodes:
                    i = names.index(node_name)
                    tasks.append(asyncio.create_task(writer(db, i, "isolated" if i == victim else "majority", stop)))
                # the shared document, updated on both sides of the cut
                for node_name in nodes[:2] + ([names[victim]] if names[victim] in nodes else []):
                    i = names.index(node_name)
                    status, body = await call(s, "PUT", f"{servers[i].base}/{db}/shared",
                                              json={"_rev": shared[db], "side": i})
                    if status in (201, 202):
                        acked[db][f"shared@{i}"] = body["rev"]
            await asyncio.sleep(6)
            stop.set()
            await asyncio.gather(*tasks)
            net.heal(victim)
            healed_at = time.monotonic()
            assert statuses["isolated"] and set(statuses["isolated"]) == {202}, statuses["isolated"][:10]
            assert statuses["majority"] and set(statuses["majority"]) == {201}, set(statuses["majority"])

            deadline = healed_at + 120
            while True:  # polled by leaves (cheap); the full trees are compared once level
                leaves = {db: [await leaf_revs(s, servers[names.index(n)], db) for n in placement[db]] for db in DBS}
                if all(v[0] == other for v in leaves.values() for other in v[1:]):
                    break
                assert time.monotonic() < deadline, "copies did not converge within 120 s of the heal"
                await asyncio.sleep(0.2)
            converged = time.monotonic() - healed_at
            for db in DBS:
                views = [await trees(s, servers[names.index(n)], db) for n in placement[db]]
                assert all(view == views[0] for view in views[1:]), db
                tree = views[0]
                for key, rev in acked[db].items():
                    docid = key.split("@")[0]
                    assert any(json.loads(leaf)["ok"]["_rev"] == rev for leaf in tree[docid]), (db, key)
                winners = {(await call(s, "GET", f"{servers[names.index(n)].base}/{db}/shared?conflicts=true"))[1]["_rev"]
                           for n in placement[db]}
                assert len(winners) == 1, winners
            total = sum(len(a) for a in acked.values())
            print(f"cut {healed_at - cut_at:.1f}s: {len(statuses['majority'])} writes 201 on the majority side, "
                  f"{len(statuses['isolated'])} 202 on the isolated node; {total} acknowledged; "
                  f"every copy identical {converged:.1f}s after the heal")
