"""HAProxy in front of a cluster in network namespaces (tests/netns.py): three couchpy nodes
(n = 3) and HAProxy each in a namespace of their own, joined through the hub's data links;
clients write through HAProxy (reached over its namespace's clean control link) while the data
link of the node HAProxy sends the most databases to is cut (`ip link set down`), then healed.

HAProxy's configuration is written by `couchpy cluster haproxy-config` run inside HAProxy's
namespace (placement read over the data network). The test adds one header to it, the name of
the server that answered, to know which node serves which database. During the cut HAProxy's
health checks (`GET /_up` every 500 ms) mark that node down and the databases it served go to
another replica: no write is answered with an error, the default `w = 2` is met by the two
copies left (201), and only writes in flight on the cut link at the moment of the cut may go
unanswered (the client gives up; such a write is not counted as acknowledged). After the heal
every copy has identical revision trees holding every acknowledged write. Failover and
convergence times are printed. Needs root; marked slow.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time

import aiohttp
import pytest

from couchpy_cli.cluster_haproxy import _ident
from tests.netns import Netns
from tests.serverproc import ROOT
from tests.test_cluster_netns import ClusterNode, call, leaf_revs, trees, wait_live

pytestmark = pytest.mark.slow

NODES, N = 3, 3
DBS = ["hx-a", "hx-b", "hx-c", "hx-d"]
PROXY_PORT = 5990
SERVED_BY = "X-Served-By"


def _start_proxy(net: Netns, tmp_path, ini) -> str:
    """HAProxy in the last namespace, its configuration from the cluster's placement; its base URL."""
    ns, cfg = net.nss[NODES], tmp_path / "haproxy.cfg"
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "couchpy_cli", "cluster", "haproxy-config",
                    "--cluster", str(ini), "--output", str(cfg), "--bind", f"0.0.0.0:{PROXY_PORT}"],
                   cwd=str(ROOT), check=True, timeout=60)
    text = cfg.read_text()
    anchor = next(line for line in text.splitlines() if "X-Couchpy-Placement" in line)
    cfg.write_text(text.replace(anchor, f"{anchor}\n    http-after-response set-header {SERVED_BY} %s"))
    # stopped with the namespace (Netns kills whatever runs in its namespaces)
    subprocess.Popen(["ip", "netns", "exec", ns, "haproxy", "-W", "-f", str(cfg), "-p", str(tmp_path / "haproxy.pid")],
                     stdout=open(tmp_path / "haproxy.log", "ab"), stderr=subprocess.STDOUT)
    return f"http://{net._ctl(NODES)[1]}:{PROXY_PORT}"


async def _put(s: aiohttp.ClientSession, url: str, timeout: float) -> tuple[int, dict | None]:
    """A write through HAProxy: its status, and its JSON body (None: HAProxy's own error page)."""
    async with s.put(url, json={}, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, None


async def test_writes_through_haproxy_fail_over_when_a_nodes_link_is_cut(tmp_path):
    password = secrets.token_hex(8)
    with Netns(NODES + 1) as net:  # the last namespace holds HAProxy, on the data network as the nodes
        names = [f"node{i}@cluster" for i in range(NODES)]
        ini = tmp_path / "cluster.ini"
        ini.write_text("[cluster]\n" + f"n = {N}\n" + "".join(
            f"{name} = http://admin:{password}@{net.data_ip(i)}:5984\n" for i, name in enumerate(names)))
        servers = [ClusterNode(tmp_path, net.nss[i], net._ctl(i)[1], net.data_ip(i), f"n{i}", names[i], password, ini)
                   for i in range(NODES)]
        net.servers = servers
        await asyncio.gather(*(asyncio.to_thread(srv.start, 90) for srv in servers))
        async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", password),
                                         timeout=aiohttp.ClientTimeout(total=15)) as s:
            await wait_live(s, servers, NODES)
            for db in DBS:
                assert (await call(s, "PUT", f"{servers[0].base}/{db}"))[0] == 201
            proxy = await asyncio.to_thread(_start_proxy, net, tmp_path, ini)
            deadline = time.monotonic() + 30
            served: dict[str, str] = {}
            while len(served) < len(DBS):  # HAProxy up, its health checks passed
                try:
                    for db in DBS:
                        async with s.get(f"{proxy}/{db}") as r:
                            if r.status == 200 and r.headers.get(SERVED_BY):
                                served[db] = r.headers[SERVED_BY]
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, ((tmp_path / "haproxy.log").read_text()[-2000:], served)
                await asyncio.sleep(0.3)
            # the node serving the most databases through HAProxy is the one cut off
            idents = {i: _ident(names[i]) for i in range(NODES)}
            victim = max(range(NODES), key=lambda i: sum(v == idents[i] for v in served.values()))
            failing_over = [db for db, v in served.items() if v == idents[victim]]
            assert failing_over, (served, idents)

            acked: dict[str, dict[str, str]] = {db: {} for db in DBS}
            answers: list[tuple[float, str, int | str]] = []  # (time, db, status or the client's error)
            stop = asyncio.Event()

            async def writer(db: str, w: int) -> None:
                k = 0
                while not stop.is_set() and k < 400:
                    doc_id = f"w{w}-{k}"
                    k += 1
                    try:
                        # a write in flight on the link when it is cut waits for an answer that never
                        # comes (HAProxy's server timeout is long, for continuous feeds): given up
                        status, body = await _put(s, f"{proxy}/{db}/{doc_id}", 5)
                    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                        answers.append((time.monotonic(), db, type(exc).__name__))
                        continue
                    answers.append((time.monotonic(), db, status))
                    if status in (201, 202) and body is not None:
                        acked[db][doc_id] = body["rev"]

            tasks = [asyncio.create_task(writer(db, w)) for db in DBS for w in range(2)]
            await asyncio.sleep(2)
            net.cut(victim)
            cut_at = time.monotonic()
            # failover as a client sees it: writes sent from the moment of the cut, one after
            # another, until the first is acknowledged (HAProxy connects to the cut node, times out
            # or finds it marked down, and goes to another replica)
            failover: dict[str, float] = {}

            async def probe(db: str) -> None:
                for k in range(20):
                    try:
                        status, body = await _put(s, f"{proxy}/{db}/probe-{k}", 10)
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        continue
                    if status in (201, 202) and body is not None:
                        acked[db][body["id"]] = body["rev"]
                        failover[db] = time.monotonic() - cut_at
                        return

            probes = [asyncio.create_task(probe(db)) for db in failing_over]
            await asyncio.sleep(8)
            await asyncio.gather(*probes)
            net.heal(victim)
            healed_at = time.monotonic()
            await asyncio.sleep(2)
            stop.set()
            await asyncio.gather(*tasks)

            statuses = [a for _, _, a in answers]
            assert all(a in (201, 202) or isinstance(a, str) for a in statuses), sorted(set(map(str, statuses)))
            unanswered = [(round(t - cut_at, 1), db, a) for t, db, a in answers if isinstance(a, str)]
            # only writes in flight on the cut link when it went down: one per writer at most
            assert len(unanswered) <= 2 * len(failing_over), unanswered
            # answered while the node was cut off, once HAProxy's checks had marked it down
            during = [(t, db, a) for t, db, a in answers if cut_at + 3 < t < healed_at and not isinstance(a, str)]
            for db in failing_over:  # its node cut off, its writes went to another replica
                assert any(d == db and a == 201 for _, d, a in during), \
                    (db, [(round(t - cut_at, 1), a) for t, d, a in answers if d == db and t > cut_at - 1])
            assert all(a == 201 for _, _, a in during), [a for _, _, a in during if a != 201][:10]
            assert set(failover) == set(failing_over), failover

            deadline = healed_at + 120
            while True:
                leaves = {db: [await leaf_revs(s, srv, db) for srv in servers] for db in DBS}
                if all(v[0] == other for v in leaves.values() for other in v[1:]):
                    break
                assert time.monotonic() < deadline, "copies did not converge within 120 s of the heal"
                await asyncio.sleep(0.2)
            converged = time.monotonic() - max(healed_at, max(t for t, _, _ in answers))
            for db in DBS:
                views = [await trees(s, srv, db) for srv in servers]
                assert all(view == views[0] for view in views[1:]), db
                for doc_id, rev in acked[db].items():
                    assert any(json.loads(leaf)["ok"]["_rev"] == rev for leaf in views[0][doc_id]), (db, doc_id)
            total = sum(len(a) for a in acked.values())
            print(f"\n{total} writes acknowledged through HAProxy ({len(unanswered)} unanswered at the cut); "
                  f"{len(failing_over)} of {len(DBS)} databases failed over from the cut node, a write sent at the "
                  f"cut acknowledged {', '.join(f'{v:.2f}' for v in failover.values())}s after it; every copy identical {converged:.1f}s after "
                  "the last write")
