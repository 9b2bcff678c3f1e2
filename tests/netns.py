"""couchpy nodes in network namespaces of their own, joined through a hub namespace whose links
lose, delay and reorder frames, and can be cut (`ip link set down`).

    with Netns(3) as net:                  # needs root; raises (never skips) otherwise
        a, b, c = net.start_all(tmp_path)  # NetnsServer, one per namespace
        a.base        # the control address (test -> node), never degraded
        a.peer_url    # the data address with credentials: what replications between nodes use
        net.degrade(0, loss=10, delay_ms=30, jitter_ms=20, reorder=25)
        net.cut(1); net.heal(1); net.clear(0); net.counters()

Topology, all names unique per run (`cpy<tag>...`), nothing outside them ever addressed:

    node i namespace  --data veth--  hub namespace (tests/packethub.py)  --data veth--  node j namespace
    node i namespace  --control veth--  the test's namespace

The hub forwards frames between the data veths and degrades those each node sends (netem's
loss, delay, jitter and reordering, in user space: the kernels this runs on are built without
`sch_netem`); a cut also sets the hub's end of the link down. The control links stay clean so the
test can always drive and observe the nodes. Everything is deleted on exit: the servers and the
hub stopped, the namespaces deleted (which deletes their veths).
"""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.serverproc import ROOT, CouchpyServer

PORT = 5984  # each namespace has its own port space


def sh(*args: str) -> str:
    """Run one `ip`/`tc` command; a failure raises with its stderr (no silent fallback)."""
    out = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")
    return out.stdout


class NetnsServer(CouchpyServer):
    """A couchpy server inside a namespace: listens on all of the namespace's addresses."""

    def __init__(self, tmp_path: Path, ns: str, control_ip: str, data_ip: str, name: str):
        super().__init__(tmp_path, port=PORT, name=name, args=["--host", "0.0.0.0"])
        self.ns = ns
        self.control_ip = control_ip
        self.data_ip = data_ip

    def command(self) -> list[str]:
        # `ip netns exec` execs the command: the pid is the server's own, so SIGKILL reaches it
        return ["ip", "netns", "exec", self.ns, *super().command()]

    @property
    def base(self) -> str:
        return f"http://{self.control_ip}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@{self.control_ip}:{self.port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.user}:{self.password}@{self.data_ip}:{self.port}"


class Netns:
    def __init__(self, nodes: int, seed: int | None = None):
        self.n = nodes
        self.tag = secrets.token_hex(3)
        rng = random.Random(seed)
        # private subnets picked per run; 10.2xx.* is unused on the hosts this runs on
        self.net = f"10.{rng.randrange(200, 250)}.{rng.randrange(0, 255, 2)}"
        self.hub_ns = f"cpy{self.tag}h"
        self.nss = [f"cpy{self.tag}n{i}" for i in range(nodes)]
        self.data_if = [f"d{self.tag}{i}" for i in range(nodes)]  # in node i's namespace
        self.hub_if = [f"h{self.tag}{i}" for i in range(nodes)]  # its other end, on the bridge
        self.ctl_if = [f"c{self.tag}{i}" for i in range(nodes)]  # in the test's namespace
        self.ctl_peer_if = [f"k{self.tag}{i}" for i in range(nodes)]  # its other end, in node i's
        self.servers: list[NetnsServer] = []
        self.seed = rng.randrange(1 << 32)
        self.hub_proc: subprocess.Popen | None = None
        self.faults = 0  # impairments and link cuts applied
        self._created: list[str] = []

    def data_ip(self, i: int) -> str:
        return f"{self.net}.{10 + i}"

    def _ctl(self, i: int) -> tuple[str, str]:
        a, b, c = self.net.split(".")
        return f"{a}.{b}.{int(c) + 1}.{4 * i + 1}", f"{a}.{b}.{int(c) + 1}.{4 * i + 2}"

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> Netns:
        try:
            self.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def create(self) -> None:
        sh("ip", "netns", "add", self.hub_ns)
        self._created.append(self.hub_ns)
        for i, ns in enumerate(self.nss):
            sh("ip", "netns", "add", ns)
            self._created.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # data link: node <-> bridge
            sh("ip", "-n", ns, "link", "add", self.data_if[i], "type", "veth", "peer", "name", self.hub_if[i],
               "netns", self.hub_ns)
            # one frame per segment: the hub forwards frames of at most the MTU (no TSO/GSO batches)
            sh("ip", "-n", ns, "link", "set", self.data_if[i], "gso_max_segs", "1")
            sh("ip", "-n", self.hub_ns, "link", "set", self.hub_if[i], "promisc", "on", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.data_ip(i)}/24", "dev", self.data_if[i])
            sh("ip", "-n", ns, "link", "set", self.data_if[i], "up")
            # control link: the test's namespace <-> node
            outer, inner = self._ctl(i)
            sh("ip", "link", "add", self.ctl_if[i], "type", "veth", "peer", "name", self.ctl_peer_if[i], "netns", ns)
            sh("ip", "addr", "add", f"{outer}/30", "dev", self.ctl_if[i])
            sh("ip", "link", "set", self.ctl_if[i], "up")
            sh("ip", "-n", ns, "addr", "add", f"{inner}/30", "dev", self.ctl_peer_if[i])
            sh("ip", "-n", ns, "link", "set", self.ctl_peer_if[i], "up")
        self.hub_proc = subprocess.Popen(
            ["ip", "netns", "exec", self.hub_ns, sys.executable, "-m", "tests.packethub", str(self.seed), *self.hub_if],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
        hello = self.hub_proc.stdout.readline()
        if not hello.startswith('{"ok": true'):
            raise RuntimeError(f"packet hub did not start: {hello!r}")

    def start_all(self, tmp_path: Path) -> list[NetnsServer]:
        for i, ns in enumerate(self.nss):
            self.servers.append(NetnsServer(tmp_path, ns, self._ctl(i)[1], self.data_ip(i), name=f"n{i}"))
        with ThreadPoolExecutor(self.n) as pool:  # starting is mostly waiting: all at once
            list(pool.map(lambda srv: srv.start(60), self.servers))
        return self.servers

    def destroy(self) -> None:
        try:
            for srv in self.servers:
                srv.stop()
            if self.hub_proc is not None:
                self.hub_proc.kill()
                self.hub_proc.wait(10)
        finally:
            self.hub_proc = None
            for ns in reversed(self._created):
                # whatever still runs in a namespace of ours was started by this harness
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
                for pid in pids:
                    subprocess.run(["kill", "-9", pid], capture_output=True)
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            self._created.clear()

    # ------------------------------------------------------------------ faults

    def hub(self, **cmd) -> dict:
        """One command to the packet hub, and its answer (counters included)."""
        assert self.hub_proc is not None and self.hub_proc.stdin and self.hub_proc.stdout
        self.hub_proc.stdin.write(json.dumps(cmd) + "\n")
        self.hub_proc.stdin.flush()
        answer = json.loads(self.hub_proc.stdout.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"packet hub: {cmd} -> {answer}")
        return answer

    def degrade(self, i: int, loss: float = 0, delay_ms: float = 0, jitter_ms: float = 0, reorder: float = 0) -> None:
        """Frames node i sends: loss %, delay +- jitter ms, reorder % (sent at once, ahead of the rest)."""
        self.hub(op="set", port=i, loss=loss, delay=delay_ms, jitter=jitter_ms, reorder=reorder)
        self.faults += 1

    def clear(self, i: int) -> None:
        self.hub(op="set", port=i)

    def cut(self, i: int) -> None:
        """Node i's data link down: nothing in or out (the test's control link stays up)."""
        self.hub(op="cut", port=i)
        sh("ip", "-n", self.hub_ns, "link", "set", self.hub_if[i], "down")
        self.faults += 1

    def heal(self, i: int) -> None:
        sh("ip", "-n", self.hub_ns, "link", "set", self.hub_if[i], "up")
        self.hub(op="heal", port=i)

    def calm(self) -> None:
        """Every link up and clean."""
        for i in range(self.n):
            self.clear(i)
            self.heal(i)

    def counters(self) -> dict:
        return self.hub(op="stats")
