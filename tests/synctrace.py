"""Reading an `strace -f -yy -s N` log of a server: did each acknowledgement follow a durable commit?

An LMDB commit with `sync=True` writes the dirty pages, `fdatasync`s the data file, then writes
the meta page (through a descriptor opened O_DSYNC): only then is the transaction durable. So a
write acknowledged honestly shows, in the log's order, between the server reading the request and
writing the response: an `fdatasync` of the database's data file, then a `pwrite64` to that file.
`strace -f` logs events in the order they complete (a blocking call in one thread appears as
"<unfinished ...>" and completes at its "<... resumed>" line), so the order of lines is the order
of events. One exception: a socket write counts from its first line. Its bytes are in that line,
it cannot reach the client before it starts (so an acknowledgement is judged at or before the
moment it was sent, never after), and strace may be detached before printing its resumed line.

Pure: takes the log's lines, returns what it found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# "<pid> <time> <syscall>(<fd><path>..." or "<pid> <time> <... syscall resumed>..."
_CALL = re.compile(r"^\d+\s+\S+\s+(?:(?P<name>\w+)\((?P<fd>\d+)<(?P<path>[^>]*)>|<\.\.\. (?P<resumed>\w+) resumed>)")
_SOCKET_READS = {"read", "recvfrom", "recvmsg", "readv"}
_SOCKET_WRITES = {"write", "writev", "sendto", "sendmsg"}


@dataclass(frozen=True)
class Event:
    index: int  # position in the log = order of completion
    kind: str  # "recv" | "send" | "fdatasync" | "fsync" | "pwrite64"
    target: str  # file path or socket description
    line: str


def events(lines: Iterable[str]) -> list[Event]:
    """Completed calls of interest, in completion order."""
    out: list[Event] = []
    unfinished: dict[tuple[str, str], tuple[str, str]] = {}  # (pid, syscall) -> (target, first part)
    for i, line in enumerate(lines):
        m = _CALL.match(line)
        if not m:
            continue
        pid = line.split(None, 1)[0]
        if m.group("resumed"):
            name = m.group("resumed")
            started = unfinished.pop((pid, name), None)
            if started is None:
                continue
            target, first = started
            text = first + line
        else:
            name, target = m.group("name"), m.group("path")
            if line.rstrip().endswith("<unfinished ...>") and name not in _SOCKET_WRITES:
                unfinished[(pid, name)] = (target, line)
                continue
            text = line
        if name in _SOCKET_READS and target.startswith("TCP"):
            out.append(Event(i, "recv", target, text))
        elif name in _SOCKET_WRITES and target.startswith("TCP"):
            out.append(Event(i, "send", target, text))
        elif name in ("fdatasync", "fsync", "pwrite64"):
            out.append(Event(i, name, target, text))
    return out


def unsynced_acks(evs: list[Event], tokens: Iterable[str], data_file_suffix: str) -> list[str]:
    """Tokens (unique request ids) whose acknowledgement did not follow a durable commit.

    For each token: the first socket read containing it (the request), the first socket write
    containing it (the acknowledgement); in between there must be an fdatasync of a file ending in
    `data_file_suffix` followed by a pwrite64 to that same file.
    """
    bad: list[str] = []
    for token in tokens:
        recv = next((e.index for e in evs if e.kind == "recv" and token in e.line), None)
        send = next((e.index for e in evs if e.kind == "send" and token in e.line), None)
        if recv is None or send is None or send < recv:
            bad.append(f"{token}: request at {recv}, acknowledgement at {send}")
            continue
        synced_file = None
        durable = False
        for e in evs:
            if e.index <= recv:
                continue
            if e.index >= send:
                break
            if e.kind in ("fdatasync", "fsync") and e.target.endswith(data_file_suffix):
                synced_file = e.target
            elif e.kind == "pwrite64" and synced_file is not None and e.target == synced_file:
                durable = True
                break
        if not durable:
            bad.append(f"{token}: acknowledged (log line {send}) without a sync and commit after "
                       f"the request (log line {recv})")
    return bad


def count(evs: list[Event], kind: str, data_file_suffix: str) -> int:
    return sum(1 for e in evs if e.kind == kind and e.target.endswith(data_file_suffix))
