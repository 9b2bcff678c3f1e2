"""`couchpy dump`, `couchpy load` and `couchpy compact` run as a user runs them (subprocesses against
a real server): a round trip keeps revision trees, conflicts, deletions and attachment digests; a
dump resumes; couchbackup's files load; a terminal shows a progress bar, a pipe gets one JSON line."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serverproc import CouchpyServer

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "couchpy_cli", *args], input=stdin, capture_output=True,
                          cwd=str(ROOT), timeout=timeout)


async def _fill(client, db: str) -> None:
    """Edits, a conflict, a deleted document, a deleted conflict branch, attachments, a design doc."""
    async with client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": f"d{i:03}", "n": i} for i in range(150)]}) as r:
        assert r.status == 201
    async with client.get(f"/{db}/d001") as r:
        rev = (await r.json())["_rev"]
    async with client.put(f"/{db}/d001", json={"_rev": rev, "n": 1001}) as r:
        assert r.status == 201
    conflicted = [
        {"_id": "c", "_rev": "2-aaa", "v": "left", "_revisions": {"start": 2, "ids": ["aaa", "root"]}},
        {"_id": "c", "_rev": "2-bbb", "v": "right", "_revisions": {"start": 2, "ids": ["bbb", "root"]}},
        {"_id": "c", "_rev": "3-ccc", "_deleted": True, "_revisions": {"start": 3, "ids": ["ccc", "ddd", "root"]}},
    ]
    async with client.post(f"/{db}/_bulk_docs", json={"docs": conflicted, "new_edits": False}) as r:
        assert r.status == 201
    async with client.get(f"/{db}/d002") as r:
        rev = (await r.json())["_rev"]
    async with client.delete(f"/{db}/d002", params={"rev": rev}) as r:
        assert r.status == 200
    binary = bytes(range(256)) * 40
    doc = {"_id": "att", "_attachments": {
        "blob.bin": {"content_type": "application/octet-stream", "data": base64.b64encode(binary).decode()},
        "note.txt": {"content_type": "text/plain", "data": base64.b64encode(b"hello " * 500).decode()}}}
    async with client.put(f"/{db}/att", json=doc) as r:
        assert r.status == 201
    ddoc = {"_id": "_design/v", "views": {"n": {"map": "function(doc){ if (doc.n) emit(doc.n, 1); }"}}}
    async with client.put(f"/{db}/_design/v", json=ddoc) as r:
        assert r.status == 201


async def _snapshot(client, db: str) -> dict:
    """Every document's leaves with their histories, bodies and attachment digests."""
    async with client.get(f"/{db}/_changes", params={"style": "all_docs"}) as r:
        ids = sorted(row["id"] for row in (await r.json())["results"])
    out = {}
    for docid in ids:
        async with client.get(f"/{db}/{docid}", params={"open_revs": "all", "revs": "true"},
                              headers={"Accept": "application/json"}) as r:
            assert r.status == 200
            leaves = [row["ok"] for row in await r.json()]
        for leaf in leaves:
            for att in (leaf.get("_attachments") or {}).values():
                att.pop("revpos", None)
        out[docid] = sorted(leaves, key=lambda d: d["_rev"])
    return out


async def test_dump_load_round_trip_keeps_trees_conflicts_deletions_and_digests(client, server, dbname, tmp_path):
    src, dst = dbname + "-src", dbname + "-dst"
    async with client.put(f"/{src}") as r:
        assert r.status == 201
    await _fill(client, src)
    dump = tmp_path / "db.jsonl"
    p = cli("dump", f"{server.url}/{src}", "--output", str(dump))
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stderr.decode().strip().splitlines()[-1])  # piped: one JSON line
    # every leaf: 150 documents, c's three leaves, the attachment holder and the design document
    assert summary["ok"] is True and summary["docs"] == 150 + 3 + 1 + 1
    assert server.password.encode() not in dump.read_bytes() and server.password.encode() not in p.stderr
    p = cli("load", f"{server.url}/{dst}", stdin=dump.read_bytes())
    assert p.returncode == 0, p.stderr
    before, after = await _snapshot(client, src), await _snapshot(client, dst)
    assert after == before
    assert {leaf["_rev"] for leaf in after["c"]} == {"2-aaa", "2-bbb", "3-ccc"}
    assert after["d002"][0]["_deleted"] is True
    async with client.get(f"/{dst}/att/blob.bin") as r:
        assert await r.read() == bytes(range(256)) * 40
    # loading again changes nothing (replicated writes merge)
    async with client.get(f"/{dst}") as r:
        seq_before = (await r.json())["update_seq"]
    assert cli("load", f"{server.url}/{dst}", "--input", str(dump)).returncode == 0
    assert await _snapshot(client, dst) == before
    async with client.get(f"/{dst}") as r:
        assert (await r.json())["update_seq"] == seq_before


async def test_dump_winners_only(client, server, dbname):
    async with client.put(f"/{dbname}") as r:
        assert r.status == 201
    await _fill(client, dbname)
    p = cli("dump", "--mode", "winners", f"{server.url}/{dbname}")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert lines[0]["mode"] == "winners"
    docs = [d for line in lines if isinstance(line, list) for d in line]
    assert len(docs) == len({d["_id"] for d in docs}) == 150 + 3
    assert [d["_rev"] for d in docs if d["_id"] == "c"] == ["2-bbb"]  # the winner of c


async def test_interrupted_dump_resumes_after_the_last_complete_batch(client, server, dbname, tmp_path):
    async with client.put(f"/{dbname}") as r:
        assert r.status == 201
    async with client.post(f"/{dbname}/_bulk_docs", json={"docs": [{"_id": f"r{i:04}"} for i in range(650)]}) as r:
        assert r.status == 201
    full = tmp_path / "full.jsonl"
    assert cli("dump", f"{server.url}/{dbname}", "-o", str(full)).returncode == 0
    lines = full.read_bytes().splitlines(keepends=True)
    markers = [i for i, line in enumerate(lines) if line.startswith(b'{"since"')]
    assert len(markers) >= 3
    cut = tmp_path / "cut.jsonl"
    # as if killed while writing the batch after the second marker
    cut.write_bytes(b"".join(lines[:markers[1] + 1]) + lines[markers[1] + 1][:40])
    p = cli("dump", f"{server.url}/{dbname}", "-o", str(cut), "--resume")
    assert p.returncode == 0, p.stderr
    ids = [d["_id"] for line in cut.read_bytes().splitlines() for d in (json.loads(line) if line.startswith(b"[") else [])]
    assert sorted(ids) == [f"r{i:04}" for i in range(650)]


async def test_couchbackup_files_load(client, server, dbname):
    lines = [
        {"name": "@cloudant/couchbackup", "version": "2.9.17", "mode": "full"},
        [{"_id": "x", "_rev": "2-b", "a": 2, "_revisions": {"start": 2, "ids": ["b", "a"]}},
         {"_id": "y", "_rev": "1-z", "b": 1, "_revisions": {"start": 1, "ids": ["z"]}}],
        [{"_id": "z", "_rev": "1-q", "_revisions": {"start": 1, "ids": ["q"]}}],
    ]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    p = cli("load", f"{server.url}/{dbname}", stdin=data)
    assert p.returncode == 0, p.stderr
    async with client.get(f"/{dbname}/x", params={"revs": "true"}) as r:
        assert await r.json() == {"_id": "x", "_rev": "2-b", "a": 2, "_revisions": {"start": 2, "ids": ["b", "a"]}}
    async with client.get(f"/{dbname}/_all_docs") as r:
        assert [row["id"] for row in (await r.json())["rows"]] == ["x", "y", "z"]


async def test_load_refuses_what_is_not_a_dump(server, dbname):
    p = cli("load", f"{server.url}/{dbname}", stdin=b"this is not json\n")
    assert p.returncode == 1 and b"line 1 is not JSON" in p.stderr


def test_bad_url_is_a_usage_error_without_credentials_in_the_message():
    p = cli("dump", "http://admin:topsecret@127.0.0.1:1/")
    assert p.returncode == 1 and b"not a database URL" in p.stderr and b"topsecret" not in p.stderr


def _run_in_pty(args: list[str], timeout: float = 60) -> tuple[int, bytes]:
    """Run the command with stderr on a pseudo-terminal (stdout to /dev/null); return what it drew."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100x24 terminal
    proc = subprocess.Popen([sys.executable, "-m", "couchpy_cli", *args], stdout=subprocess.DEVNULL,
                            stderr=slave, stdin=subprocess.DEVNULL, cwd=str(ROOT))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(10), out


async def test_progress_bar_on_a_terminal(client, server, dbname):
    async with client.put(f"/{dbname}") as r:
        assert r.status == 201
    async with client.post(f"/{dbname}/_bulk_docs", json={"docs": [{"_id": f"p{i:04}"} for i in range(500)]}) as r:
        assert r.status == 201
    rc, drawn = _run_in_pty(["dump", f"{server.url}/{dbname}"])
    assert rc == 0, drawn
    text = drawn.decode(errors="replace")
    assert "dump:" in text and "100%" in text and "500/500" in text
    assert '{"ok"' not in text  # no machine summary on a terminal
    rc, drawn = _run_in_pty(["compact", f"{server.url}/{dbname}"])
    assert rc == 0, drawn
    assert "compact:" in drawn.decode(errors="replace")


async def test_compact_command_waits_for_the_end(client, server, dbname):
    async with client.put(f"/{dbname}") as r:
        assert r.status == 201
    for i in range(30):
        async with client.put(f"/{dbname}/doc", json={"i": i, **({"_rev": rev} if i else {})}) as r:
            rev = (await r.json())["rev"]
    p = cli("compact", f"{server.url}/{dbname}")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stderr.decode().strip().splitlines()[-1])
    assert summary["ok"] is True and summary["db"] == dbname
    async with client.get(f"/{dbname}") as r:
        assert (await r.json())["compact_running"] is False
    async with client.get(f"/{dbname}/doc") as r:
        assert (await r.json())["i"] == 29


def test_version():
    p = cli("--version")
    assert p.returncode == 0 and p.stdout.decode().startswith("couchpy ")


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_serve_logs_access_lines(tmp_path, fmt):
    with CouchpyServer(tmp_path, name=f"log-{fmt}", args=["--log-format", fmt]) as srv:
        req = urllib.request.Request(srv.base + "/_all_dbs")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{srv.password}".encode()).decode())
        urllib.request.urlopen(req, timeout=5).read()
    log = srv.log_path.read_text()
    assert srv.password not in log
    lines = [line for line in log.splitlines() if "/_all_dbs" in line]
    assert lines, log[-2000:]
    if fmt == "json":
        rec = json.loads(lines[-1])
        assert rec["method"] == "GET" and rec["path"] == "/_all_dbs" and rec["status"] == 200
        assert rec["user"] == "admin" and rec["level"] == "info"
    else:
        assert lines[-1].startswith("[info] ") and " admin GET /_all_dbs 200 ok " in lines[-1]
