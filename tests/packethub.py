"""A switch that degrades the frames it forwards: netem's loss, delay, jitter and reordering, done in
user space for kernels built without `sch_netem` (and without classifiers: `tc` alone cannot drop
at random there).

Runs inside the hub namespace of tests/netns.py, one raw AF_PACKET socket per port (the hub's end
of each node's veth), as a learning switch: a frame goes to the port its destination MAC was last
seen on, or to every other port. Each frame a node sends (the ingress port's settings) is:
  - dropped with probability `loss` (%);
  - otherwise sent after `delay` +- `jitter` ms (uniform), so frames overtake each other;
  - with probability `reorder` (%) sent at once instead, ahead of the delayed ones (netem's reorder).
A cut port drops everything in both directions (the harness also sets the link down).

Commands on stdin, one JSON object per line, each answered by one line on stdout:
    {"op": "set", "port": i, "loss": 10, "delay": 30, "jitter": 20, "reorder": 25}
    {"op": "cut", "port": i}   {"op": "heal", "port": i}   {"op": "stats"}

    ip netns exec HUB python -m tests.packethub SEED IFNAME...
"""

from __future__ import annotations

import heapq
import json
import random
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def ones_sum(data: bytes) -> int:
    """The 16-bit ones' complement sum of data (padded to even length). 2**16 = 1 mod 0xffff, so it
    is the big-endian number modulo 0xffff, with 0xffff standing for a nonzero multiple."""
    if len(data) % 2:
        data += b"\0"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    return 0xFFFF if s == 0 and n else s


def with_l4_checksum(frame: bytes) -> bytes:
    """The frame with its IPv4 TCP/UDP checksum computed. A veth leaves it to the receiver
    (checksum offload): frames read from a packet socket may carry only the pseudo-header's part,
    which once re-sent would be refused by the peer's stack."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    if proto not in (6, 17):
        return frame
    start = 14 + ihl
    end = 14 + int.from_bytes(frame[16:18], "big")
    off = start + (16 if proto == 6 else 6)
    if end > len(frame) or off + 2 > end:
        return frame
    seg = frame[start:off] + b"\0\0" + frame[off + 2:end]
    pseudo = frame[26:34] + bytes((0, proto)) + len(seg).to_bytes(2, "big")
    csum = ~ones_sum(pseudo + seg) & 0xFFFF
    if proto == 17 and csum == 0:
        csum = 0xFFFF
    return frame[:off] + csum.to_bytes(2, "big") + frame[off + 2:]


@dataclass
class Impairment:
    loss: float = 0.0  # %
    delay: float = 0.0  # ms
    jitter: float = 0.0  # ms
    reorder: float = 0.0  # %
    cut: bool = False

    def due(self, rng: random.Random, now: float) -> float | None:
        """When a frame arriving now leaves (None: dropped). Pure but for the generator."""
        if self.cut or (self.loss and rng.random() * 100 < self.loss):
            return None
        if self.reorder and rng.random() * 100 < self.reorder:
            return now
        spread = rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return now + max(0.0, self.delay + spread) / 1000.0


class Hub:
    def __init__(self, ifnames: list[str], seed: int):
        self.rng = random.Random(seed)
        self.ports = ifnames
        self.socks = []
        for name in ifnames:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((name, ETH_P_ALL))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.socks.append(s)
        self.imp = [Impairment() for _ in ifnames]
        self.macs: dict[bytes, int] = {}
        self.queue: list[tuple[float, int, int, bytes]] = []
        self.seq = 0
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.counts = {"frames": 0, "dropped": 0, "delayed": 0, "reordered": 0, "send_errors": 0}

    def outputs(self, port: int, frame: bytes) -> list[int]:
        dst, src = frame[0:6], frame[6:12]
        self.macs[src] = port
        out = self.macs.get(dst)
        if out is not None and not dst[0] & 1:
            return [out] if out != port else []
        return [p for p in range(len(self.ports)) if p != port]

    def receive(self) -> None:
        fds = {s.fileno(): i for i, s in enumerate(self.socks)}
        while True:
            ready, _, _ = select.select(self.socks, [], [], 1.0)
            for s in ready:
                port = fds[s.fileno()]
                try:
                    frame, addr = s.recvfrom(65535)
                except OSError:
                    continue
                if addr[2] == PACKET_OUTGOING:  # our own sends, seen again
                    continue
                frame = with_l4_checksum(frame)
                now = time.monotonic()
                with self.lock:
                    self.counts["frames"] += 1
                    imp = self.imp[port]
                    due = imp.due(self.rng, now)
                    if due is None:
                        self.counts["dropped"] += 1
                        continue
                    for out in self.outputs(port, frame):
                        if self.imp[out].cut:
                            self.counts["dropped"] += 1
                            continue
                        if due <= now:
                            if imp.delay:  # sent ahead of the frames still delayed
                                self.counts["reordered"] += 1
                            self.send(out, frame)
                        else:
                            self.counts["delayed"] += 1
                            self.seq += 1
                            heapq.heappush(self.queue, (due, self.seq, out, frame))
                            self.wake.set()

    def send(self, port: int, frame: bytes) -> None:
        try:
            self.socks[port].send(frame)
        except OSError:  # the link is down, or the frame too large for it: lost on the wire
            self.counts["send_errors"] += 1

    def release(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                while self.queue and self.queue[0][0] <= now:
                    _, _, out, frame = heapq.heappop(self.queue)
                    self.send(out, frame)
                wait = self.queue[0][0] - now if self.queue else 0.5
                self.wake.clear()
            self.wake.wait(min(wait, 0.5))

    def command(self, cmd: dict) -> dict:
        with self.lock:
            op = cmd["op"]
            if op == "set":
                cut = self.imp[cmd["port"]].cut
                self.imp[cmd["port"]] = Impairment(cmd.get("loss", 0), cmd.get("delay", 0), cmd.get("jitter", 0),
                                                   cmd.get("reorder", 0), cut)
            elif op in ("cut", "heal"):
                self.imp[cmd["port"]].cut = op == "cut"
            elif op != "stats":
                return {"error": f"unknown op {op}"}
            return {"ok": True, **self.counts}


def main(argv: list[str]) -> int:
    seed, ifnames = int(argv[0]), argv[1:]
    hub = Hub(ifnames, seed)
    threading.Thread(target=hub.receive, daemon=True).start()
    threading.Thread(target=hub.release, daemon=True).start()
    print(json.dumps({"ok": True, "ports": ifnames}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(hub.command(json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
