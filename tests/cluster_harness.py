"""Several couchpy nodes on loopback ports as one cluster, with HAProxy in front.

    with Cluster(tmp_path, nodes=3, n=2) as cl:
        cl.servers            # tests.serverproc.CouchpyServer, one per node (same admin)
        cl.proxy_url          # http://admin:<pw>@127.0.0.1:<haproxy port>
        cl.kill(i); cl.restart(i)
        cl.add_node()         # a node more in the shared definition, started
        cl.remove_node(i)     # stopped, and out of the definition
        cl.refresh_proxy()    # rewrite HAProxy's config from the placement, reload it

HAProxy runs in master-worker mode (`-W`) so that a reload (SIGUSR2) swaps its configuration
without dropping the listening socket.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .serverproc import ROOT, CouchpyServer, free_port


class Cluster:
    def __init__(self, tmp_path: Path, *, nodes: int = 3, n: int = 2, zones: list[str] | None = None,
                 settings: dict[str, str] | None = None, node_config: dict[int, dict[str, dict[str, str]]] | None = None,
                 proxy: bool = True):
        """`settings`: more `[cluster]` settings (w, r, request_timeout); `node_config`: INI
        sections for single nodes, by index; `proxy=False`: no HAProxy in front."""
        self.with_proxy = proxy
        self.tmp = Path(tmp_path)
        self.password = secrets.token_hex(8)
        ports = [free_port() for _ in range(nodes)]
        self.names = [f"node{i + 1}@127.0.0.1" for i in range(nodes)]
        self.head = ["[cluster]", f"n = {n}"] + [f"{k} = {v}" for k, v in (settings or {}).items()]
        self.node_lines: dict[str, str] = {}
        for i, (name, port) in enumerate(zip(self.names, ports, strict=True)):
            zone = f" zone={zones[i]}" if zones else ""
            self.node_lines[name] = f"{name} = http://admin:{self.password}@127.0.0.1:{port}{zone}"
        self.cluster_ini = self.tmp / "cluster.ini"
        self._write_definition()
        self.servers: list[CouchpyServer] = []
        self.node_config = node_config or {}
        for i, (name, port) in enumerate(zip(self.names, ports, strict=True)):
            self.servers.append(self._server(i, name, port))
        self.proxy_port = free_port()
        self.proxy_cfg = self.tmp / "haproxy.cfg"
        self.proxy_pidfile = self.tmp / "haproxy.pid"
        self.proxy: subprocess.Popen | None = None

    def _write_definition(self) -> None:
        text = "\n".join(self.head + list(self.node_lines.values())) + "\n"
        tmp = self.cluster_ini.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.cluster_ini)  # the nodes re-read it: never half written

    def _server(self, i: int, name: str, port: int) -> CouchpyServer:
        config = {"admins": {"admin": self.password}, "replicator": {"checkpoint_interval": "1000"}}
        for section, values in (self.node_config.get(i) or {}).items():
            config.setdefault(section, {}).update(values)
        srv = CouchpyServer(self.tmp, port=port, name=f"node{i + 1}", config=config,
                            args=["--cluster", str(self.cluster_ini), "--node-name", name])
        srv.password = self.password
        return srv

    def add_node(self) -> CouchpyServer:
        """A new node: named in the shared definition (the running nodes re-read it), then started."""
        i, port = len(self.servers), free_port()
        name = f"node{i + 1}@127.0.0.1"
        self.names.append(name)
        self.node_lines[name] = f"{name} = http://admin:{self.password}@127.0.0.1:{port}"
        self._write_definition()
        srv = self._server(i, name, port)
        self.servers.append(srv)
        srv.start(timeout=60)
        return srv

    def remove_node(self, i: int) -> None:
        """Node `i` stopped and taken out of the shared definition (it stays in `servers`, stopped)."""
        self.servers[i].stop()
        del self.node_lines[self.names[i]]
        self._write_definition()

    @property
    def proxy_url(self) -> str:
        return f"http://admin:{self.password}@127.0.0.1:{self.proxy_port}"

    @property
    def proxy_base(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def start(self) -> Cluster:
        with ThreadPoolExecutor(len(self.servers)) as pool:  # nodes start side by side
            list(pool.map(lambda srv: srv.start(timeout=60), self.servers))
        self.wait_membership()
        if self.with_proxy:
            self.refresh_proxy()
        return self

    def wait_membership(self, timeout: float = 15) -> None:
        """Until every node sees every other node up."""
        deadline = time.monotonic() + timeout
        for srv in self.servers:
            while True:
                req = urllib.request.Request(srv.base + "/_membership")
                req.add_header("Authorization", _basic(self.password))
                with urllib.request.urlopen(req, timeout=5) as r:
                    if len(json.loads(r.read())["all_nodes"]) == len(self.servers):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("nodes did not see each other")
                time.sleep(0.1)

    def write_proxy_config(self) -> None:
        subprocess.run([sys.executable, "-m", "couchpy_cli", "cluster", "haproxy-config", "--cluster",
                        str(self.cluster_ini), "--output", str(self.proxy_cfg), "--bind",
                        f"127.0.0.1:{self.proxy_port}"], cwd=str(ROOT), check=True, timeout=30)

    def refresh_proxy(self) -> None:
        """Write HAProxy's configuration from the current placement; start or reload HAProxy, and
        wait until the new configuration answers."""
        self.write_proxy_config()
        version = re.search(r"X-Couchpy-Placement (\w+)", self.proxy_cfg.read_text()).group(1)
        if self.proxy is None or self.proxy.poll() is not None:
            haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
            self.proxy = subprocess.Popen([haproxy, "-W", "-f", str(self.proxy_cfg), "-p", str(self.proxy_pidfile)],
                                          stdout=open(self.tmp / "haproxy.log", "ab"), stderr=subprocess.STDOUT)
        else:
            self.proxy.send_signal(signal.SIGUSR2)
        self._wait_proxy(version)

    def _wait_proxy(self, version: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proxy.poll() is not None:
                raise RuntimeError(f"haproxy exited: {(self.tmp / 'haproxy.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.proxy_base + "/_up", timeout=1) as r:
                    if r.status == 200 and r.headers.get("X-Couchpy-Placement") == version:
                        time.sleep(0.5)  # the new worker's first health checks
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError("haproxy did not answer")

    def kill(self, i: int) -> None:
        self.servers[i].kill()

    def restart(self, i: int) -> None:
        self.servers[i].start()

    def stop(self) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.terminate()
            try:
                self.proxy.wait(10)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
        for srv in self.servers:
            srv.stop()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()

