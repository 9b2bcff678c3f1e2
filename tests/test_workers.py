"""`couchpy serve --workers 2`: two server processes on one port and one data directory.

Every connection here is a new one (`force_close`), so the kernel spreads them over both workers
(SO_REUSEPORT); each answer names its worker (`X-Couchpy-Worker`) and the tests check that both
took part. Everything is bounded: request counts are fixed and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from http_api.workers import socket_path
from tests.serverproc import CouchpyServer, free_port

WORKERS = 2
WRITES = 120
FEEDS = 8
DEADLINE = 30.0
FEED_DEADLINE = 10.0  # a feed sees a write within this (the poll is every 50 ms)


class WorkersServer(CouchpyServer):
    """The supervisor and its workers; ready once the supervisor printed its address (all listen)."""

    def start(self, timeout: float = 60) -> WorkersServer:
        log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start(timeout)
        deadline = time.monotonic() + timeout
        while b"couchpy listening" not in self.log_path.read_bytes()[log_size:]:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"workers did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        return self

    def worker_pids(self) -> list[int]:
        """The supervisor's children (its workers)."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("PPid:") and int(line.split()[1]) == self.proc.pid:
                    out.append(int(entry))
        return out


@pytest.fixture
def workers_server(tmp_path):
    srv = WorkersServer(tmp_path, args=["--workers", str(WORKERS)])
    srv.start()
    yield srv
    srv.stop()


def _session(srv: CouchpyServer, **kw) -> aiohttp.ClientSession:
    """A session whose every request opens a new connection (so requests reach both workers)."""
    return aiohttp.ClientSession(base_url=srv.base, auth=srv.auth,
                                 connector=aiohttp.TCPConnector(force_close=True), **kw)


async def _pinned_session(srv: CouchpyServer, worker: int) -> aiohttp.ClientSession:
    """A session whose one kept-alive connection is served by worker `worker` (new connections
    until the kernel hands one to it; bounded)."""
    for _ in range(200):
        s = aiohttp.ClientSession(base_url=srv.base, auth=srv.auth, connector=aiohttp.TCPConnector(limit=1))
        async with s.get("/_up") as r:
            await r.read()
            if r.headers["X-Couchpy-Worker"] == str(worker):
                return s
        await s.close()
    raise AssertionError(f"no connection reached worker {worker} in 200 tries")


async def _put_db(s: aiohttp.ClientSession, name: str) -> None:
    async with s.put(f"/{name}") as r:
        assert r.status == 201, await r.text()


async def test_concurrent_writers_on_both_workers_get_unique_sequences(workers_server):
    srv = workers_server
    seen_workers: set[str] = set()
    async with _session(srv) as s:
        await _put_db(s, "seqs")

        async def write(i: int) -> None:
            async with s.put(f"/seqs/d{i:04}", json={"i": i}) as r:
                assert r.status == 201, await r.text()
                seen_workers.add(r.headers["X-Couchpy-Worker"])

        # 8 concurrent writers, WRITES documents in all
        for start in range(0, WRITES, 8):
            await asyncio.gather(*(write(i) for i in range(start, min(start + 8, WRITES))))
        assert seen_workers == {str(i) for i in range(WORKERS)}
        async with s.get("/seqs/_changes") as r:
            body = await r.json()
        seqs = [int(row["seq"].split("-")[0]) for row in body["results"]]
        assert sorted(seqs) == list(range(1, WRITES + 1))  # each write its own sequence, none lost
        assert seqs == sorted(seqs)
        for _ in range(4):  # every worker counts the same (its cached counts follow the others' writes)
            async with s.get("/seqs") as r:
                info = await r.json()
            assert info["doc_count"] == WRITES
            assert int(info["update_seq"].split("-")[0]) == WRITES


async def _feed(srv: CouchpyServer, worker: int, path: str, params: dict, expect: set[str],
                key: str) -> tuple[str, set[str]]:
    """Read a continuous feed served by worker `worker` until it listed every name in `expect`
    (or the deadline); the worker that served it and what it saw."""
    seen: set[str] = set()
    async with await _pinned_session(srv, worker) as s:
        async with s.get(path, params=params, timeout=aiohttp.ClientTimeout(total=FEED_DEADLINE + 2)) as r:
            assert r.status == 200
            worker = r.headers["X-Couchpy-Worker"]
            try:
                async for line in r.content:
                    line = line.strip()
                    if not line:
                        continue
                    row = json.loads(line)
                    if key in row:
                        seen.add(row[key])
                    if expect <= seen:
                        break
            except asyncio.TimeoutError:
                pass
    return worker, seen


async def test_feeds_on_every_worker_see_writes_made_on_every_worker(workers_server):
    srv = workers_server
    ids = {f"doc{i}" for i in range(20)}
    async with _session(srv) as s:
        await _put_db(s, "feeds")
        # no heartbeat: a feed only wakes for a write (a heartbeat's timeout would re-read anyway)
        feeds = [asyncio.create_task(_feed(srv, i % WORKERS, "/feeds/_changes",
                                           {"feed": "continuous", "since": "now"}, ids, "id"))
                 for i in range(FEEDS)]
        updates = [asyncio.create_task(_feed(srv, i % WORKERS, "/_db_updates",
                                             {"feed": "continuous", "since": "now"}, {"made0", "made1"}, "db_name"))
                   for i in range(4)]
        await asyncio.sleep(1.0)  # the feeds are open (a write before that would not be "after now")
        writers: set[str] = set()
        # half of the documents written through worker 0, half through worker 1
        for w, part in enumerate((sorted(ids)[:10], sorted(ids)[10:])):
            pinned = await _pinned_session(srv, w)
            async with pinned:
                for docid in part:
                    async with pinned.put(f"/feeds/{docid}", json={}) as r:
                        assert r.status == 201, await r.text()
                        writers.add(r.headers["X-Couchpy-Worker"])
                await _put_db(pinned, f"made{w}")
        results = await asyncio.gather(*feeds)
        db_results = await asyncio.gather(*updates)
    assert writers == {str(i) for i in range(WORKERS)}
    assert {w for w, _ in results} == {str(i) for i in range(WORKERS)}
    for worker, seen in results:
        assert seen == ids, f"a feed on worker {worker} missed {sorted(ids - seen)}"
    for worker, seen in db_results:
        assert {"made0", "made1"} <= seen, f"/_db_updates on worker {worker} saw only {seen}"


async def test_longpoll_wakes_on_a_write_made_by_another_worker(workers_server):
    srv = workers_server
    async with _session(srv) as s:
        await _put_db(s, "longpoll")
        sessions = [await _pinned_session(srv, i % WORKERS) for i in range(FEEDS)]
        polls = [asyncio.create_task(p.get("/longpoll/_changes", params={"feed": "longpoll", "since": "0",
                                                                          "timeout": "20000"}))
                 for p in sessions]
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        async with await _pinned_session(srv, 0) as pinned:  # one write, through worker 0 only
            async with pinned.put("/longpoll/w", json={}) as r:
                assert r.status == 201
        served = set()
        for p in polls:
            r = await p
            served.add(r.headers["X-Couchpy-Worker"])
            body = await r.json()
            assert body["results"], body
            r.release()
        # woken by the write, not by the timeout
        assert time.monotonic() - t0 < 10
        for p in sessions:
            await p.close()
    assert served == {str(i) for i in range(WORKERS)}


# the map function logs each document it maps: how often each was mapped is read from the log
VIEW = {"views": {"by_n": {"map": "function(doc){ if (doc.n !== undefined) { log('mapped ' + doc._id); emit(doc.n, 1); } }",
                           "reduce": "_sum"}}}


async def test_views_and_mango_queried_from_both_workers_are_current_and_built_once(tmp_path):
    """Each worker may build the index a query needs; the index's lock file lets one build at a
    time, and the other finds it current, so every document is mapped once in the node.
    Concurrent queries on both workers during a first build (which rewrites the index with a
    compaction at its end) and after writes on either worker all answer exactly what the
    documents say."""
    srv = WorkersServer(tmp_path, args=["--workers", str(WORKERS)], config={"log": {"level": "info"}})
    srv.start()
    try:
        await _views_built_once(srv)
    finally:
        srv.stop()


async def _views_built_once(srv: WorkersServer) -> None:
    n_docs = 6000  # over the first-build threshold: the bulk build and its compaction run
    async with _session(srv) as s:
        await _put_db(s, "views")
        for start in range(0, n_docs, 2000):
            docs = [{"_id": f"d{i:05}", "n": i} for i in range(start, start + 2000)]
            async with s.post("/views/_bulk_docs", json={"docs": docs}) as r:
                assert r.status == 201
        async with s.put("/views/_design/v", json=VIEW) as r:
            assert r.status == 201
        async with s.post("/views/_index", json={"index": {"fields": ["n"]}, "ddoc": "m", "name": "n"}) as r:
            assert r.status == 200

        async def query() -> tuple[str, int, int, int]:
            async with s.get("/views/_design/v/_view/by_n", params={"reduce": "false", "limit": "1",
                                                                   "timeout": "60000"}) as r:
                assert r.status == 200, await r.text()
                total = (await r.json())["total_rows"]
                worker = r.headers["X-Couchpy-Worker"]
            async with s.get("/views/_design/v/_view/by_n") as r:
                total_sum = (await r.json())["rows"][0]["value"]
            async with s.post("/views/_find", json={"selector": {"n": {"$gte": 0}}, "fields": ["_id"],
                                                    "use_index": "m", "limit": 100000}) as r:
                found = len((await r.json())["docs"])
            return worker, total, total_sum, found

        results = await asyncio.gather(*(query() for _ in range(8)))
        assert {w for w, *_ in results} == {str(i) for i in range(WORKERS)}
        for worker, total, total_sum, found in results:
            assert (total, total_sum, found) == (n_docs, n_docs, n_docs), worker
        # writes on both workers, then queries on both: every worker's index reads follow
        for i in range(n_docs, n_docs + 10):
            async with s.put(f"/views/d{i:05}", json={"n": i}) as r:
                assert r.status == 201
        results = await asyncio.gather(*(query() for _ in range(8)))
        for worker, total, total_sum, found in results:
            assert (total, total_sum, found) == (n_docs + 10,) * 3, worker
    mapped: dict[str, int] = {}
    for line in srv.log_path.read_text().splitlines():
        if "view log: mapped " in line:
            docid = line.rsplit("mapped ", 1)[1].strip()
            mapped[docid] = mapped.get(docid, 0) + 1
    assert len(mapped) == n_docs + 10
    twice = [d for d, count in mapped.items() if count > 1]
    assert not twice, f"{len(twice)} documents mapped more than once, e.g. {twice[:3]}"


async def test_node_wide_endpoints_answer_the_same_on_every_worker(workers_server):
    """The replicator runs in worker 0 only: a replication made through any worker is one job,
    which `_scheduler/jobs` shows through every worker."""
    srv = workers_server
    async with _session(srv) as s:
        await _put_db(s, "src")
        await _put_db(s, "tgt")
        async with s.put("/src/a", json={"x": 1}) as r:
            assert r.status == 201
        body = {"source": f"{srv.url}/src", "target": f"{srv.url}/tgt", "continuous": True}
        async with s.post("/_replicate", json=body) as r:
            assert r.status == 202, await r.text()
        # and one from a _replicator document: only worker 0's scheduler watches that database
        async with s.put("/_replicator/r1", json={"source": f"{srv.url}/src", "target": f"{srv.url}/tgt2",
                                                  "create_target": True, "continuous": True}) as r:
            assert r.status == 201, await r.text()
        deadline = time.monotonic() + DEADLINE
        for target in ("tgt", "tgt2"):
            while True:
                async with s.get(f"/{target}/a") as r:
                    if r.status == 200:
                        break
                assert time.monotonic() < deadline, f"the replication did not copy the document to {target}"
                await asyncio.sleep(0.2)
        answers = []
        for _ in range(6):
            async with s.get("/_scheduler/jobs") as r:
                answers.append((r.headers["X-Couchpy-Worker"], len((await r.json())["jobs"])))
            async with s.get("/_active_tasks") as r:
                tasks = await r.json()
                answers.append((r.headers["X-Couchpy-Worker"], len([t for t in tasks if t["type"] == "replication"])))
        assert {count for _, count in answers} == {2}, answers


async def test_a_killed_worker_loses_no_acknowledged_write_and_is_restarted(workers_server):
    srv = workers_server
    pids = srv.worker_pids()
    assert len(pids) == WORKERS
    acked: dict[str, str] = {}
    async with _session(srv) as s:
        await _put_db(s, "crash")
        stop = asyncio.Event()

        async def writer(w: int) -> None:
            i = 0
            while not stop.is_set() and i < 2000:
                docid = f"w{w}-{i}"
                i += 1
                try:
                    async with s.put(f"/crash/{docid}", json={"w": w}) as r:
                        if r.status == 201:
                            acked[docid] = (await r.json())["rev"]
                except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
                    await asyncio.sleep(0.01)  # the killed worker's connection

        tasks = [asyncio.create_task(writer(w)) for w in range(6)]
        await asyncio.sleep(1.5)
        victim = max(pids)
        os.kill(victim, signal.SIGKILL)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*tasks)
        assert acked
        # the supervisor starts a new worker in the victim's place
        deadline = time.monotonic() + DEADLINE
        while True:
            now = srv.worker_pids()
            if len(now) == WORKERS and victim not in now:
                break
            assert time.monotonic() < deadline, f"no worker replaced {victim}: {now}"
            await asyncio.sleep(0.2)
        # both answer again, and every acknowledged write is there with its revision
        deadline = time.monotonic() + DEADLINE
        workers: set[str] = set()
        while len(workers) < WORKERS:
            assert time.monotonic() < deadline, f"only worker(s) {workers} answer after the restart"
            try:
                async with s.get("/crash") as r:
                    workers.add(r.headers["X-Couchpy-Worker"])
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        async with s.post("/crash/_all_docs", json={"keys": sorted(acked)}) as r:
            rows = (await r.json())["rows"]
        missing = [row["key"] for row in rows if row.get("value", {}).get("rev") != acked[row["key"]]]
        assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"


def test_sigterm_to_the_supervisor_stops_every_worker(workers_server):
    srv = workers_server
    pids = srv.worker_pids()
    assert len(pids) == WORKERS
    srv.proc.terminate()
    srv.proc.wait(30)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text()
              for p in pids):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.1)


def test_workers_die_with_a_killed_supervisor_even_when_hung(workers_server):
    """A supervisor killed with SIGKILL takes its workers with it at once, also one that could not
    stop by itself: here gdb holds worker 1 (ptrace), as a hung event loop would never run the
    handler of a polite signal. (SIGSTOP would not do: the kernel continues a stopped process
    whose process group is orphaned, and whether it is depends on how the tests were started.)"""
    gdb = shutil.which("gdb")
    assert gdb, "gdb is required (apt-get install gdb)"
    srv = workers_server
    pids = srv.worker_pids()
    assert len(pids) == WORKERS
    holder = subprocess.Popen([gdb, "-nx", "-batch", "-p", str(pids[1]), "-ex", "shell sleep 60"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def state(pid: int) -> str:
        try:
            return next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith("State:"))
        except FileNotFoundError:
            return "gone"

    try:
        deadline = time.monotonic() + 30
        while state(pids[1]) != "t":  # tracing stop: gdb has it
            assert time.monotonic() < deadline and holder.poll() is None, "gdb did not attach"
            time.sleep(0.05)
        srv.proc.kill()
        srv.proc.wait(30)
        deadline = time.monotonic() + 10
        while any(state(p) not in ("gone", "Z") for p in pids):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait(10)
        for pid in pids:  # never leave one behind, whatever the outcome
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_a_config_change_through_one_worker_applies_in_every_worker(tmp_path):
    """An admin created through worker 0's `_config` can log in through worker 1 (failed logins
    while worker 1 does not know bob yet must not lock him out: lockout off)."""
    srv = WorkersServer(tmp_path, args=["--workers", str(WORKERS)], config={"chttpd_auth_lockout": {"mode": "off"}})
    srv.start()
    try:
        await _config_followed(srv)
    finally:
        srv.stop()


async def _config_followed(srv: WorkersServer) -> None:
    async with await _pinned_session(srv, 0) as w0:
        async with w0.put("/_node/_local/_config/admins/bob", json="bobs-secret") as r:
            assert r.status == 200, await r.text()
    async with await _pinned_session(srv, 1) as w1:
        deadline = time.monotonic() + DEADLINE
        while True:
            async with w1.get("/_session", auth=aiohttp.BasicAuth("bob", "bobs-secret")) as r:
                body = await r.json()  # 401 while worker 1 does not know bob
            if r.status == 200 and body["userCtx"]["name"] == "bob":
                assert "_admin" in body["userCtx"]["roles"]
                break
            assert time.monotonic() < deadline, f"worker 1 does not know bob: {body}"
            await asyncio.sleep(0.2)


async def test_a_database_deleted_through_one_worker_is_gone_in_every_worker(workers_server):
    """Worker 1 had the database open (a feed waiting on it); worker 0 deletes and re-creates it:
    the feed on worker 1 ends, and worker 1 serves the new, empty database."""
    srv = workers_server
    async with await _pinned_session(srv, 1) as w1, await _pinned_session(srv, 0) as w0:
        await _put_db(w1, "gone")
        async with w1.put("/gone/old", json={}) as r:
            assert r.status == 201
        async with await _pinned_session(srv, 1) as other:
            # a longpoll held by worker 1 (its heartbeat sends the headers)
            feed = await other.get("/gone/_changes", params={"feed": "longpoll", "since": "now",
                                                            "timeout": "25000", "heartbeat": "500"})
            assert feed.headers["X-Couchpy-Worker"] == "1"
            t0 = time.monotonic()
            async with w0.delete("/gone") as r:
                assert r.status == 200
            await feed.read()
            assert time.monotonic() - t0 < 10, "the feed on worker 1 did not end with the deletion"
        async with w1.get("/gone/old") as r:
            assert r.status == 404
            assert (await r.json())["reason"] == "Database does not exist."
        await _put_db(w0, "gone")
        async with w1.get("/gone/old") as r:
            assert r.status == 404, "worker 1 still serves the deleted database's document"
        async with w1.get("/gone") as r:
            assert (await r.json())["doc_count"] == 0


async def test_while_worker_0_restarts_other_workers_answer_its_requests_with_503(workers_server):
    srv = workers_server
    first = [p for p in srv.worker_pids() if "--worker-index\x000" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(first) == 1
    async with await _pinned_session(srv, 1) as w1:
        os.kill(first[0], signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            async with w1.get("/_scheduler/jobs") as r:
                statuses.append(r.status)
                body = await r.json()
                if r.status == 503:
                    assert body["error"] == "unavailable", body
            if statuses[-1] == 200 and first[0] not in srv.worker_pids():
                break
            await asyncio.sleep(0.02)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[-1] == 200, statuses  # worker 0 is back and answers through worker 1


def test_reader_slots_a_killed_process_left_are_freed(workers_server):
    """A process killed inside a read transaction leaves its slot in the environment's lock file;
    the workers free it (LMDB frees such slots itself only when the first process opens the
    environment), so the dead snapshot does not keep pages from being reused."""
    import lmdb
    import subprocess
    import sys

    srv = workers_server
    path = str(srv.data_dir / "_node")
    code = ("import lmdb, sys, time\n"
            f"env = lmdb.open({path!r}, max_dbs=32, max_readers=1024, readonly=True)\n"
            "txn = env.begin()\nprint('reading', flush=True)\ntime.sleep(120)\n")
    reader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert reader.stdout.readline().strip() == b"reading"
        pid = reader.pid
    finally:
        reader.kill()
        reader.wait(10)
    env = lmdb.open(path, max_dbs=32, max_readers=1024, readonly=True)
    try:
        assert f" {pid} " in env.readers()  # the dead process's slot is there
        deadline = time.monotonic() + 25  # the workers look every 10 s
        while f" {pid} " in env.readers():
            assert time.monotonic() < deadline, env.readers()
            time.sleep(0.5)
    finally:
        env.close()


async def test_a_data_directory_too_long_for_a_socket_file(tmp_path):
    """A UNIX socket address holds 108 bytes: under a long data directory the workers reach
    worker 0 through a socket in a directory of their own under the temporary directory."""
    srv = WorkersServer(tmp_path / ("long-" * 20), args=["--workers", str(WORKERS)])
    assert len(str(srv.data_dir / ".workers" / "0.sock")) > 108
    srv.start()
    try:
        async with await _pinned_session(srv, 1) as w1:
            async with w1.get("/_scheduler/jobs") as r:
                assert r.status == 200, await r.text()  # forwarded to worker 0 and answered
    finally:
        srv.stop()
        shutil.rmtree(Path(socket_path(srv.data_dir, 0)).parent, ignore_errors=True)


async def test_metrics_are_the_whole_nodes_through_every_worker(workers_server):
    """`_stats`, `_prometheus` and `_system` answer for the node, whichever worker a client
    reaches: 404s made through both workers are counted once each, in the figure every worker
    shows (no other request here answers 404). A client cannot pose as a worker."""
    srv = workers_server
    per_worker: dict[str, int] = {}
    async with _session(srv) as s:
        for i in range(200):
            async with s.get("/no-such-db") as r:
                assert r.status == 404
                worker = r.headers["X-Couchpy-Worker"]
            per_worker[worker] = per_worker.get(worker, 0) + 1
            if i >= 20 and len(per_worker) == WORKERS:
                break
    assert set(per_worker) == {str(i) for i in range(WORKERS)}, per_worker
    total = sum(per_worker.values())
    for index in range(WORKERS):
        async with await _pinned_session(srv, index) as w:
            async with w.get("/_node/_local/_stats/couchdb/httpd_status_codes/404") as r:
                assert r.headers["X-Couchpy-Worker"] == str(index)
                assert (await r.json())["value"] == total, (index, per_worker)
            async with w.get("/_node/_local/_stats") as r:
                tree = await r.json()
            # one merged snapshot: every request counted is timed, in whichever worker it was
            assert tree["couchdb"]["request_time"]["value"]["n"] == tree["couchdb"]["httpd"]["requests"]["value"]
            assert tree["couchdb"]["httpd"]["requests"]["value"] > total
            async with w.get("/_node/_local/_prometheus") as r:
                text = await r.text()
            assert f'couchdb_httpd_status_codes{{code="404"}} {total}\n' in text
            async with w.get("/_node/_local/_system") as r:
                system = await r.json()
            each = system["workers"]
            assert [s["worker"] for s in each] == list(range(WORKERS))
            assert system["memory"]["total"] == sum(s["memory"]["total"] for s in each)
            assert system["open_files"] == sum(s["open_files"] for s in each)
            assert all(s["memory"]["total"] > 0 for s in each)
            # the headers workers send each other are ignored from a client (TCP): the node's tree
            forged = {"X-Couchpy-Worker-Forwarded": "0", "X-Couchpy-Worker-Ask": "1"}
            async with w.get("/_node/_local/_stats/couchdb/httpd_status_codes/404", headers=forged) as r:
                assert (await r.json())["value"] == total
            async with w.get("/_node/_local/_stats", headers=forged) as r:
                assert set(await r.json()) >= {"couchdb", "mango"}


async def _auth_status(s: aiohttp.ClientSession, auth: aiohttp.BasicAuth, worker: int) -> int:
    async with s.get("/_session", auth=auth) as r:
        await r.read()
        assert r.headers["X-Couchpy-Worker"] == str(worker)
        return r.status


async def test_failed_logins_lock_a_user_out_in_every_worker(workers_server):
    """`threshold` (5) failures in all, 3 through worker 0 and 2 through worker 1, lock the user
    out in both (each worker alone saw fewer than 5); the lockout outlives killed workers."""
    srv = workers_server
    async with _session(srv) as s:
        async with s.put("/_users/org.couchdb.user:carol",
                         json={"name": "carol", "password": "right", "roles": [], "type": "user"}) as r:
            assert r.status == 201, await r.text()
    wrong, right = aiohttp.BasicAuth("carol", "wrong"), aiohttp.BasicAuth("carol", "right")
    async with await _pinned_session(srv, 0) as w0, await _pinned_session(srv, 1) as w1:
        assert await _auth_status(w0, right, 0) == 200 and await _auth_status(w1, right, 1) == 200
        for index in (0, 1, 0, 1, 0):
            assert await _auth_status((w0, w1)[index], wrong, index) == 401
        for index in (0, 1):
            assert await _auth_status((w0, w1)[index], right, index) == 403  # locked, the right password too
            assert await _auth_status((w0, w1)[index], srv.auth, index) == 200  # the admin is not
    pids = srv.worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE
    while True:  # the supervisor starts both again
        now = srv.worker_pids()
        if len(now) == WORKERS and not set(now) & set(pids):
            break
        assert time.monotonic() < deadline, f"workers not replaced: {now}"
        await asyncio.sleep(0.2)
    seen: set[str] = set()
    async with aiohttp.ClientSession(base_url=srv.base, connector=aiohttp.TCPConnector(force_close=True)) as s:
        while len(seen) < WORKERS:
            assert time.monotonic() < deadline, f"only worker(s) {seen} answer after the restart"
            try:
                async with s.get("/_session", auth=right) as r:
                    assert r.status == 403, await r.text()
                    seen.add(r.headers["X-Couchpy-Worker"])
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)


class DefaultServer(WorkersServer):
    """`couchpy serve` as the README starts it, without `--workers`."""

    def command(self) -> list[str]:
        cmd = super().command()
        at = cmd.index("--workers")
        return cmd[:at] + cmd[at + 2:]


async def test_serve_without_workers_runs_one_worker_per_core(tmp_path):
    cores = len(os.sched_getaffinity(0))
    srv = DefaultServer(tmp_path)
    srv.start()
    try:
        assert "--workers" not in srv.command()
        if cores == 1:  # one process, no supervisor
            assert srv.worker_pids() == []
            return
        assert len(srv.worker_pids()) == cores
        seen: set[str] = set()
        async with _session(srv) as s:
            for _ in range(200):  # bounded: the kernel spreads new connections over the workers
                async with s.get("/_up") as r:
                    seen.add(r.headers["X-Couchpy-Worker"])
                if len(seen) == cores:
                    break
        assert seen == {str(i) for i in range(cores)}
    finally:
        srv.stop()


async def test_a_node_of_a_cluster_runs_one_worker_by_default(tmp_path):
    port = free_port()
    name = "node1@127.0.0.1"
    srv = DefaultServer(tmp_path, port=port, args=["--node-name", name],
                        config={"cluster": {"n": "1", name: f"http://admin:unused@127.0.0.1:{port}"}})
    srv.start()
    try:
        assert srv.worker_pids() == []  # the process serving is the one started
        async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as s:
            async with s.get("/_membership") as r:
                assert (await r.json())["all_nodes"] == [name]
    finally:
        srv.stop()
