"""What a power loss could leave on disk, from an `strace -f -yy -xx -v` log of a server's writes.

The log is read as a journal, as dm-log-writes would record one below the filesystem: every write
to a file (`pwrite64`, `write`/`writev` at the offset an `lseek` set), every `fsync`/`fdatasync`
and every message sent on a socket (the acknowledgements), in the order the calls completed
(`strace -f` logs a blocking call as "<unfinished ...>" and finishes it at its "<... resumed>"
line). `image()` then builds the files as a power cut at any point of the journal may leave them:

- a write is durable once a later `fsync`/`fdatasync` of the same file has completed, or when it
  was made through a descriptor opened `O_DSYNC`/`O_SYNC` (LMDB writes its meta page so);
- every other write that completed before the cut may be lost, kept, or kept in part (a prefix of
  whole 512-byte sectors: the unit a disk writes atomically), independently of the others;
- nothing the process wrote after the cut is there.

This models the page cache, not the filesystem's own metadata: files are taken to exist with the
sizes their writes give them (a file created or renamed during the run is not dropped by the cut).

Pure: lines in, events and file contents out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

SECTOR = 512

_HEX = re.compile(rb"\\x([0-9a-f]{2})")
# "<pid> <syscall>(<fd><path>, ..." or "<pid> <... syscall resumed>..."
_START = re.compile(r"^(?P<pid>\d+)\s+(?:(?P<name>\w+)\(|<\.\.\. (?P<resumed>\w+) resumed>)")
_FD = re.compile(r"(?P<fd>\d+)<(?P<path>[^>]*)>")
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
_RESULT = re.compile(r"\)\s+=\s+(?P<ret>-?\d+)")
_OPEN = re.compile(r'openat\([^,]+, "(?P<path>[^"]*)", (?P<flags>[A-Z_|]+)')


def _unhex(text: str) -> bytes:
    return _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode())


@dataclass(frozen=True)
class Write:
    index: int  # position of completion in the log
    path: str
    offset: int
    data: bytes
    synchronous: bool  # through an O_DSYNC/O_SYNC descriptor: durable when it completes


@dataclass(frozen=True)
class Sync:
    index: int
    path: str


@dataclass(frozen=True)
class Send:
    index: int
    data: bytes


Event = Write | Sync | Send


def _calls(lines: Iterable[str]) -> Iterable[tuple[int, str, str]]:
    """(index, syscall name, whole text) of every completed call, an unfinished one joined to its
    resumption."""
    unfinished: dict[tuple[str, str], str] = {}
    for i, line in enumerate(lines):
        m = _START.match(line)
        if not m:
            continue
        pid = m.group("pid")
        if m.group("resumed"):
            name = m.group("resumed")
            first = unfinished.pop((pid, name), None)
            if first is not None:
                yield i, name, first.replace("<unfinished ...>", "") + line[m.end():]
        elif line.rstrip().endswith("<unfinished ...>"):
            unfinished[(pid, m.group("name"))] = line
        else:
            yield i, m.group("name"), line


def events(lines: Iterable[str], under: str) -> list[Event]:
    """Writes and syncs of files whose path starts with `under`, and everything sent on TCP."""
    out: list[Event] = []
    offsets: dict[str, int] = {}  # fd -> file position (for write/writev)
    synchronous: set[str] = set()  # fds opened O_DSYNC/O_SYNC
    for index, name, text in _calls(lines):
        ret = _RESULT.search(text)
        if ret is None or int(ret.group("ret")) < 0:
            continue
        result = int(ret.group("ret"))
        if name == "openat":
            opened = _OPEN.search(text)
            if opened and ("O_DSYNC" in opened.group("flags") or "O_SYNC" in opened.group("flags")):
                synchronous.add(str(result))
            else:
                synchronous.discard(str(result))
            offsets[str(result)] = 0
            continue
        fdm = _FD.search(text)
        if fdm is None:
            continue
        fd, path = fdm.group("fd"), _unhex(fdm.group("path")).decode(errors="replace")
        if name == "close":
            synchronous.discard(fd)
            offsets.pop(fd, None)
            continue
        if path.startswith("TCP:"):
            if name in ("write", "writev", "sendto", "sendmsg"):
                out.append(Send(index, b"".join(_unhex(s) for s in _STRING.findall(text))))
            continue
        if not path.startswith(under):
            continue
        if name == "lseek":
            offsets[fd] = result
        elif name in ("fsync", "fdatasync"):
            out.append(Sync(index, path))
        elif name in ("pwrite64", "pwritev", "write", "writev"):
            data = b"".join(_unhex(s) for s in _STRING.findall(text))[:result]
            if len(data) != result:
                raise ValueError(f"log line {index}: {len(data)} bytes shown of {result} written (raise strace -s)")
            if name.startswith("pwrite"):
                offset = int(text[ret.start() - 40:ret.start()].rsplit(",", 1)[1])
            else:
                offset = offsets.get(fd, 0)
                offsets[fd] = offset + result
            out.append(Write(index, path, offset, data, fd in synchronous))
    return out


def durable_before(evs: list[Event], cut: int) -> set[int]:
    """Indexes of the writes that a power cut at log position `cut` cannot lose."""
    durable: set[int] = set()
    pending: dict[str, list[int]] = {}
    for e in evs:
        if e.index >= cut:
            break
        if isinstance(e, Write):
            if e.synchronous:
                durable.add(e.index)
            else:
                pending.setdefault(e.path, []).append(e.index)
        elif isinstance(e, Sync):
            durable.update(pending.pop(e.path, []))
    return durable


def image(evs: list[Event], baseline: dict[str, bytes], cut: int, rng: random.Random) -> dict[str, bytes]:
    """The files as a power cut at log position `cut` may leave them (one random choice among the
    possible states: each write not yet durable lost, kept or torn at a sector boundary)."""
    durable = durable_before(evs, cut)
    files = {path: bytearray(data) for path, data in baseline.items()}
    for e in evs:
        if e.index >= cut:
            break
        if not isinstance(e, Write):
            continue
        data = e.data
        if e.index not in durable:
            fate = rng.randrange(3)
            if fate == 0:
                continue
            if fate == 1:
                data = data[:SECTOR * rng.randrange(len(data) // SECTOR + 1)]
        f = files.setdefault(e.path, bytearray())
        end = e.offset + len(data)
        if len(f) < end:
            f.extend(b"\0" * (end - len(f)))
        f[e.offset:end] = data
    return {path: bytes(f) for path, f in files.items()}


def sent_before(evs: list[Event], cut: int) -> bytes:
    """Everything the process had sent on TCP before the cut (its acknowledgements)."""
    return b"".join(e.data for e in evs if isinstance(e, Send) and e.index < cut)
