"""`couchpy replicate SOURCE TARGET` against a real server."""

from __future__ import annotations

import subprocess
import sys

from tests.serverproc import ROOT, CouchpyServer
from tests.test_replication_http import all_revs, fill, req


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "couchpy_cli", "replicate", *args], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout)


async def test_cli_replicates_with_progress_and_summary(tmp_path):
    with CouchpyServer(tmp_path) as srv:
        await fill(srv, "src", 120)
        p = run_cli(f"{srv.url}/src", f"{srv.url}/dst", "--create-target", "--progress", "--batch-size", "25")
        assert p.returncode == 0, p.stderr
        assert "written" in p.stderr and "docs/s" in p.stderr
        assert "written 120" in p.stdout and "*****" in p.stdout and srv.password not in p.stdout
        assert await all_revs(srv, "src") == await all_revs(srv, "dst")
        # again: nothing to write
        p = run_cli(f"{srv.url}/src", f"{srv.url}/dst", "-q")
        assert p.returncode == 0 and "written 0" in p.stdout, p.stdout + p.stderr
        # a subset
        p = run_cli(f"{srv.url}/src", f"{srv.url}/sub", "--create-target", "--doc-ids", "d00001,d00002", "d00003")
        assert p.returncode == 0, p.stderr
        st, rows = await req(srv, "GET", "/sub/_all_docs")
        assert [r["id"] for r in rows["rows"]] == ["d00001", "d00002", "d00003"]
        # failures: missing source, bad usage
        p = run_cli(f"{srv.url}/missing", f"{srv.url}/dst")
        assert p.returncode == 1 and "does not exist" in p.stderr
        p = run_cli("notaurl", f"{srv.url}/dst")
        assert p.returncode == 2


async def test_cli_continuous_until_interrupted(tmp_path):
    import asyncio
    import signal
    import time

    with CouchpyServer(tmp_path) as srv:
        await fill(srv, "src", 5)
        proc = subprocess.Popen([sys.executable, "-m", "couchpy_cli", "replicate", f"{srv.url}/src", f"{srv.url}/dst",
                                 "--create-target", "--continuous", "-q"], cwd=str(ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                st, info = await req(srv, "GET", "/dst")
                if st == 200 and info["doc_count"] == 5:
                    break
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "slow"
                await asyncio.sleep(0.1)
            await req(srv, "PUT", "/src/live", {"x": 1})
            deadline = time.monotonic() + 5
            while (await req(srv, "GET", "/dst/live"))[0] != 200:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "written 6" in out, out + err
